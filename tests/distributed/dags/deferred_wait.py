"""A sensor that waits in the triggerer for a SharePoint file, then hands its matches on."""

from __future__ import annotations

import os

from airflow.sdk import dag, task

from airflow_provider_graphcert.sensors.sharepoint import SharePointFileSensor

INBOX = os.environ["GRAPHCERT_WATCH_URL"]


@dag(schedule=None, catchup=False, tags=["graphcert-distributed"])
def deferred_wait() -> None:
    arrived = SharePointFileSensor(
        task_id="wait_for_approval",
        url=INBOX,
        pattern="{{ dag_run.conf.get('pattern', 'approved-*.csv') }}",
        deferrable=True,
        poke_interval=2,
        timeout=600,
    )

    @task
    def hand_on(matches: list[dict[str, object]]) -> list[str]:
        return [str(match["path"]) for match in matches]

    hand_on(arrived.output)  # type: ignore[arg-type]


deferred_wait()
