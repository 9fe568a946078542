"""Big Graph pages are parsed fast, and anything the fast parser refuses is judged as before."""

from __future__ import annotations

import pytest

from airflow_provider_graphcert.errors import GraphRequestError
from airflow_provider_graphcert.graph.client import GraphClient
from airflow_provider_graphcert.testing.emulator.faults import CapturedResponse, replace_body
from airflow_provider_graphcert.testing.emulator.server import GraphEmulator

USERS = "^/v1.0/users$"


def _lone_surrogate_in_first_name(response: CapturedResponse) -> CapturedResponse:
    # JSON allows the escape; Python's parser reads it as a one-character string, pydantic-core refuses it.
    body = response.body.replace(b'"displayName":"', b'"displayName":"\\ud800', 1)
    return replace_body(body, content_type="application/json;charset=utf-8")(response)


def _cut_in_half(response: CapturedResponse) -> CapturedResponse:
    return replace_body(response.body[: len(response.body) // 2])(response)


def test_a_page_of_999_users_arrives_whole_and_in_order(graph_emulator: GraphEmulator, graph: GraphClient) -> None:
    indexes = graph_emulator.graph.add_users(999)
    page = graph.get_json("users", params={"$top": 999})
    users = graph_emulator.graph.users
    assert [(u["id"], u["displayName"]) for u in page["value"]] == [
        (users.id_of(i), users.entry(i)["displayName"]) for i in indexes
    ]
    assert "Zoë" in page["value"][17]["displayName"]


def test_a_big_page_with_a_lone_surrogate_escape_is_read_as_the_standard_parser_reads_it(
    graph_emulator: GraphEmulator, graph: GraphClient
) -> None:
    graph_emulator.graph.add_users(999)  # a page of about 350 KB: the fast parser's size
    graph_emulator.faults.tamper(USERS, _lone_surrogate_in_first_name, origin="graph")
    page = graph.get_json("users", params={"$top": 999})
    assert page["value"][0]["displayName"].startswith("\ud800Adele ")
    assert len(page["value"]) == 999


def test_a_big_page_cut_short_is_one_clear_error(graph_emulator: GraphEmulator, graph: GraphClient) -> None:
    graph_emulator.graph.add_users(999)
    graph_emulator.faults.tamper(USERS, _cut_in_half, origin="graph")
    with pytest.raises(GraphRequestError, match="body that is not JSON") as info:
        graph.get_json("users", params={"$top": 999})
    assert info.value.__suppress_context__
