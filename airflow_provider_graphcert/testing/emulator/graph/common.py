"""Microsoft's limits for Graph and SharePoint, the errors Graph answers with, and naming rules."""

from __future__ import annotations

import base64
import datetime as dt
import os
import secrets
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, BinaryIO, TypeAlias

if TYPE_CHECKING:
    from airflow_provider_graphcert.testing.emulator.graph.drives import Drive


# -- Microsoft's limits and defaults (docs/microsoft-rules.md, part B) ---------------------------

# B8: the current put-content page allows simple uploads "up to 250 MB" (older pages said 4 MB).
SIMPLE_UPLOAD_MAX_BYTES = 250 * 1024 * 1024
# B9: upload-session fragments must each be smaller than 60 MiB ...
MAX_FRAGMENT_BYTES = 60 * 1024 * 1024
# B9: ... and, when a file is split, a multiple of 320 KiB except the last one.
FRAGMENT_MULTIPLE_BYTES = 320 * 1024
# B9: the default session length is UNCONFIRMED; each accepted fragment extends it (also UNCONFIRMED).
UPLOAD_SESSION_LIFETIME = dt.timedelta(minutes=15)
# B7: documents disagree ("a few minutes" vs "1 hour"); the longer one avoids flaky slow tests.
DOWNLOAD_URL_LIFETIME = dt.timedelta(hours=1)
# B5: at most 20 requests in one JSON batch.
MAX_BATCH_REQUESTS = 20
# B3: page sizes. Directory lists default to 100 and cap at 999; other sizes are not documented,
# 200 is what SharePoint answers with in practice.
DIRECTORY_DEFAULT_PAGE_SIZE = 100
DIRECTORY_MAX_PAGE_SIZE = 999
DRIVE_DEFAULT_PAGE_SIZE = 200
DRIVE_MAX_PAGE_SIZE = 1000
DELTA_DEFAULT_PAGE_SIZE = 200
LIST_ITEMS_DEFAULT_PAGE_SIZE = 200
# A SharePoint Online tenant's default site storage; only reported in drive.quota and checked
# against a declared upload fileSize (B9: 507).
DEFAULT_DRIVE_QUOTA_BYTES = 25 * 1024**4

DEFAULT_HOSTNAME = "contoso.sharepoint.com"
DEFAULT_TENANT_DOMAIN = "contoso.onmicrosoft.com"
# B6: characters SharePoint refuses in names. '#' and '%' are allowed: SharePoint Online has
# accepted them since 2017 (the reference's note about Business is from older pages).
INVALID_NAME_CHARACTERS = frozenset('"*:<>?/\\|')
RESERVED_NAMES = frozenset(
    {".lock", "con", "prn", "aux", "nul", "desktop.ini"}
    | {f"com{i}" for i in range(10)}
    | {f"lpt{i}" for i in range(10)}
)

CONFLICT_BEHAVIORS: frozenset[str] = frozenset({"fail", "replace", "rename"})
Identity: TypeAlias = dict[str, Any]
# Seed data: the bytes themselves, the path of a local file (str or PathLike), or a binary stream.
FileData: TypeAlias = bytes | bytearray | memoryview | str | os.PathLike[str] | BinaryIO

SYSTEM_ACCOUNT: Identity = {"user": {"displayName": "System Account"}}


# -- errors ----------------------------------------------------------------------------------------


class GraphError(Exception):
    """An outcome Graph reports as an error: HTTP status, top-level code and optional inner code."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        inner_code: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.inner_code = inner_code
        self.headers = dict(headers or {})


class DeltaTokenExpired(GraphError):
    """B4: an expired or unknown delta token; the route adds a Location to a fresh enumeration."""

    def __init__(self, drive: Drive) -> None:
        super().__init__(
            410,
            "resyncChangesApplyDifferences",
            "Resync required. Replace any local items with the server's version (including deletes) if you're sure "
            "that the service was up to date with your local changes when you last sync'd. Upload any local changes "
            "that the server doesn't know about.",
        )
        self.drive = drive


def item_not_found(message: str = "The resource could not be found.") -> GraphError:
    return GraphError(404, "itemNotFound", message)


def invalid_request(message: str, inner_code: str | None = None) -> GraphError:
    return GraphError(400, "invalidRequest", message, inner_code=inner_code)


def name_already_exists(name: str) -> GraphError:
    return GraphError(409, "nameAlreadyExists", f"The specified item name already exists: {name!r}.")


# The code of every 501 the emulator answers: distinct from Graph's own codes, so a test that
# reaches a feature the emulator lacks fails loudly instead of passing on a silently wrong answer.
NOT_IMPLEMENTED_CODE = "emulatorNotImplemented"


def not_implemented(feature: str) -> GraphError:
    """HTTP 501 naming what Graph has and the emulator does not (docs/testing-your-dags.md)."""
    return GraphError(
        501,
        NOT_IMPLEMENTED_CODE,
        f"The Graph emulator does not implement {feature}. "
        "docs/testing-your-dags.md lists what it implements; test this against real Graph.",
    )


def upload_session_not_found() -> GraphError:
    return GraphError(
        404, "itemNotFound", "The upload session was not found or has expired.", inner_code="uploadSessionNotFound"
    )


# -- small helpers -----------------------------------------------------------------------------


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def new_item_id() -> str:
    # SharePoint driveItem ids look like "01" followed by 32 base32 characters.
    return "01" + base64.b32encode(secrets.token_bytes(20)).decode("ascii")[:32]


def new_drive_id() -> str:
    return "b!" + base64.urlsafe_b64encode(secrets.token_bytes(48)).decode("ascii")


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def split_path(path: str) -> list[str]:
    """Path segments of a drive-relative path; empty segments (leading/double slashes) are ignored."""
    return [segment for segment in path.replace("\\", "/").split("/") if segment]


def validate_name(name: str, *, is_folder: bool) -> None:
    if not name or name in {".", ".."}:
        raise invalid_request("The name is empty or a relative reference.")
    if name != name.strip():
        raise invalid_request(f"The name {name!r} starts or ends with whitespace.")
    if INVALID_NAME_CHARACTERS.intersection(name):
        raise invalid_request(f"The name {name!r} contains a character that is not allowed.")
    if name.startswith("~") or name.casefold() in RESERVED_NAMES or "_vti_" in name.casefold():
        raise invalid_request(f"The name {name!r} is reserved.")
    if is_folder and name.endswith("."):
        raise invalid_request(f"The folder name {name!r} ends with a period.")


def numbered_name(name: str, number: int) -> str:
    """'report.pdf', 2 -> 'report 2.pdf': how rename conflict behaviour names the new item."""
    stem, dot, extension = name.rpartition(".")
    if not dot or not stem:
        return f"{name} {number}"
    return f"{stem} {number}.{extension}"
