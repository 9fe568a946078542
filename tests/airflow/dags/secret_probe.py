"""A deliberately careless task: it logs every secret it can reach. Masking must hide them all.

It logs through the task logger (structlog) and print, the paths Airflow 3 masks; records of a
plain ``logging.getLogger`` logger are not masked by ``airflow tasks test`` for any secret,
Airflow's own connection passwords included, so that path proves nothing about this provider.
"""

from __future__ import annotations

import structlog
from airflow.sdk import dag, task

from airflow_provider_graphcert.hooks.graph_cert import GraphCertHook

log = structlog.get_logger(__name__)


@dag(schedule=None, catchup=False)
def secret_probe() -> None:
    @task
    def leak_everything() -> dict[str, int]:
        hook = GraphCertHook()
        token = hook.get_access_token()
        assertion = hook.token_provider.new_assertion()
        conn = hook.get_connection(hook.msgraph_cert_conn_id)
        data = conn.extra_dejson.get("certificate_data", "")
        log.info("token: %s", token)
        log.info("assertion: %s", assertion)
        log.info("password: %s", conn.password)
        log.info("certificate_data: %s", data)
        print("stdout token", token)
        print("stdout key line", data.splitlines()[1] if data else "")
        ok, message = hook.test_connection()
        log.info("test_connection: %s %s", ok, message)
        return {"token_length": len(token)}

    leak_everything()


secret_probe()
