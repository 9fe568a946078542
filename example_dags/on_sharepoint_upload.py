"""Run when files land in a SharePoint folder: event-driven scheduling with an AssetWatcher.

The triggerer watches the folder through drive delta (one small request per poll while nothing
changes) and emits one asset event per batch of changes; this DAG runs for it and pulls the new
and changed files. Nothing holds a worker slot while waiting. Set the folder with the
environment variable GRAPHCERT_WATCH_URL (read when the DAG file is parsed: a watcher's
arguments are fixed, not templated) and the landing directory with the Airflow Variable
`graphcert_data_dir`. Uses the `msgraph_cert_default` connection.
"""

from __future__ import annotations

import os
import tempfile
from typing import Any

from airflow.sdk import Asset, AssetWatcher, Variable, dag, task

from airflow_provider_graphcert.hooks.graph_cert import GraphCertHook
from airflow_provider_graphcert.triggers.sharepoint_watch import SharePointFolderWatchTrigger

WATCHED_FOLDER = os.environ.get(
    "GRAPHCERT_WATCH_URL", "https://contoso.sharepoint.com/sites/Finance/Shared Documents/Inbox"
)
DEFAULT_DATA_DIR = os.path.join(tempfile.gettempdir(), "graphcert-data")
POLL_SECONDS = float(os.environ.get("GRAPHCERT_WATCH_POLL_SECONDS", "60"))

INBOX_UPLOADS = Asset(
    "sharepoint-inbox-uploads",
    watchers=[
        AssetWatcher(
            name="sharepoint_inbox_watcher",
            trigger=SharePointFolderWatchTrigger(url=WATCHED_FOLDER, pattern="*.csv", poll_interval=POLL_SECONDS),
        )
    ],
)


@dag(schedule=[INBOX_UPLOADS], catchup=False, tags=["graphcert", "sharepoint", "event-driven"])
def on_sharepoint_upload() -> None:
    @task
    def pull_changed_files(*, triggering_asset_events: Any = None) -> dict[str, Any]:
        """Download what the events say was created or modified; list what was deleted."""
        changes: list[dict[str, Any]] = []
        for event in triggering_asset_events[INBOX_UPLOADS]:
            changes.extend(event.extra["payload"]["changes"])
        wanted = sorted({c["path"] for c in changes if c["change"] in ("created", "modified", "moved")})
        deleted = sorted({c["path"] for c in changes if c["change"] == "deleted"})
        landing = f"{Variable.get('graphcert_data_dir', default=DEFAULT_DATA_DIR)}/uploads"
        sharepoint = GraphCertHook().sharepoint
        for path in wanted:
            sharepoint.download(landing, url=f"{WATCHED_FOLDER}/{path}")
        print(f"{len(changes)} change(s): pulled {wanted}, deleted upstream {deleted}")
        return {"pulled": wanted, "deleted": deleted, "events": len(triggering_asset_events[INBOX_UPLOADS])}

    pull_changed_files()


on_sharepoint_upload()
