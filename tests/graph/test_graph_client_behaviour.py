"""The Graph client survives real Graph behaviour: paging, throttling, stale tokens, typed errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from graph_client_kit import client_for

from airflow_provider_graphcert.errors import (
    GraphAccessDeniedError,
    GraphCertError,
    GraphConflictError,
    GraphNotFoundError,
    GraphRequestError,
    GraphThrottledError,
)
from airflow_provider_graphcert.graph.batch import BatchRequest, run_batch
from airflow_provider_graphcert.graph.client import GraphClient
from airflow_provider_graphcert.testing.clock import VirtualClock
from airflow_provider_graphcert.testing.emulator.server import GraphEmulator
from airflow_provider_graphcert.testing.emulator.state import App


def _graph_requests(emulator: GraphEmulator, path: str) -> list[object]:
    return [r for r in emulator.requests.records("graph") if r.path == path]


def test_paging_follows_next_links_and_repeats_custom_headers(
    graph_emulator: GraphEmulator, graph: GraphClient
) -> None:
    graph_emulator.graph.add_users(2500)
    users = list(
        graph.iter_items(
            "users", params={"$top": 999, "$select": "id,displayName"}, headers={"ConsistencyLevel": "eventual"}
        )
    )
    assert len(users) == 2500
    assert len({u["id"] for u in users}) == 2500
    pages = [r for r in graph_emulator.requests.records("graph") if r.path == "/v1.0/users"]
    assert len(pages) == 3
    assert all(r.headers.get("consistencylevel") == "eventual" for r in pages)  # type: ignore[attr-defined]
    assert all("$select" in r.query or "%24select" in r.query for r in pages)  # type: ignore[attr-defined]
    client_ids = {r.headers["client-request-id"] for r in pages}  # type: ignore[attr-defined]
    assert len(client_ids) == 3  # a fresh id on every request


def test_an_empty_collection_is_fine(graph_emulator: GraphEmulator, graph: GraphClient) -> None:
    assert list(graph.iter_items("groups")) == []


def test_a_next_link_to_another_host_is_refused(graph: GraphClient) -> None:
    with pytest.raises(GraphCertError, match="Refusing to send the Graph token"):
        graph.url("https://evil.example.com/v1.0/users?$skiptoken=x")


def test_a_throttling_storm_is_waited_out_as_graph_asks(graph_emulator: GraphEmulator, graph: GraphClient) -> None:
    graph_emulator.graph.add_users(10)
    graph_emulator.faults.throttle("^/v1.0/users$", retry_after=1, times=3)
    clock = VirtualClock()
    graph.sleep, graph.clock = clock.sleep, clock  # the client's injected time: record the waits, spend none
    users = list(graph.iter_items("users"))
    assert len(users) == 10
    assert clock.waits == [1.0, 1.0, 1.0]  # three Retry-After: 1 honoured, not hammered
    attempts = _graph_requests(graph_emulator, "/v1.0/users")
    assert len(attempts) == 4
    assert [r.headers.get("retry-attempt") for r in attempts] == [None, "1", "2", "3"]  # type: ignore[attr-defined]


def test_server_errors_back_off_and_recover(graph_emulator: GraphEmulator, graph: GraphClient) -> None:
    graph_emulator.faults.fail("^/v1.0/sites/root$", status=503, times=2)
    graph_emulator.faults.fail("^/v1.0/sites/root$", status=504, times=1)
    assert graph.get_json("sites/root")["id"]


def test_a_huge_retry_after_ends_the_wait_with_a_clear_error(
    graph_emulator: GraphEmulator, graph_app: App, pem_file: Path
) -> None:
    client = client_for(graph_emulator, graph_app, pem_file, max_total_wait=30)
    waits: list[float] = []
    client.sleep = waits.append
    graph_emulator.faults.throttle("^/v1.0/users$", retry_after=3600, times=None)
    with pytest.raises(GraphThrottledError) as info:
        list(client.iter_items("users"))
    assert waits == []  # an hour is past the 30 s budget: fail now rather than wait part of it
    assert info.value.status == 429
    assert "retry budget" in str(info.value)


def test_a_dropped_connection_on_a_get_is_retried(graph_emulator: GraphEmulator, graph: GraphClient) -> None:
    graph_emulator.faults.drop_connection("^/v1.0/sites/root$", times=1)
    assert graph.get_json("sites/root")["id"]
    assert len(_graph_requests(graph_emulator, "/v1.0/sites/root")) == 2


def test_a_revoked_token_is_replaced_once_without_failing(
    graph_emulator: GraphEmulator, graph_app: App, graph: GraphClient
) -> None:
    graph_emulator.graph.add_users(300)
    pages = graph.pages("users", params={"$top": 100})
    first = next(pages)
    graph_emulator.revoke_tokens(graph_app)
    rest = list(pages)
    assert len(first["value"]) + sum(len(p["value"]) for p in rest) == 300
    assert graph_emulator.state.token_requests.count(graph_app, succeeded=True) == 2


def test_batches_of_45_are_split_and_returned_in_order(graph_emulator: GraphEmulator, graph: GraphClient) -> None:
    indexes = graph_emulator.graph.add_users(45)
    ids = [graph_emulator.graph.users.id_of(i) for i in indexes]
    requests = [BatchRequest("GET", f"/users/{user_id}?$select=id") for user_id in ids]
    responses = run_batch(graph, requests)
    assert [r.status for r in responses] == [200] * 45
    assert [r.body["id"] for r in responses] == ids
    assert len(_graph_requests(graph_emulator, "/v1.0/$batch")) == 3


def test_batch_dependencies_and_failures_come_back_per_request(
    graph_emulator: GraphEmulator, graph: GraphClient
) -> None:
    responses = run_batch(
        graph,
        [
            BatchRequest("GET", "/users/00000000-0000-0000-0000-000000000000", id="missing"),
            BatchRequest("GET", "/sites/root", id="after", depends_on=("missing",)),
            BatchRequest("GET", "/sites/root", id="plain"),
        ],
    )
    assert [(r.id, r.status) for r in responses] == [("missing", 404), ("after", 424), ("plain", 200)]


def test_typed_errors_carry_graphs_identifiers(
    graph_emulator: GraphEmulator, graph: GraphClient, rsa_cert: object, pem_file: Path
) -> None:
    with pytest.raises(GraphNotFoundError) as missing:
        graph.get_json("drives/no-such-drive/root")
    assert missing.value.status == 404
    assert missing.value.request_id and missing.value.request_id in str(missing.value)
    assert missing.value.client_request_id

    with pytest.raises(GraphRequestError) as bad:
        graph.get_json("users", params={"$top": "lots"})
    assert bad.value.status == 400

    drive = graph_emulator.graph.root_site.add_library("Documents")
    drive.mkdir("Reports")
    with pytest.raises(GraphConflictError) as conflict:
        graph.send_json(
            "POST",
            f"drives/{drive.id}/root/children",
            {"name": "Reports", "folder": {}, "@microsoft.graph.conflictBehavior": "fail"},
        )
    assert conflict.value.status == 409 and conflict.value.code == "nameAlreadyExists"


def test_access_denied_names_the_missing_permission(
    graph_emulator: GraphEmulator, pem_file: Path, rsa_cert: object
) -> None:
    tenant = graph_emulator.add_tenant()
    reader = graph_emulator.add_app(tenant, rsa_cert.certificate, roles=["Sites.Read.All"])  # type: ignore[attr-defined]
    with client_for(graph_emulator, reader, pem_file) as client, pytest.raises(GraphAccessDeniedError) as denied:
        list(client.iter_items("users"))
    message = str(denied.value)
    assert denied.value.status == 403
    assert "User.Read.All" in message and "admin consent" in message
    assert "The token grants: Sites.Read.All" in message


def test_throttled_requests_inside_a_batch_are_resent_after_their_retry_after(
    graph_emulator: GraphEmulator, graph: GraphClient
) -> None:
    indexes = graph_emulator.graph.add_users(5)
    ids = [graph_emulator.graph.users.id_of(i) for i in indexes]
    throttled = graph_emulator.faults.add("^/v1.0/users/", status=429, retry_after=1, times=2, origin="batch")
    clock = VirtualClock()
    graph.sleep, graph.clock = clock.sleep, clock
    responses = run_batch(graph, [BatchRequest("GET", f"/users/{user_id}") for user_id in ids])
    assert clock.waits == [1.0]  # the batch's Retry-After, once for both throttled requests
    assert [r.status for r in responses] == [200] * 5
    assert [r.body["id"] for r in responses] == ids
    assert throttled.fired == 2
    assert len(_graph_requests(graph_emulator, "/v1.0/$batch")) == 2
