"""A Graph client built the plain-Python way (no Airflow) against the emulator over HTTPS."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from graph_client_kit import client_for

from airflow_provider_graphcert.auth.selfsigned import SelfSignedCertificate
from airflow_provider_graphcert.graph.client import GraphClient
from airflow_provider_graphcert.testing.emulator.server import GraphEmulator
from airflow_provider_graphcert.testing.emulator.state import App

GRAPH_ROLES = ["Sites.ReadWrite.All", "User.Read.All", "Group.Read.All"]


@pytest.fixture
def graph_app(graph_emulator: GraphEmulator, rsa_cert: SelfSignedCertificate) -> App:
    tenant = graph_emulator.add_tenant()
    return graph_emulator.add_app(tenant, rsa_cert.certificate, roles=GRAPH_ROLES, display_name="exports")


@pytest.fixture
def graph(graph_emulator: GraphEmulator, graph_app: App, pem_file: Path) -> Iterator[GraphClient]:
    with client_for(graph_emulator, graph_app, pem_file) as client:
        yield client
