"""Every way a token request can be wrong gets Microsoft's answer: status, `error` and AADSTS code."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from emulator_testkit import DROP, Signer, aadsts_codes, make_assertion, post_token, token_form

from airflow_provider_graphcert.testing import GraphEmulator
from airflow_provider_graphcert.testing.emulator.state import App, Tenant


@dataclass
class Directory:
    emulator: GraphEmulator
    tenant: Tenant
    app: App
    signer: Signer

    @property
    def endpoint(self) -> str:
        return self.emulator.token_endpoint(self.tenant)

    @property
    def scope(self) -> str:
        return f"{self.emulator.graph_resource}/.default"

    def assertion(self, **changes: Any) -> str:
        changes.setdefault("client_id", self.app.client_id)
        changes.setdefault("audience", self.endpoint)
        return make_assertion(changes.pop("signer", self.signer), **changes)

    def post(self, assertion: str | None = None, *, tenant: str | None = None, **form: Any) -> Any:
        body = token_form(self.app.client_id, assertion or self.assertion(), self.scope, **form)
        return post_token(self.emulator, tenant or self.tenant.tenant_id, body)


@pytest.fixture
def directory(graph_emulator: GraphEmulator, signer: Signer) -> Directory:
    tenant = graph_emulator.add_tenant(domains=["contoso.onmicrosoft.com"])
    app = graph_emulator.add_app(tenant, certificate=signer.certificate)
    return Directory(graph_emulator, tenant, app, signer)


def assert_entra_error(response: Any, status: int, error: str, code: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert body["error"] == error
    assert aadsts_codes(response) == [code]
    assert body["error_description"].startswith(f"AADSTS{code}: ")
    assert "\r\nTrace ID: " in body["error_description"] and "\r\nCorrelation ID: " in body["error_description"]
    assert response.headers["x-ms-request-id"] == body["trace_id"]
    return body


def test_a_well_formed_request_gets_a_bearer_token(directory: Directory) -> None:
    response = directory.post()

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == body["ext_expires_in"] == 3599
    assert "x-ms-request-id" in response.headers


def test_the_client_request_id_is_echoed_and_used_as_correlation_id(directory: Directory) -> None:
    body = token_form(directory.app.client_id, directory.assertion(audience="https://elsewhere"), directory.scope)
    response = post_token(
        directory.emulator, directory.tenant.tenant_id, body, headers={"client-request-id": "abc-123"}
    )

    assert response.headers["client-request-id"] == "abc-123"
    assert response.json()["correlation_id"] == "abc-123"


def test_a_signature_by_another_key_is_an_invalid_signature(directory: Directory, other_signer: Signer) -> None:
    response = directory.post(directory.assertion(signing_key=other_signer.key))

    body = assert_entra_error(response, 401, "invalid_client", 700027)
    assert "signature" in body["error_description"]


def test_an_unregistered_certificate_names_its_thumbprint(directory: Directory, other_signer: Signer) -> None:
    # x5t (SHA-1) names the certificate as the Entra portal shows it; x5t#S256 would give SHA-256.
    response = directory.post(directory.assertion(signer=other_signer, algorithm="RS256"))

    body = assert_entra_error(response, 401, "invalid_client", 700027)
    assert f"Thumbprint of key used by client: '{other_signer.sha1_hex.upper()}'" in body["error_description"]


@pytest.mark.parametrize(
    "audience",
    [
        "https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token",  # the real host, not this one
        "{authority}/{tenant}/oauth2/token",  # the v1 endpoint
        "{authority}/{tenant}/v2.0",  # the issuer
    ],
)
def test_an_audience_other_than_this_token_endpoint_is_refused(directory: Directory, audience: str) -> None:
    aud = audience.format(authority=directory.emulator.authority_host, tenant=directory.tenant.tenant_id)

    response = directory.post(directory.assertion(audience=aud))

    assert_entra_error(response, 401, "invalid_client", 700023)


def test_two_audience_values_are_refused(directory: Directory) -> None:
    response = directory.post(directory.assertion(audience=[directory.endpoint, directory.emulator.authority_host]))

    body = assert_entra_error(response, 401, "invalid_client", 5002741)
    assert "2 audience values provided, maximum allowed is 1" in body["error_description"]


def test_the_tenant_may_be_named_by_domain_in_url_and_audience(directory: Directory) -> None:
    domain_endpoint = f"{directory.emulator.authority_host}/contoso.onmicrosoft.com/oauth2/v2.0/token"

    by_domain = directory.post(directory.assertion(audience=domain_endpoint), tenant="contoso.onmicrosoft.com")
    guid_aud = directory.post(directory.assertion(), tenant="contoso.onmicrosoft.com")

    assert (by_domain.status_code, guid_aud.status_code) == (200, 200)


def test_an_expired_assertion_reports_its_time_range(directory: Directory) -> None:
    long_ago = time.time() - 3600

    response = directory.post(directory.assertion(now=long_ago, claims={"nbf": DROP}))

    body = assert_entra_error(response, 401, "invalid_client", 700024)
    assert "assertion valid from 1970-01-01T00:00:00.0000000Z" in body["error_description"]


def test_an_assertion_without_exp_is_outside_its_time_range(directory: Directory) -> None:
    response = directory.post(directory.assertion(claims={"exp": DROP}))

    assert_entra_error(response, 401, "invalid_client", 700024)


def test_a_not_yet_valid_assertion_is_refused(directory: Directory) -> None:
    response = directory.post(directory.assertion(now=time.time() + 3600))

    assert_entra_error(response, 401, "invalid_client", 700024)


@pytest.mark.parametrize("claim", ["iss", "sub"])
def test_iss_and_sub_must_be_the_client_id(directory: Directory, claim: str) -> None:
    response = directory.post(directory.assertion(claims={claim: "00000000-0000-0000-0000-000000000001"}))

    assert_entra_error(response, 401, "invalid_client", 700021)


def test_alg_none_is_not_a_supported_algorithm(directory: Directory) -> None:
    unsigned = jwt.encode(
        {"aud": directory.endpoint, "iss": directory.app.client_id, "sub": directory.app.client_id},
        "",
        algorithm="none",
        headers={"x5t": directory.signer.x5t},
    )

    body = assert_entra_error(directory.post(unsigned), 400, "invalid_request", 5002738)
    assert "'none' is not a supported signature algorithm" in body["error_description"]


def test_hs256_is_not_a_supported_algorithm(directory: Directory) -> None:
    assertion = directory.assertion(algorithm="HS256", signing_key="a-shared-secret-of-thirty-two-bytes!")

    assert_entra_error(directory.post(assertion), 400, "invalid_request", 5002738)


def test_es256_is_not_a_supported_algorithm(directory: Directory) -> None:
    assertion = directory.assertion(algorithm="ES256", signing_key=ec.generate_private_key(ec.SECP256R1()))

    assert_entra_error(directory.post(assertion), 400, "invalid_request", 5002738)


@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
def test_a_1024_bit_key_is_too_small(graph_emulator: GraphEmulator, weak_signer: Signer) -> None:
    tenant = graph_emulator.add_tenant()
    app = graph_emulator.add_app(tenant, certificate=weak_signer.certificate)
    directory = Directory(graph_emulator, tenant, app, weak_signer)

    body = assert_entra_error(directory.post(), 401, "invalid_client", 700027)
    assert "RSA key size 1024 is less than the minimum required 2048 bits" in body["error_description"]


def test_an_expired_registered_certificate_is_refused(graph_emulator: GraphEmulator, expired_signer: Signer) -> None:
    tenant = graph_emulator.add_tenant()
    app = graph_emulator.add_app(tenant, certificate=expired_signer.certificate)
    directory = Directory(graph_emulator, tenant, app, expired_signer)

    body = assert_entra_error(directory.post(), 401, "invalid_client", 700027)
    assert "The key used is expired" in body["error_description"]


def test_a_subject_name_issuer_app_needs_x5c(graph_emulator: GraphEmulator, sni_leaf: Signer) -> None:
    tenant = graph_emulator.add_tenant()
    app = graph_emulator.add_app(tenant, certificate=sni_leaf.certificate, subject_name_issuer=True)
    directory = Directory(graph_emulator, tenant, app, sni_leaf)

    body = assert_entra_error(directory.post(), 401, "invalid_client", 700027)
    assert "SNI may be configured on the app" in body["error_description"]
    assert "x5c" in body["error_description"]


def test_a_subject_name_issuer_app_accepts_a_renewed_certificate(
    graph_emulator: GraphEmulator, sni_leaf: Signer, renewed_sni_leaf: Signer, corporate_ca: Signer
) -> None:
    tenant = graph_emulator.add_tenant()
    app = graph_emulator.add_app(tenant, certificate=sni_leaf.certificate, subject_name_issuer=True)
    directory = Directory(graph_emulator, tenant, app, renewed_sni_leaf)
    # x5c entries as msal sends them: PEM body lines with newlines, then the issuing CA.
    leaf_lines = "\n".join(renewed_sni_leaf.certificate_pem.strip().splitlines()[1:-1])
    chain = [leaf_lines, corporate_ca.x5c[0]]

    response = directory.post(directory.assertion(headers={"x5c": chain}))

    assert response.status_code == 200, response.text


def test_a_subject_name_issuer_app_refuses_another_subject(
    graph_emulator: GraphEmulator, sni_leaf: Signer, other_signer: Signer
) -> None:
    tenant = graph_emulator.add_tenant()
    app = graph_emulator.add_app(tenant, certificate=sni_leaf.certificate, subject_name_issuer=True)
    directory = Directory(graph_emulator, tenant, app, other_signer)

    response = directory.post(directory.assertion(headers={"x5c": other_signer.x5c}))

    assert_entra_error(response, 401, "invalid_client", 700027)


def test_an_unknown_tenant_is_not_found(directory: Directory) -> None:
    response = directory.post(tenant="11111111-2222-3333-4444-555555555555")

    body = assert_entra_error(response, 400, "invalid_tenant", 90002)
    assert "Tenant '11111111-2222-3333-4444-555555555555' not found" in body["error_description"]


def test_the_common_alias_cannot_issue_app_tokens(directory: Directory) -> None:
    assert_entra_error(directory.post(tenant="common"), 400, "invalid_request", 50059)


def test_an_app_of_another_tenant_is_not_found(directory: Directory, signer: Signer) -> None:
    other_tenant = directory.emulator.add_tenant()
    endpoint = directory.emulator.token_endpoint(other_tenant)

    response = directory.post(directory.assertion(audience=endpoint), tenant=other_tenant.tenant_id)

    body = assert_entra_error(response, 400, "unauthorized_client", 700016)
    assert directory.app.client_id in body["error_description"]


@pytest.mark.parametrize(
    ("scope", "error", "code"),
    [
        ("{graph}/Sites.Read.All", "invalid_scope", 1002012),
        ("Sites.Read.All", "invalid_scope", 1002012),
        ("{graph}/.default https://management.azure.com/.default", "invalid_scope", 700022),
        ("https://management.azure.com/.default", "invalid_resource", 500011),
    ],
)
def test_the_scope_must_be_one_known_resource_with_default(
    directory: Directory, scope: str, error: str, code: int
) -> None:
    response = directory.post(scope=scope.format(graph=directory.emulator.graph_resource))

    assert_entra_error(response, 400, error, code)


@pytest.mark.parametrize("missing", ["grant_type", "client_id", "scope", "client_assertion_type"])
def test_a_missing_parameter_is_named(directory: Directory, missing: str) -> None:
    without: dict[str, Any] = {missing: DROP}

    body = assert_entra_error(directory.post(**without), 400, "invalid_request", 900144)
    assert f"'{missing}'" in body["error_description"]


def test_only_the_client_credentials_grant_is_supported(directory: Directory) -> None:
    assert_entra_error(directory.post(grant_type="password"), 400, "unsupported_grant_type", 70003)


def test_the_client_assertion_type_must_be_jwt_bearer(directory: Directory) -> None:
    response = directory.post(client_assertion_type="urn:ietf:params:oauth:client-assertion-type:saml2-bearer")

    assert_entra_error(response, 400, "invalid_request", 90011)


def test_a_request_without_any_credential_is_an_invalid_client(directory: Directory) -> None:
    assert_entra_error(directory.post(client_assertion=DROP), 401, "invalid_client", 7000216)


def test_a_malformed_assertion_is_invalid(directory: Directory) -> None:
    assert_entra_error(directory.post("not.a-jwt"), 400, "invalid_request", 50027)


def test_msal_style_padded_thumbprints_and_float_dates_are_accepted(directory: Directory) -> None:
    padded = directory.signer.x5t + "=" * (-len(directory.signer.x5t) % 4)
    assertion = directory.assertion(
        algorithm="RS256", headers={"x5t": padded}, claims={"nbf": DROP, "exp": time.time() + 600.68}
    )

    assert directory.post(assertion).status_code == 200


def test_a_rotated_out_certificate_stops_working(directory: Directory, other_signer: Signer) -> None:
    directory.app.add_certificate(other_signer.certificate)
    directory.app.remove_certificate(directory.signer.sha1_hex)

    old = directory.post()
    new = directory.post(directory.assertion(signer=other_signer))

    assert_entra_error(old, 401, "invalid_client", 700027)
    assert new.status_code == 200


def test_every_token_request_is_logged_per_app(directory: Directory) -> None:
    directory.post()
    directory.post(directory.assertion(audience="https://wrong"))

    log = directory.emulator.state.token_requests
    assert log.count(directory.app) == 2
    assert log.count(directory.app, succeeded=True) == 1
    assert [record.aadsts for record in log.records(directory.app, succeeded=False)] == [700023]
