"""A nightly folder pull with one Airflow retry, for the emulator kill-and-restart test.

The download uses a short retry budget (a DAG author's choice, here through a hook subclass) so
that an outage longer than a few seconds fails the attempt cleanly instead of waiting minutes;
Airflow's retry then finishes the job. RELIABILITY_DATA_DIR and RELIABILITY_FOLDER_URL come from
the test.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta
from functools import cached_property

from airflow.sdk import DAG

from airflow_provider_graphcert.graph.client import GraphClient
from airflow_provider_graphcert.graph.retry import RetryPolicy
from airflow_provider_graphcert.hooks.graph_cert import GraphCertHook
from airflow_provider_graphcert.operators.sharepoint import SharePointDownloadOperator

DATA = os.environ.get("RELIABILITY_DATA_DIR", "/tmp/graphcert-reliability")
FOLDER_URL = os.environ.get("RELIABILITY_FOLDER_URL", "https://contoso.sharepoint.com/sites/Finance/Shared Documents")
# Per request: give up after about three seconds of waiting (the provider's default is ten minutes).
SHORT_BUDGET = RetryPolicy(max_attempts=5, max_total_wait=3.0, backoff_initial=0.2, backoff_max=1.0)


class ShortBudgetHook(GraphCertHook):
    @cached_property
    def client(self) -> GraphClient:
        client = super().client
        client.retry = SHORT_BUDGET
        return client


class ShortBudgetDownloadOperator(SharePointDownloadOperator):
    def hook(self) -> GraphCertHook:
        return ShortBudgetHook(self.msgraph_cert_conn_id)


with DAG(
    "reliability_restart",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    default_args={"retries": 1, "retry_delay": timedelta(seconds=6)},
):
    ShortBudgetDownloadOperator(task_id="pull", url=FOLDER_URL, local_dir=DATA + "/landing", max_workers=8)
