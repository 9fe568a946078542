"""A SharePoint site in the emulator and a plain-Python SharePoint service for it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sharepoint_kit import SITE_URL, sharepoint_for

from airflow_provider_graphcert.auth.selfsigned import SelfSignedCertificate
from airflow_provider_graphcert.sharepoint.service import SharePoint
from airflow_provider_graphcert.testing.emulator.server import GraphEmulator
from airflow_provider_graphcert.testing.emulator.state import App


@pytest.fixture
def sp_app(graph_emulator: GraphEmulator, rsa_cert: SelfSignedCertificate) -> App:
    tenant = graph_emulator.add_tenant()
    return graph_emulator.add_app(tenant, rsa_cert.certificate, roles=["Sites.ReadWrite.All"])


@pytest.fixture
def sharepoint(graph_emulator: GraphEmulator, sp_app: App, pem_file: Path) -> Iterator[SharePoint]:
    service = sharepoint_for(graph_emulator, sp_app, pem_file)
    yield service
    service.client.close()


__all__ = ["SITE_URL"]
