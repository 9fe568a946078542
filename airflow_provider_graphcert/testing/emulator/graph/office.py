"""SharePoint rewrites Office documents stored in a document library: it adds its own metadata to
the file (a zip), so the stored size and quickXorHash differ from the bytes that were uploaded.

rclone documents the effect and skips size/hash checks for such files
(https://rclone.org/onedrive/#unexpected-file-size-hash-differences-on-sharepoint). The emulator
does the same kind of rewrite, on by default per library (``Drive.rewrite_office_documents``),
so a client's verification policy meets it offline. Files that are not valid zips are stored
as sent: SharePoint cannot parse them either.
"""

from __future__ import annotations

import shutil
import uuid
import zipfile
from pathlib import PurePosixPath
from typing import TYPE_CHECKING

from airflow_provider_graphcert.testing.emulator.graph.blobs import StoredBody

if TYPE_CHECKING:
    from airflow_provider_graphcert.testing.emulator.graph.drives import Drive
    from airflow_provider_graphcert.testing.emulator.graph.state import GraphState

# The Open XML formats (Word, Excel, PowerPoint, Visio) SharePoint opens and writes back.
OFFICE_EXTENSIONS = frozenset(
    {".docx", ".docm", ".dotx", ".dotm", ".xlsx", ".xlsm", ".xltx", ".xltm", ".xlsb", ".pptx", ".pptm",
     ".potx", ".potm", ".ppsx", ".ppsm", ".vsdx", ".vsdm"}
)  # fmt: skip
# What the emulator adds: a custom XML part, as SharePoint adds its document-management properties.
METADATA_PART = "customXml/graphcertEmulatorItem.xml"
_METADATA_XML = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<documentManagement xmlns="http://schemas.microsoft.com/office/2006/documentManagement/types">'
    "<emulatedBy>graphcert</emulatedBy><storedId>{stored_id}</storedId></documentManagement>"
)


def is_office_document(name: str) -> bool:
    return PurePosixPath(name.casefold()).suffix in OFFICE_EXTENSIONS


def stored_as_sharepoint_would(state: GraphState, drive: Drive, name: str, body: StoredBody) -> StoredBody:
    """The body SharePoint would keep for an upload of ``name``: ``body`` itself, or a new rewritten
    blob (the caller then owns both and removes the one it does not keep)."""
    if not drive.rewrite_office_documents or not is_office_document(name) or not zipfile.is_zipfile(body.path):
        return body
    staging = state.blob_dir / f"{uuid.uuid4().hex}.office"
    try:
        with zipfile.ZipFile(body.path) as source, zipfile.ZipFile(staging, "w", zipfile.ZIP_DEFLATED) as target:
            for entry in source.infolist():
                if entry.filename == METADATA_PART:
                    continue
                with source.open(entry) as reader, target.open(entry, "w") as writer:
                    shutil.copyfileobj(reader, writer)
            target.writestr(METADATA_PART, _METADATA_XML.format(stored_id=uuid.uuid4()))
        return state.store_body(staging)
    except zipfile.BadZipFile:
        return body
    finally:
        staging.unlink(missing_ok=True)
