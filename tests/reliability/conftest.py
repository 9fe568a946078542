"""Fixtures of the reliability suite: an app and a Finance site in the emulator, and a tally for the report."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from reliability_kit import NOTES, TALLY

from airflow_provider_graphcert.auth.selfsigned import SelfSignedCertificate
from airflow_provider_graphcert.testing.emulator.server import GraphEmulator
from airflow_provider_graphcert.testing.emulator.state import App, Tenant
from airflow_provider_graphcert.testing.pytest_plugin import ConnectionFactory

__all__ = ["AIRFLOW_BIN", "ConnectionFactory", "airflow_env", "fresh_airflow_home"]


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if any(TALLY.values()):
        terminalreporter.write_sep("-", "reliability tally")
        terminalreporter.write_line(", ".join(f"{name}: {count}" for name, count in TALLY.items()))
        for line in NOTES:
            terminalreporter.write_line(line)


@pytest.fixture
def tenant(graph_emulator: GraphEmulator) -> Tenant:
    return graph_emulator.add_tenant(domains=["contoso.onmicrosoft.com"])


@pytest.fixture
def app(graph_emulator: GraphEmulator, tenant: Tenant, rsa_cert: SelfSignedCertificate) -> App:
    return graph_emulator.add_app(
        tenant, rsa_cert.certificate, roles=["Sites.ReadWrite.All", "User.Read.All"], display_name="nightly-etl"
    )


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
