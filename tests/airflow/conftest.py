"""Fixtures for tests that go through Airflow connections to the emulator over real HTTPS."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import certifi
import pytest

from airflow_provider_graphcert.auth.selfsigned import SelfSignedCertificate
from airflow_provider_graphcert.auth.token_cache import DEFAULT_TOKEN_CACHE
from airflow_provider_graphcert.testing.emulator.server import GraphEmulator
from airflow_provider_graphcert.testing.emulator.state import App, Tenant


@pytest.fixture(autouse=True)
def requests_ca_bundle_is_set(monkeypatch: pytest.MonkeyPatch) -> None:
    """As on our machines and many users': the variable that overrides a Session's verify."""
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", certifi.where())
    monkeypatch.setenv("CURL_CA_BUNDLE", certifi.where())


@pytest.fixture(autouse=True)
def fresh_token_cache() -> Iterator[None]:
    DEFAULT_TOKEN_CACHE.clear()
    yield
    DEFAULT_TOKEN_CACHE.clear()


@pytest.fixture
def tenant(graph_emulator: GraphEmulator) -> Tenant:
    return graph_emulator.add_tenant(domains=["contoso.onmicrosoft.com"])


@pytest.fixture
def app(graph_emulator: GraphEmulator, tenant: Tenant, rsa_cert: SelfSignedCertificate) -> App:
    return graph_emulator.add_app(
        tenant, rsa_cert.certificate, roles=["Sites.Read.All", "User.Read.All"], display_name="nightly-etl"
    )


ConnectionFactory = Callable[..., str]


@pytest.fixture
def airflow_connection(graph_emulator: GraphEmulator, monkeypatch: pytest.MonkeyPatch) -> ConnectionFactory:
    """Define ``AIRFLOW_CONN_<ID>`` (JSON form) for an emulator app; returns the conn id."""

    def define(app: App, conn_id: str = "msgraph_cert_default", password: str | None = None, **extra: Any) -> str:
        connection = graph_emulator.connection(app, **extra)
        if password is not None:
            connection["password"] = password
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(connection))
        return conn_id

    return define


@pytest.fixture
def pem_path(tmp_path: Path, rsa_cert: SelfSignedCertificate) -> Path:
    path = tmp_path / "keys" / "app.pem"
    path.parent.mkdir()
    path.write_bytes(rsa_cert.key_pem() + rsa_cert.cert_pem())
    path.chmod(0o600)
    return path
