"""Build a GraphClient for an emulator app the way a plain-Python user would (no Airflow)."""

from __future__ import annotations

from pathlib import Path

from airflow_provider_graphcert.graph.client import GraphClient
from airflow_provider_graphcert.graph.retry import RetryPolicy
from airflow_provider_graphcert.settings import ConnectionSettings
from airflow_provider_graphcert.testing.emulator.server import GraphEmulator
from airflow_provider_graphcert.testing.emulator.state import App


def client_for(emulator: GraphEmulator, app: App, pem_file: Path, **retry: float) -> GraphClient:
    connection = emulator.connection(app, certificate_path=str(pem_file))
    settings = ConnectionSettings.from_fields(login=connection["login"], password=None, extra=connection["extra"])
    policy = RetryPolicy(**retry) if retry else RetryPolicy(backoff_initial=0.05, backoff_max=0.5)  # type: ignore[arg-type]
    return GraphClient(
        tokens=settings.token_provider(),
        graph_url=settings.graph_url,
        verify=settings.verify,
        timeout=settings.timeout,
        retry=policy,
    )
