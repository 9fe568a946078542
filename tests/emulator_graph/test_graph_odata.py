"""A DAG narrows what it reads with OData query options, and the emulator applies them the way
Graph does, including Graph's refusals (advanced queries, non-indexed list columns)."""

from __future__ import annotations

from typing import Any

from graph_harness import GraphHarness

from airflow_provider_graphcert.testing.emulator.graph_state import Drive

EVENTUAL = {"ConsistencyLevel": "eventual"}


def users(graph: GraphHarness, query: str, *, headers: dict[str, str] | None = None) -> Any:
    return graph.call("GET", f"users?{query}", token="directory", headers=headers or {})


def test_users_filtered_by_basic_operators_without_advanced_queries(graph: GraphHarness) -> None:
    graph.state.add_users(60)
    sales = users(graph, "$filter=department eq 'Sales'&$select=id,department&$top=5")
    assert sales.status_code == 200
    page = sales.json()
    assert {entry["department"] for entry in page["value"]} == {"Sales"}
    everyone = [graph.state.users.entry(i) for i in range(60)]
    expected = [e["id"] for e in everyone if e["department"] == "Sales"]
    items, _ = graph.follow_pages("users?$filter=department eq 'Sales'&$select=id&$top=5", token="directory")
    assert [entry["id"] for entry in items] == expected
    upn = "user000003@contoso.onmicrosoft.com"
    query = f"$filter=startswith(displayName,'Adele') or userPrincipalName in ('{upn}')&$select=id"
    started = {entry["id"] for entry in users(graph, query).json()["value"]}
    assert started == {
        e["id"] for e in everyone if e["displayName"].startswith("Adele") or e["userPrincipalName"] == upn
    }
    disabled = users(graph, "$filter=accountEnabled eq false&$select=id,accountEnabled").json()["value"]
    assert [entry["id"] for entry in disabled] == [e["id"] for e in everyone if not e["accountEnabled"]]


def test_advanced_operators_need_consistency_level_and_count(graph: GraphHarness) -> None:
    graph.state.add_users(30)
    refused = users(graph, "$filter=department ne 'Sales'")
    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == "Request_UnsupportedQuery"
    assert "'department' of resource 'User'" in refused.json()["error"]["message"]
    advanced = users(graph, "$filter=department ne 'Sales'&$count=true&$top=999", headers=EVENTUAL)
    assert advanced.status_code == 200
    body = advanced.json()
    assert (
        body["@odata.count"]
        == len(body["value"])
        == sum(graph.state.users.entry(i)["department"] != "Sales" for i in range(30))
    )
    assert list(body)[:2] == ["@odata.context", "@odata.count"]
    ends = users(graph, "$filter=endswith(mail,'@contoso.onmicrosoft.com')&$count=true", headers=EVENTUAL)
    assert ends.json()["@odata.count"] == 30


def test_count_only_with_consistency_level_eventual(graph: GraphHarness) -> None:
    graph.state.add_users(42)
    without = users(graph, "$count=true")
    assert without.status_code == 400
    assert without.json()["error"]["message"] == "$count is not currently supported."
    assert users(graph, "$count=true&$top=1", headers=EVENTUAL).json()["@odata.count"] == 42
    bare = graph.call("GET", "users/$count", token="directory", headers=EVENTUAL)
    assert bare.status_code == 200
    assert bare.headers["content-type"].startswith("text/plain") and bare.text == "42"
    filtered = graph.call("GET", "users/$count?$filter=department eq 'Sales'", token="directory", headers=EVENTUAL)
    assert int(filtered.text) == sum(graph.state.users.entry(i)["department"] == "Sales" for i in range(42))
    assert graph.call("GET", "users/$count", token="directory").status_code == 400


def test_search_needs_the_header_and_matches_word_prefixes(graph: GraphHarness) -> None:
    graph.state.add_users(40)
    refused = users(graph, '$search="displayName:adele"')
    assert refused.status_code == 400
    assert "ConsistencyLevel: eventual" in refused.json()["error"]["message"]
    found = users(graph, '$search="displayName:adel"&$top=999', headers=EVENTUAL).json()["value"]
    expected = {
        graph.state.users.entry(i)["id"] for i in range(40) if "Adele" in graph.state.users.entry(i)["displayName"]
    }
    assert {entry["id"] for entry in found} == expected and expected
    either = users(graph, '$search="displayName:adele" OR "displayName:alex"&$top=999', headers=EVENTUAL)
    assert len(either.json()["value"]) > len(found)
    unquoted = users(graph, "$search=displayName:adele", headers=EVENTUAL)
    assert unquoted.status_code == 400


def test_orderby_basic_and_advanced(graph: GraphHarness) -> None:
    graph.state.add_users(25)
    ordered = users(graph, "$orderby=displayName desc&$top=999").json()["value"]
    names = [entry["displayName"] for entry in ordered]
    assert names == sorted(names, key=str.casefold, reverse=True)
    refused = users(graph, "$filter=department eq 'Sales'&$orderby=displayName")
    assert (
        refused.status_code == 400 and refused.json()["error"]["message"] == "Sorting not supported for current query."
    )
    allowed = users(graph, "$filter=department eq 'Sales'&$orderby=displayName&$count=true", headers=EVENTUAL)
    assert allowed.status_code == 200


def test_skip_and_unknown_properties_are_refused_as_graph_does(graph: GraphHarness) -> None:
    graph.state.add_users(5)
    assert users(graph, "$skip=2").json()["error"]["message"] == "'$skip' is not supported by the service."
    unknown = users(graph, "$filter=shoeSize eq 3")
    assert unknown.status_code == 400 and "shoeSize" in unknown.json()["error"]["message"]
    assert users(graph, "$filter=contains(displayName,'a')").status_code == 501


def test_groups_filter_on_a_collection_with_any(graph: GraphHarness) -> None:
    graph.state.add_groups(10)
    unified = graph.json("GET", "groups?$filter=groupTypes/any(c:c eq 'Unified')", token="directory")["value"]
    assert {group["id"] for group in unified} == {graph.state.groups.id_of(i) for i in range(0, 10, 2)}


def seed_invoices(graph: GraphHarness, *, indexed: tuple[str, ...] = ()) -> str:
    site = graph.state.add_site("contoso.sharepoint.com", "/sites/finance", "Finance")
    rows = [
        {"Title": f"INV-{i:03d}", "Status": "Paid" if i % 3 == 0 else "Open", "Amount": i * 7} for i in range(1, 31)
    ]
    sp_list = graph.state.add_list(site, "Invoices", ["Status", "Amount"], rows, indexed=indexed)
    return f"sites/{site.id}/lists/{sp_list.id}/items"


def test_list_items_filter_on_a_non_indexed_column_needs_the_prefer_header(graph: GraphHarness) -> None:
    items = seed_invoices(graph)
    refused = graph.call("GET", f"{items}?$filter=fields/Status eq 'Paid'")
    assert refused.status_code == 400
    assert "HonorNonIndexedQueriesWarningMayFailRandomly" in refused.json()["error"]["message"]
    prefer = {"Prefer": "HonorNonIndexedQueriesWarningMayFailRandomly"}
    paid = graph.json(
        "GET", f"{items}?expand=fields(select=Title,Status)&$filter=fields/Status eq 'Paid'", headers=prefer
    )["value"]
    assert [item["fields"]["Title"] for item in paid] == [f"INV-{i:03d}" for i in range(3, 31, 3)]


def test_list_items_filter_and_orderby_on_indexed_columns_page_through(graph: GraphHarness) -> None:
    items = seed_invoices(graph, indexed=("Status", "Amount"))
    query = "$filter=fields/Status eq 'Open' and fields/Amount ge 50&$orderby=fields/Amount desc&$top=4"
    url = f"{items}?$expand=fields&{query}"
    found, pages = graph.follow_pages(url)
    amounts = [item["fields"]["Amount"] for item in found]
    assert amounts == sorted((i * 7 for i in range(1, 31) if i % 3 and i * 7 >= 50), reverse=True)
    assert pages == -(-len(amounts) // 4)


def test_children_ordered_by_size_and_expanded_under_their_folder(graph: GraphHarness, library: Drive) -> None:
    for name, size in [("b.bin", 30), ("a.bin", 10), ("c.bin", 20)]:
        library.put_file(f"data/{name}", b"x" * size)
    folder = library.resolve("data")
    by_size = graph.json("GET", f"drives/{library.id}/items/{folder.id}/children?$orderby=size desc")["value"]
    assert [child["name"] for child in by_size] == ["b.bin", "c.bin", "a.bin"]
    assert graph.json("GET", f"drives/{library.id}/root/children")["@odata.context"].endswith(
        "$metadata#Collection(microsoft.graph.driveItem)"
    )
    expanded = graph.json("GET", f"drives/{library.id}/items/{folder.id}?$expand=children($select=name)")
    assert sorted(child["name"] for child in expanded["children"]) == ["a.bin", "b.bin", "c.bin"]
    assert set(expanded["children"][0]) == {"name"}


def test_every_collection_names_its_odata_context(graph: GraphHarness, library: Drive) -> None:
    library.put_file("a.txt", b"a")
    site = library.site
    graph.state.add_list(site, "Tasks", ["Owner"], [{"Title": "t"}])
    graph.state.add_users(2)
    graph.state.add_groups(2)
    collections = [
        f"sites/{site.id}/drives",
        f"sites/{site.id}/lists",
        f"sites/{site.id}/lists/Tasks/items",
        f"sites/{site.id}/lists/Tasks/columns",
        f"drives/{library.id}/root/children",
        f"drives/{library.id}/root/delta",
        f"drives/{library.id}/root/delta?token=latest",
        f"drives/{library.id}/root/search(q='a')",
        "users",
        "groups",
    ]
    for path in collections:
        body = graph.json("GET", path)
        assert "/v1.0/$metadata#" in body["@odata.context"], path
