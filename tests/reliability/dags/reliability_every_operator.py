"""Every operator and the sensor of the provider, each as its own task, for the secrets scan.

Paths come from RELIABILITY_DATA_DIR; the connections (msgraph_cert_default with an encrypted
inline PEM and its password, msgraph_cert_pfx with an inline PFX and its password) are
AIRFLOW_CONN_* variables set by the test. One task fails on purpose, after authenticating, so that
an exception message is scanned too.
"""

from __future__ import annotations

import os
from datetime import datetime

from airflow.sdk import DAG

from airflow_provider_graphcert.operators.graph import GraphRequestOperator
from airflow_provider_graphcert.operators.sharepoint import (
    SharePointDownloadOperator,
    SharePointListExportOperator,
    SharePointSyncOperator,
    SharePointUploadOperator,
)
from airflow_provider_graphcert.sensors.sharepoint import SharePointFileSensor

DATA = os.environ.get("RELIABILITY_DATA_DIR", "/tmp/graphcert-reliability")
SITE = "https://contoso.sharepoint.com/sites/Finance"
FOLDER = f"{SITE}/Shared Documents/Exports"

with DAG("reliability_every_operator", schedule=None, start_date=datetime(2026, 1, 1), catchup=False):
    GraphRequestOperator(
        task_id="graph_users", path="/users", query={"$top": 5, "$select": "id,displayName"}, paginate=True
    )
    SharePointDownloadOperator(task_id="download", url=FOLDER, local_dir=DATA + "/{{ ds }}/landing")
    SharePointUploadOperator(task_id="upload", local_path=DATA + "/outbox", url=SITE + "/Shared Documents/Inbound")
    SharePointSyncOperator(task_id="sync", url=FOLDER, local_dir=DATA + "/mirror")
    SharePointListExportOperator(
        task_id="list_export",
        site_url=SITE,
        list_name="Invoices",
        output_path=DATA + "/{{ ds }}/invoices.csv",
        msgraph_cert_conn_id="msgraph_cert_pfx",
    )
    SharePointFileSensor(task_id="wait_for_report", url=FOLDER + "/report.csv", poke_interval=1, timeout=30)
    SharePointUploadOperator(
        task_id="upload_conflict",
        local_path=DATA + "/outbox/existing.csv",
        url=SITE + "/Shared Documents/Inbox",
        conflict_behavior="fail",
    )
