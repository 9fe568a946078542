"""Pull a SharePoint folder into an object store, then archive the sources in SharePoint.

The everyday SharePoint ETL job: each night land the new report files in the data lake, verified
by QuickXorHash and written without a half-written object under a final key, then move exactly
those files to ``Archive/<date>`` so the next run does not see them again. A file someone saved
again while the DAG was pulling it stays in place for the next run (If-Match on its eTag).

The target is a URL: ``file://`` under the Airflow Variable ``graphcert_data_dir`` so the example
runs offline (``make demo``). On a real deployment point it at your store, e.g.
``s3://my-bucket/finance/reports`` or ``ObjectStoragePath("s3://aws_default@my-bucket/finance/reports")``
(the connection after ``s3://`` is the Airflow connection used). The incremental state lives in the
store with the data, so the next run may start on any worker. Lineage: the task emits its target's
asset event only when files landed (docs/object-storage.md). Uses the ``msgraph_cert_default`` connection.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from airflow.sdk import ObjectStoragePath, Param, dag, task

from airflow_provider_graphcert.operators.sharepoint import SharePointDownloadOperator

STORE = "file://{{ var.value.get('graphcert_data_dir', '/tmp/graphcert-data') }}/object-store/finance-reports"


@dag(
    schedule="@daily",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    params={
        "folder_url": Param("https://contoso.sharepoint.com/sites/Finance/Shared Documents/Reports", type="string"),
    },
    tags=["graphcert", "sharepoint", "object-storage"],
)
def sharepoint_to_object_storage() -> None:
    pull = SharePointDownloadOperator(
        task_id="pull_reports",
        url="{{ params.folder_url }}",
        destination=STORE,
        include=["*.csv"],
        require_hash=True,  # a file Graph sends without a hash fails instead of landing unchecked
        # Only files that landed and were verified in this run move; sub-folders are kept.
        after_download={"move_to": "Archive/{{ ds_nodash }}"},
    )

    @task
    def check_the_store(summary: dict[str, Any], store_url: str) -> str:
        # Read back through ObjectStoragePath, as a downstream task on another worker would.
        store = ObjectStoragePath(store_url)
        landed = [p for p in store.rglob("*.csv") if p.is_file()]
        archived = summary["after_download"]
        line = (
            f"{summary['downloaded']} files landed in {store}, {len(landed)} there in all; "
            f"{archived['done']} archived in SharePoint, {len(archived['changed_since'])} left (changed since)"
        )
        print(line)
        return line

    check_the_store(pull.output, STORE)  # type: ignore[arg-type]


sharepoint_to_object_storage()
