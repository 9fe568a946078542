"""Wait for a SharePoint file (or any file matching a glob) to appear or change."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

from airflow.sdk import BaseSensorOperator, Context, PokeReturnValue, conf

from airflow_provider_graphcert.errors import GraphCertError, GraphNotFoundError
from airflow_provider_graphcert.hooks.graph_cert import GraphCertHook
from airflow_provider_graphcert.operators.base import (
    LOCATION_DOC,
    LOCATION_FIELDS,
    GraphCertTaskMixin,
    SharePointLocationMixin,
    explained_errors,
)
from airflow_provider_graphcert.sharepoint.folder_changes import clean_path
from airflow_provider_graphcert.sharepoint.folder_download import parse_moment
from airflow_provider_graphcert.sharepoint.locations import encode_path
from airflow_provider_graphcert.triggers.sharepoint_file import SharePointFileTrigger

# XCom carries the matches; a bounded list keeps it small.
MAX_REPORTED_MATCHES = 100


class SharePointFileSensor(SharePointLocationMixin, GraphCertTaskMixin, BaseSensorOperator):
    __doc__ = (
        "Succeeds when the file at the location exists, or when the folder there holds a file matching "
        "``pattern``; with ``modified_after``, only changes after that time count. XCom gets the matching "
        "files (path, item_id, size, lastModifiedDateTime).\n\n"
        "    With ``deferrable=True`` (default: Airflow's ``[operators] default_deferrable``) the task checks\n"
        "    once, then frees its worker slot and waits in the triggerer, which polls the library's delta\n"
        "    link every ``poke_interval`` seconds; ``timeout`` and ``soft_fail`` apply as in the other modes.\n"
        + LOCATION_DOC
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
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self._init_location(url, site_url, library, path)
        self._init_hook_arguments(msgraph_cert_conn_id, hook_params)
        self.pattern = pattern
        self.modified_after = modified_after
        self.recursive = recursive
        self.deferrable = deferrable

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

    # -- deferrable mode ------------------------------------------------------------------------

    def execute(self, context: Context) -> Any:
        if not self.deferrable:
            return super().execute(context)
        hook = self.hook
        with explained_errors(self.log):
            drive, drive_path = hook.sharepoint.resolver.drive_for(url=self.location, site_url=None, library=None)
        # The link is taken before the check, so a file landing in between is in the delta feed.
        delta = hook.get_conn().get_json(f"drives/{drive.id}/root/delta", params={"token": "latest"})
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
            item = hook.get_conn().get_json(f"drives/{drive_id}/root:/{encode_path(drive_path)}:")
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
