"""SharePoint jobs over one GraphClient: what operators and sensors call (no Airflow here)."""

from __future__ import annotations

import dataclasses
import fnmatch
import logging
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from airflow_provider_graphcert.errors import ConfigurationError, GraphCertError, GraphNotFoundError
from airflow_provider_graphcert.files import ensure_writable_dir, local_argument, write_failure
from airflow_provider_graphcert.graph.client import GraphClient
from airflow_provider_graphcert.sharepoint.after_download import (
    AfterDownload,
    AfterDownloadError,
    AfterDownloadRunner,
    failure_message,
)
from airflow_provider_graphcert.sharepoint.download import DownloadedFile, FileDownloader
from airflow_provider_graphcert.sharepoint.folder_download import (
    DEFAULT_MAX_WORKERS,
    FileFilter,
    FolderDownloadError,
    download_folder,
    save_manifest,
    walk_files,
)
from airflow_provider_graphcert.sharepoint.item_actions import ItemActions, check_new_name
from airflow_provider_graphcert.sharepoint.item_fields import file_size, modified_at
from airflow_provider_graphcert.sharepoint.landing import Landing, landing_for, locate
from airflow_provider_graphcert.sharepoint.lists import ExportFormat, check_export_format, check_fields, export_list
from airflow_provider_graphcert.sharepoint.local_names import UnsafeNameError, safe_segment
from airflow_provider_graphcert.sharepoint.locations import SharePointLocation, parse_sharepoint_url
from airflow_provider_graphcert.sharepoint.manifest import Manifest
from airflow_provider_graphcert.sharepoint.progress import InfoLogger, Progress
from airflow_provider_graphcert.sharepoint.resolver import Drive, ItemNotFoundError, ResolvedItem, SharePointResolver
from airflow_provider_graphcert.sharepoint.sync import DeltaLinkStore, sync_folder
from airflow_provider_graphcert.sharepoint.upload import (
    DEFAULT_FRAGMENT_BYTES,
    FileUploader,
    FolderMaker,
    check_conflict_behavior,
    check_max_workers,
)
from airflow_provider_graphcert.sharepoint.upload_sources import (
    LocalFile,
    StoreFile,
    UploadFile,
    store_upload_sources,
    upload_sources,
)
from airflow_provider_graphcert.sharepoint.upload_verify import DEFAULT_VERIFY, check_verify_mode

log = logging.getLogger(__name__)


class SharePoint:
    def __init__(self, client: GraphClient, *, logger: InfoLogger = log) -> None:
        self.client = client
        self.resolver = SharePointResolver(client)
        self.log = logger

    def resolve(
        self,
        *,
        url: str | SharePointLocation | None = None,
        site_url: str | None = None,
        library: str | None = None,
        path: str = "",
    ) -> ResolvedItem:
        return self.resolver.resolve(url=url, site_url=site_url, library=library, path=path)

    def download(
        self,
        destination: str | Path | Any = None,
        *,
        url: str | SharePointLocation | None = None,
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
        after_download: Mapping[str, Any] | AfterDownload | None = None,
    ) -> dict[str, Any]:
        """A file or a whole folder into ``destination``; returns a small JSON-able summary.

        ``destination``: a local folder, a URL with a scheme (``file://``, ``memory://``, ``s3://`` ...)
        or an Airflow ``ObjectStoragePath`` (sharepoint/landing.py); ``local_dir`` is its old name.
        ``require_hash``: fail files for which Graph sent no QuickXorHash instead of landing them
        checked by size only (counted as ``unverified`` in the summary).
        ``after_download``: ``{"move_to": folder}`` or ``{"delete": True}`` for the files this run
        landed and verified (sharepoint/after_download.py); its report is the summary's ``after_download``.
        """
        landing = _landing(destination, local_dir)
        file_filter = FileFilter.build(include, exclude, modified_since)
        spec = AfterDownload.parse(after_download)
        resolved = self.resolve(url=url, site_url=site_url, library=library, path=path)
        runner = self._after_download_runner(spec, resolved) if spec else None
        if not resolved.is_folder:
            summary, landed = self._download_file(resolved, landing, incremental=incremental, require_hash=require_hash)
            return self._after_download(runner, landing, landed, summary)
        try:
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
        except FolderDownloadError as exc:
            if runner is not None:  # the files that did land are archived; the task still fails for the rest
                report = runner.run(exc.result.downloaded)
                if report.failed:
                    _forget(landing, report.failed)
                    self.log.info("%s", failure_message(report))
            raise
        return self._after_download(runner, landing, result.downloaded, result.summary(landing.label))

    def _after_download_runner(self, spec: AfterDownload, resolved: ResolvedItem) -> AfterDownloadRunner:
        archive = self._folder_in_library(resolved.drive, spec.move_to) if spec.move_to else ""
        return AfterDownloadRunner(self.client, resolved.drive, spec, archive, self.log)

    @staticmethod
    def _after_download(
        runner: AfterDownloadRunner | None, landing: Landing, landed: list[DownloadedFile], summary: dict[str, Any]
    ) -> dict[str, Any]:
        if runner is None:
            return summary
        report = runner.run(landed)
        if report.failed:
            _forget(landing, report.failed)
            raise AfterDownloadError(failure_message(report), {**summary, "after_download": report.summary()})
        return {**summary, "after_download": report.summary()}

    def _download_file(
        self, resolved: ResolvedItem, landing: Landing, *, incremental: bool, require_hash: bool
    ) -> tuple[dict[str, Any], list[DownloadedFile]]:
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
                return {**summary, "skipped": 1, "unverified": 0, "bytes": 0, "files": [], "unverified_files": []}, []
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
        }, [dataclasses.replace(done, relative=name)]

    def upload(
        self,
        source: str | Path | Any = None,
        *,
        url: str | SharePointLocation | None = None,
        site_url: str | None = None,
        library: str | None = None,
        path: str = "",
        conflict_behavior: str = "replace",
        chunk_size: int = DEFAULT_FRAGMENT_BYTES,
        max_workers: int = DEFAULT_MAX_WORKERS,
        include: Sequence[str] | str | None = None,
        verify: str = DEFAULT_VERIFY,
        local_path: str | Path | None = None,
    ) -> dict[str, Any]:
        """A file or folder into the SharePoint folder named by url / site_url+library+path.

        ``source``: a local file or folder, a URL with a scheme (``file://``, ``memory://``, ``s3://``
        ...) or an Airflow ``ObjectStoragePath`` (a store prefix is uploaded as a folder; read in
        fragments, never whole into memory); ``local_path`` is its old name. ``verify`` decides how
        the stored copy is checked against what was sent: ``strict`` (size and QuickXorHash for
        every file) or ``office_aware`` (the same, except that SharePoint's rewrite of Office
        documents is accepted and reported; docs/troubleshooting.md).
        """
        conflict = check_conflict_behavior(conflict_behavior)
        verify_mode = check_verify_mode(verify)
        workers = check_max_workers(max_workers)
        single, files, skipped = _upload_files(source, local_path, include, self.log)
        if url:
            drive, folder = self.resolver.drive_for(url=url, site_url=None, library=None)
        else:
            drive, _ = self.resolver.drive_for(url=None, site_url=site_url, library=library)
            folder = "/".join(p for p in path.split("/") if p)
        progress = Progress(f"Upload to {drive.name}/{folder}", sum(f.size() for f, _ in files), logger=self.log)
        uploader = FileUploader(self.client, fragment_bytes=chunk_size, on_bytes=progress.advance, verify=verify_mode)
        folders = FolderMaker(self.client, drive.id)
        uploaded: list[dict[str, Any]] = []
        failed: dict[str, str] = {}

        def one(local: UploadFile, relative: str) -> dict[str, Any]:
            remote = f"{folder}/{relative}" if folder else relative
            folders.ensure(remote.rsplit("/", 1)[0] if "/" in remote else "")
            return uploader.upload(drive.id, remote, local, conflict=conflict).as_dict()

        if single:
            # One file: its own error (conflict, integrity, ...) is the task's error, unwrapped.
            done = one(*files[0])
            progress.file_done()
            progress.report(final=True)
            self._report_rewrites([done])
            return {"uploaded": 1, "bytes": done["size"], "skipped": 0, "items": [_item_summary(done)]}
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="graphcert-upload") as pool:
            futures = [(relative, pool.submit(one, local, relative)) for local, relative in files]
            for relative, future in futures:
                try:
                    uploaded.append(future.result())
                    progress.file_done()
                except (GraphCertError, OSError) as exc:
                    failed[relative] = str(exc)
        progress.report(final=True)
        self._report_rewrites(uploaded)
        if failed:
            listed = "; ".join(f"{p}: {r}" for p, r in sorted(failed.items())[:20])
            raise GraphCertError(f"{len(failed)} of {len(files)} uploads failed ({len(uploaded)} done): {listed}")
        return {
            "uploaded": len(uploaded),
            "bytes": sum(int(u["size"]) for u in uploaded),
            "skipped": len(skipped),
            "items": [_item_summary(u) for u in uploaded[:1000]],
        }

    def _report_rewrites(self, uploaded: list[dict[str, Any]]) -> None:
        rewritten = [u["remote_path"] for u in uploaded if u.get("verified") == "rewritten_by_sharepoint"]
        if rewritten:
            self.log.info(
                "SharePoint rewrote %d Office document(s) on upload, so their stored size and hash differ from the "
                "local files (accepted with verify='office_aware'; the stored values are in the result): %s",
                len(rewritten),
                ", ".join(rewritten[:20]) + (" ..." if len(rewritten) > 20 else ""),
            )

    def sync(
        self,
        destination: str | Path | Any = None,
        store: DeltaLinkStore | None = None,
        *,
        url: str | SharePointLocation | None = None,
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
        fields: Sequence[str] | str | None = None,
        output_format: ExportFormat | str = "csv",
    ) -> dict[str, Any]:
        export_format = check_export_format(output_format)
        columns = check_fields(fields)
        if not list_name or not list_name.strip():
            raise ConfigurationError(
                "list_name is empty (did a template render to nothing?); give the list's display name or id.",
                field="list_name",
            )
        output = local_argument(output_path, "output_path")
        location = parse_sharepoint_url(site_url, field="site_url")
        site_path = "/".join(p for p in [location.site_path, *location.segments] if p)
        site = self.resolver.site(location.hostname, site_path)
        if site is None:
            raise ConfigurationError(f"No SharePoint site at {site_url}.", field="site_url")
        ensure_writable_dir(output.parent, "output_path")
        self.log.info("Exporting the list '%s' of %s to %s (%s).", list_name, site_url, output, export_format)
        count = export_list(
            self.client, str(site["id"]), list_name, output, fields=columns, output_format=export_format
        )
        self.log.info("Exported %d item(s) of the list '%s' to %s.", count, list_name, output)
        return {"path": str(output_path), "count": count, "format": export_format}

    def find_files(
        self,
        *,
        url: str | SharePointLocation | None = None,
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
        except ItemNotFoundError:
            return []  # not there yet; any other error (connection, site, library) is not "not yet"
        candidates: list[tuple[str, dict[str, Any]]]
        if resolved.is_folder:
            try:
                if recursive:
                    candidates = list(walk_files(self.client, resolved.drive_id, resolved.id))
                else:
                    children = self.client.iter_items(f"drives/{resolved.drive_id}/items/{resolved.id}/children")
                    candidates = [(str(c.get("name")), c) for c in children if "file" in c]
            except GraphNotFoundError:
                return []  # the folder went away between finding it and listing it: nothing there now
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

    # -- after-transfer actions -------------------------------------------------------------------

    def move(
        self,
        *,
        url: str | None = None,
        site_url: str | None = None,
        library: str | None = None,
        path: str = "",
        to_folder: str | None = None,
        new_name: str | None = None,
        conflict_behavior: str = "fail",
        if_match: str | None = None,
    ) -> dict[str, Any]:
        """Move the item at the location into ``to_folder`` (created if missing) and/or rename it.

        ``to_folder`` is a folder path inside the same library ("Archive/2026") or a folder URL in
        it: Graph moves items only within one library. With ``if_match`` (the eTag the job saw),
        an item that changed since is left in place (``ItemChangedError``).
        """
        conflict = check_conflict_behavior(conflict_behavior)
        name = check_new_name(new_name)
        resolved = self.resolve(url=url, site_url=site_url, library=library, path=path)
        if not resolved.path:
            raise ConfigurationError("The location is a library's root, which cannot be moved.", field="url")
        parent_id, parent_path = None, resolved.path.rpartition("/")[0]
        if to_folder is not None:
            parent_path = self._folder_in_library(resolved.drive, to_folder)
            FolderMaker(self.client, resolved.drive_id).ensure(parent_path)
            target = self.resolver.item(resolved.drive, parent_path, field="to_folder")
            if not target.is_folder:
                raise ConfigurationError(f"to_folder '{parent_path}' is a file, not a folder.", field="to_folder")
            parent_id = target.id
        moved = ItemActions(self.client).move(
            resolved.drive_id,
            resolved.id,
            parent_id=parent_id,
            parent_path=parent_path,
            new_name=name,
            conflict=conflict,
            if_match=if_match,
        )
        destination = "/".join(p for p in (moved.parent_path, moved.name) if p)
        self.log.info("Moved %s to %s in %s.", resolved.path, destination, resolved.drive.name)
        return {"from": resolved.path, "to": destination, **moved.as_dict()}

    def _folder_in_library(self, drive: Drive, to_folder: str) -> str:
        if to_folder.strip().lower().startswith(("https://", "http://")):
            target_drive, folder = self.resolver.locate(parse_sharepoint_url(to_folder, field="to_folder"))
            if target_drive.id != drive.id:
                raise ConfigurationError(
                    f"to_folder is in the library '{target_drive.name}', but Graph moves items only within one "
                    f"library ('{drive.name}'); download and upload the file, then delete the original.",
                    field="to_folder",
                )
        else:
            folder = to_folder
        segments = [s for s in folder.replace("\\", "/").split("/") if s]
        try:
            return "/".join(safe_segment(s) for s in segments)
        except UnsafeNameError as exc:
            raise ConfigurationError(f"to_folder '{to_folder}': {exc}.", field="to_folder") from None

    def delete(
        self,
        *,
        url: str | None = None,
        site_url: str | None = None,
        library: str | None = None,
        path: str = "",
        if_match: str | None = None,
        missing_ok: bool = False,
        allow_folder: bool = False,
    ) -> dict[str, Any]:
        """Delete the item at the location (it goes to the site's recycle bin).

        A folder is deleted with everything in it only with ``allow_folder``; with ``if_match`` an
        item that changed since the job saw it is kept (``ItemChangedError``).
        """
        try:
            resolved = self.resolve(url=url, site_url=site_url, library=library, path=path)
        except ItemNotFoundError:
            if not missing_ok:
                raise
            return {"deleted": 0, "path": "/".join(p for p in path.split("/") if p) or url, "item_id": None}
        if not resolved.path:
            raise ConfigurationError("The location is a library's root, which cannot be deleted.", field="url")
        if resolved.is_folder and not allow_folder:
            raise ConfigurationError(
                f"'{resolved.path}' is a folder; deleting it deletes everything in it. Pass allow_folder=True to "
                "mean that.",
                field="allow_folder",
            )
        deleted = ItemActions(self.client).delete(resolved.drive_id, resolved.id, if_match=if_match)
        self.log.info(
            "Deleted %s from %s (to the recycle bin)." if deleted else "%s in %s was already gone.",
            resolved.path,
            resolved.drive.name,
        )
        return {"deleted": int(deleted), "path": resolved.path, "item_id": resolved.id}


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


def _forget(landing: Landing, relatives: Iterable[str]) -> None:
    """Files whose after-download action failed are fetched again (and acted on) by the next run."""
    with landing.held():
        manifest = Manifest(landing.state)
        for relative in relatives:
            manifest.forget(relative)
        save_manifest(manifest)


def _upload_files(
    source: Any, local_path: str | Path | None, include: Sequence[str] | str | None, logger: InfoLogger
) -> tuple[bool, list[tuple[UploadFile, str]], dict[str, str]]:
    """(one file?, the files with their relative paths, what was skipped and why), before anything is sent."""
    if source is not None and local_path is not None:
        raise ConfigurationError("Give source or its old name local_path, not both.", field="source")
    field = "local_path" if local_path is not None or _is_local_argument(source) else "source"
    place = locate(local_path if local_path is not None else source, field)
    file_filter = FileFilter.build(include, None, None)
    if isinstance(place, Path):
        if not place.exists():
            raise ConfigurationError(f"The upload source {place} does not exist.", field=field)
        if place.is_file():
            return True, [(LocalFile(place, field), place.name)], {}
        # Decided before anything is sent: a refused name pair must not leave half an upload behind.
        sources = upload_sources(place, file_filter, logger, field)
        return False, sources.files, sources.skipped
    try:
        info = place.fs.info(place.root)
    except FileNotFoundError:
        raise ConfigurationError(f"The upload source {place.label} does not exist.", field=field) from None
    except OSError as exc:
        raise ConfigurationError(
            f"Cannot read the upload source {place.label} ({exc}); check the location and the credentials of its "
            "connection.",
            field=field,
        ) from None
    if info.get("type") == "file":
        size = info.get("size")
        store_file = StoreFile(place.fs, str(info.get("name", place.root)), place.label, size, field)
        return True, [(store_file, store_file.name)], {}
    sources = store_upload_sources(place.fs, place.root, place.label, file_filter, logger, field)
    return False, sources.files, sources.skipped


def _is_local_argument(value: Any) -> bool:
    return isinstance(value, str | Path) and "://" not in str(value)


def _item_summary(uploaded: dict[str, Any]) -> dict[str, Any]:
    summary = {"remote_path": uploaded["remote_path"], "item_id": uploaded["item_id"]}
    # Only what differs from the usual (verified by hash) so a large upload's XCom stays small.
    if uploaded.get("verified") != "hash":
        summary["verified"] = uploaded.get("verified")
    if "stored_size" in uploaded:
        summary["stored_size"] = uploaded["stored_size"]
        summary["stored_quick_xor_hash"] = uploaded["stored_quick_xor_hash"]
    return summary


def _modified(item: dict[str, Any]) -> datetime:
    return modified_at(item) or datetime.fromtimestamp(0, UTC)
