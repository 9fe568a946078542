"""An event trigger for Airflow's AssetWatcher: a DAG runs when files change in a SharePoint folder."""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseEventTrigger, TriggerEvent

from airflow_provider_graphcert.errors import GraphRequestError
from airflow_provider_graphcert.graph.async_client import AsyncGraphClient
from airflow_provider_graphcert.sharepoint.folder_changes import (
    MAX_REPORTED_FILES,
    DriveTree,
    KnownFiles,
    clean_path,
    diff_files,
    known_from,
    read_delta,
    root_delta,
)


class SharePointFolderWatchTrigger(BaseEventTrigger):
    """Emits one event per batch of changes to the files of a SharePoint folder.

    Give the folder as ``url`` (copied from the browser) or as ``site_url`` + ``library`` + ``path``;
    ``pattern`` narrows it to matching names (or paths below the folder when it has a slash). Every
    ``poll_interval`` seconds it reads the drive's delta link; when files in the folder were created,
    modified, moved or deleted, it yields one TriggerEvent whose payload lists them (``changes``: path,
    item_id, size, eTag, lastModifiedDateTime and ``change``) -- the asset event's
    ``extra["payload"]`` in the DAG that the watcher schedules.

    The files last reported are kept in the asset's state store when Airflow provides one, so a
    restarted triggerer (and a 410 from an expired delta link) re-reads the folder and reports the
    difference: nothing lost, nothing reported twice. Files already there at the first start are the
    baseline, not a change.
    """

    def __init__(
        self,
        *,
        msgraph_cert_conn_id: str = "msgraph_cert_default",
        url: str | None = None,
        site_url: str | None = None,
        library: str | None = None,
        path: str = "",
        pattern: str | None = None,
        recursive: bool = True,
        poll_interval: float = 60.0,
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # Airflow's BaseTrigger is untyped
        self.msgraph_cert_conn_id = msgraph_cert_conn_id
        self.url = url
        self.site_url = site_url
        self.library = library
        self.path = path
        self.pattern = pattern
        self.recursive = recursive
        self.poll_interval = poll_interval
        self._memory: KnownFiles | None = None

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "msgraph_cert_conn_id": self.msgraph_cert_conn_id,
                "url": self.url,
                "site_url": self.site_url,
                "library": self.library,
                "path": self.path,
                "pattern": self.pattern,
                "recursive": self.recursive,
                "poll_interval": self.poll_interval,
            },
        )

    @property
    def state_key(self) -> str:
        """One state entry per watch (several watchers may share an asset)."""
        _, kwargs = self.serialize()
        kwargs.pop("poll_interval")
        digest = hashlib.sha256(json.dumps(kwargs, sort_keys=True).encode()).hexdigest()[:16]
        return f"graphcert_watch_{digest}"

    # -- what was last reported ---------------------------------------------------------------

    async def load_known(self) -> KnownFiles | None:
        store = self.asset_state_store
        if store is not None:
            try:
                value = await store.aget(self.state_key)
            except ValueError:  # more than one asset watched: no single place to keep it
                value = None
            if isinstance(value, dict):
                return {str(k): [str(v[0]), str(v[1])] for k, v in value.items() if isinstance(v, list) and len(v) == 2}
        return self._memory

    async def save_known(self, known: KnownFiles) -> None:
        self._memory = known
        store = self.asset_state_store
        if store is not None:
            try:
                await store.aset(self.state_key, {key: list[Any](value) for key, value in known.items()})
            except ValueError:
                self.log.warning("This watcher feeds several assets; what it reported is kept in memory only.")

    # -- the loop -----------------------------------------------------------------------------

    async def run(self) -> AsyncIterator[TriggerEvent]:
        from airflow_provider_graphcert.triggers.connection import trigger_graph

        graph = await trigger_graph(self.msgraph_cert_conn_id)
        drive, folder = await graph.locate(url=self.url, site_url=self.site_url, library=self.library)
        folder = clean_path(f"{folder}/{self.path}" if not self.url else folder)
        self.log.info("Watching '%s' in library '%s' through drive delta.", folder or "/", drive.name)
        known = await self.load_known()
        async with graph.async_client() as client:
            tree = DriveTree()
            link: str | None = None
            while True:
                link, tree = await self._read(client, drive.id, link, tree)
                current = await asyncio.to_thread(
                    tree.files_under, folder, pattern=self.pattern, recursive=self.recursive
                )
                if known is None:
                    self.log.info("Baseline: %d file(s) in the folder; reporting changes from now on.", len(current))
                    known = known_from(current)
                    await self.save_known(known)
                else:
                    changes = diff_files(known, current)
                    if changes:
                        self.log.info("%d change(s) in the folder, e.g. %s %s.", len(changes), *_first(changes))
                        yield TriggerEvent(  # type: ignore[no-untyped-call]
                            {
                                "folder": folder,
                                "drive_id": drive.id,
                                "changes": changes[:MAX_REPORTED_FILES],
                                "count": len(changes),
                            }
                        )
                        # After the yield: a triggerer killed in between reports the batch again
                        # rather than never (at least once across crashes; exact otherwise).
                        known = known_from(current)
                        await self.save_known(known)
                await asyncio.sleep(self.poll_interval)

    async def _read(
        self, client: AsyncGraphClient, drive_id: str, link: str | None, tree: DriveTree
    ) -> tuple[str, DriveTree]:
        """Advance ``tree`` along the delta link; a missing or expired (410) link re-reads the whole drive."""
        if link is not None:
            try:
                return await read_delta(client, link, tree.apply), tree
            except GraphRequestError as exc:
                if exc.status != 410:
                    raise
                self.log.warning("The delta link expired (410 %s); re-reading the drive to resync.", exc.code)
        fresh = DriveTree()
        return await read_delta(client, root_delta(drive_id), fresh.apply), fresh


def _first(changes: list[dict[str, Any]]) -> tuple[str, str]:
    return str(changes[0]["change"]), str(changes[0]["path"])
