"""A paged export reads the next pages while it writes this one, and still ends exactly as before."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from airflow_provider_graphcert.errors import GraphPagingError
from airflow_provider_graphcert.graph.client import GraphClient
from airflow_provider_graphcert.testing.emulator.faults import edit_json
from airflow_provider_graphcert.testing.emulator.server import GraphEmulator


def _page_helpers() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("graphcert-pages")]


def test_every_item_of_every_page_arrives_in_order(graph_emulator: GraphEmulator, graph: GraphClient) -> None:
    graph_emulator.graph.add_users(2500)
    expected = [u["id"] for page in graph.pages("users", params={"$top": 999}) for u in page["value"]]
    assert [u["id"] for u in graph.iter_items("users", params={"$top": 999})] == expected
    assert len(expected) == 2500


def test_a_bad_link_on_a_later_page_fails_after_the_items_before_it(
    graph_emulator: GraphEmulator, graph: GraphClient
) -> None:
    graph_emulator.graph.add_users(2500)
    pages_seen: list[int] = []

    def spoil_second_page(body: Any) -> Any:
        pages_seen.append(1)
        if len(pages_seen) == 2:
            body["@odata.nextLink"] = 42  # not a URL: the listing must not be taken as complete
        return body

    graph_emulator.faults.tamper("^/v1.0/users$", edit_json(spoil_second_page), times=None)
    received: list[str] = []
    with pytest.raises(GraphPagingError, match="not a URL"):
        for user in graph.iter_items("users", params={"$top": 999}):
            received.append(user["id"])
    assert len(received) == 2 * 999  # both pages read were handed out before the error


def test_a_caller_that_stops_early_leaves_no_reader_behind(graph_emulator: GraphEmulator, graph: GraphClient) -> None:
    graph_emulator.graph.add_users(5000)
    items = graph.iter_items("users", params={"$top": 999})
    assert next(items)["id"]
    helpers = _page_helpers()
    assert helpers
    items.close()  # as a break, an error or a task timeout in the caller does
    for helper in helpers:
        helper.join(60)  # it ends after the request it is in
    assert not any(helper.is_alive() for helper in helpers)
    # Read ahead stays bounded: the first page, one in front, and nothing after the stop.
    assert len([r for r in graph_emulator.requests.records("graph") if r.path == "/v1.0/users"]) <= 2
