"""The next page of a directory listing is asked for while the current one is parsed, never trusted blindly."""

from __future__ import annotations

import time

from airflow_provider_graphcert.graph.client import GraphClient
from airflow_provider_graphcert.testing.emulator.faults import CapturedResponse, ResponseEdit, replace_body
from airflow_provider_graphcert.testing.emulator.server import GraphEmulator

USERS = "^/v1.0/users$"
DECOY = "^/v1.0/groups$"


def _decoy_link_on_top(graph_url: str) -> ResponseEdit:
    """A page whose first member is another next link than the one the page really names (last wins in JSON)."""

    def edit(response: CapturedResponse) -> CapturedResponse:
        if b'"@odata.nextLink"' not in response.body:
            return response  # the last page names no next page; it keeps naming none
        decoy = f'{{"@odata.nextLink":"{graph_url}/v1.0/groups?$skiptoken=decoy",'.encode()
        return replace_body(decoy + response.body[1:], content_type="application/json;charset=utf-8")(response)

    return edit


def test_a_listing_of_2100_users_gets_each_user_once_in_order(
    graph_emulator: GraphEmulator, graph: GraphClient
) -> None:
    indexes = graph_emulator.graph.add_users(2100)  # three pages of up to 999, links at the top
    pages = list(graph.pages("users", params={"$top": 999}))
    users = graph_emulator.graph.users
    assert [len(page["value"]) for page in pages] == [999, 999, 102]
    assert [u["id"] for page in pages for u in page["value"]] == [users.id_of(i) for i in indexes]


def test_a_next_link_on_top_that_the_page_contradicts_is_asked_for_but_never_used(
    graph_emulator: GraphEmulator, graph: GraphClient
) -> None:
    indexes = graph_emulator.graph.add_users(2100)
    graph_emulator.faults.tamper(USERS, _decoy_link_on_top(graph.graph_url), origin="graph", times=None)
    # The decoy is answered as the emulator answers a bad skiptoken (an error), and counted: had
    # its answer been used, the listing would fail or lose users.
    graph_emulator.faults.tamper(DECOY, lambda response: response, origin="graph", times=None)
    items = list(graph.iter_items("users", params={"$top": 999}))
    users = graph_emulator.graph.users
    assert [u["id"] for u in items] == [users.id_of(i) for i in indexes]
    # The decoy was asked for ahead (each answer dropped unused, the listing went on by the parsed
    # link). Asked from a helper thread, so its answer may still be on the way when the listing ends.
    deadline = time.monotonic() + 30
    while graph_emulator.faults.count(DECOY) == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert 1 <= graph_emulator.faults.count(DECOY) <= 2
