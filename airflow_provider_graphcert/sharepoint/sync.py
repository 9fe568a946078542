"""Incremental sync of a SharePoint folder with drive delta (reference B4).

Delta feeds carry item ids and parent ids, not paths, and on SharePoint only the drive root has a
delta, so the sync keeps a map of the drive's items (id -> parent, name) beside the files and
rebuilds paths from it. The delta link is stored by the caller (an Airflow Variable by default)
and advanced only after every changed file landed, so a failed run is repeated, not skipped. A
410 (expired token) starts a full enumeration, after which local files that no longer exist
remotely can be deleted.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from airflow_provider_graphcert.errors import GraphCertError, GraphRequestError
from airflow_provider_graphcert.files import atomic_writer
from airflow_provider_graphcert.graph.client import GraphClient
from airflow_provider_graphcert.sharepoint.download import FileDownloader
from airflow_provider_graphcert.sharepoint.folder_download import DEFAULT_MAX_WORKERS, FileFilter
from airflow_provider_graphcert.sharepoint.local_names import UnsafeNameError, local_path, safe_segment
from airflow_provider_graphcert.sharepoint.manifest import Manifest

log = logging.getLogger(__name__)

SYNC_STATE_NAME = ".graphcert-sync.json"
_STATE_VERSION = 1


class DeltaLinkStore(Protocol):
    def load(self) -> str | None: ...

    def save(self, link: str) -> None: ...


@dataclass
class SyncResult:
    downloaded: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    skipped: int = 0
    failed: dict[str, str] = field(default_factory=dict)
    full_pass: bool = False
    bytes: int = 0

    def summary(self) -> dict[str, Any]:
        return {
            "downloaded": len(self.downloaded),
            "deleted": len(self.deleted),
            "unchanged": self.skipped,
            "failed": len(self.failed),
            "full_pass": self.full_pass,
            "bytes": self.bytes,
        }


class _Tree:
    """id -> (parent id, name, is folder) for the drive, persisted with the sync state."""

    def __init__(self, items: dict[str, list[Any]] | None = None) -> None:
        self.items: dict[str, list[Any]] = items or {}

    def apply(self, item: dict[str, Any]) -> None:
        parent = (item.get("parentReference") or {}).get("id")
        previous = self.items.get(str(item["id"]))
        name = item.get("name") or (previous[1] if previous else "")
        self.items[str(item["id"])] = [parent, name, "folder" in item or "root" in item]

    def relative_to(self, item_id: str, ancestor_id: str) -> str | None:
        """Path of ``item_id`` below ``ancestor_id``, or None if it is not below it.

        Raises UnsafeNameError when a name on the way could not be one local name ("a/b", "..").
        """
        names: list[str] = []
        current: str | None = item_id
        for _ in range(1000):  # bounded: a corrupt map must not loop forever
            if current is None or current not in self.items:
                return None
            if current == ancestor_id:
                return "/".join(reversed(names))
            parent, name, _folder = self.items[current]
            names.append(safe_segment(str(name)))
            current = parent
        return None


def sync_folder(
    client: GraphClient,
    drive_id: str,
    folder_id: str,
    target: Path,
    store: DeltaLinkStore,
    *,
    mirror_deletions: bool = False,
    file_filter: FileFilter | None = None,
    max_workers: int = DEFAULT_MAX_WORKERS,
    on_bytes: Callable[[int], None] | None = None,
) -> SyncResult:
    target.mkdir(parents=True, exist_ok=True)
    state_path = target / SYNC_STATE_NAME
    stored_link = store.load()
    tree, local_link = _load_state(state_path)
    result = SyncResult()
    # The local map must belong to the stored link; otherwise paths cannot be rebuilt: go full.
    link = stored_link if stored_link and stored_link == local_link else None
    if link is None:
        tree = _Tree()
        result.full_pass = True
    changed, new_link, resynced = _read_delta(client, drive_id, link, tree)
    result.full_pass = result.full_pass or resynced
    manifest = Manifest(target)
    file_filter = file_filter or FileFilter()
    wanted: list[tuple[str, dict[str, Any]]] = []
    for item in changed.values():
        try:
            relative = tree.relative_to(str(item["id"]), folder_id)
        except UnsafeNameError as exc:
            if "file" in item:
                result.failed[str(item.get("name"))] = str(exc)
            continue
        if relative and "file" in item and file_filter.accepts(relative, item):
            wanted.append((relative, item))
    downloader = FileDownloader(client, on_bytes=on_bytes)
    with ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="graphcert-sync") as pool:
        jobs = []
        for relative, item in wanted:
            try:
                destination = local_path(target, relative)
            except UnsafeNameError as exc:
                result.failed[relative] = str(exc)
                continue
            if manifest.unchanged(relative, item, destination):
                result.skipped += 1
                continue
            jobs.append((relative, item, destination, pool.submit(downloader.download, drive_id, item, destination)))
        for relative, item, destination, future in jobs:
            try:
                done = future.result()
            except (GraphCertError, OSError) as exc:
                result.failed[relative] = str(exc)
                continue
            manifest.record(relative, item, destination, done.quick_xor_hash)
            result.downloaded.append(relative)
            result.bytes += done.size
    if mirror_deletions:
        _mirror(target, manifest, tree, folder_id, result)
    manifest.save()
    if result.failed:
        listed = "; ".join(f"{p}: {r}" for p, r in sorted(result.failed.items())[:20])
        raise GraphCertError(
            f"Sync of {len(wanted)} changed files: {len(result.failed)} failed ({listed}). The delta link was "
            "not advanced, so the next run retries them."
        )
    _save_state(state_path, tree, new_link)
    store.save(new_link)
    return result


def _read_delta(
    client: GraphClient, drive_id: str, link: str | None, tree: _Tree
) -> tuple[dict[str, dict[str, Any]], str, bool]:
    """Apply every delta page to ``tree``; returns (changed items, the new delta link, whether it resynced)."""
    changed: dict[str, dict[str, Any]] = {}
    resynced = False
    url: str | None = link or f"drives/{drive_id}/root/delta"
    new_link: str | None = None
    while url:
        try:
            page = client.get_json(url)
        except GraphRequestError as exc:
            if exc.status == 410 and not resynced:
                log.warning("The delta link expired (410 %s); running a full pass.", exc.code)
                resynced = True
                tree.items.clear()
                changed.clear()
                url = f"drives/{drive_id}/root/delta"
                continue
            raise
        for item in page.get("value") or []:
            item_id = str(item["id"])
            if "deleted" in item:
                changed.pop(item_id, None)
                tree.items.pop(item_id, None)
                continue
            tree.apply(item)
            changed[item_id] = item
        next_link = page.get("@odata.nextLink")
        new_link = page.get("@odata.deltaLink") or new_link
        url = next_link if isinstance(next_link, str) else None
    if not new_link:
        raise GraphCertError("Graph's delta feed ended without an @odata.deltaLink.")
    return changed, new_link, resynced


def _mirror(target: Path, manifest: Manifest, tree: _Tree, folder_id: str, result: SyncResult) -> None:
    """Delete local files whose remote item was deleted or is no longer below the folder."""
    remote_paths: set[str] = set()
    for item_id, entry in tree.items.items():
        with contextlib.suppress(UnsafeNameError):
            if not entry[2] and (found := tree.relative_to(item_id, folder_id)):
                remote_paths.add(found)
    for relative in manifest.paths():
        if relative in remote_paths:
            continue
        try:
            stale = local_path(target, relative)
        except UnsafeNameError:
            continue
        stale.unlink(missing_ok=True)
        manifest.forget(relative)
        result.deleted.append(relative)


def _load_state(path: Path) -> tuple[_Tree, str | None]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return _Tree(), None
    if not isinstance(data, dict) or data.get("version") != _STATE_VERSION:
        return _Tree(), None
    return _Tree(data.get("items") or {}), data.get("delta_link")


def _save_state(path: Path, tree: _Tree, link: str) -> None:
    with atomic_writer(path, "w") as handle:
        json.dump({"version": _STATE_VERSION, "delta_link": link, "items": tree.items}, handle)
