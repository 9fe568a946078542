"""The deferrable SharePointFileSensor's trigger: waits in the triggerer, polling drive delta."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_graphcert.errors import GraphCertError, GraphRequestError
from airflow_provider_graphcert.graph.async_client import AsyncGraphClient
from airflow_provider_graphcert.sharepoint.folder_changes import (
    MAX_REPORTED_FILES,
    latest_delta_link,
    list_files,
    matches_pattern,
    read_delta,
    select_matches,
)
from airflow_provider_graphcert.sharepoint.folder_download import parse_moment
from airflow_provider_graphcert.triggers.connection import trigger_graph


class SharePointFileTrigger(BaseTrigger):
    """Fires once a file matching the sensor's rule is in the folder.

    Each poll reads the drive's delta link: one small request when nothing changed anywhere in the
    library. Only when a file that could match changed does it list the folder to confirm. The delta
    link given at deferral never changes in ``serialize()``, so a restarted triggerer replays every
    change since the deferral and misses none; an expired link (410) falls back to one listing.

    :param drive_id: the library's drive id.
    :param folder: the folder's path inside the library ("" for the root).
    :param pattern: glob on file names (or on paths below the folder when it has a slash).
    :param file_name: an exact name instead of a pattern (the sensor waits for one file).
    :param modified_after: ISO-8601 moment; only files modified after it count.
    :param delta_link: where to start reading changes (taken before the sensor's last check).
    """

    def __init__(
        self,
        *,
        msgraph_cert_conn_id: str,
        drive_id: str,
        folder: str,
        delta_link: str,
        pattern: str | None = None,
        file_name: str | None = None,
        recursive: bool = False,
        modified_after: str | None = None,
        poll_interval: float = 60.0,
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # Airflow's BaseTrigger is untyped
        self.msgraph_cert_conn_id = msgraph_cert_conn_id
        self.drive_id = drive_id
        self.folder = folder
        self.delta_link = delta_link
        self.pattern = pattern
        self.file_name = file_name
        self.recursive = recursive
        self.modified_after = modified_after
        self.poll_interval = poll_interval

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "msgraph_cert_conn_id": self.msgraph_cert_conn_id,
                "drive_id": self.drive_id,
                "folder": self.folder,
                "delta_link": self.delta_link,
                "pattern": self.pattern,
                "file_name": self.file_name,
                "recursive": self.recursive,
                "modified_after": self.modified_after,
                "poll_interval": self.poll_interval,
            },
        )

    def could_match(self, item: dict[str, Any]) -> bool:
        """Whether a changed item is worth a listing (its name fits; path patterns always are)."""
        if "file" not in item:
            return False
        name = str(item.get("name") or "")
        if self.file_name is not None:
            return name.casefold() == self.file_name.rsplit("/", 1)[-1].casefold()
        return bool(self.pattern and "/" in self.pattern) or matches_pattern(name, self.pattern)

    async def _read_changes(self, client: AsyncGraphClient, link: str) -> tuple[bool, str]:
        """Whether anything that could match changed since ``link``, and the link to read next."""
        candidates: list[bool] = []
        new_link = await read_delta(client, link, lambda item: candidates.append(self.could_match(item)))
        return any(candidates), new_link

    async def run(self) -> AsyncIterator[TriggerEvent]:
        try:
            graph = await trigger_graph(self.msgraph_cert_conn_id)
            modified_after = parse_moment(self.modified_after, "modified_after")
            async with graph.async_client() as client:
                link = self.delta_link
                while True:
                    try:
                        changed, link = await self._read_changes(client, link)
                    except GraphRequestError as exc:
                        if exc.status != 410:
                            raise
                        self.log.warning("The delta link expired (410); checking the folder once and starting over.")
                        link = await latest_delta_link(client, self.drive_id)
                        changed = True
                    if changed:
                        files = await list_files(client, self.drive_id, self.folder, recursive=self.recursive)
                        matches = list(
                            select_matches(
                                files, pattern=self.pattern, file_name=self.file_name, modified_after=modified_after
                            )
                        )
                        if matches:
                            self.log.info("Found %d matching file(s), e.g. %s.", len(matches), matches[0]["path"])
                            yield TriggerEvent(  # type: ignore[no-untyped-call]
                                {"status": "success", "matches": matches[:MAX_REPORTED_FILES], "count": len(matches)}
                            )
                            return
                    await asyncio.sleep(self.poll_interval)
        except GraphCertError as exc:
            yield TriggerEvent({"status": "error", "message": str(exc)})  # type: ignore[no-untyped-call]
