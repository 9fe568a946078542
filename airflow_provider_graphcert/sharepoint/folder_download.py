"""Download a SharePoint folder tree: bounded thread pool, filters, incremental, all failures reported."""

from __future__ import annotations

import fnmatch
import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from airflow_provider_graphcert.errors import ConfigurationError, GraphCertError, GraphTransportError
from airflow_provider_graphcert.files import ensure_writable_dir, write_failure
from airflow_provider_graphcert.graph.client import GraphClient
from airflow_provider_graphcert.sharepoint.download import DownloadedFile, FileDownloader
from airflow_provider_graphcert.sharepoint.local_names import UnsafeNameError, local_path, safe_segment
from airflow_provider_graphcert.sharepoint.manifest import Manifest
from airflow_provider_graphcert.sharepoint.progress import InfoLogger, Progress

log = logging.getLogger(__name__)

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
            stamp = item.get("lastModifiedDateTime")
            if not stamp or datetime.fromisoformat(str(stamp).replace("Z", "+00:00")) < self.modified_since:
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


def parse_moment(value: datetime | str | None, field: str = "modified_since") -> datetime | None:
    """An aware datetime from an ISO string (trailing Z allowed); errors name ``field``."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        moment = value
    else:
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise ConfigurationError(
                f"{field} {value!r} is not an ISO date/time such as 2026-01-31T00:00:00Z.", field=field
            ) from None
    if moment.tzinfo is None:
        raise ConfigurationError(f"{field} needs a time zone (e.g. a trailing Z for UTC).", field=field)
    return moment


@dataclass
class FolderDownloadResult:
    downloaded: list[DownloadedFile] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)

    @property
    def bytes(self) -> int:
        return sum(f.size for f in self.downloaded)

    def summary(self, target: Path) -> dict[str, Any]:
        return {
            "target": str(target),
            "downloaded": len(self.downloaded),
            "skipped": len(self.skipped),
            "failed": len(self.failed),
            "bytes": self.bytes,
            "files": sorted(str(Path(f.path).relative_to(target)) for f in self.downloaded)[:1000],
        }


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


def _planned(
    client: GraphClient,
    drive_id: str,
    folder: dict[str, Any],
    target: Path,
    file_filter: FileFilter,
    result: FolderDownloadResult,
) -> Iterator[tuple[str, dict[str, Any], Path]]:
    """(relative, item, local path) of every accepted file; names that cannot land safely go to ``failed``."""
    seen: dict[str, str] = {}
    for relative, item in walk_files(client, drive_id, str(folder["id"]), on_unsafe=result.failed.__setitem__):
        if not file_filter.accepts(relative, item):
            continue
        try:
            destination = local_path(target, relative)
        except UnsafeNameError as exc:
            result.failed[relative] = str(exc)
            continue
        first = seen.setdefault(relative.casefold(), relative)
        if first != relative:
            # SharePoint names are case-insensitive, so this is a broken listing; on a case-insensitive
            # disk one file would silently replace the other.
            result.failed[relative] = f"refusing {relative!r}: it differs only in case from {first!r}"
            continue
        yield relative, item, destination


def _save_manifest(manifest: Manifest) -> None:
    try:
        manifest.save()
    except OSError as exc:  # never hide the job's own outcome; the next run just moves more
        log.warning("Could not save %s (%s); the next run may download files again.", manifest.path, exc)


def download_folder(
    client: GraphClient,
    drive_id: str,
    folder: dict[str, Any],
    target: Path,
    *,
    file_filter: FileFilter | None = None,
    max_workers: int = DEFAULT_MAX_WORKERS,
    incremental: bool = True,
    logger: InfoLogger = log,
) -> FolderDownloadResult:
    """Download every accepted file below ``folder`` into ``target``; raise after all were tried.

    Each file is recorded in the manifest the moment it lands, and the manifest is saved however
    the run ends, so a retry fetches only what is missing. When Graph cannot be reached even
    after retries, files not yet started are not tried: a dead service fails the job within one
    retry budget instead of one per file.
    """
    if max_workers < 1:
        raise ConfigurationError("max_workers must be at least 1.", field="max_workers")
    ensure_writable_dir(target, "local_dir")
    file_filter = file_filter or FileFilter()
    manifest = Manifest(target)
    progress = Progress(f"Download to {target}", logger=logger)
    downloader = FileDownloader(client, on_bytes=progress.advance)
    result = FolderDownloadResult()
    futures: dict[Future[DownloadedFile], str] = {}
    stopping = threading.Event()

    def fetch(relative: str, item: dict[str, Any], destination: Path) -> DownloadedFile:
        if stopping.is_set():
            raise _NotTried(NOT_TRIED)
        try:
            done = downloader.download(drive_id, item, destination)
        except GraphTransportError:
            stopping.set()
            raise
        manifest.record(relative, item, destination, done.quick_xor_hash)
        return done

    try:
        with ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="graphcert-download") as pool:
            try:
                for relative, item, destination in _planned(client, drive_id, folder, target, file_filter, result):
                    if incremental and manifest.unchanged(relative, item, destination):
                        result.skipped.append(relative)
                        continue
                    progress.add_total(int(item.get("size", 0)))
                    futures[pool.submit(fetch, relative, item, destination)] = relative
                for future, relative in futures.items():
                    try:
                        result.downloaded.append(future.result())
                        progress.file_done()
                    except GraphCertError as exc:
                        result.failed[relative] = str(exc)
                    except OSError as exc:
                        result.failed[relative] = write_failure(exc, target, "local_dir")
            except BaseException:
                stopping.set()  # whatever stops the job (an error, a task timeout): start nothing new
                raise
    finally:
        _save_manifest(manifest)
    progress.report(final=True)
    if result.failed:
        listed = "; ".join(f"{path}: {reason}" for path, reason in sorted(result.failed.items())[:20])
        more = f" (and {len(result.failed) - 20} more)" if len(result.failed) > 20 else ""
        raise FolderDownloadError(
            f"{len(result.failed)} of {len(result.failed) + len(result.downloaded) + len(result.skipped)} files "
            f"failed; {len(result.downloaded)} downloaded, {len(result.skipped)} unchanged. {listed}{more}",
            result,
        )
    return result
