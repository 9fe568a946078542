"""msal, Microsoft's own client, gets tokens from the emulator exactly as it would from Entra ID."""

from __future__ import annotations

import msal
import pytest
from emulator_testkit import Signer, decode_with_published_keys

from airflow_provider_graphcert.testing import GraphEmulator


@pytest.fixture(autouse=True)
def _msal_trusts_only_the_emulator_ca(monkeypatch: pytest.MonkeyPatch) -> None:
    # msal sets verify on its session, which these variables would override (docs/microsoft-rules.md §D/§E).
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)


def _msal_app(
    emulator: GraphEmulator, tenant: str, client_id: str, credential: dict[str, str]
) -> msal.ClientApplication:
    return msal.ConfidentialClientApplication(
        client_id,
        client_credential=credential,
        authority=f"{emulator.authority_host}/{tenant}",
        instance_discovery=False,
        verify=emulator.ca_bundle,
    )


def test_msal_gets_a_token_with_a_sha1_thumbprint_and_rs256(graph_emulator: GraphEmulator, signer: Signer) -> None:
    tenant = graph_emulator.add_tenant()
    app = graph_emulator.add_app(tenant, certificate=signer.certificate, roles=["Sites.Read.All", "Files.Read.All"])
    client = _msal_app(
        graph_emulator, tenant.tenant_id, app.client_id, {"private_key": signer.key_pem, "thumbprint": signer.sha1_hex}
    )

    result = client.acquire_token_for_client(scopes=[f"{graph_emulator.graph_resource}/.default"])

    assert "access_token" in result, result
    assert result["token_type"] == "Bearer"
    claims = decode_with_published_keys(graph_emulator, tenant.tenant_id, result["access_token"])
    assert claims["tid"] == tenant.tenant_id
    assert claims["appid"] == app.client_id
    assert claims["roles"] == ["Sites.Read.All", "Files.Read.All"]
    assert claims["idtyp"] == "app" and claims["ver"] == "1.0"
    assert claims["iss"] == f"https://sts.windows.net/{tenant.tenant_id}/"
    assert graph_emulator.state.token_requests.records(app)[0].algorithm == "RS256"


def test_msal_gets_a_token_with_a_public_certificate_and_ps256(graph_emulator: GraphEmulator, signer: Signer) -> None:
    tenant = graph_emulator.add_tenant(domains=["contoso.onmicrosoft.com"])
    app = graph_emulator.add_app(tenant, certificate=signer.certificate_pem.encode())
    # Addressed by domain name; msal then uses the GUID token_endpoint from discovery as aud.
    client = _msal_app(
        graph_emulator,
        "contoso.onmicrosoft.com",
        app.client_id,
        {"private_key": signer.key_pem, "public_certificate": signer.certificate_pem},
    )

    result = client.acquire_token_for_client(scopes=[f"{graph_emulator.graph_resource}/.default"])

    assert "access_token" in result, result
    claims = graph_emulator.state.validate_access_token(result["access_token"])
    assert (claims["tid"], claims["appid"], claims["roles"]) == (tenant.tenant_id, app.client_id, ["Sites.Read.All"])
    assert graph_emulator.state.token_requests.records(app)[0].algorithm == "PS256"


def test_msal_answers_the_second_call_from_its_cache(graph_emulator: GraphEmulator, signer: Signer) -> None:
    tenant = graph_emulator.add_tenant()
    app = graph_emulator.add_app(tenant, certificate=signer.certificate)
    client = _msal_app(
        graph_emulator, tenant.tenant_id, app.client_id, {"private_key": signer.key_pem, "thumbprint": signer.sha1_hex}
    )
    scope = ["https://graph.microsoft.com/.default"]  # the default scope is accepted too

    first = client.acquire_token_for_client(scopes=scope)
    second = client.acquire_token_for_client(scopes=scope)

    assert first["token_source"] == "identity_provider" and second["token_source"] == "cache"
    assert graph_emulator.state.token_requests.count(app) == 1
    assert graph_emulator.state.validate_access_token(first["access_token"])["aud"] == "https://graph.microsoft.com"


def test_msal_with_x5c_satisfies_a_subject_name_issuer_app(graph_emulator: GraphEmulator, sni_leaf: Signer) -> None:
    tenant = graph_emulator.add_tenant()
    app = graph_emulator.add_app(tenant, certificate=sni_leaf.certificate, subject_name_issuer=True)
    # public_certificate makes msal send x5c, with PEM line breaks inside it (docs/microsoft-rules.md §A3).
    client = _msal_app(
        graph_emulator,
        tenant.tenant_id,
        app.client_id,
        {"private_key": sni_leaf.key_pem, "public_certificate": sni_leaf.certificate_pem},
    )

    result = client.acquire_token_for_client(scopes=[f"{graph_emulator.graph_resource}/.default"])

    assert "access_token" in result, result


def test_msal_without_x5c_is_told_about_sni(graph_emulator: GraphEmulator, sni_leaf: Signer) -> None:
    tenant = graph_emulator.add_tenant()
    app = graph_emulator.add_app(tenant, certificate=sni_leaf.certificate, subject_name_issuer=True)
    client = _msal_app(
        graph_emulator,
        tenant.tenant_id,
        app.client_id,
        {"private_key": sni_leaf.key_pem, "thumbprint": sni_leaf.sha1_hex},
    )

    result = client.acquire_token_for_client(scopes=[f"{graph_emulator.graph_resource}/.default"])

    assert result["error"] == "invalid_client"
    assert result["error_codes"] == [700027]
    assert "x5c" in result["error_description"]
