"""Airflow finds the provider, validates its info, and shows the connection form fields."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import airflow
import jsonschema

from airflow_provider_graphcert import get_provider_info

EXPECTED_EXTRA_FIELDS = {
    "tenant_id",
    "certificate_path",
    "key_path",
    "certificate_data",
    "signing_algorithm",
    "send_certificate_chain",
    "cloud",
    "authority_host",
    "graph_url",
    "scope",
    "client_assertion",
    "client_assertion_file",
    "ca_bundle",
    "proxies",
    "timeout",
    "certificate_expiry_warning_days",
    "retry_max_attempts",
    "retry_backoff_seconds",
    "retry_backoff_max_seconds",
    "retry_max_total_wait_seconds",
}


def test_provider_info_is_valid_against_airflows_own_schema() -> None:
    schema_path = Path(airflow.__file__).parent / "provider_info.schema.json"
    jsonschema.validate(get_provider_info(), json.loads(schema_path.read_text()))


def test_provider_info_names_the_installed_distribution() -> None:
    from importlib.metadata import entry_points

    (entry,) = [
        e for e in entry_points(group="apache_airflow_provider") if e.value.startswith("airflow_provider_graphcert")
    ]
    assert entry.load()()["package-name"] == "airflow-provider-graphcert"


def test_hook_meta_service_shows_the_connection_form() -> None:
    from airflow.api_fastapi.core_api.services.ui.connections import HookMetaService

    (meta,) = [m for m in HookMetaService.hook_meta_data() if m.connection_type == "msgraph_cert"]
    assert meta.hook_name == "Microsoft Graph (client certificate)"
    assert meta.hook_class_name == "airflow_provider_graphcert.hooks.graph_cert.GraphCertHook"
    standard = meta.standard_fields
    assert standard is not None
    assert standard.login is not None and standard.login.title == "Client ID"
    assert standard.password is not None and standard.password.title == "Certificate password"
    assert standard.host is not None and standard.host.hidden
    assert standard.port is not None and standard.port.hidden
    extra = dict(meta.extra_fields or {})
    assert set(extra) == EXPECTED_EXTRA_FIELDS
    assert extra["certificate_data"]["schema"]["format"] == "password"
    assert extra["client_assertion"]["schema"]["format"] == "password"
    assert extra["signing_algorithm"]["value"] == "PS256"


def test_airflow_providers_list_shows_the_provider() -> None:
    result = subprocess.run(
        [str(Path(sys.executable).parent / "airflow"), "providers", "list", "--output", "json"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    providers = {p["package_name"]: p for p in json.loads(result.stdout[result.stdout.index("[") :])}
    assert providers["airflow-provider-graphcert"]["version"] == "0.1.0"
