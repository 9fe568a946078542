"""pytest fixtures for the emulated Entra ID + Graph service (entry point ``pytest11``).

pytest loads this module for every run wherever the provider is installed, so it imports
nothing heavy (no Airflow, no uvicorn) until a fixture is used, and no fixture is autouse.

- ``graph_emulator`` / ``graph_emulator_session``: a running emulator (per test / per session).
- ``graph_emulator_certificate``: a self-signed RSA certificate for the app (made once per session).
- ``graph_emulator_pem_file``: that key and certificate as a PEM file (mode 0600), for certificate_path.
- ``graph_emulator_airflow_connection``: defines ``AIRFLOW_CONN_<ID>`` for an emulator app.
- ``graph_emulator_client_environment``: the environment of a typical host (REQUESTS_CA_BUNDLE set)
  and an empty process token cache; use it (or make it autouse in your conftest) for client tests.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from airflow_provider_graphcert.auth.selfsigned import SelfSignedCertificate
    from airflow_provider_graphcert.testing.emulator.server import GraphEmulator
    from airflow_provider_graphcert.testing.emulator.state import App

ConnectionFactory = Callable[..., str]


@pytest.fixture
def graph_emulator() -> Iterator[GraphEmulator]:
    """A running emulator with empty state and no faults, stopped after the test."""
    from airflow_provider_graphcert.testing.emulator.server import GraphEmulator

    with GraphEmulator() as emulator:
        yield emulator


@pytest.fixture(scope="session")
def graph_emulator_session() -> Iterator[GraphEmulator]:
    """One emulator for the whole session: add your own tenant and app, and clear any faults you add."""
    from airflow_provider_graphcert.testing.emulator.server import GraphEmulator

    with GraphEmulator() as emulator:
        yield emulator


@pytest.fixture(scope="session")
def graph_emulator_certificate() -> SelfSignedCertificate:
    """A 2048-bit self-signed certificate, one per session: key generation is the slow part."""
    from airflow_provider_graphcert.auth.selfsigned import create_self_signed

    return create_self_signed("CN=graphcert-tests")


@pytest.fixture
def graph_emulator_pem_file(tmp_path: Path, graph_emulator_certificate: SelfSignedCertificate) -> Path:
    """The certificate's private key and certificate in one PEM file, readable by the owner only."""
    path = tmp_path / "keys" / "app.pem"
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(graph_emulator_certificate.key_pem() + graph_emulator_certificate.cert_pem())
    path.chmod(0o600)
    return path


@pytest.fixture
def graph_emulator_airflow_connection(
    graph_emulator: GraphEmulator, monkeypatch: pytest.MonkeyPatch
) -> ConnectionFactory:
    """``define(app, conn_id="msgraph_cert_default", password=None, **extra)`` sets ``AIRFLOW_CONN_<ID>``.

    The connection (JSON form, as a deployment's environment or secrets backend holds it) points at
    the emulator; ``extra`` adds fields such as ``certificate_path``. Returns the connection id.
    """

    def define(app: App, conn_id: str = "msgraph_cert_default", password: str | None = None, **extra: Any) -> str:
        connection = graph_emulator.connection(app, **extra)
        if password is not None:
            connection["password"] = password
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(connection))
        return conn_id

    return define


@pytest.fixture
def graph_emulator_client_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """REQUESTS_CA_BUNDLE and CURL_CA_BUNDLE set, as on many hosts, and a fresh process token cache.

    requests lets these variables override a Session's ``verify``; a client that only sets
    ``session.verify`` to the emulator's CA fails under this fixture, as it would on such a host.
    """
    import certifi

    from airflow_provider_graphcert.auth.token_cache import DEFAULT_TOKEN_CACHE

    monkeypatch.setenv("REQUESTS_CA_BUNDLE", certifi.where())
    monkeypatch.setenv("CURL_CA_BUNDLE", certifi.where())
    DEFAULT_TOKEN_CACHE.clear()
    yield
    DEFAULT_TOKEN_CACHE.clear()
