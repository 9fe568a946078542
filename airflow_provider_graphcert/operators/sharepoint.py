"""Operators for SharePoint document libraries and lists: thin wrappers over GraphCertHook.sharepoint."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from airflow.sdk import Asset, Context

from airflow_provider_graphcert.errors import ConfigurationError
from airflow_provider_graphcert.hooks.graph_cert import VariableDeltaStore
from airflow_provider_graphcert.operators.asset_events import announce_changes
from airflow_provider_graphcert.operators.base import (
    LOCATION_DOC,
    LOCATION_FIELDS,
    GraphCertBaseOperator,
    SharePointLocationMixin,
    explained_errors,
)
from airflow_provider_graphcert.operators.lineage import (
    changes_alias,
    emit_changed_target,
    openlineage_dataset,
    sharepoint_asset_uri,
    target_asset_uri,
)
from airflow_provider_graphcert.sharepoint.after_download import AfterDownload
from airflow_provider_graphcert.sharepoint.folder_download import DEFAULT_MAX_WORKERS
from airflow_provider_graphcert.sharepoint.lists import ExportFormat, check_export_format
from airflow_provider_graphcert.sharepoint.upload import DEFAULT_FRAGMENT_BYTES, check_conflict_behavior
from airflow_provider_graphcert.sharepoint.upload_verify import DEFAULT_VERIFY


class _SharePointOperator(SharePointLocationMixin, GraphCertBaseOperator):
    def __init__(
        self,
        *,
        url: str | None = None,
        site_url: str | None = None,
        library: str | None = None,
        path: str = "",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self._init_location(url, site_url, library, path)


TARGET_DOC = """
    Where files land: ``destination``, a local folder, a URL with a scheme (``file://``, ``s3://``,
    ``abfs://``, ``memory://`` ...) or an ``ObjectStoragePath`` (docs/object-storage.md);
    ``local_dir`` is its old name and still works. ``require_hash=True`` fails the files for which
    Graph sent no QuickXorHash instead of landing them checked by size only.
"""


class _TransferOperator(_SharePointOperator):
    """A SharePoint -> target transfer: lineage, and the target's asset event only when files changed."""

    def __init__(
        self,
        *,
        destination: Any = None,
        local_dir: str | None = None,
        require_hash: bool = False,
        emit_asset_events: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if (destination is None) == (local_dir is None):
            raise ConfigurationError(
                "Give destination (a local folder, an object storage URL or an ObjectStoragePath) or its old "
                "name local_dir, exactly one of them.",
                field="destination",
            )
        self.destination = destination
        self.local_dir = local_dir
        self.require_hash = require_hash
        self.emit_asset_events = emit_asset_events
        if emit_asset_events:
            self.outlets = [*self.outlets, changes_alias(self.dag_id, self.task_id)]
        self._lineage: tuple[Asset, Asset] | None = None

    @property
    def target(self) -> Any:
        return self.destination if self.destination is not None else self.local_dir

    def _target_arguments(self) -> dict[str, Any]:
        if self.destination is not None:
            return {"destination": self.destination}
        return {"local_dir": self.local_dir}

    def _record_lineage(self, context: Context, summary: dict[str, Any]) -> None:
        source = Asset(sharepoint_asset_uri(self.location))
        target = Asset(target_asset_uri(self.target))
        self._lineage = (source, target)
        if self.emit_asset_events and emit_changed_target(
            context, changes_alias(self.dag_id, self.task_id), target, source, summary
        ):
            self.log.info("Asset event for %s (files changed).", target.uri)

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """Inputs: the SharePoint location; outputs: the target (OpenLineage provider, if installed)."""
        from airflow.providers.openlineage.extractors import OperatorLineage

        source, target = self._lineage or (
            Asset(sharepoint_asset_uri(self.location)),
            Asset(target_asset_uri(self.target)),
        )
        return OperatorLineage(inputs=[openlineage_dataset(source.uri)], outputs=[openlineage_dataset(target.uri)])


class SharePointDownloadOperator(_TransferOperator):
    __doc__ = (
        "Download a SharePoint file or folder (recursively) into a local folder or an object store; "
        "incremental by default, so a nightly run transfers only what changed.\n"
        + LOCATION_DOC
        + TARGET_DOC
        + """
    ``after_download``: what to do in SharePoint with the files this run landed and verified:
    ``{"move_to": "Archive/{{ ds_nodash }}"}`` (a folder from the library root, or a folder URL in
    the same library; sub-folders are kept) or ``{"delete": True}``; optional keys
    ``conflict_behavior`` (``fail``, ``replace``, ``rename``) and ``include_unverified``. Each
    action carries If-Match with the eTag seen at download: a file saved again since stays in
    place for the next run.
"""
    )

    template_fields: Sequence[str] = (
        *LOCATION_FIELDS,
        "destination",
        "local_dir",
        "include",
        "exclude",
        "modified_since",
        "require_hash",
        "after_download",
    )

    def __init__(
        self,
        *,
        include: Sequence[str] | str | None = None,
        exclude: Sequence[str] | str | None = None,
        modified_since: str | None = None,
        max_workers: int = DEFAULT_MAX_WORKERS,
        incremental: bool = True,
        after_download: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.include = include
        self.exclude = exclude
        self.modified_since = modified_since
        self.max_workers = max_workers
        self.incremental = incremental
        # The shape is checked when the DAG is parsed (an XComArg only once resolved); again after rendering.
        if after_download is None or isinstance(after_download, Mapping):
            AfterDownload.parse(after_download)
        self.after_download = after_download

    def execute(self, context: Context) -> dict[str, Any]:
        with explained_errors(self.log):
            summary = self.hook.sharepoint.download(
                **self._target_arguments(),
                url=self.location,
                include=self.include,
                exclude=self.exclude,
                modified_since=self.modified_since,
                max_workers=self.max_workers,
                incremental=self.incremental,
                require_hash=self.require_hash,
                after_download=self.after_download,
            )
        self._record_lineage(context, summary)
        return announce_changes(self, context, summary)


class SharePointUploadOperator(_SharePointOperator):
    __doc__ = (
        "Upload a file or folder to a SharePoint folder (created if missing); large files go through "
        "resumable upload sessions. ``source`` is a local path, a URL with a scheme (``s3://...``) or an "
        "ObjectStoragePath (a store prefix uploads as a folder); ``local_path`` is its old name.\n" + LOCATION_DOC
    )

    template_fields: Sequence[str] = (*LOCATION_FIELDS, "source", "local_path", "include")

    def __init__(
        self,
        *,
        source: Any = None,
        local_path: str | None = None,
        conflict_behavior: str = "replace",
        chunk_size: int = DEFAULT_FRAGMENT_BYTES,
        max_workers: int = DEFAULT_MAX_WORKERS,
        include: Sequence[str] | str | None = None,
        verify: str = DEFAULT_VERIFY,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if (source is None) == (local_path is None):
            raise ConfigurationError("Give source (or its old name local_path), exactly one of them.", field="source")
        self.source = source
        self.local_path = local_path
        self.conflict_behavior = conflict_behavior
        self.chunk_size = chunk_size
        self.max_workers = max_workers
        self.include = include
        # "strict" or "office_aware": whether SharePoint's rewrite of Office documents is accepted.
        self.verify = verify

    def execute(self, context: Context) -> dict[str, Any]:
        with explained_errors(self.log):
            return self.hook.sharepoint.upload(
                self.source,
                local_path=self.local_path,
                url=self.location,
                conflict_behavior=self.conflict_behavior,
                chunk_size=self.chunk_size,
                max_workers=self.max_workers,
                include=self.include,
                verify=self.verify,
            )

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """Input: the file, folder or store prefix; output: the SharePoint folder (OpenLineage, if installed)."""
        from airflow.providers.openlineage.extractors import OperatorLineage

        return OperatorLineage(
            inputs=[openlineage_dataset(target_asset_uri(self.source if self.source is not None else self.local_path))],
            outputs=[openlineage_dataset(sharepoint_asset_uri(self.location))],
        )


class SharePointSyncOperator(_TransferOperator):
    __doc__ = (
        "Keep a local folder or an object store in step with a SharePoint folder using drive delta; the "
        "delta link is kept in an Airflow Variable (``state_variable``, default derived from connection, "
        "folder and target).\n" + LOCATION_DOC + TARGET_DOC
    )

    template_fields: Sequence[str] = (
        *LOCATION_FIELDS,
        "destination",
        "local_dir",
        "include",
        "exclude",
        "state_variable",
        "require_hash",
    )

    def __init__(
        self,
        *,
        mirror_deletions: bool = False,
        state_variable: str | None = None,
        include: Sequence[str] | str | None = None,
        exclude: Sequence[str] | str | None = None,
        max_workers: int = DEFAULT_MAX_WORKERS,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.mirror_deletions = mirror_deletions
        self.state_variable = state_variable
        self.include = include
        self.exclude = exclude
        self.max_workers = max_workers

    def execute(self, context: Context) -> dict[str, Any]:
        # The key of a local_dir sync is unchanged from earlier releases, so upgrading keeps its state.
        store = (
            VariableDeltaStore(self.state_variable)
            if self.state_variable
            else VariableDeltaStore.for_folder(self.msgraph_cert_conn_id, f"{self.location_text}|{self.target}")
        )
        with explained_errors(self.log):
            summary = self.hook.sharepoint.sync(
                **self._target_arguments(),
                store=store,
                url=self.location,
                mirror_deletions=self.mirror_deletions,
                include=self.include,
                exclude=self.exclude,
                max_workers=self.max_workers,
                require_hash=self.require_hash,
            )
        self._record_lineage(context, summary)
        return announce_changes(self, context, summary)


class SharePointMoveOperator(_SharePointOperator):
    __doc__ = (
        "Move a SharePoint file or folder into ``to_folder`` (created if missing) and/or rename it to "
        "``new_name``, inside one library (Graph does not move between libraries).\n"
        + LOCATION_DOC
        + """
    :param to_folder: a folder path from the library root (``"Archive/2026"``) or a folder URL in it.
    :param conflict_behavior: ``fail`` (default), ``replace`` or ``rename`` when the name is taken.
    :param if_match: the eTag the pipeline saw (e.g. from the sensor's XCom); a file changed
        since is left in place and the task fails with ``ItemChangedError``.
"""
    )

    template_fields: Sequence[str] = (*LOCATION_FIELDS, "to_folder", "new_name", "if_match")

    def __init__(
        self,
        *,
        to_folder: str | None = None,
        new_name: str | None = None,
        conflict_behavior: str = "fail",
        if_match: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if to_folder is None and new_name is None:
            raise ConfigurationError("Give to_folder, new_name, or both.", field="to_folder")
        self.to_folder = to_folder
        self.new_name = new_name
        self.conflict_behavior = check_conflict_behavior(conflict_behavior)
        self.if_match = if_match

    def execute(self, context: Context) -> dict[str, Any]:
        with explained_errors(self.log):
            return self.hook.sharepoint.move(
                url=self.url,
                site_url=self.site_url,
                library=self.library,
                path=self.path,
                to_folder=self.to_folder,
                new_name=self.new_name,
                conflict_behavior=self.conflict_behavior,
                if_match=self.if_match or None,
            )


class SharePointDeleteOperator(_SharePointOperator):
    __doc__ = (
        "Delete a SharePoint file (to the site's recycle bin); a folder only with ``allow_folder=True``.\n"
        + LOCATION_DOC
        + """
    :param if_match: the eTag the pipeline saw; a file changed since is kept (``ItemChangedError``).
    :param missing_ok: succeed when the item is already gone.
"""
    )

    template_fields: Sequence[str] = (*LOCATION_FIELDS, "if_match")

    def __init__(
        self,
        *,
        if_match: str | None = None,
        missing_ok: bool = False,
        allow_folder: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.if_match = if_match
        self.missing_ok = missing_ok
        self.allow_folder = allow_folder

    def execute(self, context: Context) -> dict[str, Any]:
        with explained_errors(self.log):
            return self.hook.sharepoint.delete(
                url=self.url,
                site_url=self.site_url,
                library=self.library,
                path=self.path,
                if_match=self.if_match or None,
                missing_ok=self.missing_ok,
                allow_folder=self.allow_folder,
            )


class SharePointListExportOperator(GraphCertBaseOperator):
    """Export every item of a SharePoint list (chosen ``fields`` or all) to CSV or JSON Lines.

    :param output_format: ``csv`` (default) or ``jsonl`` (JSON Lines, one item per line).
    """

    template_fields: Sequence[str] = ("site_url", "list_name", "output_path", "fields")

    def __init__(
        self,
        *,
        site_url: str,
        list_name: str,
        output_path: str,
        fields: Sequence[str] | None = None,
        output_format: str = "csv",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        # Checked when the DAG is parsed, not after a night's export landed in the wrong format.
        self.output_format: ExportFormat = check_export_format(output_format)
        self.site_url = site_url
        self.list_name = list_name
        self.output_path = output_path
        self.fields = fields

    def execute(self, context: Context) -> dict[str, Any]:
        with explained_errors(self.log):
            return self.hook.sharepoint.export_list(
                self.site_url,
                self.list_name,
                self.output_path,
                fields=self.fields,
                output_format=self.output_format,
            )
