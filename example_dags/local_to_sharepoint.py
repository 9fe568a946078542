"""Push a day's output files to SharePoint; large files go through resumable upload sessions.

The first task stands in for your pipeline and writes the day's files (one large enough to need an
upload session); the upload lands them in `Outbox/<day>` of the library in `outbox_url`.
"""

from __future__ import annotations

import csv
from datetime import datetime
from pathlib import Path

from airflow.sdk import Param, dag, task

from airflow_provider_graphcert.operators.sharepoint import SharePointUploadOperator

DATA_DIR = "{{ var.value.get('graphcert_data_dir', '/tmp/graphcert-data') }}"

# The day this run is for. Not {{ ds }}: a run triggered without a logical date (the REST API's and
# `airflow dags trigger`'s default in Airflow 3) has none, and "'ds' is undefined" fails the task.
# dag_run.run_after is set on every run.
RUN_DAY = "{{ (dag_run.logical_date or dag_run.run_after) | ds }}"


@dag(
    schedule="@daily",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    params={"outbox_url": Param("https://contoso.sharepoint.com/sites/Finance/Shared Documents/Outbox", type="string")},
    tags=["graphcert", "sharepoint"],
)
def local_to_sharepoint() -> None:
    @task
    def produce_daily_output(data_dir: str, day: str) -> str:
        out = Path(data_dir) / "outbox" / day
        out.mkdir(parents=True, exist_ok=True)
        with (out / "summary.csv").open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["region", "amount"])
            writer.writerows([["North", 10], ["South", 20], ["East", 30]])
        # 6 MiB: above the 4 MiB single-request limit, so it travels in an upload session.
        (out / "detail.bin").write_bytes(bytes(range(256)) * (6 * 4096))
        return str(out)

    produced = produce_daily_output(DATA_DIR, RUN_DAY)
    upload = SharePointUploadOperator(
        task_id="upload_outbox",
        local_path="{{ ti.xcom_pull(task_ids='produce_daily_output') }}",
        url="{{ params.outbox_url }}/" + RUN_DAY,
        conflict_behavior="replace",
    )
    produced >> upload


local_to_sharepoint()
