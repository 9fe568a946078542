"""The fidelity suite's harness: Microsoft's own Graph SDK (msgraph-sdk + azure-identity's
CertificateCredential) against the emulator: one seeded emulator per module, one client built
the way a user would build it."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from azure.identity import CertificateCredential
from kiota_abstractions.authentication import AnonymousAuthenticationProvider
from kiota_authentication_azure.azure_identity_authentication_provider import AzureIdentityAuthenticationProvider
from msgraph import GraphRequestAdapter, GraphServiceClient
from msgraph_core import GraphClientFactory

from airflow_provider_graphcert.auth.selfsigned import create_self_signed
from airflow_provider_graphcert.testing.emulator.graph_state import Drive, SharePointList, Site
from airflow_provider_graphcert.testing.emulator.server import GraphEmulator

T = TypeVar("T")
ROLES = ("Sites.ReadWrite.All", "User.Read.All", "Group.Read.All")
USERS = 250
GROUPS = 12


@dataclass
class Fidelity:
    """The emulator, what is seeded in it, and SDK clients pointed at it."""

    emulator: GraphEmulator
    site: Site
    library: Drive
    invoices: SharePointList
    client: GraphServiceClient
    # Pre-authenticated upload URLs must be called without a bearer token (createUploadSession's
    # remarks); the SDK's LargeFileUploadTask sends its adapter's token, so uploads get an
    # adapter without one. https://github.com/microsoftgraph/msgraph-sdk-java/issues/2021
    anonymous_adapter: GraphRequestAdapter
    # One loop for the module: the SDK's httpx pools belong to the loop that opened them.
    loop: asyncio.AbstractEventLoop

    def run(self, call: Callable[[], Awaitable[T]]) -> T:
        return self.loop.run_until_complete(call())


def _http_client(ca_bundle: str) -> httpx.AsyncClient:
    context = ssl.create_default_context(cafile=ca_bundle)
    return GraphClientFactory.create_with_default_middleware(client=httpx.AsyncClient(verify=context))


def _adapter(emulator: GraphEmulator, auth: Any, http: httpx.AsyncClient) -> GraphRequestAdapter:
    adapter = GraphRequestAdapter(auth, client=http)
    adapter.base_url = f"{emulator.graph_url}/v1.0"
    return adapter


def _seed(emulator: GraphEmulator) -> tuple[Site, Drive, SharePointList]:
    graph = emulator.graph
    site = graph.add_site("contoso.sharepoint.com", "/sites/finance", "Finance")
    library = site.add_library("Documents")
    library.put_file("Reports/2024/q1.csv", b"quarter,amount\nq1,100\n")
    library.put_file("Reports/2024/q2.csv", b"quarter,amount\nq2,250\n")
    library.put_file("Reports/readme.txt", b"Quarterly reports")
    rows = [
        {"Title": f"INV-{i:03d}", "Status": "Paid" if i % 4 == 0 else "Open", "Amount": i * 10} for i in range(1, 41)
    ]
    invoices = graph.add_list(site, "Invoices", ["Status", "Amount"], rows, indexed=["Amount"])
    graph.add_users(USERS)
    graph.add_groups(GROUPS)
    return site, library, invoices


@pytest.fixture(scope="module")
def fidelity(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fidelity]:
    certificate = create_self_signed("CN=graphcert-fidelity")
    pem: Path = tmp_path_factory.mktemp("fidelity") / "app.pem"
    pem.write_bytes(certificate.key_pem() + certificate.cert_pem())
    with GraphEmulator() as emulator:
        tenant = emulator.add_tenant()
        app = emulator.add_app(tenant, certificate=certificate.cert_pem(), roles=ROLES)
        site, library, invoices = _seed(emulator)
        # docs/testing-your-dags.md: azure-identity must not ask login.microsoftonline.com about
        # the emulator's authority, so instance discovery is off.
        credential = CertificateCredential(
            tenant.tenant_id,
            app.client_id,
            certificate_path=str(pem),
            authority=emulator.authority_host,
            disable_instance_discovery=True,
            connection_verify=emulator.ca_bundle,
        )
        auth = AzureIdentityAuthenticationProvider(credential, scopes=[f"{emulator.graph_resource}/.default"])
        http_clients = [_http_client(emulator.ca_bundle) for _ in range(2)]
        client = GraphServiceClient(request_adapter=_adapter(emulator, auth, http_clients[0]))
        anonymous = _adapter(emulator, AnonymousAuthenticationProvider(), http_clients[1])
        loop = asyncio.new_event_loop()
        try:
            yield Fidelity(emulator, site, library, invoices, client, anonymous, loop)
        finally:
            for http in http_clients:
                loop.run_until_complete(http.aclose())
            loop.close()
            credential.close()
