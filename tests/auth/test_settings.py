"""Each mistake in a connection gets one error that names the field and the fix."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from airflow_provider_graphcert.auth.credentials import (
    AssertionFileCredential,
    CertificateCredential,
    StaticAssertionCredential,
)
from airflow_provider_graphcert.errors import ConfigurationError
from airflow_provider_graphcert.settings import ConnectionSettings

TENANT = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"
CLIENT = "11111111-2222-3333-4444-555555555555"


def settings(extra: dict[str, Any], login: str | None = CLIENT, password: str | None = None) -> ConnectionSettings:
    return ConnectionSettings.from_fields(login=login, password=password, extra=extra)


def test_minimal_certificate_connection_uses_public_cloud(pem_file: Path) -> None:
    s = settings({"tenant_id": TENANT, "certificate_path": str(pem_file)})
    assert s.authority_host == "https://login.microsoftonline.com"
    assert s.graph_url == "https://graph.microsoft.com"
    assert s.scope == "https://graph.microsoft.com/.default"
    assert s.verify is True
    assert isinstance(s.credential, CertificateCredential)
    assert s.credential.algorithm == "PS256"
    assert s.token_provider().token_endpoint == f"https://login.microsoftonline.com/{TENANT}/oauth2/v2.0/token"


@pytest.mark.parametrize(
    ("cloud", "authority", "graph"),
    [
        ("usgov", "https://login.microsoftonline.us", "https://graph.microsoft.us"),
        ("usgov-dod", "https://login.microsoftonline.us", "https://dod-graph.microsoft.us"),
        ("china", "https://login.partner.microsoftonline.cn", "https://microsoftgraph.chinacloudapi.cn"),
    ],
)
def test_national_clouds(pem_file: Path, cloud: str, authority: str, graph: str) -> None:
    s = settings({"tenant_id": TENANT, "certificate_path": str(pem_file), "cloud": cloud})
    assert (s.authority_host, s.graph_url, s.scope) == (authority, graph, f"{graph}/.default")


def test_explicit_hosts_override_the_cloud(pem_file: Path) -> None:
    s = settings(
        {
            "tenant_id": "contoso.onmicrosoft.com",
            "certificate_path": str(pem_file),
            "cloud": "usgov",
            "authority_host": "https://127.0.0.1:8443/",
            "graph_url": "https://127.0.0.1:9443",
            "signing_algorithm": "rs256",
            "send_certificate_chain": "true",
            "proxies": "http://proxy.internal:3128",
            "timeout": "12.5",
        }
    )
    assert s.authority_host == "https://127.0.0.1:8443"
    assert s.scope == "https://127.0.0.1:9443/.default"
    assert isinstance(s.credential, CertificateCredential)
    assert (s.credential.algorithm, s.credential.include_chain) == ("RS256", True)
    assert s.proxies == {"http": "http://proxy.internal:3128", "https": "http://proxy.internal:3128"}
    assert s.timeout == 12.5


def test_other_credential_sources(tmp_path: Path) -> None:
    assert isinstance(
        settings({"tenant_id": TENANT, "client_assertion": "a.b.c"}).credential, StaticAssertionCredential
    )
    assert isinstance(
        settings({"tenant_id": TENANT, "client_assertion_file": str(tmp_path / "t")}).credential,
        AssertionFileCredential,
    )


BAD_INPUTS = [
    ({"certificate_path": "x"}, CLIENT, "tenant_id", r"Directory \(tenant\) ID"),
    ({"tenant_id": "not a tenant", "certificate_path": "x"}, CLIENT, "tenant_id", "neither a GUID"),
    ({"tenant_id": "common", "certificate_path": "x"}, CLIENT, "tenant_id", "multi-tenant alias"),
    ({"tenant_id": TENANT, "certificate_path": "x"}, None, "login", r"Application \(client\) ID"),
    ({"tenant_id": TENANT, "certificate_path": "x"}, "my-app", "login", "not a GUID"),
    ({"tenant_id": TENANT}, CLIENT, "certificate_path", "no credential"),
    (
        {"tenant_id": TENANT, "certificate_path": "x", "client_assertion": "y"},
        CLIENT,
        "client_assertion",
        "exactly one",
    ),
    ({"tenant_id": TENANT, "certificate_path": "x", "cloud": "mars"}, CLIENT, "cloud", "public, usgov"),
    (
        {"tenant_id": TENANT, "certificate_path": "x", "authority_host": "http://login"},
        CLIENT,
        "authority_host",
        "https",
    ),
    ({"tenant_id": TENANT, "certificate_path": "x", "graph_url": "https://g/v1.0"}, CLIENT, "graph_url", "bare origin"),
    ({"tenant_id": TENANT, "certificate_path": "x", "scope": "https://g/User.Read"}, CLIENT, "scope", "/.default"),
    (
        {"tenant_id": TENANT, "certificate_path": "x", "signing_algorithm": "ES256"},
        CLIENT,
        "signing_algorithm",
        "PS256",
    ),
    (
        {"tenant_id": TENANT, "certificate_path": "x", "ca_bundle": "/nope/ca.pem"},
        CLIENT,
        "ca_bundle",
        "does not exist",
    ),
    ({"tenant_id": TENANT, "certificate_path": "x", "ca_bundle": "false"}, CLIENT, "ca_bundle", "cannot turn TLS"),
    ({"tenant_id": TENANT, "certificate_path": "x", "timeout": "soon"}, CLIENT, "timeout", "number of seconds"),
    ({"tenant_id": TENANT, "certificate_path": "x", "timeout": -1}, CLIENT, "timeout", "more than 0"),
    ({"tenant_id": TENANT, "certificate_path": "x", "proxies": "{bad json"}, CLIENT, "proxies", "not valid JSON"),
    (
        {"tenant_id": TENANT, "certificate_path": "x", "send_certificate_chain": "maybe"},
        CLIENT,
        "send_certificate_chain",
        "true or false",
    ),
    ({"tenant_id": TENANT, "certificate_data": "%%%"}, CLIENT, "certificate_data", "neither PEM"),
    ({"tenant_id": TENANT, "certificate_path": "x", "proxies": "[1, 2]"}, CLIENT, "proxies", "not a proxy URL"),
    ({"tenant_id": TENANT, "certificate_path": "x", "proxies": "proxy:port"}, CLIENT, "proxies", "not a proxy URL"),
    (
        {"tenant_id": TENANT, "certificate_path": "x", "proxies": {"https": "ftp://proxy"}},
        CLIENT,
        "proxies",
        "not a proxy URL",
    ),
    (
        {"tenant_id": TENANT, "certificate_path": "x", "authority_host": "https://me:secret@login.example.com"},
        CLIENT,
        "authority_host",
        "must not hold a user name or password",
    ),
    ({"tenant_id": TENANT, "certificate_path": "x", "timeout": "nan"}, CLIENT, "timeout", "finite number"),
    ({"tenant_id": TENANT, "certificate_path": "x", "timeout": float("inf")}, CLIENT, "timeout", "finite number"),
    ({"tenant_id": TENANT, "certificate_path": "x", "timeout": "-inf"}, CLIENT, "timeout", "finite number"),
    ({"tenant_id": TENANT, "certificate_path": "x", "timeout": True}, CLIENT, "timeout", "number of seconds"),
    (
        {"tenant_id": TENANT, "certificate_path": "x", "certificate_expiry_warning_days": float("inf")},
        CLIENT,
        "certificate_expiry_warning_days",
        "finite number",
    ),
    (
        {"tenant_id": TENANT, "certificate_path": "x", "certificate_expiry_warning_days": "NaN"},
        CLIENT,
        "certificate_expiry_warning_days",
        "finite number",
    ),
    (
        {"tenant_id": TENANT, "certificate_path": "x", "certificate_expiry_warning_days": 7.5},
        CLIENT,
        "certificate_expiry_warning_days",
        "whole number",
    ),
]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("[1, 2]", "extra is a list in JSON"),
        ('"tenant_id=contoso"', "extra is a string in JSON"),
        ("tenant_id=contoso", "extra is not valid JSON"),
        ("{'tenant_id': 'contoso'}", "extra is not valid JSON"),
        (["tenant_id"], "extra is a list"),
        ("7", "extra is a number"),
    ],
)
def test_an_extra_that_is_not_a_json_object_is_blamed_on_extra(extra: Any, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message) as info:
        ConnectionSettings.from_fields(login=CLIENT, password=None, extra=extra)
    assert info.value.field == "extra"
    assert "tenant_id is empty" not in str(info.value)


@pytest.mark.parametrize(("extra", "login", "field", "message"), BAD_INPUTS)
def test_bad_connection_fields(extra: dict[str, Any], login: str | None, field: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message) as info:
        settings(extra, login=login)
    assert info.value.field == field


def test_the_job_wide_throttling_budget_comes_from_the_connection(pem_file: Path) -> None:
    extra = {"tenant_id": TENANT, "certificate_path": str(pem_file)}
    assert settings(extra).retry.max_job_wait == 900.0
    assert settings({**extra, "retry_max_job_wait_seconds": "120"}).retry.max_job_wait == 120.0
