"""An emulated SharePoint site behind an Airflow connection, the spo:// scheme, and an S3 server.

The scheme is registered from the entry points pyproject.toml declares (spo_entry_points.py).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import certifi
import fsspec
import pytest
from airflow.sdk.io import store as airflow_store
from spo_entry_points import register_declared_entry_points

from airflow_provider_graphcert.auth.selfsigned import SelfSignedCertificate
from airflow_provider_graphcert.auth.token_cache import DEFAULT_TOKEN_CACHE
from airflow_provider_graphcert.fs.spo import ConnectionFileSystem
from airflow_provider_graphcert.testing.emulator.graph_state import Drive, Site
from airflow_provider_graphcert.testing.emulator.server import GraphEmulator
from airflow_provider_graphcert.testing.emulator.state import App

CONN_ID = "sharepoint_finance"
HOST = "contoso.sharepoint.com"
# The browser address of the library with https replaced by spo, the connection in the user part.
LIBRARY_URL = f"spo://{CONN_ID}@{HOST}/sites/Finance/Shared Documents"
LIBRARY_PATH = f"{HOST}/sites/Finance/Shared Documents"


@pytest.fixture(scope="session", autouse=True)
def spo_scheme_registered() -> None:
    register_declared_entry_points()


@pytest.fixture(autouse=True)
def fresh_clients(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each test has its own emulator: forget file systems and tokens made for the previous one."""
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", certifi.where())
    DEFAULT_TOKEN_CACHE.clear()
    ConnectionFileSystem.clear_instance_cache()
    for alias in [a for a in airflow_store._STORE_CACHE if a.startswith("spo")]:
        del airflow_store._STORE_CACHE[alias]
    yield
    ConnectionFileSystem.clear_instance_cache()
    DEFAULT_TOKEN_CACHE.clear()


@pytest.fixture
def site(graph_emulator: GraphEmulator) -> Site:
    return graph_emulator.graph.add_site(HOST, "/sites/Finance", "Finance")


@pytest.fixture
def documents(site: Site) -> Drive:
    return site.add_library("Documents")  # shown as "Documents", addressed as "Shared Documents"


@pytest.fixture
def archive(site: Site) -> Drive:
    return site.add_library("Archive")


@pytest.fixture
def sp_app(graph_emulator: GraphEmulator, rsa_cert: SelfSignedCertificate) -> App:
    tenant = graph_emulator.add_tenant()
    return graph_emulator.add_app(tenant, rsa_cert.certificate, roles=["Sites.ReadWrite.All"])


@pytest.fixture
def connection_env(graph_emulator: GraphEmulator, sp_app: App, pem_file: Path) -> dict[str, str]:
    """The Airflow connection as an environment variable (also handed to subprocesses)."""
    connection = graph_emulator.connection(sp_app, certificate_path=str(pem_file))
    return {f"AIRFLOW_CONN_{CONN_ID.upper()}": json.dumps(connection)}


@pytest.fixture
def spo_connection(connection_env: dict[str, str], documents: Drive, monkeypatch: pytest.MonkeyPatch) -> str:
    for name, value in connection_env.items():
        monkeypatch.setenv(name, value)
    return CONN_ID


@pytest.fixture
def spo(spo_connection: str) -> ConnectionFileSystem:
    """The file system Airflow builds for ``spo://sharepoint_finance@...`` paths."""
    fs = fsspec.filesystem("spo", conn_id=spo_connection)
    assert isinstance(fs, ConnectionFileSystem)
    return fs
