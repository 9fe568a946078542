"""Download a SharePoint folder tree: bounded thread pool, filters, incremental, all failures reported."""

from __future__ import annotations

import fnmatch
import logging
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from airflow_provider_graphcert.errors import ConfigurationError, GraphCertError
from airflow_provider_graphcert.graph.client import GraphClient
from airflow_provider_graphcert.sharepoint.download import DownloadedFile, FileDownloader
from airflow_provider_graphcert.sharepoint.local_names import UnsafeNameError, local_path
from airflow_provider_graphcert.sharepoint.manifest import Manifest
from airflow_provider_graphcert.sharepoint.progress import InfoLogger, Progress

log = logging.getLogger(__name__)

DEFAULT_MAX_WORKERS = 8
# Large children pages mean fewer round trips when walking big folders (rclone uses 1000).
CHILDREN_PAGE_SIZE = 1000
_CHILD_FIELDS = "id,name,size,eTag,cTag,file,folder,lastModifiedDateTime,fileSystemInfo,parentReference"


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
        return cls(_patterns(include, "include"), _patterns(exclude, "exclude"), _since(modified_since))

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


def _since(value: datetime | str | None) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        moment = value
    else:
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise ConfigurationError(
                f"modified_since {value!r} is not an ISO date/time such as 2026-01-31T00:00:00Z.",
                field="modified_since",
            ) from None
    if moment.tzinfo is None:
        raise ConfigurationError(
            "modified_since needs a time zone (e.g. a trailing Z for UTC).", field="modified_since"
        )
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


def walk_files(
    client: GraphClient, drive_id: str, folder_id: str, prefix: str = ""
) -> Iterator[tuple[str, dict[str, Any]]]:
    """(relative path, item) for every file below a folder, depth first, page by page."""
    stack: list[tuple[str, str]] = [(folder_id, prefix)]
    while stack:
        current, base = stack.pop()
        children = client.iter_items(
            f"drives/{drive_id}/items/{current}/children",
            params={"$top": CHILDREN_PAGE_SIZE, "$select": _CHILD_FIELDS},
        )
        for child in children:
            relative = f"{base}{child.get('name', '')}"
            if "folder" in child:
                stack.append((str(child["id"]), f"{relative}/"))
            elif "file" in child:
                yield relative, child


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
    """Download every accepted file below ``folder`` into ``target``; raise after all were tried."""
    if max_workers < 1:
        raise ConfigurationError("max_workers must be at least 1.", field="max_workers")
    target.mkdir(parents=True, exist_ok=True)
    file_filter = file_filter or FileFilter()
    manifest = Manifest(target)
    progress = Progress(f"Download to {target}", logger=logger)
    downloader = FileDownloader(client, on_bytes=progress.advance)
    result = FolderDownloadResult()
    futures: dict[Future[DownloadedFile], tuple[str, dict[str, Any], Path]] = {}
    try:
        with ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="graphcert-download") as pool:
            for relative, item in walk_files(client, drive_id, str(folder["id"])):
                if not file_filter.accepts(relative, item):
                    continue
                try:
                    destination = local_path(target, relative)
                except UnsafeNameError as exc:
                    result.failed[relative] = str(exc)
                    continue
                if incremental and manifest.unchanged(relative, item, destination):
                    result.skipped.append(relative)
                    continue
                progress.add_total(int(item.get("size", 0)))
                futures[pool.submit(downloader.download, drive_id, item, destination)] = (relative, item, destination)
            for future, (relative, item, destination) in futures.items():
                try:
                    downloaded = future.result()
                except GraphCertError as exc:
                    result.failed[relative] = str(exc)
                    continue
                except OSError as exc:
                    result.failed[relative] = f"{type(exc).__name__}: {exc.strerror or exc}"
                    continue
                result.downloaded.append(downloaded)
                manifest.record(relative, item, destination, downloaded.quick_xor_hash)
                progress.file_done()
    finally:
        manifest.save()
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
