"""A nightly folder pull with one Airflow retry, for the emulator kill-and-restart test.

The download uses a short retry budget (a DAG author's choice, here through ``hook_params``) so
that an outage longer than a few seconds fails the attempt cleanly instead of waiting minutes;
Airflow's retry then finishes the job. RELIABILITY_DATA_DIR and RELIABILITY_FOLDER_URL come from
the test.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta

from airflow.sdk import DAG

from airflow_provider_graphcert.graph.retry import RetryPolicy
from airflow_provider_graphcert.operators.sharepoint import SharePointDownloadOperator

DATA = os.environ.get("RELIABILITY_DATA_DIR", "/tmp/graphcert-reliability")
FOLDER_URL = os.environ.get("RELIABILITY_FOLDER_URL", "https://contoso.sharepoint.com/sites/Finance/Shared Documents")
# Per request: give up after about three seconds of waiting (the provider's default is ten minutes).
SHORT_BUDGET = RetryPolicy(max_attempts=5, max_total_wait=3.0, backoff_initial=0.2, backoff_max=1.0)


with DAG(
    "reliability_restart",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    default_args={"retries": 1, "retry_delay": timedelta(seconds=6)},
):
    SharePointDownloadOperator(
        task_id="pull",
        url=FOLDER_URL,
        local_dir=DATA + "/landing",
        max_workers=8,
        hook_params={"retry_policy": SHORT_BUDGET},
    )
