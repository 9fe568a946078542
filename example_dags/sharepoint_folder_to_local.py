"""Nightly incremental pull of a SharePoint folder (the headline job).

Drive delta tells what changed since the last run (the delta link lives in an Airflow Variable),
so each night moves only new and changed files; deletions are mirrored. Set the folder in the
`folder_url` param (copy it from the browser) and the landing directory in the Airflow Variable
`graphcert_data_dir`. Uses the `msgraph_cert_default` connection. DAGs scheduled on
`Asset("file://<data dir>/reports")` run after the nights that changed something.
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import Param, dag, task

from airflow_provider_graphcert.operators.sharepoint import SharePointSyncOperator


@dag(
    schedule="@daily",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,  # one sync at a time: the next run continues from the delta link this one saves
    params={
        "folder_url": Param("https://contoso.sharepoint.com/sites/Finance/Shared Documents/Reports", type="string")
    },
    tags=["graphcert", "sharepoint"],
)
def sharepoint_folder_to_local() -> None:
    pull = SharePointSyncOperator(
        task_id="pull_reports",
        url="{{ params.folder_url }}",
        local_dir="{{ var.value.get('graphcert_data_dir', '/tmp/graphcert-data') }}/reports",
        include=["*.csv", "*.txt"],
        mirror_deletions=True,
        # No outlets needed: on nights that change files the task emits the asset event of its target
        # (file://<data dir>/reports), and on quiet nights none (docs/object-storage.md, "Lineage").
    )

    @task
    def report(summary: dict[str, object]) -> str:
        line = (
            f"{summary['downloaded']} files pulled, {summary['deleted']} deleted, {summary['unchanged']} unchanged, "
            f"{summary['bytes']} bytes (full pass: {summary['full_pass']})"
        )
        print(line)
        return line

    report(pull.output)  # type: ignore[arg-type]


sharepoint_folder_to_local()
