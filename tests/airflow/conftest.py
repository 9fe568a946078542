"""Fixtures for tests that go through Airflow connections to the emulator over real HTTPS.

The shared ones (certificate, PEM file, ``airflow_connection``, the client environment) are in
tests/conftest.py and the provider's pytest plugin.
"""

from __future__ import annotations

import pytest

from airflow_provider_graphcert.auth.selfsigned import SelfSignedCertificate
from airflow_provider_graphcert.testing.emulator.server import GraphEmulator
from airflow_provider_graphcert.testing.emulator.state import App, Tenant


@pytest.fixture
def tenant(graph_emulator: GraphEmulator) -> Tenant:
    return graph_emulator.add_tenant(domains=["contoso.onmicrosoft.com"])


@pytest.fixture
def app(graph_emulator: GraphEmulator, tenant: Tenant, rsa_cert: SelfSignedCertificate) -> App:
    return graph_emulator.add_app(
        tenant, rsa_cert.certificate, roles=["Sites.Read.All", "User.Read.All"], display_name="nightly-etl"
    )
