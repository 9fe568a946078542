"""Fixtures of the reliability suite: an app and a Finance site in the emulator, and a tally for the report."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import certifi
import pytest
from reliability_kit import NOTES, TALLY

from airflow_provider_graphcert.auth.selfsigned import SelfSignedCertificate
from airflow_provider_graphcert.auth.token_cache import DEFAULT_TOKEN_CACHE
from airflow_provider_graphcert.testing.emulator.graph_state import Drive, Site
from airflow_provider_graphcert.testing.emulator.server import GraphEmulator
from airflow_provider_graphcert.testing.emulator.state import App, Tenant


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if any(TALLY.values()):
        terminalreporter.write_sep("-", "reliability tally")
        terminalreporter.write_line(", ".join(f"{name}: {count}" for name, count in TALLY.items()))
        for line in NOTES:
            terminalreporter.write_line(line)


@pytest.fixture(autouse=True)
def requests_ca_bundle_is_set(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """As on our machines and many users': the variables that override a Session's verify."""
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", certifi.where())
    monkeypatch.setenv("CURL_CA_BUNDLE", certifi.where())
    DEFAULT_TOKEN_CACHE.clear()
    yield
    DEFAULT_TOKEN_CACHE.clear()


@pytest.fixture
def tenant(graph_emulator: GraphEmulator) -> Tenant:
    return graph_emulator.add_tenant(domains=["contoso.onmicrosoft.com"])


@pytest.fixture
def app(graph_emulator: GraphEmulator, tenant: Tenant, rsa_cert: SelfSignedCertificate) -> App:
    return graph_emulator.add_app(
        tenant, rsa_cert.certificate, roles=["Sites.ReadWrite.All", "User.Read.All"], display_name="nightly-etl"
    )


@pytest.fixture
def site(graph_emulator: GraphEmulator) -> Site:
    return graph_emulator.graph.add_site("contoso.sharepoint.com", "/sites/Finance", "Finance")


@pytest.fixture
def documents(site: Site) -> Drive:
    return site.add_library("Documents")  # shown as "Documents", addressed as "Shared Documents"


@pytest.fixture
def pem_path(tmp_path: Path, rsa_cert: SelfSignedCertificate) -> Path:
    path = tmp_path / "keys" / "app.pem"
    path.parent.mkdir()
    path.write_bytes(rsa_cert.key_pem() + rsa_cert.cert_pem())
    path.chmod(0o600)
    return path


ConnectionFactory = Callable[..., str]


@pytest.fixture
def airflow_connection(graph_emulator: GraphEmulator, monkeypatch: pytest.MonkeyPatch) -> ConnectionFactory:
    """Define ``AIRFLOW_CONN_<ID>`` (JSON form) for an emulator app, as a deployment would; returns the id."""

    def define(app: App, conn_id: str = "msgraph_cert_default", password: str | None = None, **extra: Any) -> str:
        connection = graph_emulator.connection(app, **extra)
        if password is not None:
            connection["password"] = password
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(connection))
        return conn_id

    return define


AIRFLOW_BIN = Path(sys.executable).parent / "airflow"
RELIABILITY_DAGS = Path(__file__).parent / "dags"


@pytest.fixture(scope="session")
def migrated_airflow_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An Airflow home with a migrated SQLite database, copied by each test that runs Airflow."""
    home = tmp_path_factory.mktemp("airflow-home-template")
    env = {**os.environ, **airflow_env(home)}
    subprocess.run([str(AIRFLOW_BIN), "db", "migrate"], env=env, check=True, capture_output=True, timeout=300)
    return home


def airflow_env(home: Path) -> dict[str, str]:
    return {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(RELIABILITY_DAGS),
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
    }


def fresh_airflow_home(template: Path, where: Path) -> Path:
    """A private copy of the migrated home (its own database, its own logs)."""
    shutil.copytree(template, where)
    (where / "airflow.cfg").unlink(missing_ok=True)  # regenerated for this path
    return where
