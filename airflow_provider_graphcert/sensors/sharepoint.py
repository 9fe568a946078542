"""Wait for a SharePoint file (or any file matching a glob) to appear or change."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.sdk import BaseSensorOperator, Context, PokeReturnValue

from airflow_provider_graphcert.hooks.graph_cert import GraphCertHook
from airflow_provider_graphcert.sharepoint.folder_download import parse_moment

# XCom carries the matches; a bounded list keeps it small.
MAX_REPORTED_MATCHES = 100


class SharePointFileSensor(BaseSensorOperator):
    """Succeeds when the file at ``url`` (or site_url + library + path) exists, or when the folder
    there holds a file matching ``pattern``; with ``modified_after``, only changes after that time
    count. XCom gets the matching files (path, item_id, size, lastModifiedDateTime).
    """

    template_fields: Sequence[str] = ("url", "site_url", "library", "path", "pattern", "modified_after")

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
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.url = url
        self.site_url = site_url
        self.library = library
        self.path = path
        self.pattern = pattern
        self.modified_after = modified_after
        self.recursive = recursive
        self.msgraph_cert_conn_id = msgraph_cert_conn_id

    def poke(self, context: Context) -> PokeReturnValue:
        matches = GraphCertHook(self.msgraph_cert_conn_id).sharepoint.find_files(
            url=self.url,
            site_url=self.site_url,
            library=self.library,
            path=self.path or "",
            pattern=self.pattern,
            modified_after=parse_moment(self.modified_after, "modified_after"),
            recursive=self.recursive,
        )
        if matches:
            self.log.info("Found %d matching file(s), e.g. %s.", len(matches), matches[0]["path"])
        return PokeReturnValue(is_done=bool(matches), xcom_value=matches[:MAX_REPORTED_MATCHES] or None)
