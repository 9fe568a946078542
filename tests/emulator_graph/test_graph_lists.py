"""A DAG reads a SharePoint list's items with only the columns it needs."""

from __future__ import annotations

from graph_harness import GraphHarness

from airflow_provider_graphcert.testing.emulator.graph_state import SharePointList, Site


def seed_list(graph: GraphHarness) -> tuple[Site, SharePointList]:
    site = graph.state.add_site("contoso.sharepoint.com", "/sites/ops", "Operations")
    rows = [{"Title": f"Asset {i}", "Owner": f"owner{i % 3}", "Cost": i * 10} for i in range(1, 26)]
    return site, graph.state.add_list(site, "Asset Register", ["Owner", "Cost"], rows)


def test_items_with_selected_fields_page_by_page(graph: GraphHarness) -> None:
    site, sp_list = seed_list(graph)
    url = f"sites/{site.id}/lists/{sp_list.id}/items?expand=fields(select=Title,Cost)&$top=10"
    items, pages = graph.follow_pages(url)
    assert pages == 3
    assert [item["id"] for item in items] == [str(i) for i in range(1, 26)]
    assert items[0]["fields"] == {"@odata.etag": items[0]["@odata.etag"], "Title": "Asset 1", "Cost": 10}
    first = graph.json("GET", url)
    assert "expand=fields(select=Title,Cost)" in first["@odata.nextLink"]


def test_dollar_expand_and_all_fields(graph: GraphHarness) -> None:
    site, sp_list = seed_list(graph)
    item = graph.json("GET", f"sites/{site.id}/lists/{sp_list.id}/items/3?$expand=fields")
    assert item["fields"]["Owner"] == "owner0" and item["fields"]["id"] == "3"
    assert item["fields"]["ContentType"] == "Item"
    selected = graph.json("GET", f"sites/{site.id}/lists/{sp_list.id}/items/3?$expand=fields($select=Owner)")
    assert set(selected["fields"]) == {"@odata.etag", "Owner"}
    bare = graph.json("GET", f"sites/{site.id}/lists/{sp_list.id}/items?$top=1")["value"][0]
    assert "fields" not in bare


def test_lists_by_id_or_title_and_columns(graph: GraphHarness) -> None:
    site, sp_list = seed_list(graph)
    lists = graph.json("GET", f"sites/{site.id}/lists")["value"]
    assert [entry["displayName"] for entry in lists] == ["Asset Register"]
    by_title = graph.json("GET", f"sites/{site.id}/lists/Asset%20Register?expand=columns")
    assert by_title["id"] == sp_list.id
    assert [c["name"] for c in by_title["columns"]] == ["Title", "Owner", "Cost"]
    assert graph.get(f"sites/{site.id}/lists/Nope").status_code == 404


def test_create_a_list_item(graph: GraphHarness) -> None:
    site, sp_list = seed_list(graph)
    created = graph.json("POST", f"sites/{site.id}/lists/{sp_list.id}/items", 201, json={"fields": {"Title": "New"}})
    assert created["id"] == "26" and created["fields"]["Title"] == "New"
    assert (
        graph.call("POST", f"sites/{site.id}/lists/{sp_list.id}/items", token="sites-read", json={}).status_code == 403
    )
