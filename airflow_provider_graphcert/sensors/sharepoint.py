"""Wait for a SharePoint file (or any file matching a glob) to appear or change."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from airflow.sdk import BaseSensorOperator, Context, PokeReturnValue

from airflow_provider_graphcert.hooks.graph_cert import GraphCertHook
from airflow_provider_graphcert.operators.base import (
    LOCATION_DOC,
    LOCATION_FIELDS,
    GraphCertTaskMixin,
    SharePointLocationMixin,
    explained_errors,
)
from airflow_provider_graphcert.sharepoint.folder_download import parse_moment

# XCom carries the matches; a bounded list keeps it small.
MAX_REPORTED_MATCHES = 100


class SharePointFileSensor(SharePointLocationMixin, GraphCertTaskMixin, BaseSensorOperator):
    __doc__ = (
        "Succeeds when the file at the location exists, or when the folder there holds a file matching "
        "``pattern``; with ``modified_after``, only changes after that time count. XCom gets the matching "
        "files (path, item_id, size, lastModifiedDateTime).\n" + LOCATION_DOC
    )

    template_fields: Sequence[str] = (*LOCATION_FIELDS, "pattern", "modified_after")

    def __init__(
        self,
        *,
        url: str | None = None,
        site_url: str | None = None,
        library: str | None = None,
        path: str = "",
        pattern: str | None = None,
        modified_after: str | None = None,
        recursive: bool = False,
        msgraph_cert_conn_id: str = GraphCertHook.default_conn_name,
        hook_params: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self._init_location(url, site_url, library, path)
        self._init_hook_arguments(msgraph_cert_conn_id, hook_params)
        self.pattern = pattern
        self.modified_after = modified_after
        self.recursive = recursive

    def poke(self, context: Context) -> PokeReturnValue:
        with explained_errors(self.log):
            matches = self.hook.sharepoint.find_files(
                url=self.location,
                pattern=self.pattern,
                modified_after=parse_moment(self.modified_after, "modified_after"),
                recursive=self.recursive,
            )
        self._log_poke(matches)
        return PokeReturnValue(is_done=bool(matches), xcom_value=matches[:MAX_REPORTED_MATCHES] or None)

    def _log_poke(self, matches: list[dict[str, Any]]) -> None:
        """Say what this poke looked for and what it found, also when it found nothing."""
        if matches:
            found = matches[0]["path"]
            self.log.info("Found %d matching file(s) at %s, e.g. %s.", len(matches), self.location_text, found)
            return
        wanted = f"files matching '{self.pattern}'" if self.pattern else "the file"
        if self.recursive:
            wanted += " (subfolders included)"
        if self.modified_after:
            wanted += f" changed after {self.modified_after}"
        self.log.info("Looked for %s at %s: none yet.", wanted, self.location_text)
