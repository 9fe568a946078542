"""The Airflow face behaves as Airflow users expect: get_conn(), hook arguments, the ``hook`` property.

A DAG author sets the retry budget in the connection (form fields) or per task (``hook_params``),
overrides ``hook`` in a subclass, and reads errors whose hint is a log line of its own.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cached_property
from pathlib import Path

import pytest

from airflow_provider_graphcert.auth.selfsigned import SelfSignedCertificate
from airflow_provider_graphcert.errors import ConfigurationError, GraphAccessDeniedError, GraphThrottledError
from airflow_provider_graphcert.graph.client import GraphClient
from airflow_provider_graphcert.graph.retry import RetryPolicy
from airflow_provider_graphcert.hooks.graph_cert import GraphCertHook
from airflow_provider_graphcert.operators.base import split_hint
from airflow_provider_graphcert.operators.graph import GraphRequestOperator
from airflow_provider_graphcert.operators.sharepoint import (
    SharePointDownloadOperator,
    SharePointListExportOperator,
    SharePointUploadOperator,
)
from airflow_provider_graphcert.sensors.sharepoint import SharePointFileSensor
from airflow_provider_graphcert.testing.emulator.server import GraphEmulator
from airflow_provider_graphcert.testing.emulator.state import App, Tenant

ConnectionFactory = Callable[..., str]
FOLDER_URL = "https://contoso.sharepoint.com/sites/Finance/Shared Documents/Inbox"


def _throttle_every_request(emulator: GraphEmulator) -> None:
    # Retry-After 0: the client honours it without waiting, so the test counts attempts, not seconds.
    emulator.faults.add("/v1.0/sites", status=429, retry_after=0)


def _attempts(emulator: GraphEmulator) -> int:
    return sum(1 for fault in emulator.faults.injected if fault.status == 429)


def test_get_conn_returns_the_graph_client_and_the_old_names_still_work(
    graph_emulator: GraphEmulator, app: App, airflow_connection: ConnectionFactory, pem_file: Path
) -> None:
    airflow_connection(app, certificate_path=str(pem_file))
    hook = GraphCertHook()
    client = hook.get_conn()
    assert isinstance(client, GraphClient)
    assert hook.get_conn() is client
    assert client.get_json("/sites/root")["id"].startswith("contoso.sharepoint.com,")
    with pytest.warns(DeprecationWarning, match="get_conn"):
        assert hook.get_client() is client
    with pytest.warns(DeprecationWarning, match="get_conn"):
        assert hook.client is client


def test_a_connection_with_a_two_attempt_budget_gives_up_after_two_throttled_tries(
    graph_emulator: GraphEmulator, app: App, airflow_connection: ConnectionFactory, pem_file: Path
) -> None:
    airflow_connection(app, certificate_path=str(pem_file), retry_max_attempts="2", retry_backoff_seconds="0")
    _throttle_every_request(graph_emulator)
    with pytest.raises(GraphThrottledError):
        GraphCertHook().get_conn().get_json("/sites/root")
    assert _attempts(graph_emulator) == 2


def test_the_connection_form_fields_become_the_clients_retry_policy(
    graph_emulator: GraphEmulator, app: App, airflow_connection: ConnectionFactory, pem_file: Path
) -> None:
    airflow_connection(
        app,
        certificate_path=str(pem_file),
        retry_max_attempts=3,
        retry_backoff_seconds=0.25,
        retry_backoff_max_seconds=4,
        retry_max_total_wait_seconds=30,
    )
    policy = GraphCertHook().get_conn().retry
    assert policy is not None
    assert (policy.max_attempts, policy.backoff_initial, policy.backoff_max, policy.max_total_wait) == (3, 0.25, 4, 30)


def test_empty_retry_fields_keep_the_default_policy(
    graph_emulator: GraphEmulator, app: App, airflow_connection: ConnectionFactory, pem_file: Path
) -> None:
    airflow_connection(app, certificate_path=str(pem_file), retry_max_attempts="", retry_backoff_seconds=None)
    assert GraphCertHook().get_conn().retry == RetryPolicy()


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("retry_max_attempts", "many", "must be a number"),
        ("retry_max_attempts", "0", "at least 1"),
        ("retry_max_attempts", "2.5", "whole number"),
        ("retry_max_total_wait_seconds", "-1", "0 or more"),
        ("retry_max_total_wait_seconds", "nan", "finite number"),
        ("retry_max_job_wait_seconds", "inf", "finite number"),
        ("retry_backoff_seconds", "90", "more than retry_backoff_max_seconds"),
    ],
)
def test_a_bad_retry_field_is_named_with_the_fix(
    graph_emulator: GraphEmulator,
    app: App,
    airflow_connection: ConnectionFactory,
    pem_file: Path,
    field: str,
    value: str,
    message: str,
) -> None:
    airflow_connection(app, certificate_path=str(pem_file), **{field: value})
    with pytest.raises(ConfigurationError, match=message) as caught:
        GraphCertHook().get_conn()
    assert caught.value.field == field


def test_a_hook_argument_overrides_the_connections_retry_budget(
    graph_emulator: GraphEmulator, app: App, airflow_connection: ConnectionFactory, pem_file: Path
) -> None:
    airflow_connection(app, certificate_path=str(pem_file), retry_max_attempts="2")
    _throttle_every_request(graph_emulator)
    hook = GraphCertHook(retry_policy=RetryPolicy(max_attempts=3, backoff_initial=0))
    with pytest.raises(GraphThrottledError):
        hook.get_conn().get_json("/sites/root")
    assert _attempts(graph_emulator) == 3


def test_a_task_sets_its_own_retry_budget_through_hook_params(
    graph_emulator: GraphEmulator, app: App, airflow_connection: ConnectionFactory, pem_file: Path
) -> None:
    airflow_connection(app, certificate_path=str(pem_file))
    _throttle_every_request(graph_emulator)
    operator = GraphRequestOperator(
        task_id="root_site", path="/sites/root", hook_params={"retry_policy": RetryPolicy(max_attempts=4)}
    )
    assert operator.hook is operator.hook  # built once per task
    with pytest.raises(GraphThrottledError):
        operator.execute({})  # type: ignore[arg-type]
    assert _attempts(graph_emulator) == 4


def test_a_subclass_supplies_its_own_hook_through_the_hook_property(
    graph_emulator: GraphEmulator, app: App, airflow_connection: ConnectionFactory, pem_file: Path
) -> None:
    airflow_connection(app, certificate_path=str(pem_file), conn_id="finance_graph")
    built: list[GraphCertHook] = []

    class FinanceRequestOperator(GraphRequestOperator):
        @cached_property
        def hook(self) -> GraphCertHook:
            hook = GraphCertHook("finance_graph", timeout=5)
            built.append(hook)
            return hook

    site = FinanceRequestOperator(task_id="root_site", path="/sites/root").execute({})  # type: ignore[arg-type]
    assert site["id"].startswith("contoso.sharepoint.com,")
    assert [hook.get_conn().timeout for hook in built] == [5]


def test_the_url_and_the_site_library_path_pieces_name_the_same_folder(
    graph_emulator: GraphEmulator, app: App, airflow_connection: ConnectionFactory, pem_file: Path, tmp_path: Path
) -> None:
    site = graph_emulator.graph.add_site("contoso.sharepoint.com", "/sites/Finance", "Finance")
    site.add_library("Documents").put_file("Inbox/daily.csv", b"amount\n10\n")
    airflow_connection(app, certificate_path=str(pem_file))
    by_url = SharePointDownloadOperator(task_id="by_url", url=FOLDER_URL, local_dir=str(tmp_path / "a"))
    by_pieces = SharePointDownloadOperator(
        task_id="by_pieces",
        site_url="https://contoso.sharepoint.com/sites/Finance",
        library="Documents",
        path="/Inbox/",
        local_dir=str(tmp_path / "b"),
    )
    for operator in (by_url, by_pieces):
        assert operator.execute({})["files"] == ["daily.csv"]  # type: ignore[arg-type]
    assert (tmp_path / "b" / "daily.csv").read_bytes() == b"amount\n10\n"


def test_the_upload_operator_sends_a_store_prefix_given_as_source(
    graph_emulator: GraphEmulator,
    tenant: Tenant,
    rsa_cert: SelfSignedCertificate,
    airflow_connection: ConnectionFactory,
    pem_file: Path,
) -> None:
    import fsspec

    app = graph_emulator.add_app(tenant, rsa_cert.certificate, roles=["Sites.ReadWrite.All"])
    site = graph_emulator.graph.add_site("contoso.sharepoint.com", "/sites/Finance", "Finance")
    library = site.add_library("Documents")
    store = fsspec.filesystem("memory")
    store.pipe({"/outbox-op/a.csv": b"a\n1\n", "/outbox-op/sub/b.csv": b"b\n2\n"})
    airflow_connection(app, certificate_path=str(pem_file))
    result = SharePointUploadOperator(task_id="push", source="memory://outbox-op", url=FOLDER_URL).execute({})
    assert result["uploaded"] == 2
    stored = library.resolve("Inbox/sub/b.csv").blob
    assert stored is not None and stored.read_bytes() == b"b\n2\n"
    with pytest.raises(ConfigurationError, match="exactly one") as info:
        SharePointUploadOperator(task_id="both", source="memory://x", local_path="/tmp/x", url=FOLDER_URL)
    assert info.value.field == "source"


def test_a_list_export_asked_for_json_fails_when_the_dag_is_parsed() -> None:
    with pytest.raises(ConfigurationError, match="must be one of csv, jsonl") as caught:
        SharePointListExportOperator(
            task_id="export", site_url="https://contoso.sharepoint.com/sites/Finance", list_name="Invoices",
            output_path="/tmp/invoices.json", output_format="json",
        )  # fmt: skip
    assert caught.value.field == "output_format"


def test_every_poke_says_what_the_sensor_looked_for_and_found(
    graph_emulator: GraphEmulator,
    app: App,
    airflow_connection: ConnectionFactory,
    pem_file: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    documents = graph_emulator.graph.add_site("contoso.sharepoint.com", "/sites/Finance", "Finance").add_library(
        "Documents"
    )
    airflow_connection(app, certificate_path=str(pem_file))
    sensor = SharePointFileSensor(
        task_id="wait", url=FOLDER_URL, pattern="daily-*.csv", modified_after="2026-01-01T00:00:00Z"
    )
    assert not sensor.poke({}).is_done  # type: ignore[arg-type]
    assert (
        f"Looked for files matching 'daily-*.csv' changed after 2026-01-01T00:00:00Z at {FOLDER_URL}: none yet."
        in capsys.readouterr().out  # the task logger (structlog) writes to stdout outside a worker
    )
    documents.put_file("Inbox/daily-2026-01-02.csv", b"amount\n1\n")
    assert sensor.poke({}).is_done  # type: ignore[arg-type]
    assert f"Found 1 matching file(s) at {FOLDER_URL}, e.g. daily-2026-01-02.csv." in capsys.readouterr().out


def test_a_failed_task_logs_what_to_do_on_its_own_line(
    graph_emulator: GraphEmulator,
    app: App,
    airflow_connection: ConnectionFactory,
    pem_file: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    airflow_connection(app, certificate_path=str(pem_file))
    with pytest.raises(GraphAccessDeniedError):
        GraphRequestOperator(task_id="groups", path="/groups").execute({})  # type: ignore[arg-type]
    errors = [line for line in capsys.readouterr().out.splitlines() if "[error" in line]
    failed, hint = errors[-2:]
    assert "Graph GET /v1.0/groups failed with HTTP 403" in failed
    assert "Group.Read.All" not in failed
    assert "What to do: The app probably lacks the application permission Group.Read.All" in hint


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ("tenant_id is empty. Copy the tenant ID.", ("tenant_id is empty.", "Copy the tenant ID.")),
        ("ca_bundle 'x' is missing; give a PEM file.", ("ca_bundle 'x' is missing;", "give a PEM file.")),
        ("Use a URL, e.g. https://x/y. Then retry.", ("Use a URL, e.g. https://x/y.", "Then retry.")),
        ("One sentence only.", ("One sentence only.", None)),
    ],
)
def test_error_messages_split_into_what_failed_and_what_to_do(message: str, expected: tuple[str, str | None]) -> None:
    assert split_hint(message) == expected
