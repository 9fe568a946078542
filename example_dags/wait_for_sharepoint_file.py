"""Wait for the day's file to arrive in a SharePoint folder, pull it, then process it."""

from __future__ import annotations

import csv
from datetime import datetime
from pathlib import Path

from airflow.sdk import Param, dag, task

from airflow_provider_graphcert.operators.sharepoint import SharePointDownloadOperator
from airflow_provider_graphcert.sensors.sharepoint import SharePointFileSensor

LANDING = "{{ var.value.get('graphcert_data_dir', '/tmp/graphcert-data') }}/inbox"

# The day this run is for. Not {{ ds }}: a run triggered without a logical date (the REST API's and
# `airflow dags trigger`'s default in Airflow 3) has none, and "'ds' is undefined" fails the task.
# dag_run.run_after is set on every run.
RUN_DAY = "{{ (dag_run.logical_date or dag_run.run_after) | ds }}"


@dag(
    schedule="@daily",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    params={"inbox_url": Param("https://contoso.sharepoint.com/sites/Finance/Shared Documents/Inbox", type="string")},
    tags=["graphcert", "sharepoint"],
)
def wait_for_sharepoint_file() -> None:
    arrived = SharePointFileSensor(
        task_id="wait_for_daily_file",
        url="{{ params.inbox_url }}",
        pattern="daily-" + RUN_DAY + ".csv",
        poke_interval=60,
        timeout=6 * 3600,
        mode="reschedule",
    )
    pull = SharePointDownloadOperator(
        task_id="pull_daily_file",
        url="{{ params.inbox_url }}/daily-" + RUN_DAY + ".csv",
        local_dir=LANDING,
    )

    @task
    def total_amount(summary: dict[str, object]) -> float:
        target = Path(str(summary["target"]))
        files = [str(name) for name in summary["files"]] or [p.name for p in target.glob("daily-*.csv")]  # type: ignore[attr-defined]
        total = 0.0
        for name in files:
            with (target / name).open(newline="") as handle:
                total += sum(float(row["amount"]) for row in csv.DictReader(handle))
        print(f"total amount: {total}")
        return total

    arrived >> pull
    total_amount(pull.output)  # type: ignore[arg-type]


wait_for_sharepoint_file()
