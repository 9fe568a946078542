"""Three hosts on loopback HTTPS, discovery documents shaped like Entra's, and the connection it hands out."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests

from airflow_provider_graphcert.testing import GraphEmulator


def test_the_three_origins_are_distinct_https_hosts(graph_emulator: GraphEmulator) -> None:
    origins = [graph_emulator.authority_host, graph_emulator.graph_url, graph_emulator.files_url]

    assert len({urlsplit(origin).port for origin in origins}) == 3
    assert all(origin.startswith("https://127.0.0.1:") for origin in origins)
    metadata = "/v1.0/$metadata"
    on_graph = requests.get(graph_emulator.graph_url + metadata, verify=graph_emulator.ca_bundle, timeout=10)
    on_authority = requests.get(graph_emulator.authority_host + metadata, verify=graph_emulator.ca_bundle, timeout=10)
    assert (on_graph.status_code, on_authority.status_code) == (501, 404)
    assert on_graph.json()["error"]["code"] == "emulatorNotImplemented"


def test_the_certificate_is_valid_for_localhost_too(graph_emulator: GraphEmulator) -> None:
    tenant = graph_emulator.add_tenant()
    port = urlsplit(graph_emulator.authority_host).port

    response = requests.get(
        f"https://localhost:{port}/{tenant.tenant_id}/v2.0/.well-known/openid-configuration",
        verify=graph_emulator.ca_bundle,
        timeout=10,
    )

    assert response.status_code == 200
    assert response.json()["token_endpoint"] == f"https://localhost:{port}/{tenant.tenant_id}/oauth2/v2.0/token"


def test_discovery_names_the_tenant_by_guid(graph_emulator: GraphEmulator) -> None:
    tenant = graph_emulator.add_tenant(domains=["fabrikam.onmicrosoft.com"])
    base = f"{graph_emulator.authority_host}/{tenant.tenant_id}"

    document = requests.get(
        f"{graph_emulator.authority_host}/fabrikam.onmicrosoft.com/v2.0/.well-known/openid-configuration",
        verify=graph_emulator.ca_bundle,
        timeout=10,
    ).json()

    assert document["token_endpoint"] == f"{base}/oauth2/v2.0/token"
    assert document["issuer"] == f"{base}/v2.0"
    assert document["jwks_uri"] == f"{base}/discovery/v2.0/keys"
    assert "private_key_jwt" in document["token_endpoint_auth_methods_supported"]
    assert document["msgraph_host"] == urlsplit(graph_emulator.graph_url).netloc
    for field in ("authorization_endpoint", "device_authorization_endpoint", "tenant_region_scope"):
        assert document[field]
    # Entra's v2.0 document lists 19 claims; clients that check for e.g. "email" find it.
    assert len(document["claims_supported"]) == 19
    assert {"preferred_username", "email", "msgraph_host", "c_hash"} <= set(document["claims_supported"])


def test_discovery_of_an_unknown_tenant_is_90002(graph_emulator: GraphEmulator) -> None:
    response = requests.get(
        f"{graph_emulator.authority_host}/nobody.onmicrosoft.com/v2.0/.well-known/openid-configuration",
        verify=graph_emulator.ca_bundle,
        timeout=10,
    )

    assert response.status_code == 400
    assert response.json()["error_codes"] == [90002]


def test_instance_discovery_answers_for_its_own_host(graph_emulator: GraphEmulator) -> None:
    url = f"{graph_emulator.authority_host}/common/discovery/instance"
    own = {"authorization_endpoint": "https://127.0.0.1/some-tenant/oauth2/v2.0/authorize", "api-version": "1.0"}
    foreign = {**own, "authorization_endpoint": "https://login.example.com/t/oauth2/v2.0/authorize"}

    known = requests.get(url, params=own, verify=graph_emulator.ca_bundle, timeout=10)
    unknown = requests.get(url, params=foreign, verify=graph_emulator.ca_bundle, timeout=10)

    assert known.json()["tenant_discovery_endpoint"].endswith("/some-tenant/v2.0/.well-known/openid-configuration")
    assert known.json()["api-version"] == "1.1"
    assert unknown.json()["error"] == "invalid_instance"


def test_the_connection_points_a_hook_at_the_emulator(graph_emulator: GraphEmulator) -> None:
    tenant = graph_emulator.add_tenant()
    app = graph_emulator.add_app(tenant)

    connection = json.loads(graph_emulator.connection_json(app, certificate_path="/secrets/graphcert.pem"))

    assert connection == {
        "conn_type": "msgraph_cert",
        "login": app.client_id,
        "extra": {
            "tenant_id": tenant.tenant_id,
            "authority_host": graph_emulator.authority_host,
            "graph_url": graph_emulator.graph_url,
            "ca_bundle": graph_emulator.ca_bundle,
            "certificate_path": "/secrets/graphcert.pem",
        },
    }


def test_stopping_the_emulator_frees_its_ports_and_thread() -> None:
    import threading

    before = set(threading.enumerate())
    with GraphEmulator() as emulator:
        url = emulator.authority_host
        requests.get(url, verify=emulator.ca_bundle, timeout=10)  # leave a keep-alive connection open

    assert set(threading.enumerate()) <= before
    try:
        requests.get(url, verify=False, timeout=2)  # noqa: S501 - only checking that nothing listens
        raise AssertionError("the port still answers")
    except requests.ConnectionError:
        pass


def test_the_pytest_plugin_imports_nothing_heavy() -> None:
    code = (
        "import sys, airflow_provider_graphcert.testing.pytest_plugin as p;"
        "heavy = [m for m in ('airflow', 'uvicorn', 'starlette', 'cryptography') if m in sys.modules];"
        "print(heavy); sys.exit(1 if heavy else 0)"
    )

    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)

    assert result.returncode == 0, result.stdout + result.stderr


def test_each_origin_logs_what_reached_it(graph_emulator: GraphEmulator) -> None:
    headers = {"Authorization": "Bearer not-for-the-download-host"}

    requests.get(
        f"{graph_emulator.graph_url}/v1.0/$metadata", headers=headers, verify=graph_emulator.ca_bundle, timeout=10
    )
    requests.get(f"{graph_emulator.files_url}/download/1?x=1", verify=graph_emulator.ca_bundle, timeout=10)

    (graph_request,) = graph_emulator.requests.records("graph")
    (files_request,) = graph_emulator.requests.records("files")
    assert graph_request.headers["authorization"] == "Bearer not-for-the-download-host"
    assert (files_request.path, files_request.query) == ("/download/1", "x=1")
    assert "authorization" not in files_request.headers


def test_a_relative_state_dir_still_gives_a_connection_that_works_from_elsewhere(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with GraphEmulator(state_dir="emu-state") as emulator:
        app = emulator.add_app(emulator.add_tenant())
        ca_bundle = emulator.connection(app)["extra"]["ca_bundle"]
        monkeypatch.chdir(tmp_path.parent)
        response = requests.get(f"{emulator.graph_url}/v1.0/users", verify=ca_bundle, timeout=10)
    assert Path(ca_bundle).is_absolute()
    assert response.status_code == 401
