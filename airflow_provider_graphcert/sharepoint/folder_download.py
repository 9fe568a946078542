"""Download a SharePoint folder tree: bounded thread pool, filters, incremental, all failures reported."""

from __future__ import annotations

import dataclasses
import fnmatch
import logging
import threading
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from airflow_provider_graphcert.errors import ConfigurationError, GraphCertError, GraphTransportError
from airflow_provider_graphcert.files import FolderSync, write_failure
from airflow_provider_graphcert.graph.client import GraphClient
from airflow_provider_graphcert.sharepoint.download import DownloadedFile, FileDownloader
from airflow_provider_graphcert.sharepoint.item_fields import (
    MalformedItemError,
    file_size,
    is_file,
    modified_at,
    parse_moment,
)
from airflow_provider_graphcert.sharepoint.landing import Landing, LocalLanding
from airflow_provider_graphcert.sharepoint.local_names import UnsafeNameError, safe_segment
from airflow_provider_graphcert.sharepoint.manifest import Manifest
from airflow_provider_graphcert.sharepoint.progress import InfoLogger, Progress

log = logging.getLogger(__name__)

__all__ = ["DownloadEngine", "FileFilter", "FolderDownloadResult", "download_folder", "parse_moment", "walk_files"]

DEFAULT_MAX_WORKERS = 8
# Large children pages mean fewer round trips when walking big folders (rclone uses 1000).
CHILDREN_PAGE_SIZE = 1000
# The download URL must be selected explicitly (it is omitted once $select is used); without it every
# file costs an extra authenticated /content request for its 302 (docs/benchmarks.md: 2,000 files 13 s -> 8.7 s).
_CHILD_FIELDS = (
    "id,name,size,eTag,cTag,file,folder,lastModifiedDateTime,fileSystemInfo,parentReference,"
    "@microsoft.graph.downloadUrl"
)


@dataclass(frozen=True)
class FileFilter:
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    modified_since: datetime | None = None

    @classmethod
    def build(
        cls,
        include: Sequence[str] | str | None,
        exclude: Sequence[str] | str | None,
        modified_since: datetime | str | None,
    ) -> FileFilter:
        return cls(_patterns(include, "include"), _patterns(exclude, "exclude"), parse_moment(modified_since))

    def accepts(self, relative: str, item: dict[str, Any]) -> bool:
        name = relative.rsplit("/", 1)[-1]
        if self.include and not any(_glob(p, relative, name) for p in self.include):
            return False
        if any(_glob(p, relative, name) for p in self.exclude):
            return False
        if self.modified_since is not None:
            modified = modified_at(item)
            if modified is None or modified < self.modified_since:
                return False
        return True


def _glob(pattern: str, relative: str, name: str) -> bool:
    # A pattern with a slash is matched against the path inside the folder, else against the name.
    return fnmatch.fnmatchcase(relative if "/" in pattern else name, pattern)


def _patterns(value: Sequence[str] | str | None, field_name: str) -> tuple[str, ...]:
    if value is None:
        return ()
    patterns = (value,) if isinstance(value, str) else tuple(value)
    for pattern in patterns:
        if not isinstance(pattern, str) or not pattern.strip():
            raise ConfigurationError(f"{field_name} has an empty glob pattern.", field=field_name)
        if pattern.startswith("/") or ".." in pattern.split("/"):
            raise ConfigurationError(
                f"{field_name} pattern {pattern!r} must be relative to the folder (no leading '/' or '..').",
                field=field_name,
            )
        if pattern.count("[") != pattern.count("]"):
            raise ConfigurationError(f"{field_name} pattern {pattern!r} has an unclosed '['.", field=field_name)
    return patterns


@dataclass
class FolderDownloadResult:
    downloaded: list[DownloadedFile] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)

    @property
    def bytes(self) -> int:
        return sum(f.size for f in self.downloaded)

    @property
    def unverified(self) -> list[DownloadedFile]:
        """Files that landed checked by size only, because Graph sent no hash for them."""
        return [f for f in self.downloaded if not f.verified]

    def summary(self, target: object) -> dict[str, Any]:
        return {
            "target": str(target),
            "downloaded": len(self.downloaded),
            "skipped": len(self.skipped),
            "failed": len(self.failed),
            "unverified": len(self.unverified),
            "bytes": self.bytes,
            "files": sorted(f.relative for f in self.downloaded)[:1000],
            # Landed checked by size only (Graph sent no hash): worth a look, or require_hash=True.
            "unverified_files": sorted(f.relative for f in self.unverified)[:1000],
        }

    def failure_list(self, limit: int = 20) -> str:
        listed = "; ".join(f"{path}: {reason}" for path, reason in sorted(self.failed.items())[:limit])
        more = f" (and {len(self.failed) - limit} more)" if len(self.failed) > limit else ""
        return listed + more


class FolderDownloadError(GraphCertError):
    def __init__(self, message: str, result: FolderDownloadResult) -> None:
        super().__init__(message)
        self.result = result


class _NotTried(GraphCertError):
    """A queued file skipped because the job is stopping (Graph unreachable, or interrupted)."""


NOT_TRIED = "not tried: Graph could not be reached (see the other failures); the next run fetches it"
UnsafeReporter = Callable[[str, str], None]


def walk_files(
    client: GraphClient,
    drive_id: str,
    folder_id: str,
    prefix: str = "",
    *,
    on_unsafe: UnsafeReporter | None = None,
) -> Iterator[tuple[str, dict[str, Any]]]:
    """(relative path, item) for every file below a folder, depth first, page by page.

    Names come from the service: with ``on_unsafe``, a file or folder whose name could not be
    written as one local name (``..``, separators, control characters ...) is reported there and
    skipped (a folder with everything below it), so that "a/b" can never pose as a path.
    """
    stack: list[tuple[str, str]] = [(folder_id, prefix)]
    while stack:
        current, base = stack.pop()
        children = client.iter_items(
            f"drives/{drive_id}/items/{current}/children",
            params={"$top": CHILDREN_PAGE_SIZE, "$select": _CHILD_FIELDS},
        )
        for child in children:
            name, item_id = child.get("name"), child.get("id")
            if not isinstance(name, str) or not isinstance(item_id, str):
                raise GraphCertError(
                    f"Graph listed an item without a name or id below '{base or '/'}' (drive {drive_id}); "
                    "the listing is malformed, so nothing below it can be trusted."
                )
            relative = f"{base}{name}"
            if on_unsafe is not None:
                try:
                    safe_segment(name)
                except UnsafeNameError as exc:
                    on_unsafe(relative + ("/" if "folder" in child else ""), str(exc))
                    continue
            if "folder" in child:
                stack.append((item_id, f"{relative}/"))
            elif "file" in child:
                yield relative, child


def accepted_files(
    candidates: Iterable[tuple[str, dict[str, Any]]], file_filter: FileFilter, result: FolderDownloadResult
) -> Iterator[tuple[str, dict[str, Any]]]:
    """The candidates the filter accepts; an item whose fields the filter cannot read goes to ``failed``."""
    for relative, item in candidates:
        try:
            if file_filter.accepts(relative, item):
                yield relative, item
        except MalformedItemError as exc:
            result.failed[relative] = str(exc)


def landing_plan(
    candidates: Iterable[tuple[str, dict[str, Any]]], landing: Landing, result: FolderDownloadResult
) -> Iterator[tuple[str, dict[str, Any], str]]:
    """(relative, item, destination) for each candidate that can land without losing another.

    Refused, each into ``result.failed`` with its reason: names that cannot be written safely, and
    a second item whose path equals an earlier one exactly, but for case, or but for Unicode
    normalisation (NFC/NFD, which macOS file systems fold into one name). Only one of two such items
    could exist on such a disk, so the later one is refused rather than silently replacing the first.
    """
    seen: dict[str, str] = {}
    for relative, item in candidates:
        try:
            destination = landing.destination(relative)
        except UnsafeNameError as exc:
            result.failed[relative] = str(exc)
            continue
        key = unicodedata.normalize("NFC", relative).casefold()
        first = seen.get(key)
        if first is None:
            seen[key] = relative
        else:
            how = "has the same path as" if first == relative else "differs only in case or Unicode form from"
            result.failed[_unique_key(result.failed, relative)] = (
                f"refusing {relative!r}: it {how} {first!r}, so one would silently replace the other on disk "
                "(rename one of them in SharePoint)"
            )
            continue
        yield relative, item, destination


def _unique_key(failed: dict[str, str], relative: str) -> str:
    # Two remote items with the very same path each get their own line in the failures.
    key, number = relative, 1
    while key in failed:
        number += 1
        key = f"{relative} (#{number})"
    return key


def save_manifest(manifest: Manifest) -> None:
    try:
        manifest.save()
    except OSError as exc:  # never hide the job's own outcome; the journal still holds what landed
        log.warning("Could not save %s (%s); the next run may download files again.", manifest.path, exc)


@dataclass
class DownloadEngine:
    """The one loop that lands files for folder download and sync (each hands it its own plan).

    Bounded thread pool; each file is recorded in the manifest's journal the moment it lands; when
    Graph cannot be reached even after retries, files not yet started are not tried, so a dead
    service fails the job within one retry budget instead of one per file; a failed local write
    is explained (disk full, permissions ...) naming ``field``.
    """

    client: GraphClient
    drive_id: str
    landing: Landing
    manifest: Manifest
    progress: Progress
    max_workers: int = DEFAULT_MAX_WORKERS
    incremental: bool = True
    require_hash: bool = False

    def run(self, plan: Iterable[tuple[str, dict[str, Any], str]], result: FolderDownloadResult) -> None:
        folders = FolderSync()
        downloader = FileDownloader(
            self.client, on_bytes=self.progress.advance, require_hash=self.require_hash, folders=folders
        )
        try:
            self._run(downloader, plan, result)
        finally:
            # Before the job reports anything: every rename of this run is durable (files.FolderSync).
            folders.sync()

    def _run(
        self, downloader: FileDownloader, plan: Iterable[tuple[str, dict[str, Any], str]], result: FolderDownloadResult
    ) -> None:
        futures: dict[Future[DownloadedFile], str] = {}
        stopping = threading.Event()

        def fetch(relative: str, item: dict[str, Any], destination: str) -> DownloadedFile:
            if stopping.is_set():
                raise _NotTried(NOT_TRIED)
            try:
                done = self.landing.land(downloader, self.drive_id, item, destination)
            except GraphTransportError:
                stopping.set()
                raise
            landed = self.landing.stat(destination) or (done.size, None)
            self.manifest.record(
                relative, item_id=done.item_id, e_tag=done.e_tag, landed=landed, quick_xor_hash=done.quick_xor_hash
            )
            return dataclasses.replace(done, relative=relative)

        with ThreadPoolExecutor(max_workers=self.max_workers, thread_name_prefix="graphcert-download") as pool:
            try:
                for relative, item, destination in plan:
                    try:
                        if not is_file(item):
                            continue
                        size = file_size(item)
                    except MalformedItemError as exc:
                        result.failed[relative] = str(exc)
                        continue
                    if (
                        self.incremental
                        and self.manifest.knows(relative)
                        and self.manifest.unchanged(relative, item, self.landing.stat(destination))
                    ):
                        result.skipped.append(relative)
                        continue
                    self.progress.add_total(size)
                    futures[pool.submit(fetch, relative, item, destination)] = relative
                for future, relative in futures.items():
                    try:
                        result.downloaded.append(future.result())
                        self.progress.file_done()
                    except GraphCertError as exc:
                        result.failed[relative] = str(exc)
                    except OSError as exc:
                        result.failed[relative] = write_failure(exc, self.landing.label, self.landing.field)
            except BaseException:
                stopping.set()  # whatever stops the job (an error, a task timeout): start nothing new
                raise
        if result.unverified:
            log.warning(
                "%d files landed checked by size only, because Graph sent no QuickXorHash for them: %s",
                len(result.unverified),
                ", ".join(f.relative for f in result.unverified[:20]),
            )


def check_max_workers(max_workers: int) -> None:
    if isinstance(max_workers, bool) or not isinstance(max_workers, int) or max_workers < 1:
        raise ConfigurationError("max_workers must be a whole number of at least 1.", field="max_workers")


def download_folder(
    client: GraphClient,
    drive_id: str,
    folder: dict[str, Any],
    target: Path | Landing,
    *,
    file_filter: FileFilter | None = None,
    max_workers: int = DEFAULT_MAX_WORKERS,
    incremental: bool = True,
    require_hash: bool = False,
    logger: InfoLogger = log,
) -> FolderDownloadResult:
    """Download every accepted file below ``folder`` into ``target``; raise after all were tried.

    The manifest is saved however the run ends, so a retry fetches only what is missing.
    """
    check_max_workers(max_workers)
    file_filter = file_filter or FileFilter()
    result = FolderDownloadResult()
    landing = LocalLanding(target) if isinstance(target, Path) else target
    with landing.held():
        manifest = Manifest(landing.state)
        progress = Progress(f"Download to {landing.label}", logger=logger)
        engine = DownloadEngine(
            client,
            drive_id,
            landing,
            manifest,
            progress,
            max_workers=max_workers,
            incremental=incremental,
            require_hash=require_hash,
        )
        listed = walk_files(client, drive_id, str(folder["id"]), on_unsafe=result.failed.__setitem__)
        accepted = accepted_files(listed, file_filter, result)
        try:
            engine.run(landing_plan(accepted, landing, result), result)
        finally:
            save_manifest(manifest)
    progress.report(final=True)
    if result.failed:
        raise FolderDownloadError(
            f"{len(result.failed)} of {len(result.failed) + len(result.downloaded) + len(result.skipped)} files "
            f"failed; {len(result.downloaded)} downloaded, {len(result.skipped)} unchanged. {result.failure_list()}",
            result,
        )
    return result
