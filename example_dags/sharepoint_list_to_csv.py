"""Export a SharePoint list to CSV (paged, written atomically), e.g. for a warehouse load."""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import Param, dag

from airflow_provider_graphcert.operators.sharepoint import SharePointListExportOperator

# The day this run is for. Not {{ ds }}: a run triggered without a logical date (the REST API's and
# `airflow dags trigger`'s default in Airflow 3) has none, and "'ds' is undefined" fails the task.
# dag_run.run_after is set on every run.
RUN_DAY = "{{ (dag_run.logical_date or dag_run.run_after) | ds }}"
LISTS = "{{ var.value.get('graphcert_data_dir', '/tmp/graphcert-data') }}/lists"


@dag(
    schedule="@daily",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    params={
        "site_url": Param("https://contoso.sharepoint.com/sites/Finance", type="string"),
        "list_name": Param("Invoices", type="string"),
    },
    tags=["graphcert", "sharepoint"],
)
def sharepoint_list_to_csv() -> None:
    SharePointListExportOperator(
        task_id="export_invoices",
        site_url="{{ params.site_url }}",
        list_name="{{ params.list_name }}",
        fields=["Title", "Customer", "Amount", "Status"],
        output_path=LISTS + "/invoices-" + RUN_DAY + ".csv",
    )


sharepoint_list_to_csv()
