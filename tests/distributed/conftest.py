"""One production-shaped Airflow deployment for the whole module (it takes a minute to start)."""

from __future__ import annotations

import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

import certifi
import pytest
from distributed_kit import (
    AIRFLOW,
    DAGS,
    INBOX_URL,
    REPO,
    TOKEN_LIFETIME_SECONDS,
    WATCH_POLL_SECONDS,
    Deployment,
    World,
    airflow_env,
    database_and_broker,
    free_port,
    fresh_root,
)

from airflow_provider_graphcert.auth.selfsigned import SelfSignedCertificate
from airflow_provider_graphcert.testing.emulator.seeds import seed_demo
from airflow_provider_graphcert.testing.emulator.server import GraphEmulator


def _ensure_servers_installed() -> None:
    if shutil.which("redis-server") is None or not list(Path("/usr/lib/postgresql").glob("*/bin/initdb")):
        subprocess.run(["bash", str(REPO / "scripts" / "install-distributed.sh")], check=True, timeout=900)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, rsa_cert: SelfSignedCertificate) -> Iterator[World]:
    _ensure_servers_installed()
    # A SIGTERM to pytest (CI cancelling a job) must still stop every component: as SystemExit it
    # unwinds through the finally below instead of leaving a deployment running.
    previous = signal.signal(signal.SIGTERM, _exit_on_sigterm)
    root = fresh_root()
    deployment = Deployment(root)
    pem = root / "app.pem"
    pem.write_bytes(rsa_cert.key_pem() + rsa_cert.cert_pem())
    with GraphEmulator(token_lifetime=TOKEN_LIFETIME_SECONDS) as emulator:
        seed_demo(emulator.graph)
        documents = next(d for d in emulator.graph.drives.values() if d.name == "Documents")
        tenant = emulator.add_tenant()
        app = emulator.add_app(tenant, rsa_cert.certificate, roles=["Sites.ReadWrite.All"])
        try:
            with database_and_broker(deployment) as (database, broker):
                api_port = free_port()
                data_dir = root / "data"
                deployment.env = airflow_env(
                    root,
                    database,
                    broker,
                    api_port,
                    {
                        "AIRFLOW_CONN_MSGRAPH_CERT_DEFAULT": emulator.connection_json(app, certificate_path=str(pem)),
                        "AIRFLOW_VAR_GRAPHCERT_DATA_DIR": str(data_dir),
                        "GRAPHCERT_WATCH_URL": INBOX_URL,
                        "GRAPHCERT_WATCH_POLL_SECONDS": str(WATCH_POLL_SECONDS),
                        # Set on many machines; the connection's ca_bundle must still win everywhere.
                        "REQUESTS_CA_BUNDLE": certifi.where(),
                    },
                )
                deployment.api_url = f"http://127.0.0.1:{api_port}"
                for dag in DAGS:
                    shutil.copy(dag, root / "home" / "dags" / dag.name)
                deployment.run("db-migrate", [AIRFLOW, "db", "migrate"], bound=600)
                deployment.start("api-server", [AIRFLOW, "api-server", "--port", str(api_port)])
                deployment.start("scheduler", [AIRFLOW, "scheduler"])
                deployment.start("dag-processor", [AIRFLOW, "dag-processor"])
                deployment.start("triggerer", [AIRFLOW, "triggerer", "--skip-serve-logs"])
                for name in ("worker-1", "worker-2"):
                    deployment.start(
                        name,
                        [AIRFLOW, "celery", "worker", "--celery-hostname", f"{name}@%h", "--skip-serve-logs"],
                    )
                deployment.wait_for(
                    lambda: deployment.api("GET", "/api/v2/monitor/health")["scheduler"]["status"] == "healthy",
                    "the API server and a healthy scheduler",
                    240,
                )
                for dag_id in ("on_sharepoint_upload", "sharepoint_folder_to_local", "deferred_wait"):
                    deployment.wait_for(lambda d=dag_id: _dag_parsed(deployment, d), f"DAG {dag_id} to be parsed", 240)
                yield World(deployment, emulator, app, documents, data_dir, time.monotonic())
        finally:
            deployment.stop()
            shutil.rmtree(root, ignore_errors=True)
            signal.signal(signal.SIGTERM, previous)


def _exit_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def _dag_parsed(deployment: Deployment, dag_id: str) -> bool:
    dags = deployment.api("GET", f"/api/v2/dags?dag_id_pattern={dag_id}")["dags"]
    return any(d["dag_id"] == dag_id for d in dags)
