"""Wait for a SharePoint file (or any file matching a glob) to appear or change."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from airflow.sdk import BaseSensorOperator, Context, PokeReturnValue, conf

from airflow_provider_graphcert.errors import GraphCertError, GraphNotFoundError
from airflow_provider_graphcert.hooks.graph_cert import GraphCertHook
from airflow_provider_graphcert.sharepoint.folder_changes import clean_path
from airflow_provider_graphcert.sharepoint.folder_download import parse_moment
from airflow_provider_graphcert.sharepoint.locations import encode_path
from airflow_provider_graphcert.triggers.sharepoint_file import SharePointFileTrigger

# XCom carries the matches; a bounded list keeps it small.
MAX_REPORTED_MATCHES = 100


class SharePointFileSensor(BaseSensorOperator):
    """Succeeds when the file at ``url`` (or site_url + library + path) exists, or when the folder
    there holds a file matching ``pattern``; with ``modified_after``, only changes after that time
    count. XCom gets the matching files (path, item_id, size, lastModifiedDateTime).

    With ``deferrable=True`` (default: Airflow's ``[operators] default_deferrable``) the task checks
    once, then frees its worker slot and waits in the triggerer, which polls the library's delta
    link every ``poke_interval`` seconds; ``timeout`` and ``soft_fail`` apply as in the other modes.
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
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
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
        self.deferrable = deferrable

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

    # -- deferrable mode ------------------------------------------------------------------------

    def execute(self, context: Context) -> Any:
        if not self.deferrable:
            return super().execute(context)
        hook = GraphCertHook(self.msgraph_cert_conn_id)
        drive, drive_path = hook.sharepoint.resolver.drive_for(
            url=self.url, site_url=self.site_url, library=self.library
        )
        if not self.url:
            drive_path = f"{drive_path}/{self.path or ''}"
        # The link is taken before the check, so a file landing in between is in the delta feed.
        delta = hook.client.get_json(f"drives/{drive.id}/root/delta", params={"token": "latest"})
        delta_link = delta.get("@odata.deltaLink") if isinstance(delta, dict) else None
        if not isinstance(delta_link, str):
            raise GraphCertError("Graph answered a delta request for token=latest without an @odata.deltaLink.")
        found = self.poke(context)
        if found.is_done:
            return found.xcom_value
        folder, pattern, file_name = self._watch_rule(hook, drive.id, clean_path(drive_path))
        self.log.info("Nothing yet; deferring to the triggerer (polls every %s s).", self.poke_interval)
        self.defer(
            trigger=SharePointFileTrigger(
                msgraph_cert_conn_id=self.msgraph_cert_conn_id,
                drive_id=drive.id,
                folder=folder,
                delta_link=delta_link,
                pattern=pattern,
                file_name=file_name,
                recursive=self.recursive,
                modified_after=self.modified_after,
                poll_interval=float(self.poke_interval),
            ),
            method_name="execute_complete",
            timeout=timedelta(seconds=float(self.timeout)),
        )

    def _watch_rule(self, hook: GraphCertHook, drive_id: str, drive_path: str) -> tuple[str, str | None, str | None]:
        """(folder to watch, pattern, exact file name): a folder with the pattern, or a file's parent and name."""
        if not drive_path:
            return "", self.pattern, None
        try:
            item = hook.client.get_json(f"drives/{drive_id}/root:/{encode_path(drive_path)}:")
        except GraphNotFoundError:
            item = {}
        if isinstance(item, dict) and "folder" in item:
            return drive_path, self.pattern, None
        parent, _, name = drive_path.rpartition("/")
        return parent, None, name

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> Any:
        if not event or event.get("status") != "success":
            message = (event or {}).get("message", "the trigger ended without an event")
            raise GraphCertError(f"Waiting for the SharePoint file failed: {message}")
        matches = event.get("matches") or []
        self.log.info("Found %d matching file(s), e.g. %s.", int(event.get("count", len(matches))), matches[0]["path"])
        return matches
