"""Scheduled Graph exports with GraphRequestOperator, through a real Airflow connection."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from airflow_provider_graphcert.errors import ConfigurationError, GraphAccessDeniedError
from airflow_provider_graphcert.operators.graph import GraphRequestOperator
from airflow_provider_graphcert.testing.emulator.server import GraphEmulator
from airflow_provider_graphcert.testing.emulator.state import App

ConnectionFactory = Callable[..., str]


@pytest.mark.slow
def test_50000_users_exported_to_json_lines(
    graph_emulator: GraphEmulator, app: App, airflow_connection: ConnectionFactory, pem_path: Path, tmp_path: Path
) -> None:
    graph_emulator.graph.add_users(50_000)
    airflow_connection(app, certificate_path=str(pem_path))
    output = tmp_path / "exports" / "users.jsonl"
    operator = GraphRequestOperator(
        task_id="export_users",
        path="/users",
        query={"$select": "id,displayName,userPrincipalName", "$top": 999},
        paginate=True,
        output_path=str(output),
    )
    result = operator.execute({})  # type: ignore[arg-type]
    assert result == {"path": str(output), "count": 50_000}
    lines = output.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 50_000
    ids = {json.loads(line)["id"] for line in lines}
    assert len(ids) == 50_000
    assert not list(output.parent.glob(".*.part"))  # nothing half-written left behind
    assert graph_emulator.state.token_requests.count(app) == 1


def test_small_results_go_to_xcom_and_large_ones_are_refused(
    graph_emulator: GraphEmulator, app: App, airflow_connection: ConnectionFactory, pem_path: Path
) -> None:
    graph_emulator.graph.add_users(30)
    airflow_connection(app, certificate_path=str(pem_path))
    small = GraphRequestOperator(task_id="users", path="/users", paginate=True, query={"$top": 10})
    assert len(small.execute({})) == 30  # type: ignore[arg-type]
    capped = GraphRequestOperator(task_id="capped", path="/users", paginate=True, max_xcom_items=20)
    with pytest.raises(ConfigurationError, match="set output_path"):
        capped.execute({})  # type: ignore[arg-type]


def test_a_single_request_returns_the_json_body(
    graph_emulator: GraphEmulator, app: App, airflow_connection: ConnectionFactory, pem_path: Path
) -> None:
    airflow_connection(app, certificate_path=str(pem_path))
    site = GraphRequestOperator(task_id="root", path="/sites/root").execute({})  # type: ignore[arg-type]
    assert site["id"].startswith("contoso.sharepoint.com,")


def test_missing_permission_fails_the_task_with_the_hint(
    graph_emulator: GraphEmulator, app: App, airflow_connection: ConnectionFactory, pem_path: Path
) -> None:
    airflow_connection(app, certificate_path=str(pem_path))
    with pytest.raises(GraphAccessDeniedError, match=r"Group\.Read\.All"):
        GraphRequestOperator(task_id="g", path="/groups", paginate=True).execute({})  # type: ignore[arg-type]


def test_templated_fields_render(graph_emulator: GraphEmulator) -> None:
    operator = GraphRequestOperator(task_id="t", path="/users/{{ params.user }}", output_path="/data/{{ ds }}.jsonl")
    assert set(operator.template_fields) >= {"path", "query", "headers", "body", "output_path"}
