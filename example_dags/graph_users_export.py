"""Scheduled export of users and groups to JSON Lines (streamed page by page, written atomically)."""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import dag

from airflow_provider_graphcert.operators.graph import GraphRequestOperator

# The day this run is for. Not {{ ds }}: a run triggered without a logical date (the REST API's and
# `airflow dags trigger`'s default in Airflow 3) has none, and "'ds' is undefined" fails the task.
# dag_run.run_after is set on every run.
RUN_DAY = "{{ (dag_run.logical_date or dag_run.run_after) | ds }}"
OUT = "{{ var.value.get('graphcert_data_dir', '/tmp/graphcert-data') }}/directory/" + RUN_DAY


@dag(schedule="@daily", start_date=datetime(2026, 1, 1), catchup=False, tags=["graphcert", "graph"])
def graph_users_export() -> None:
    GraphRequestOperator(
        task_id="export_users",
        path="/users",
        query={"$select": "id,displayName,userPrincipalName,mail,accountEnabled", "$top": 999},
        paginate=True,
        output_path=f"{OUT}/users.jsonl",
    )
    GraphRequestOperator(
        task_id="export_groups",
        path="/groups",
        query={"$select": "id,displayName,mail", "$top": 999},
        paginate=True,
        output_path=f"{OUT}/groups.jsonl",
    )


graph_users_export()
