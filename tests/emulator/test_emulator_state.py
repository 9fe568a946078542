"""The plain-Python state: tokens it issued validate until they expire or are revoked."""

from __future__ import annotations

import time

import pytest
from emulator_testkit import Signer

from airflow_provider_graphcert.testing.emulator.state import (
    AccessTokenAudienceError,
    AccessTokenExpiredError,
    AccessTokenMalformedError,
    AccessTokenRevokedError,
    AccessTokenSignatureError,
    EmulatorState,
    SigningKey,
)

GRAPH = "https://127.0.0.1:9999"


@pytest.fixture
def state() -> EmulatorState:
    return EmulatorState(graph_resources=(GRAPH, "https://graph.microsoft.com"))


def test_an_issued_token_validates_with_its_claims(state: EmulatorState) -> None:
    tenant = state.add_tenant()
    app = state.add_app(tenant, roles=["Sites.Selected"])

    claims = state.validate_access_token(state.issue_access_token(app, GRAPH).access_token)

    assert (claims["tid"], claims["appid"], claims["roles"], claims["aud"]) == (
        tenant.tenant_id,
        app.client_id,
        ["Sites.Selected"],
        GRAPH,
    )


def test_a_token_past_its_lifetime_is_expired(state: EmulatorState) -> None:
    app = state.add_app(state.add_tenant())
    state.token_lifetime = 2
    token = state.issue_access_token(app, GRAPH).access_token

    state.clock_offset = 3

    with pytest.raises(AccessTokenExpiredError):
        state.validate_access_token(token)


def test_revoking_one_app_leaves_the_others_valid(state: EmulatorState) -> None:
    tenant = state.add_tenant()
    revoked_app, other_app = state.add_app(tenant), state.add_app(tenant)
    revoked = state.issue_access_token(revoked_app, GRAPH).access_token
    other = state.issue_access_token(other_app, GRAPH).access_token

    state.revoke_tokens(revoked_app)

    with pytest.raises(AccessTokenRevokedError):
        state.validate_access_token(revoked)
    assert state.validate_access_token(other)["appid"] == other_app.client_id
    time.sleep(0.001)
    assert state.validate_access_token(state.issue_access_token(revoked_app, GRAPH).access_token)


def test_revoking_everything(state: EmulatorState) -> None:
    app = state.add_app(state.add_tenant())
    token = state.issue_access_token(app, GRAPH).access_token

    state.revoke_tokens()

    with pytest.raises(AccessTokenRevokedError):
        state.validate_access_token(token)


def test_foreign_and_broken_tokens_are_refused(state: EmulatorState) -> None:
    app = state.add_app(state.add_tenant())
    token = state.issue_access_token(app, GRAPH).access_token
    stranger = EmulatorState(graph_resources=(GRAPH,), signing_key=SigningKey(state.signing_key.private_key))
    head, body, signature = token.split(".")

    with pytest.raises(AccessTokenMalformedError):
        state.validate_access_token("garbage")
    with pytest.raises(AccessTokenSignatureError):
        state.validate_access_token(f"{head}.{body}.{signature[:-4]}AAAA")
    with pytest.raises(AccessTokenAudienceError):
        state.validate_access_token(token, audiences=["https://someone.else"])
    with pytest.raises(AccessTokenSignatureError):  # same key, but that state has no such tenant
        stranger.validate_access_token(token)


def test_apps_rotate_certificates(state: EmulatorState, signer: Signer, other_signer: Signer) -> None:
    app = state.add_app(state.add_tenant(), certificate=[signer.certificate, other_signer.certificate_pem])

    app.remove_certificate(signer.certificate)

    assert [item.thumbprint for item in app.certificates] == [other_signer.sha1_hex.upper()]
    with pytest.raises(KeyError):
        app.remove_certificate(signer.sha1_hex)


def test_tenants_are_found_by_guid_or_domain(state: EmulatorState) -> None:
    tenant = state.add_tenant("AAAAAAAA-0000-4000-8000-000000000000", domains=["Contoso.onmicrosoft.com"])

    assert state.find_tenant("aaaaaaaa-0000-4000-8000-000000000000") is tenant
    assert state.find_tenant("contoso.ONMICROSOFT.com") is tenant
    with pytest.raises(ValueError, match="already exists"):
        state.add_tenant(domains=["contoso.onmicrosoft.com"])
    with pytest.raises(ValueError, match="GUID"):
        state.add_tenant("not-a-guid")
