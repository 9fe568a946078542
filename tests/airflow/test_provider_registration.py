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
    "retry_max_job_wait_seconds",
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


def _task_modules(package: str) -> set[str]:
    """Modules of ``package`` that define an operator or sensor class of their own."""
    import importlib
    import inspect
    import pkgutil

    from airflow.sdk import BaseOperator

    found = set()
    for module_info in pkgutil.iter_modules(importlib.import_module(package).__path__):
        module = importlib.import_module(f"{package}.{module_info.name}")
        for _, cls in inspect.getmembers(module, inspect.isclass):
            public = not cls.__name__.startswith("_") and "Base" not in cls.__name__
            if public and issubclass(cls, BaseOperator) and cls.__module__ == module.__name__:
                found.add(module.__name__)
    return found


def test_provider_info_lists_every_module_with_operators_and_sensors() -> None:
    info = get_provider_info()
    integrations = {i["integration-name"] for i in info["integrations"]}
    for kind in ("hooks", "operators", "sensors"):
        assert {entry["integration-name"] for entry in info[kind]} <= integrations
    listed = {kind: {m for entry in info[kind] for m in entry["python-modules"]} for kind in ("operators", "sensors")}
    assert listed["operators"] == _task_modules("airflow_provider_graphcert.operators")
    assert listed["sensors"] == _task_modules("airflow_provider_graphcert.sensors")


def test_retry_fields_quote_the_defaults_they_leave_in_place() -> None:
    from airflow_provider_graphcert.graph.retry import RetryPolicy
    from airflow_provider_graphcert.settings import RETRY_FIELDS

    (conn_type,) = info_types = get_provider_info()["connection-types"]
    assert len(info_types) == 1
    defaults = RetryPolicy()
    for field, attribute in RETRY_FIELDS.items():
        description = conn_type["conn-fields"][field]["description"]
        assert description.endswith(f"default {getattr(defaults, attribute):g}."), (field, description)
