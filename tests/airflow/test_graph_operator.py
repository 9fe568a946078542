"""Scheduled Graph exports with GraphRequestOperator, through a real Airflow connection."""

from __future__ import annotations

import gc
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_graphcert.errors import ConfigurationError, GraphAccessDeniedError, GraphRequestError
from airflow_provider_graphcert.operators.graph import GraphRequestOperator
from airflow_provider_graphcert.testing.emulator.faults import edit_json, replace_body
from airflow_provider_graphcert.testing.emulator.server import GraphEmulator
from airflow_provider_graphcert.testing.emulator.state import App

ConnectionFactory = Callable[..., str]


@pytest.mark.slow
def test_50000_users_exported_to_json_lines(
    graph_emulator: GraphEmulator, app: App, airflow_connection: ConnectionFactory, pem_file: Path, tmp_path: Path
) -> None:
    graph_emulator.graph.add_users(50_000)
    airflow_connection(app, certificate_path=str(pem_file))
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


def test_an_export_holds_every_user_once_in_order_as_compact_utf8_json_lines(
    graph_emulator: GraphEmulator, app: App, airflow_connection: ConnectionFactory, pem_file: Path, tmp_path: Path
) -> None:
    # 2,100 users: three pages of up to 999, and more than one batch of lines per write (files.py).
    indexes = graph_emulator.graph.add_users(2_100)
    airflow_connection(app, certificate_path=str(pem_file))
    output = tmp_path / "users.jsonl"
    operator = GraphRequestOperator(
        task_id="export_users",
        path="/users",
        query={"$select": "id,displayName,businessPhones", "$top": 999},
        paginate=True,
        output_path=str(output),
    )
    assert operator.execute({}) == {"path": str(output), "count": 2_100}  # type: ignore[arg-type]
    users = graph_emulator.graph.users
    expected = [
        {"id": users.id_of(i), "displayName": users.entry(i)["displayName"], "businessPhones": [f"+1 425 555 {i:04d}"]}
        for i in indexes
    ]
    data = output.read_bytes()
    assert data.endswith(b"\n") and not data.endswith(b"\n\n")
    lines = data.decode("utf-8").split("\n")[:-1]
    records = [json.loads(line) for line in lines]
    assert records == expected
    # Compact, with names such as "Zoë" or "Émile" written as they are, not as \\u escapes.
    assert lines == [json.dumps(record, ensure_ascii=False, separators=(",", ":")) for record in records]
    assert "Zoë" in lines[17] and "\\u" not in data.decode("utf-8")


def test_an_answer_that_is_not_json_fails_the_task_with_one_clear_error(
    graph_emulator: GraphEmulator, app: App, airflow_connection: ConnectionFactory, pem_file: Path
) -> None:
    airflow_connection(app, certificate_path=str(pem_file))
    graph_emulator.faults.tamper(
        "^/v1.0/sites/root$", replace_body(b"<html>Service Unavailable</html>", content_type="text/html")
    )
    with pytest.raises(GraphRequestError, match="HTTP 200 with a body that is not JSON") as info:
        GraphRequestOperator(task_id="root", path="/sites/root").execute({})  # type: ignore[arg-type]
    assert info.value.__suppress_context__  # no parser traceback chained to it


@pytest.mark.parametrize("frozen_before", [False, True], ids=["plain worker", "worker that froze objects"])
def test_an_export_leaves_the_garbage_collector_as_it_found_it(
    graph_emulator: GraphEmulator,
    app: App,
    airflow_connection: ConnectionFactory,
    pem_file: Path,
    tmp_path: Path,
    frozen_before: bool,
) -> None:
    graph_emulator.graph.add_users(1_500)
    airflow_connection(app, certificate_path=str(pem_file))
    frozen_while_paging: list[int] = []

    def note_freeze(body: Any) -> Any:
        frozen_while_paging.append(gc.get_freeze_count())  # the emulator answers in this process
        return body

    graph_emulator.faults.tamper("^/v1.0/users$", edit_json(note_freeze), origin="graph", times=None)
    if frozen_before:
        gc.freeze()  # as Airflow's Celery worker does before it forks
    frozen = gc.get_freeze_count()
    try:
        operator = GraphRequestOperator(
            task_id="export_users",
            path="/users",
            query={"$top": 999},
            paginate=True,
            output_path=str(tmp_path / "u.jsonl"),
        )
        assert operator.execute({})["count"] == 1_500  # type: ignore[arg-type]
        after = gc.get_freeze_count()  # frozen objects may still be freed, never added or unfrozen
        assert (0 < after <= frozen) if frozen_before else after == 0
    finally:
        gc.unfreeze()
    # The objects older than the export were set aside while it paged (full collections skip them).
    assert len(frozen_while_paging) == 2 and all(count > 0 for count in frozen_while_paging)


def test_small_results_go_to_xcom_and_large_ones_are_refused(
    graph_emulator: GraphEmulator, app: App, airflow_connection: ConnectionFactory, pem_file: Path
) -> None:
    graph_emulator.graph.add_users(30)
    airflow_connection(app, certificate_path=str(pem_file))
    small = GraphRequestOperator(task_id="users", path="/users", paginate=True, query={"$top": 10})
    assert len(small.execute({})) == 30  # type: ignore[arg-type]
    capped = GraphRequestOperator(task_id="capped", path="/users", paginate=True, max_xcom_items=20)
    with pytest.raises(ConfigurationError, match="set output_path"):
        capped.execute({})  # type: ignore[arg-type]


def test_a_single_request_returns_the_json_body(
    graph_emulator: GraphEmulator, app: App, airflow_connection: ConnectionFactory, pem_file: Path
) -> None:
    airflow_connection(app, certificate_path=str(pem_file))
    site = GraphRequestOperator(task_id="root", path="/sites/root").execute({})  # type: ignore[arg-type]
    assert site["id"].startswith("contoso.sharepoint.com,")


def test_missing_permission_fails_the_task_with_the_hint(
    graph_emulator: GraphEmulator, app: App, airflow_connection: ConnectionFactory, pem_file: Path
) -> None:
    airflow_connection(app, certificate_path=str(pem_file))
    with pytest.raises(GraphAccessDeniedError, match=r"Group\.Read\.All"):
        GraphRequestOperator(task_id="g", path="/groups", paginate=True).execute({})  # type: ignore[arg-type]


def test_templated_path_query_and_output_path_render_through_airflow_before_the_call(
    graph_emulator: GraphEmulator, app: App, airflow_connection: ConnectionFactory, pem_file: Path, tmp_path: Path
) -> None:
    from airflow.sdk import DAG

    graph_emulator.graph.add_users(5)
    airflow_connection(app, certificate_path=str(pem_file))
    params = {"collection": "users", "fields": "id,displayName", "consistency": "eventual", "out": str(tmp_path)}
    with DAG("directory_export", schedule=None, params=params) as dag:
        operator = GraphRequestOperator(
            task_id="export",
            path="/{{ params.collection }}",
            query={"$select": "{{ params.fields }}"},
            headers={"ConsistencyLevel": "{{ params.consistency }}"},
            paginate=True,
            output_path="{{ params.out }}/{{ run_id }}.jsonl",
        )
    context = {"params": params, "run_id": "manual__2026-03-01T00:00:00", "dag": dag}
    operator.render_template_fields(context)  # type: ignore[arg-type]
    assert operator.path == "/users"
    assert operator.query == {"$select": "id,displayName"}
    assert operator.headers == {"ConsistencyLevel": "eventual"}
    assert operator.output_path == f"{tmp_path}/manual__2026-03-01T00:00:00.jsonl"
    result = operator.execute(context)  # type: ignore[arg-type]
    assert result == {"path": operator.output_path, "count": 5}
    first = json.loads(Path(operator.output_path).read_text(encoding="utf-8").splitlines()[0])
    assert set(first) == {"id", "displayName"}
