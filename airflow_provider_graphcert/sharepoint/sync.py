"""Incremental sync of a SharePoint folder with drive delta (docs/microsoft-rules.md §B4).

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
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from airflow_provider_graphcert.errors import GraphCertError, GraphRequestError
from airflow_provider_graphcert.files import OWN_FILE_PREFIX
from airflow_provider_graphcert.graph.client import GraphClient
from airflow_provider_graphcert.sharepoint.folder_download import (
    DEFAULT_MAX_WORKERS,
    DownloadEngine,
    FileFilter,
    FolderDownloadError,
    FolderDownloadResult,
    accepted_files,
    check_max_workers,
    landing_plan,
    save_manifest,
)
from airflow_provider_graphcert.sharepoint.landing import Landing, LocalLanding, StateFiles
from airflow_provider_graphcert.sharepoint.local_names import UnsafeNameError, safe_segment
from airflow_provider_graphcert.sharepoint.manifest import Manifest
from airflow_provider_graphcert.sharepoint.progress import InfoLogger, Progress

log = logging.getLogger(__name__)

SYNC_STATE_NAME = f"{OWN_FILE_PREFIX}sync.json"
LEGACY_SYNC_STATE_NAME = ".graphcert-sync.json"
_STATE_VERSION = 1
# Statuses with which Graph refuses a stored delta link that will never work again: 410 is the
# documented "resync required" (https://learn.microsoft.com/graph/api/driveitem-delta), 404/400 a
# link whose drive, item or token is gone or mangled. Each starts a full pass.
_STALE_LINK_STATUSES = frozenset({400, 404, 410})


# A bound on one delta feed: at Graph's 200 items a page, 40 million changes (no real drive comes near).
MAX_DELTA_PAGES = 200_000


class DeltaLinkStore(Protocol):
    def load(self) -> str | None: ...

    def save(self, link: str) -> None: ...


class SyncError(FolderDownloadError):
    """Some changed files could not land; the delta link was not advanced."""


@dataclass
class SyncResult:
    downloaded: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    skipped: int = 0
    failed: dict[str, str] = field(default_factory=dict)
    full_pass: bool = False
    bytes: int = 0
    unverified: int = 0

    def summary(self) -> dict[str, Any]:
        return {
            "downloaded": len(self.downloaded),
            "deleted": len(self.deleted),
            "unchanged": self.skipped,
            "failed": len(self.failed),
            "unverified": self.unverified,
            "full_pass": self.full_pass,
            "bytes": self.bytes,
        }


class _Tree:
    """id -> (parent id, name, is folder) for the drive, persisted with the sync state."""

    def __init__(self, items: dict[str, list[Any]] | None = None) -> None:
        self.items: dict[str, list[Any]] = items or {}

    def apply(self, item: dict[str, Any]) -> None:
        reference = item.get("parentReference")
        parent = reference.get("id") if isinstance(reference, dict) else None
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
    target: Path | Landing,
    store: DeltaLinkStore,
    *,
    mirror_deletions: bool = False,
    file_filter: FileFilter | None = None,
    max_workers: int = DEFAULT_MAX_WORKERS,
    require_hash: bool = False,
    logger: InfoLogger = log,
) -> SyncResult:
    """Land every file below ``folder_id`` that changed since the stored delta link.

    The files are landed by the folder download's engine (:class:`DownloadEngine`); only the plan
    differs: the changed items of the delta feed instead of a walk of the folder.
    """
    check_max_workers(max_workers)
    landing = LocalLanding(target) if isinstance(target, Path) else target
    with landing.held():
        result = SyncResult()
        stored_link = store.load()
        tree, local_link, scope = _load_state(landing.state)
        # The local map must belong to the stored link; otherwise paths cannot be rebuilt: go full.
        link = stored_link if stored_link and stored_link == local_link else None
        if link is not None and scope not in (None, (drive_id, folder_id)):
            # The task now points at another folder (or library) with the same state: the files of
            # the new folder that did not change since the link would never be fetched.
            logger.info("The sync's folder changed since its last run; running a full pass.")
            link = None
        if link is not None and not _on_graph_host(client, link):
            log.warning(
                "The stored delta link points to %s, not to Graph; it is ignored (the token is never sent there) "
                "and a full pass runs. It is kept in %s.",
                urlsplit(link).hostname,
                _where(store),
            )
            link = None
        if link is None:
            tree = _Tree()
            result.full_pass = True
        changed, new_link, resynced = _read_delta(client, drive_id, link, tree, store)
        result.full_pass = result.full_pass or resynced
        file_filter = file_filter or FileFilter()
        landed = FolderDownloadResult()
        manifest = Manifest(landing.state)
        progress = Progress(f"Sync to {landing.label}", logger=logger)
        engine = DownloadEngine(
            client, drive_id, landing, manifest, progress, max_workers=max_workers, require_hash=require_hash
        )
        try:
            wanted = accepted_files(_changed_files(changed, tree, folder_id, landed), file_filter, landed)
            plan = landing_plan(wanted, landing, landed)
            engine.run(plan, landed)
            if mirror_deletions:
                _mirror(landing, manifest, tree, folder_id, result)
        finally:
            save_manifest(manifest)
        progress.report(final=True)
        _fill(result, landed)
        logger.info(
            "Sync to %s: %d downloaded, %d unchanged, %d deleted, %d failed, %d unverified%s.",
            landing.label,
            len(result.downloaded),
            result.skipped,
            len(result.deleted),
            len(result.failed),
            result.unverified,
            " (full pass)" if result.full_pass else "",
        )
        if landed.failed:
            raise SyncError(
                f"Sync of {len(landed.failed) + len(landed.downloaded) + len(landed.skipped)} changed files: "
                f"{len(landed.failed)} failed ({landed.failure_list()}). The delta link was not advanced, so the "
                "next run retries them.",
                landed,
            )
        _save_state(landing.state, tree, new_link, drive_id, folder_id)
        store.save(new_link)
    return result


def _changed_files(
    changed: dict[str, dict[str, Any]],
    tree: _Tree,
    folder_id: str,
    landed: FolderDownloadResult,
) -> Iterator[tuple[str, dict[str, Any]]]:
    for item in changed.values():
        if "file" not in item:
            continue
        try:
            relative = tree.relative_to(str(item["id"]), folder_id)
        except UnsafeNameError as exc:
            landed.failed[str(item.get("name"))] = str(exc)
            continue
        if relative:
            yield relative, item


def _fill(result: SyncResult, landed: FolderDownloadResult) -> None:
    result.downloaded = [f.relative for f in landed.downloaded]
    result.bytes = landed.bytes
    result.skipped = len(landed.skipped)
    result.failed = dict(landed.failed)
    result.unverified = len(landed.unverified)


def _on_graph_host(client: GraphClient, link: str) -> bool:
    parts, graph = urlsplit(link), urlsplit(client.graph_url)
    return (parts.scheme, parts.netloc.lower()) == (graph.scheme, graph.netloc.lower())


def _where(store: DeltaLinkStore) -> str:
    describe = getattr(store, "describe", None)
    return str(describe()) if callable(describe) else "the sync's delta link store"


def _read_delta(
    client: GraphClient, drive_id: str, link: str | None, tree: _Tree, store: DeltaLinkStore
) -> tuple[dict[str, dict[str, Any]], str, bool]:
    """Apply every delta page to ``tree``; returns (changed items, the new delta link, whether it resynced).

    A stored link that Graph refuses for good starts one full pass. A page link seen before is a
    loop in the feed and fails the job instead of reading it forever.
    """
    changed: dict[str, dict[str, Any]] = {}
    resynced = False
    first_url = f"drives/{drive_id}/root/delta"
    start = link or first_url
    url: str | None = start
    new_link: str | None = None
    # Links followed in this feed, the first included: a repeat is a loop. (graph/ gains a shared
    # NextLinkGuard with the same rule; this loop can use it once both are merged.)
    followed: set[str] = {start}
    while url:
        try:
            page = client.get_json(url)
        except GraphRequestError as exc:
            if exc.status in _STALE_LINK_STATUSES and url != first_url and not resynced:
                log.warning("Graph refused the stored delta link (HTTP %s); running a full pass.", exc.status)
                resynced = True
                tree.items.clear()
                changed.clear()
                followed = {first_url}
                url = first_url
                continue
            if link is not None and exc.status in _STALE_LINK_STATUSES:
                raise GraphCertError(
                    f"{exc} The sync's delta link is kept in {_where(store)}; if this keeps failing, delete it so "
                    "the next run starts with a full pass."
                ) from exc
            raise
        if not isinstance(page, dict):
            raise GraphCertError("Graph's delta feed returned a page that is not a JSON object.")
        _apply_page(page, tree, changed)
        next_link = page.get("@odata.nextLink")
        delta_link = page.get("@odata.deltaLink")
        new_link = delta_link if isinstance(delta_link, str) else new_link
        url = next_link if isinstance(next_link, str) else None
        if url is not None:
            if url in followed or len(followed) > MAX_DELTA_PAGES:
                raise GraphCertError(
                    f"Graph's delta feed sent a page link it had already sent (a loop), or more than {MAX_DELTA_PAGES} "
                    "pages; stopping instead of reading it forever. Nothing was downloaded and the delta link was not "
                    "advanced; retry later."
                )
            followed.add(url)
    if not new_link:
        raise GraphCertError("Graph's delta feed ended without an @odata.deltaLink.")
    return changed, new_link, resynced


def _apply_page(page: dict[str, Any], tree: _Tree, changed: dict[str, dict[str, Any]]) -> None:
    items = page.get("value") or []
    if not isinstance(items, list):
        raise GraphCertError("Graph's delta feed returned a page whose 'value' is not a list.")
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("id"), str):
            raise GraphCertError(
                "Graph's delta feed listed an item without an id; the feed is malformed, so nothing in it can be "
                "trusted. The delta link was not advanced; retry later."
            )
        item_id = item["id"]
        if "deleted" in item:
            changed.pop(item_id, None)
            tree.items.pop(item_id, None)
            continue
        tree.apply(item)
        changed[item_id] = item


def _mirror(landing: Landing, manifest: Manifest, tree: _Tree, folder_id: str, result: SyncResult) -> None:
    """Delete landed files whose remote item was deleted or is no longer below the folder."""
    remote_paths: set[str] = set()
    for item_id, entry in tree.items.items():
        with contextlib.suppress(UnsafeNameError):
            if not entry[2] and (found := tree.relative_to(item_id, folder_id)):
                remote_paths.add(found)
    for relative in manifest.paths():
        if relative in remote_paths:
            continue
        try:
            stale = landing.destination(relative)
        except UnsafeNameError:
            continue
        landing.delete(stale)
        manifest.forget(relative)
        result.deleted.append(relative)


def _load_state(state: StateFiles) -> tuple[_Tree, str | None, tuple[str, str] | None]:
    """(map of the drive, delta link, (drive id, folder id) it was made for, None if not recorded)."""
    for name in (SYNC_STATE_NAME, LEGACY_SYNC_STATE_NAME):
        try:
            data = json.loads(state.read_text(name) or "")
            break
        except ValueError:
            continue
    else:
        return _Tree(), None, None
    if not isinstance(data, dict) or data.get("version") != _STATE_VERSION or not isinstance(data.get("items"), dict):
        return _Tree(), None, None
    link = data.get("delta_link")
    scope = (data.get("drive_id"), data.get("folder_id"))
    known = all(isinstance(part, str) for part in scope)
    return (
        _Tree(data["items"]),
        link if isinstance(link, str) else None,
        (str(scope[0]), str(scope[1])) if known else None,
    )


def _save_state(state: StateFiles, tree: _Tree, link: str, drive_id: str, folder_id: str) -> None:
    document = {
        "version": _STATE_VERSION,
        "delta_link": link,
        "drive_id": drive_id,
        "folder_id": folder_id,
        "items": tree.items,
    }
    state.write_text(SYNC_STATE_NAME, json.dumps(document))
    state.remove(LEGACY_SYNC_STATE_NAME)
