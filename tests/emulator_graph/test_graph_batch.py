"""A client combines up to 20 requests in one JSON $batch and matches the answers by id."""

from __future__ import annotations

import base64
from typing import Any

from graph_harness import GraphHarness

from airflow_provider_graphcert.testing.emulator.graph_state import Drive


def batch(graph: GraphHarness, requests: list[dict[str, Any]], expected: int = 200, **kwargs: Any) -> Any:
    return graph.json("POST", "$batch", expected, json={"requests": requests}, **kwargs)


def by_id(reply: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {response["id"]: response for response in reply["responses"]}


def test_twenty_requests_with_a_failed_dependency(graph: GraphHarness, library: Drive) -> None:
    graph.state.add_users(30)
    for index in range(15):
        library.put_file(f"f{index}.txt", str(index).encode())
    requests: list[dict[str, Any]] = [
        {"id": str(i), "method": "GET", "url": f"/drives/{library.id}/root:/f{i}.txt"} for i in range(15)
    ]
    requests += [
        {"id": "users", "method": "GET", "url": "users?$top=10&$select=id"},
        {"id": "missing", "method": "GET", "url": f"/drives/{library.id}/root:/nope.txt"},
        {"id": "after-missing", "method": "GET", "url": "/sites/root", "dependsOn": ["missing"]},
        {"id": "after-ok", "method": "GET", "url": "/sites/root", "dependsOn": ["0"]},
        {
            "id": "mkdir",
            "method": "POST",
            "url": f"/drives/{library.id}/root/children",
            "headers": {"Content-Type": "application/json"},
            "body": {"name": "New folder", "folder": {}},
        },
    ]
    assert len(requests) == 20
    responses = by_id(batch(graph, requests))
    assert len(responses) == 20
    assert all(responses[str(i)]["status"] == 200 for i in range(15))
    assert responses["3"]["body"]["name"] == "f3.txt"
    assert responses["missing"]["status"] == 404
    assert responses["missing"]["body"]["error"]["code"] == "itemNotFound"
    assert responses["after-missing"]["status"] == 424
    assert responses["after-ok"]["status"] == 200
    assert responses["mkdir"]["status"] == 201 and library.child(library.root, "New folder") is not None
    users = responses["users"]["body"]
    assert len(users["value"]) == 10
    # Links inside a batch are absolute URLs to the Graph origin, usable outside the batch.
    assert graph.json("GET", users["@odata.nextLink"], token="directory")["value"]


def test_more_than_twenty_requests_is_400(graph: GraphHarness) -> None:
    requests = [{"id": str(i), "method": "GET", "url": "/sites/root"} for i in range(21)]
    error = batch(graph, requests, expected=400)["error"]
    assert error["code"] == "BadRequest"


def test_ids_must_be_unique_ignoring_case(graph: GraphHarness) -> None:
    requests = [{"id": "a", "method": "GET", "url": "/sites/root"}, {"id": "A", "method": "GET", "url": "/sites/root"}]
    batch(graph, requests, expected=400)


def test_a_body_needs_a_content_type(graph: GraphHarness, library: Drive) -> None:
    requests = [{"id": "1", "method": "POST", "url": f"/drives/{library.id}/root/children", "body": {"name": "x"}}]
    batch(graph, requests, expected=400)


def test_unknown_dependency_is_400(graph: GraphHarness) -> None:
    batch(graph, [{"id": "1", "method": "GET", "url": "/sites/root", "dependsOn": ["9"]}], expected=400)


def test_inner_requests_are_authorised_one_by_one(graph: GraphHarness, library: Drive) -> None:
    graph.state.add_users(1)
    requests = [
        {"id": "files", "method": "GET", "url": f"/drives/{library.id}/root"},
        {"id": "users", "method": "GET", "url": "/users"},
    ]
    responses = by_id(batch(graph, requests, token="sites-read"))
    assert responses["files"]["status"] == 200
    assert responses["users"]["status"] == 403


def test_binary_bodies_travel_as_base64(graph: GraphHarness, library: Drive) -> None:
    upload = {
        "id": "up",
        "method": "PUT",
        "url": f"/drives/{library.id}/root:/from-batch.bin:/content",
        "headers": {"Content-Type": "application/octet-stream"},
        "body": base64.b64encode(b"\x00\x01binary").decode(),
    }
    responses = by_id(batch(graph, [upload]))
    assert responses["up"]["status"] == 201
    assert library.resolve("from-batch.bin").size == 8


def test_responses_may_come_back_in_another_order(graph: GraphHarness) -> None:
    requests = [{"id": str(i), "method": "GET", "url": "/sites/root"} for i in range(20)]
    orders = {tuple(r["id"] for r in batch(graph, requests)["responses"]) for _ in range(5)}
    assert len(orders) > 1
    graph.state.shuffle_batch_responses = False
    assert [r["id"] for r in batch(graph, requests)["responses"]] == [str(i) for i in range(20)]
