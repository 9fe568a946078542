"""Shared fixtures. Airflow reads its configuration at import, so its home is set up first.

The fixtures themselves live in the provider's pytest plugin (airflow_provider_graphcert/testing/
pytest_plugin.py), where users' tests get them too; the short names below are this suite's aliases.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

_AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="graphcert-airflow-home-"))
os.environ.setdefault("AIRFLOW_HOME", str(_AIRFLOW_HOME))
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ.setdefault("AIRFLOW__CORE__UNIT_TEST_MODE", "False")

import pytest  # noqa: E402

from airflow_provider_graphcert.auth.selfsigned import SelfSignedCertificate, create_self_signed  # noqa: E402
from airflow_provider_graphcert.testing.emulator.graph_state import Drive, Site  # noqa: E402
from airflow_provider_graphcert.testing.emulator.server import GraphEmulator  # noqa: E402

ConnectionFactory = Callable[..., str]


@pytest.fixture(autouse=True)
def client_environment(graph_emulator_client_environment: None) -> None:
    """Every test runs as on our machines and many users': REQUESTS_CA_BUNDLE set, no cached token."""


@pytest.fixture(scope="session")
def rsa_cert(graph_emulator_certificate: SelfSignedCertificate) -> SelfSignedCertificate:
    return graph_emulator_certificate


@pytest.fixture(scope="session")
def other_rsa_cert() -> SelfSignedCertificate:
    return create_self_signed("CN=graphcert-other")


@pytest.fixture
def pem_file(graph_emulator_pem_file: Path) -> Path:
    return graph_emulator_pem_file


@pytest.fixture
def airflow_connection(graph_emulator_airflow_connection: ConnectionFactory) -> ConnectionFactory:
    return graph_emulator_airflow_connection


@pytest.fixture
def site(graph_emulator: GraphEmulator) -> Site:
    """The Finance site of contoso.sharepoint.com."""
    return graph_emulator.graph.add_site("contoso.sharepoint.com", "/sites/Finance", "Finance")


@pytest.fixture
def documents(site: Site) -> Drive:
    return site.add_library("Documents")  # shown as "Documents", addressed as "Shared Documents"
