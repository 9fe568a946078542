"""What changed in a SharePoint folder, read through drive delta on the async client (reference B4).

Used by the triggers: polling a delta link costs one small request when nothing changed, where a
listing costs a page per 200 items. On SharePoint only the drive root has a delta and its items
carry parent ids, not paths, so a :class:`DriveTree` (id -> parent, name, file facts) rebuilds
paths. A watched folder's files are compared with what was last reported (:func:`diff_files`),
which makes a full re-enumeration (first start, a 410, a restart) report exactly the changes
since then: nothing lost, nothing reported twice.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from airflow_provider_graphcert.errors import GraphCertError, GraphNotFoundError
from airflow_provider_graphcert.graph.async_client import AsyncGraphClient
from airflow_provider_graphcert.sharepoint.locations import encode_path

# XCom and asset-event extras stay small; the count says when more were found.
MAX_REPORTED_FILES = 100
# A drive map beyond this is not a folder to watch by polling; say so rather than grow unbounded.
MAX_TRACKED_ITEMS = 500_000
# A folder walk visits at most this many items (the sensor's check after a change).
MAX_LISTED_ITEMS = 100_000
# Depth bound when rebuilding a path from parent ids: a corrupt map must not loop forever.
_MAX_DEPTH = 400

KnownFiles = dict[str, list[str]]  # item id -> [path below the folder, eTag]: JSON for a state store


def clean_path(path: str) -> str:
    return "/".join(part for part in path.split("/") if part)


def matches_pattern(relative: str, pattern: str | None) -> bool:
    """A pattern with a slash matches the path below the folder, otherwise the file name."""
    if not pattern:
        return True
    return fnmatch.fnmatchcase(relative if "/" in pattern else relative.rsplit("/", 1)[-1], pattern)


def modified_at(item: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(str(item.get("lastModifiedDateTime", "1970-01-01T00:00:00Z")).replace("Z", "+00:00"))


def file_summary(relative: str, item: dict[str, Any]) -> dict[str, Any]:
    return {
        "path": relative,
        "item_id": item.get("id"),
        "size": item.get("size"),
        "lastModifiedDateTime": item.get("lastModifiedDateTime"),
        "eTag": item.get("eTag"),
    }


# -- delta ------------------------------------------------------------------------------------


def root_delta(drive_id: str) -> str:
    return f"drives/{drive_id}/root/delta"


async def latest_delta_link(client: AsyncGraphClient, drive_id: str) -> str:
    """A delta link that starts now (``token=latest``): what happens from here on, nothing before."""
    page = await client.get_json(root_delta(drive_id), params={"token": "latest"})
    link = page.get("@odata.deltaLink") if isinstance(page, dict) else None
    if not isinstance(link, str):
        raise GraphCertError("Graph answered a delta request for token=latest without an @odata.deltaLink.")
    return link


async def read_delta(client: AsyncGraphClient, url: str, on_item: Callable[[dict[str, Any]], None]) -> str:
    """Hand every item of every page to ``on_item``; returns the new delta link.

    Raises GraphRequestError with status 410 when the link expired: the caller starts over.
    """
    new_link: str | None = None
    async for page in client.pages(url):
        for item in page.get("value") or []:
            if isinstance(item, dict) and isinstance(item.get("id"), str):
                on_item(item)
        link = page.get("@odata.deltaLink")
        new_link = link if isinstance(link, str) else new_link
    if new_link is None:
        raise GraphCertError("Graph's delta feed ended without an @odata.deltaLink.")
    return new_link


@dataclass(frozen=True)
class _Entry:
    parent: str | None
    name: str
    is_folder: bool
    facts: dict[str, Any] | None = None  # files: id, size, eTag, lastModifiedDateTime


@dataclass
class DriveTree:
    """The drive's items as delta describes them, so paths can be rebuilt from parent ids."""

    entries: dict[str, _Entry] = field(default_factory=dict)
    root_id: str | None = None

    def apply(self, item: dict[str, Any]) -> None:
        item_id = str(item["id"])
        if "deleted" in item:
            self.entries.pop(item_id, None)
            return
        if "root" in item:
            self.root_id = item_id
        previous = self.entries.get(item_id)
        parent = (item.get("parentReference") or {}).get("id")
        # SharePoint may leave out unchanged properties of a changed item; keep what we knew.
        name = item.get("name") or (previous.name if previous else "")
        is_folder = "folder" in item or "root" in item
        facts = None
        if "file" in item:
            facts = {key: item.get(key) for key in ("id", "size", "eTag", "lastModifiedDateTime")}
        if item_id not in self.entries and len(self.entries) >= MAX_TRACKED_ITEMS:
            raise GraphCertError(
                f"The drive has more than {MAX_TRACKED_ITEMS} items; watching one folder of it by polling delta would "
                "hold too much. Watch a smaller library."
            )
        self.entries[item_id] = _Entry(str(parent) if parent else None, str(name), is_folder, facts)

    def drive_path(self, item_id: str) -> str | None:
        """Path from the drive root ("" for the root), or None when the chain is broken."""
        names: list[str] = []
        current: str | None = item_id
        for _ in range(_MAX_DEPTH):
            if current is None:
                return None
            if current == self.root_id:
                return "/".join(reversed(names))
            entry = self.entries.get(current)
            if entry is None:
                return None
            names.append(entry.name)
            current = entry.parent
        return None

    def files_under(self, folder: str, *, pattern: str | None, recursive: bool) -> dict[str, dict[str, Any]]:
        """Every file below ``folder`` (drive-relative) that matches: item id -> summary."""
        prefix = clean_path(folder).casefold()
        found: dict[str, dict[str, Any]] = {}
        for item_id, entry in self.entries.items():
            if entry.facts is None:
                continue
            full = self.drive_path(item_id)
            relative = _below(full, prefix) if full is not None else None
            if relative is None or (not recursive and "/" in relative):
                continue
            if matches_pattern(relative, pattern):
                found[item_id] = file_summary(relative, entry.facts)
        return found


def _below(full: str, prefix: str) -> str | None:
    """``full`` relative to the folder ``prefix`` (SharePoint paths ignore case), or None."""
    if not prefix:
        return full or None
    if full.casefold().startswith(prefix + "/"):
        return full[len(prefix) + 1 :]
    return None


def diff_files(known: KnownFiles, current: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Changes from what was reported (``known``) to ``current``, each with its kind."""
    changes: list[dict[str, Any]] = []
    for item_id, summary in current.items():
        before = known.get(item_id)
        if before is None:
            kind = "created"
        elif before[1] != summary.get("eTag"):
            kind = "modified"
        elif before[0] != summary["path"]:
            kind = "moved"
        else:
            continue
        changes.append({"change": kind, **summary})
    for item_id, (path, etag) in known.items():
        if item_id not in current:
            changes.append(
                {
                    "change": "deleted",
                    "path": path,
                    "item_id": item_id,
                    "size": None,
                    "lastModifiedDateTime": None,
                    "eTag": etag,
                }
            )
    return sorted(changes, key=lambda change: (change["path"], change["change"]))


def known_from(current: dict[str, dict[str, Any]]) -> KnownFiles:
    return {item_id: [str(summary["path"]), str(summary.get("eTag") or "")] for item_id, summary in current.items()}


# -- listing (the sensor's check once delta says something changed) ---------------------------


async def list_files(
    client: AsyncGraphClient, drive_id: str, folder: str, *, recursive: bool
) -> list[tuple[str, dict[str, Any]]]:
    """(path below the folder, item) for the folder's files; [] while the folder does not exist."""
    found: list[tuple[str, dict[str, Any]]] = []
    pending: list[tuple[str, str]] = [(_children_address(drive_id, clean_path(folder)), "")]
    visited = 0
    while pending:
        address, prefix = pending.pop()
        try:
            async for child in client.iter_items(address):
                visited += 1
                if visited > MAX_LISTED_ITEMS:
                    raise GraphCertError(f"The folder '{folder}' has more than {MAX_LISTED_ITEMS} items; narrow it.")
                relative = f"{prefix}{child.get('name', '')}"
                if "file" in child:
                    found.append((relative, child))
                elif recursive and "folder" in child:
                    pending.append((f"drives/{drive_id}/items/{child['id']}/children", relative + "/"))
        except GraphNotFoundError:
            if prefix:
                raise
            return []
    return found


def _children_address(drive_id: str, folder: str) -> str:
    return f"drives/{drive_id}/root:/{encode_path(folder)}:/children" if folder else f"drives/{drive_id}/root/children"


def select_matches(
    files: list[tuple[str, dict[str, Any]]],
    *,
    pattern: str | None,
    file_name: str | None,
    modified_after: datetime | None,
) -> Iterator[dict[str, Any]]:
    for relative, item in files:
        if file_name is not None and relative.casefold() != file_name.casefold():
            continue
        if not matches_pattern(relative, pattern):
            continue
        if modified_after is not None and modified_at(item) <= modified_after:
            continue
        yield file_summary(relative, item)
