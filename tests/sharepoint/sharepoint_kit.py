"""Helpers for SharePoint tests: a service for an emulator app, and file content that names itself."""

from __future__ import annotations

import hashlib
from pathlib import Path

from airflow_provider_graphcert.graph.client import GraphClient
from airflow_provider_graphcert.graph.retry import RetryPolicy
from airflow_provider_graphcert.settings import ConnectionSettings
from airflow_provider_graphcert.sharepoint.service import SharePoint
from airflow_provider_graphcert.testing.emulator.graph.drives import Drive
from airflow_provider_graphcert.testing.emulator.server import GraphEmulator
from airflow_provider_graphcert.testing.emulator.state import App

SITE_URL = "https://contoso.sharepoint.com/sites/Finance"


def sharepoint_for(emulator: GraphEmulator, app: App, pem_file: Path, **retry: float) -> SharePoint:
    connection = emulator.connection(app, certificate_path=str(pem_file))
    settings = ConnectionSettings.from_fields(login=connection["login"], password=None, extra=connection["extra"])
    policy = RetryPolicy(**retry) if retry else RetryPolicy(backoff_initial=0.05, backoff_max=0.5)  # type: ignore[arg-type]
    client = GraphClient(
        tokens=settings.token_provider(), graph_url=settings.graph_url, verify=settings.verify, retry=policy
    )
    return SharePoint(client)


def content_for(path: str, size: int = 0) -> bytes:
    """Deterministic bytes that differ per path, ``size`` long (or a short line)."""
    seed = hashlib.sha256(path.encode()).digest()
    if not size:
        return b"contents of " + path.encode() + b"\n"
    block = seed * (1 + 4096 // len(seed))
    return (block * (size // len(block) + 1))[:size]


def remote_exists(drive: Drive, path: str) -> bool:
    """Whether the emulator's drive holds an item at ``path``."""
    try:
        drive.resolve(path)
    except Exception:  # the emulator's 404 for a path that is not there
        return False
    return True
