"""SharePoint jobs over one GraphClient: what operators and sensors call (no Airflow here)."""

from __future__ import annotations

import fnmatch
import logging
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from airflow_provider_graphcert.errors import ConfigurationError, GraphCertError
from airflow_provider_graphcert.files import ensure_writable_dir, local_argument, write_failure
from airflow_provider_graphcert.graph.client import GraphClient
from airflow_provider_graphcert.sharepoint.download import FileDownloader
from airflow_provider_graphcert.sharepoint.folder_download import (
    DEFAULT_MAX_WORKERS,
    FileFilter,
    download_folder,
    save_manifest,
    walk_files,
)
from airflow_provider_graphcert.sharepoint.item_fields import file_size, modified_at
from airflow_provider_graphcert.sharepoint.landing import Landing, landing_for
from airflow_provider_graphcert.sharepoint.lists import ExportFormat, export_list
from airflow_provider_graphcert.sharepoint.local_names import safe_segment
from airflow_provider_graphcert.sharepoint.locations import parse_sharepoint_url
from airflow_provider_graphcert.sharepoint.manifest import Manifest
from airflow_provider_graphcert.sharepoint.progress import InfoLogger, Progress
from airflow_provider_graphcert.sharepoint.resolver import ResolvedItem, SharePointResolver
from airflow_provider_graphcert.sharepoint.sync import DeltaLinkStore, sync_folder
from airflow_provider_graphcert.sharepoint.upload import (
    DEFAULT_FRAGMENT_BYTES,
    FileUploader,
    FolderMaker,
    check_conflict_behavior,
)

log = logging.getLogger(__name__)


class SharePoint:
    def __init__(self, client: GraphClient, *, logger: InfoLogger = log) -> None:
        self.client = client
        self.resolver = SharePointResolver(client)
        self.log = logger

    def resolve(
        self, *, url: str | None = None, site_url: str | None = None, library: str | None = None, path: str = ""
    ) -> ResolvedItem:
        return self.resolver.resolve(url=url, site_url=site_url, library=library, path=path)

    def download(
        self,
        destination: str | Path | Any = None,
        *,
        url: str | None = None,
        site_url: str | None = None,
        library: str | None = None,
        path: str = "",
        include: Sequence[str] | str | None = None,
        exclude: Sequence[str] | str | None = None,
        modified_since: datetime | str | None = None,
        max_workers: int = DEFAULT_MAX_WORKERS,
        incremental: bool = True,
        require_hash: bool = False,
        local_dir: str | Path | None = None,
    ) -> dict[str, Any]:
        """A file or a whole folder into ``destination``; returns a small JSON-able summary.

        ``destination``: a local folder, a URL with a scheme (``file://``, ``memory://``, ``s3://`` ...)
        or an Airflow ``ObjectStoragePath`` (sharepoint/landing.py); ``local_dir`` is its old name.
        ``require_hash``: fail files for which Graph sent no QuickXorHash instead of landing them
        checked by size only (counted as ``unverified`` in the summary).
        """
        landing = _landing(destination, local_dir)
        file_filter = FileFilter.build(include, exclude, modified_since)
        resolved = self.resolve(url=url, site_url=site_url, library=library, path=path)
        if resolved.is_folder:
            result = download_folder(
                self.client,
                resolved.drive_id,
                resolved.item,
                landing,
                file_filter=file_filter,
                max_workers=max_workers,
                incremental=incremental,
                require_hash=require_hash,
                logger=self.log,
            )
            return result.summary(landing.label)
        return self._download_file(resolved, landing, incremental=incremental, require_hash=require_hash)

    def _download_file(
        self, resolved: ResolvedItem, landing: Landing, *, incremental: bool, require_hash: bool
    ) -> dict[str, Any]:
        name = str(resolved.item.get("name", ""))
        try:
            destination = landing.destination(safe_segment(name))
            size = file_size(resolved.item)
        except GraphCertError as exc:
            raise GraphCertError(str(exc)) from None
        summary: dict[str, Any] = {"target": landing.label, "downloaded": 0, "skipped": 0, "failed": 0}
        with landing.held():
            manifest = Manifest(landing.state)
            if incremental and manifest.unchanged(name, resolved.item, landing.stat(destination)):
                return {**summary, "skipped": 1, "unverified": 0, "bytes": 0, "files": [], "unverified_files": []}
            progress = Progress(f"Download of {name}", size, logger=self.log)
            downloader = FileDownloader(self.client, on_bytes=progress.advance, require_hash=require_hash)
            try:
                done = landing.land(downloader, resolved.drive_id, resolved.item, destination)
            except OSError as exc:  # e.g. the disk filled up mid-file: nothing landed under the final name
                raise ConfigurationError(
                    write_failure(exc, landing.label, landing.field), field=landing.field
                ) from None
            manifest.record(
                name,
                item_id=done.item_id,
                e_tag=done.e_tag,
                landed=landing.stat(destination) or (done.size, None),
                quick_xor_hash=done.quick_xor_hash,
            )
            save_manifest(manifest)
        progress.file_done()
        progress.report(final=True)
        return {
            **summary,
            "downloaded": 1,
            "unverified": 0 if done.verified else 1,
            "bytes": done.size,
            "files": [name],
            "unverified_files": [] if done.verified else [name],
        }

    def upload(
        self,
        local_path: str | Path,
        *,
        url: str | None = None,
        site_url: str | None = None,
        library: str | None = None,
        path: str = "",
        conflict_behavior: str = "replace",
        chunk_size: int = DEFAULT_FRAGMENT_BYTES,
        max_workers: int = DEFAULT_MAX_WORKERS,
        include: Sequence[str] | str | None = None,
    ) -> dict[str, Any]:
        """A local file or folder into the SharePoint folder named by url / site_url+library+path."""
        conflict = check_conflict_behavior(conflict_behavior)
        source = local_argument(local_path, "local_path")
        if not source.exists():
            raise ConfigurationError(f"The upload source {source} does not exist.", field="local_path")
        if url:
            drive, folder = self.resolver.drive_for(url=url, site_url=None, library=None)
        else:
            drive, _ = self.resolver.drive_for(url=None, site_url=site_url, library=library)
            folder = "/".join(p for p in path.split("/") if p)
        if source.is_file():
            files = [(source, source.name)]
        else:
            patterns = FileFilter.build(include, None, None)
            files = [
                (f, f.relative_to(source).as_posix())
                for f in sorted(source.rglob("*"))
                if f.is_file() and patterns.accepts(f.relative_to(source).as_posix(), {})
            ]
        progress = Progress(
            f"Upload to {drive.name}/{folder}", sum(f.stat().st_size for f, _ in files), logger=self.log
        )
        uploader = FileUploader(self.client, fragment_bytes=chunk_size, on_bytes=progress.advance)
        folders = FolderMaker(self.client, drive.id)
        uploaded: list[dict[str, Any]] = []
        failed: dict[str, str] = {}

        def one(local: Path, relative: str) -> dict[str, Any]:
            remote = f"{folder}/{relative}" if folder else relative
            folders.ensure(remote.rsplit("/", 1)[0] if "/" in remote else "")
            return uploader.upload(drive.id, remote, local, conflict=conflict).as_dict()

        if source.is_file():
            # One file: its own error (conflict, integrity, ...) is the task's error, unwrapped.
            done = one(source, source.name)
            progress.file_done()
            progress.report(final=True)
            return {"uploaded": 1, "bytes": done["size"], "items": [_item_summary(done)]}
        with ThreadPoolExecutor(max_workers=max(1, max_workers), thread_name_prefix="graphcert-upload") as pool:
            futures = [(relative, pool.submit(one, local, relative)) for local, relative in files]
            for relative, future in futures:
                try:
                    uploaded.append(future.result())
                    progress.file_done()
                except (GraphCertError, OSError) as exc:
                    failed[relative] = str(exc)
        progress.report(final=True)
        if failed:
            listed = "; ".join(f"{p}: {r}" for p, r in sorted(failed.items())[:20])
            raise GraphCertError(f"{len(failed)} of {len(files)} uploads failed ({len(uploaded)} done): {listed}")
        return {
            "uploaded": len(uploaded),
            "bytes": sum(int(u["size"]) for u in uploaded),
            "items": [_item_summary(u) for u in uploaded[:1000]],
        }

    def sync(
        self,
        destination: str | Path | Any = None,
        store: DeltaLinkStore | None = None,
        *,
        url: str | None = None,
        site_url: str | None = None,
        library: str | None = None,
        path: str = "",
        mirror_deletions: bool = False,
        include: Sequence[str] | str | None = None,
        exclude: Sequence[str] | str | None = None,
        max_workers: int = DEFAULT_MAX_WORKERS,
        require_hash: bool = False,
        local_dir: str | Path | None = None,
    ) -> dict[str, Any]:
        """Land what changed below a folder into ``destination`` (as for :meth:`download`).

        The delta link lives in ``store`` (an Airflow Variable in the operator).
        """
        if store is None:
            raise ConfigurationError("Sync needs a store for its delta link.", field="store")
        landing = _landing(destination, local_dir)
        resolved = self.resolve(url=url, site_url=site_url, library=library, path=path)
        if not resolved.is_folder:
            raise ConfigurationError("Sync works on folders; use the download operator for a single file.", field="url")
        result = sync_folder(
            self.client,
            resolved.drive_id,
            resolved.id,
            landing,
            store,
            mirror_deletions=mirror_deletions,
            file_filter=FileFilter.build(include, exclude, None),
            max_workers=max_workers,
            require_hash=require_hash,
            logger=self.log,
        )
        return result.summary()

    def export_list(
        self,
        site_url: str,
        list_name: str,
        output_path: str | Path,
        *,
        fields: Sequence[str] | None = None,
        output_format: ExportFormat = "csv",
    ) -> dict[str, Any]:
        output = local_argument(output_path, "output_path")
        location = parse_sharepoint_url(site_url, field="site_url")
        site_path = "/".join(p for p in [location.site_path, *location.segments] if p)
        site = self.resolver.site(location.hostname, site_path)
        if site is None:
            raise ConfigurationError(f"No SharePoint site at {site_url}.", field="site_url")
        ensure_writable_dir(output.parent, "output_path")
        count = export_list(self.client, str(site["id"]), list_name, output, fields=fields, output_format=output_format)
        return {"path": str(output_path), "count": count}

    def find_files(
        self,
        *,
        url: str | None = None,
        site_url: str | None = None,
        library: str | None = None,
        path: str = "",
        pattern: str | None = None,
        modified_after: datetime | None = None,
        recursive: bool = False,
    ) -> list[dict[str, Any]]:
        """Files at the location (a file, or a folder's files matching ``pattern``) changed after a time."""
        try:
            resolved = self.resolve(url=url, site_url=site_url, library=library, path=path)
        except ConfigurationError as exc:
            if "does not exist" in str(exc):
                return []
            raise
        candidates: list[tuple[str, dict[str, Any]]]
        if resolved.is_folder:
            if recursive:
                candidates = list(walk_files(self.client, resolved.drive_id, resolved.id))
            else:
                children = self.client.iter_items(f"drives/{resolved.drive_id}/items/{resolved.id}/children")
                candidates = [(str(c.get("name")), c) for c in children if "file" in c]
        else:
            candidates = [(str(resolved.item.get("name")), resolved.item)]
        matches = []
        for relative, item in candidates:
            if pattern and not fnmatch.fnmatchcase(
                relative if "/" in pattern else relative.rsplit("/", 1)[-1], pattern
            ):
                continue
            if modified_after is not None and _modified(item) <= modified_after:
                continue
            matches.append(
                {
                    "path": relative,
                    "item_id": item.get("id"),
                    "size": item.get("size"),
                    "lastModifiedDateTime": item.get("lastModifiedDateTime"),
                    "eTag": item.get("eTag"),
                }
            )
        return matches


def _landing(destination: Any, local_dir: str | Path | None) -> Landing:
    """Where files land, from the new argument or its old name (one of them, not both)."""
    if destination is not None and local_dir is not None:
        raise ConfigurationError("Give destination or its old name local_dir, not both.", field="destination")
    if local_dir is not None:
        return landing_for(local_dir, "local_dir")
    return landing_for(
        destination,
        "local_dir" if isinstance(destination, str | Path) and "://" not in str(destination) else "destination",
    )


def _item_summary(uploaded: dict[str, Any]) -> dict[str, Any]:
    return {"remote_path": uploaded["remote_path"], "item_id": uploaded["item_id"]}


def _modified(item: dict[str, Any]) -> datetime:
    return modified_at(item) or datetime.fromtimestamp(0, UTC)
