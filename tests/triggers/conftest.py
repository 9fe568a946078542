"""A SharePoint library in the emulator and an Airflow connection to it, for trigger tests.

Triggers run on an event loop of their own here (``asyncio.run``), as in the triggerer, against
the emulator over real HTTPS.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import certifi
import pytest
from trigger_kit import CONN_ID

from airflow_provider_graphcert.auth.selfsigned import SelfSignedCertificate
from airflow_provider_graphcert.auth.token_cache import DEFAULT_TOKEN_CACHE
from airflow_provider_graphcert.testing.emulator.graph_state import Drive, Site
from airflow_provider_graphcert.testing.emulator.server import GraphEmulator
from airflow_provider_graphcert.testing.emulator.state import App


@pytest.fixture(autouse=True)
def fresh_tokens_and_hostile_ca_variable(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """REQUESTS_CA_BUNDLE is set on many machines; the connection's ca_bundle must still win."""
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", certifi.where())
    monkeypatch.setenv("SSL_CERT_FILE", certifi.where())
    DEFAULT_TOKEN_CACHE.clear()
    yield
    DEFAULT_TOKEN_CACHE.clear()


@pytest.fixture
def site(graph_emulator: GraphEmulator) -> Site:
    return graph_emulator.graph.add_site("contoso.sharepoint.com", "/sites/Finance", "Finance")


@pytest.fixture
def documents(site: Site) -> Drive:
    drive = site.add_library("Documents")
    drive.put_file("Inbox/old-report.csv", b"already there\n")
    drive.put_file("Elsewhere/unrelated.txt", b"elsewhere\n")
    return drive


@pytest.fixture
def sp_app(graph_emulator: GraphEmulator, rsa_cert: SelfSignedCertificate) -> App:
    tenant = graph_emulator.add_tenant()
    return graph_emulator.add_app(tenant, rsa_cert.certificate, roles=["Sites.Read.All"])


@pytest.fixture
def connection(
    graph_emulator: GraphEmulator, sp_app: App, pem_file: Path, documents: Drive, monkeypatch: pytest.MonkeyPatch
) -> str:
    monkeypatch.setenv(
        f"AIRFLOW_CONN_{CONN_ID.upper()}",
        json.dumps(graph_emulator.connection(sp_app, certificate_path=str(pem_file))),
    )
    return CONN_ID
