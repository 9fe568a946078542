"""Is what SharePoint stored what we sent? Size and QuickXorHash of the reply against the local file.

SharePoint rewrites Office documents uploaded to document libraries (it writes the library's
columns into the file's properties), so their stored size and QuickXorHash differ from the bytes
sent although nothing went wrong (https://github.com/OneDrive/onedrive-api-docs/issues/935; rclone
documents the same at https://rclone.org/onedrive/#unexpected-file-size-hash-differences-on-sharepoint).
The policy (docs/troubleshooting.md, "Upload verification and Office documents"):

- ``strict``: every file must come back with our size and, when Graph sends one, our hash.
- ``office_aware`` (default): the same for every file except Office documents, whose different
  size and hash are accepted as SharePoint's rewrite, logged and reported in the result.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any, Literal

from airflow_provider_graphcert.errors import ConfigurationError, GraphCertError
from airflow_provider_graphcert.sharepoint.download import IntegrityError, remote_hash

VerifyMode = Literal["strict", "office_aware"]
VERIFY_MODES: tuple[str, ...] = ("strict", "office_aware")
DEFAULT_VERIFY: VerifyMode = "office_aware"

# Types SharePoint writes document properties into on upload: Word, Excel, PowerPoint and Visio,
# in their Open XML and legacy binary forms (the rclone note above: "mainly Office files").
OFFICE_EXTENSIONS = frozenset(
    {
        ".doc", ".docx", ".docm", ".dot", ".dotx", ".dotm",
        ".xls", ".xlsx", ".xlsm", ".xlsb", ".xlt", ".xltx", ".xltm",
        ".ppt", ".pptx", ".pptm", ".pot", ".potx", ".potm", ".pps", ".ppsx", ".ppsm",
        ".vsdx", ".vsdm",
    }
)  # fmt: skip

# How the stored copy was checked; goes into each uploaded file's result.
Verdict = Literal["hash", "size", "rewritten_by_sharepoint"]


def check_verify_mode(value: str) -> VerifyMode:
    if value not in VERIFY_MODES:
        raise ConfigurationError(
            f"verify '{value}' must be one of {', '.join(VERIFY_MODES)}: 'strict' checks every file's size and "
            "hash, 'office_aware' also accepts SharePoint's rewrite of Office documents.",
            field="verify",
        )
    return value  # type: ignore[return-value]


def is_office_document(name: str) -> bool:
    return PurePosixPath(name).suffix.lower() in OFFICE_EXTENSIONS


@dataclass(frozen=True)
class StoredCopy:
    """What Graph says it stored; a value it sent in the wrong shape counts as not sent."""

    item_id: str
    size: int | None
    quick_xor_hash: str | None

    @classmethod
    def from_reply(cls, item: Any, remote_path: str) -> StoredCopy:
        if not isinstance(item, dict) or not isinstance(item.get("id"), str) or not item["id"]:
            raise GraphCertError(
                f"Graph's reply to the upload of '{remote_path}' is not a driveItem with an id, so it cannot be "
                "checked; look at the file in SharePoint and upload it again if it is not right."
            )
        size = item.get("size")
        return cls(
            item_id=item["id"],
            size=size if isinstance(size, int) and not isinstance(size, bool) and size >= 0 else None,
            quick_xor_hash=remote_hash(item) or None,
        )


def verify_upload(stored: StoredCopy, remote_path: str, sent_size: int, sent_hash: str, mode: VerifyMode) -> Verdict:
    """How the stored copy matched what was sent; raises IntegrityError when it does not."""
    size_agrees = stored.size is None or stored.size == sent_size
    if stored.quick_xor_hash == sent_hash and size_agrees:
        return "hash"
    if stored.quick_xor_hash is None and stored.size == sent_size:
        return "size"
    if mode == "office_aware" and is_office_document(remote_path) and _plausible_rewrite(stored, sent_size):
        return "rewritten_by_sharepoint"
    raise IntegrityError(_mismatch_message(stored, remote_path, sent_size, sent_hash, mode))


def _plausible_rewrite(stored: StoredCopy, sent_size: int) -> bool:
    # A rewrite adds properties to a document; it never turns a document into nothing.
    return stored.size is not None and (stored.size > 0 or sent_size == 0)


def _mismatch_message(stored: StoredCopy, remote_path: str, sent_size: int, sent_hash: str, mode: VerifyMode) -> str:
    stored_size = "an unknown number of" if stored.size is None else f"{stored.size:,}"
    stored_hash = f"QuickXorHash {stored.quick_xor_hash}" if stored.quick_xor_hash else "no QuickXorHash"
    office = ""
    if is_office_document(remote_path) and mode == "strict":
        office = (
            " SharePoint rewrites Office documents it stores in document libraries; if that is the only cause, "
            "upload with verify='office_aware'."
        )
    return (
        f"Upload of '{remote_path}' did not verify: SharePoint reports {stored_size} bytes with {stored_hash}, "
        f"but {sent_size:,} bytes with QuickXorHash {sent_hash} were sent. The stored copy may be corrupt and is "
        f"in SharePoint under its final name '{remote_path}' (item id {stored.item_id}): do not use it; run the "
        "task again to upload it anew (conflict_behavior 'replace' overwrites it; SharePoint keeps the earlier "
        f"content in the file's version history), or delete it.{office}"
    )
