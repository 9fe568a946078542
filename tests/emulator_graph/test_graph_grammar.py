"""A client written against Graph's documentation addresses items every way Graph allows, and
what the emulator lacks answers 501 naming it, never a silent or misleading answer."""

from __future__ import annotations

from typing import Any

import pytest
from graph_harness import GraphHarness

from airflow_provider_graphcert.testing.emulator.graph.common import NOT_IMPLEMENTED_CODE
from airflow_provider_graphcert.testing.emulator.graph_state import Drive


def seeded(library: Drive) -> dict[str, Any]:
    report = library.put_file("Reports/2024/q1 report.csv", b"a,b\n1,2\n")
    library.put_file("Reports/2024/q2 report.csv", b"a,b\n3,4\n")
    library.put_file("Reports/readme.txt", b"hello")
    return {"report": report, "folder": library.resolve("Reports"), "drive": library}


@pytest.mark.parametrize(
    "address",
    [
        "root:/Reports/2024/q1 report.csv",
        "root:/Reports/2024/q1 report.csv:",
        "items/root:/Reports/2024/q1 report.csv:",
        "items/{folder}:/2024/q1 report.csv:",
        "items/{report}",
        "items/{folder}/children/{year}/children/{report}",
    ],
)
def test_one_file_is_reached_by_every_documented_address(graph: GraphHarness, library: Drive, address: str) -> None:
    ids = seeded(library)
    year = library.resolve("Reports/2024")
    path = address.format(folder=ids["folder"].id, report=ids["report"].id, year=year.id)
    item = graph.json("GET", f"drives/{library.id}/{path}")
    assert item["id"] == ids["report"].id
    content = graph.get(f"drives/{library.id}/{path.rstrip(':')}{':' if ':' in path else ''}/content")
    assert content.status_code == 302


def test_items_root_is_the_alias_of_root_for_children_content_uploads_and_delta(
    graph: GraphHarness, library: Drive
) -> None:
    seeded(library)
    base = f"drives/{library.id}/items/root"
    names = {child["name"] for child in graph.json("GET", f"{base}/children")["value"]}
    assert names == {"Reports"}
    uploaded = graph.json("PUT", f"{base}:/new.txt:/content", 201, data=b"new")
    assert uploaded["name"] == "new.txt"
    session = graph.json("POST", f"{base}:/big.bin:/createUploadSession", json={})
    assert session["uploadUrl"].startswith(graph.files_origin)
    assert graph.json("GET", f"{base}/delta()")["value"]


def test_delta_as_a_function_call_with_and_without_a_token(graph: GraphHarness, library: Drive) -> None:
    seeded(library)
    first = graph.json("GET", f"drives/{library.id}/root/delta()")
    delta_link = first["@odata.deltaLink"]
    assert "/root/delta?token=" in delta_link
    token = delta_link.partition("token=")[2]
    library.put_file("Reports/late.txt", b"late")
    by_call = graph.json("GET", f"drives/{library.id}/root/delta(token='{token}')")
    by_query = graph.json("GET", f"drives/{library.id}/root/delta?token={token}")
    assert [i.get("name") for i in by_call["value"]] == [i.get("name") for i in by_query["value"]]
    assert "late.txt" in {i.get("name") for i in by_call["value"]}
    qualified = graph.json("GET", f"drives/{library.id}/items/root/microsoft.graph.delta(token='{token}')")
    assert "late.txt" in {i.get("name") for i in qualified["value"]}


def test_search_finds_items_by_name_below_a_folder(graph: GraphHarness, library: Drive) -> None:
    ids = seeded(library)
    found = graph.json("GET", f"drives/{library.id}/root/search(q='report')")["value"]
    assert {item["name"] for item in found} == {"Reports", "q1 report.csv", "q2 report.csv"}
    below = graph.json("GET", f"drives/{library.id}/items/{ids['folder'].id}/search(q='q2 csv')")["value"]
    assert [item["name"] for item in below] == ["q2 report.csv"]
    missing_q = graph.call("GET", f"drives/{library.id}/root/search()")
    assert missing_q.status_code == 400


def test_site_addressing_forms_reach_the_same_site(graph: GraphHarness, library: Drive) -> None:
    site = library.site
    by_id = graph.json("GET", f"sites/{site.id}")
    by_path = graph.json("GET", "sites/contoso.sharepoint.com:/sites/finance")
    by_path_colon = graph.json("GET", "sites/contoso.sharepoint.com:/sites/finance:")
    assert by_id["id"] == by_path["id"] == by_path_colon["id"]
    root = graph.json("GET", "sites/root")
    assert root["id"] == graph.json("GET", "sites/contoso.sharepoint.com")["id"]
    drive = graph.json("GET", "sites/contoso.sharepoint.com:/sites/finance:/drive")
    assert drive["id"] == library.id


def assert_not_implemented(response: Any, feature: str) -> None:
    assert response.status_code == 501, (response.status_code, response.text)
    error = response.json()["error"]
    assert error["code"] == NOT_IMPLEMENTED_CODE
    assert feature in error["message"]


@pytest.mark.parametrize(
    ("method", "path", "feature"),
    [
        ("GET", "drives/{drive}/items/{report}/versions", "versions"),
        ("GET", "drives/{drive}/items/{report}/permissions", "permissions"),
        ("GET", "drives/{drive}/items/{report}/thumbnails", "thumbnails"),
        ("GET", "drives/{drive}/list", "/drives/{id}/list"),
        ("GET", "drives/{drive}/items/{report}?$expand=thumbnails", "$expand=thumbnails"),
        ("GET", "drives/{drive}/root/children?$filter=name eq 'x'", "$filter"),
        ("GET", "drives/{drive}/root/children?$skip=1", "$skip"),
        ("GET", "drives/{drive}/items/{report}/content?format=pdf", "$format"),
        ("GET", "sites/root/sites", "/sites/{id}/sites"),
        ("GET", "sites?search=finance", "searching sites"),
        ("GET", "organization", "/organization"),
        ("GET", "users/{user}/memberOf", "memberOf"),
        ("GET", "users/{user}?$filter=id eq 'x'", "$filter"),
        ("GET", "users?$apply=groupby((department))", "$apply"),
        ("PATCH", "drives/{drive}/items/{report}", "'description'"),
    ],
)
def test_graph_features_the_emulator_lacks_answer_501_naming_them(
    graph: GraphHarness, library: Drive, method: str, path: str, feature: str
) -> None:
    ids = seeded(library)
    graph.state.add_users(1)
    url = path.format(drive=library.id, report=ids["report"].id, user=graph.state.users.id_of(0))
    response = graph.call(method, url, json={"description": "x"} if method == "PATCH" else None)
    assert_not_implemented(response, feature)


def test_a_misspelt_segment_is_still_graphs_400(graph: GraphHarness, library: Drive) -> None:
    seeded(library)
    response = graph.call("GET", f"drives/{library.id}/root/childern")
    assert response.status_code == 400
    assert response.json()["error"]["message"] == "Resource not found for the segment 'childern'."
    assert graph.call("GET", "organisation").status_code == 400


def test_me_with_an_application_token_answers_as_graph_does(graph: GraphHarness) -> None:
    response = graph.call("GET", "me/drive")
    assert response.status_code == 400
    assert response.json()["error"]["message"] == "/me request is only valid with delegated authentication flow."
