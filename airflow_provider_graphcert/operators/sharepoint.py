"""Operators for SharePoint document libraries and lists: thin wrappers over GraphCertHook.sharepoint."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.sdk import Context

from airflow_provider_graphcert.hooks.graph_cert import VariableDeltaStore
from airflow_provider_graphcert.operators.asset_events import announce_changes
from airflow_provider_graphcert.operators.base import (
    LOCATION_DOC,
    LOCATION_FIELDS,
    GraphCertBaseOperator,
    SharePointLocationMixin,
    explained_errors,
)
from airflow_provider_graphcert.sharepoint.folder_download import DEFAULT_MAX_WORKERS
from airflow_provider_graphcert.sharepoint.lists import ExportFormat, check_export_format
from airflow_provider_graphcert.sharepoint.upload import DEFAULT_FRAGMENT_BYTES
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


class SharePointDownloadOperator(_SharePointOperator):
    __doc__ = (
        "Download a SharePoint file or folder (recursively) to ``local_dir``; incremental by default, so a "
        "nightly run transfers only what changed.\n" + LOCATION_DOC
    )

    template_fields: Sequence[str] = (*LOCATION_FIELDS, "local_dir", "include", "exclude", "modified_since")

    def __init__(
        self,
        *,
        local_dir: str,
        include: Sequence[str] | str | None = None,
        exclude: Sequence[str] | str | None = None,
        modified_since: str | None = None,
        max_workers: int = DEFAULT_MAX_WORKERS,
        incremental: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.local_dir = local_dir
        self.include = include
        self.exclude = exclude
        self.modified_since = modified_since
        self.max_workers = max_workers
        self.incremental = incremental

    def execute(self, context: Context) -> dict[str, Any]:
        with explained_errors(self.log):
            summary = self.hook.sharepoint.download(
                self.local_dir,
                url=self.location,
                include=self.include,
                exclude=self.exclude,
                modified_since=self.modified_since,
                max_workers=self.max_workers,
                incremental=self.incremental,
            )
        return announce_changes(self, context, summary)


class SharePointUploadOperator(_SharePointOperator):
    __doc__ = (
        "Upload a local file or folder to a SharePoint folder (created if missing); large files go through "
        "resumable upload sessions.\n" + LOCATION_DOC
    )

    template_fields: Sequence[str] = (*LOCATION_FIELDS, "local_path", "include")

    def __init__(
        self,
        *,
        local_path: str,
        conflict_behavior: str = "replace",
        chunk_size: int = DEFAULT_FRAGMENT_BYTES,
        max_workers: int = DEFAULT_MAX_WORKERS,
        include: Sequence[str] | str | None = None,
        verify: str = DEFAULT_VERIFY,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
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
                self.local_path,
                url=self.location,
                conflict_behavior=self.conflict_behavior,
                chunk_size=self.chunk_size,
                max_workers=self.max_workers,
                include=self.include,
                verify=self.verify,
            )


class SharePointSyncOperator(_SharePointOperator):
    __doc__ = (
        "Keep ``local_dir`` in step with a SharePoint folder using drive delta; the delta link is kept in "
        "an Airflow Variable (``state_variable``, default derived from connection and folder).\n" + LOCATION_DOC
    )

    template_fields: Sequence[str] = (*LOCATION_FIELDS, "local_dir", "include", "exclude", "state_variable")

    def __init__(
        self,
        *,
        local_dir: str,
        mirror_deletions: bool = False,
        state_variable: str | None = None,
        include: Sequence[str] | str | None = None,
        exclude: Sequence[str] | str | None = None,
        max_workers: int = DEFAULT_MAX_WORKERS,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.local_dir = local_dir
        self.mirror_deletions = mirror_deletions
        self.state_variable = state_variable
        self.include = include
        self.exclude = exclude
        self.max_workers = max_workers

    def execute(self, context: Context) -> dict[str, Any]:
        store = (
            VariableDeltaStore(self.state_variable)
            if self.state_variable
            else VariableDeltaStore.for_folder(self.msgraph_cert_conn_id, f"{self.location_text}|{self.local_dir}")
        )
        with explained_errors(self.log):
            summary = self.hook.sharepoint.sync(
                self.local_dir,
                store,
                url=self.location,
                mirror_deletions=self.mirror_deletions,
                include=self.include,
                exclude=self.exclude,
                max_workers=self.max_workers,
            )
        return announce_changes(self, context, summary)


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
