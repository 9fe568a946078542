"""A client finds a SharePoint site by its URL, its document library, and walks folders page by page."""

from __future__ import annotations

import uuid
from urllib.parse import quote

import pytest
from graph_harness import GraphHarness

from airflow_provider_graphcert.testing.emulator.graph_state import Drive

AWKWARD_NAMES = [
    "Budget 2024.xlsx",
    "R&D #1.txt",
    "100% done.txt",
    "Übersicht \u2013 Zoë.docx",
    "日本語のファイル.txt",
    "a+b=c.txt",
    "semi;colon's.txt",
]


def test_site_by_server_relative_path_in_every_documented_form(graph: GraphHarness, library: Drive) -> None:
    site = library.site
    for path in (
        "sites/contoso.sharepoint.com:/sites/finance",
        "sites/contoso.sharepoint.com:/sites/finance:",
        "sites/contoso.sharepoint.com:/sites/Finance/",
        f"sites/{site.id}",
    ):
        body = graph.json("GET", path)
        assert body["id"] == site.id
        assert body["id"].count(",") == 2 and body["id"].startswith("contoso.sharepoint.com,")
        assert body["webUrl"] == "https://contoso.sharepoint.com/sites/finance"
        assert body["displayName"] == "Finance"


def test_tenant_root_site(graph: GraphHarness) -> None:
    root = graph.json("GET", "sites/root")
    assert root["root"] == {}
    assert root["webUrl"] == "https://contoso.sharepoint.com"
    assert graph.json("GET", "sites/contoso.sharepoint.com")["id"] == root["id"]


def test_unknown_site_is_item_not_found_with_correlation(graph: GraphHarness) -> None:
    client_request_id = str(uuid.uuid4())
    response = graph.get("sites/contoso.sharepoint.com:/sites/nope", headers={"client-request-id": client_request_id})
    assert response.status_code == 404
    error = response.json()["error"]
    assert error["code"] == "itemNotFound"
    inner = error["innerError"]
    assert inner["client-request-id"] == client_request_id == response.headers["client-request-id"]
    assert inner["request-id"] == response.headers["request-id"]
    assert not inner["date"].endswith("Z")
    assert response.headers["Date"].endswith("GMT")


def test_drives_of_a_site_and_its_default_library(graph: GraphHarness, library: Drive) -> None:
    library.site.add_library("Archive")
    site_id = library.site.id
    drives = graph.json("GET", f"sites/{site_id}/drives")["value"]
    assert {d["name"] for d in drives} == {"Documents", "Archive"}
    documents = next(d for d in drives if d["name"] == "Documents")
    assert documents["driveType"] == "documentLibrary"
    assert documents["webUrl"] == "https://contoso.sharepoint.com/sites/finance/Shared%20Documents"
    assert graph.json("GET", f"sites/{site_id}/drive")["id"] == library.id
    assert graph.json("GET", f"drives/{library.id}")["name"] == "Documents"
    by_path = graph.json("GET", "sites/contoso.sharepoint.com:/sites/finance:/drives")["value"]
    assert len(by_path) == 2


def test_children_of_a_folder_with_awkward_names_page_by_page(graph: GraphHarness, library: Drive) -> None:
    for index in range(23):
        library.put_file(f"Reports 2024/Q1 #%/file {index:02d}.txt", b"x" * index)
    for name in AWKWARD_NAMES:
        library.put_file(f"Reports 2024/Q1 #%/{name}", name.encode())
    folder = quote("Reports 2024/Q1 #%")
    items, pages = graph.follow_pages(f"drives/{library.id}/root:/{folder}:/children?$top=5&$select=name,size,file")
    assert pages == 6
    names = [item["name"] for item in items]
    assert sorted(names) == sorted([f"file {i:02d}.txt" for i in range(23)] + AWKWARD_NAMES)
    assert all(set(item) <= {"name", "size", "file"} for item in items)
    first_page = graph.json("GET", f"drives/{library.id}/root:/{folder}:/children?$top=5&$select=name")
    next_link = first_page["@odata.nextLink"]
    assert next_link.startswith(f"{graph.base}/drives/{library.id}/root:/Reports%202024/Q1%20%23%25:/children?")
    assert "$top=5" in next_link and "$select=name" in next_link and "$skiptoken=" in next_link


def test_children_by_item_id_and_of_the_root(graph: GraphHarness, library: Drive) -> None:
    folder = library.mkdir("a/b")
    library.put_file("a/b/one.txt", b"1")
    library.put_file("top.txt", b"t")
    children = graph.json("GET", f"drives/{library.id}/items/{folder.id}/children")["value"]
    assert [c["name"] for c in children] == ["one.txt"]
    root_children = graph.json("GET", f"drives/{library.id}/root/children")["value"]
    assert sorted(c["name"] for c in root_children) == ["a", "top.txt"]
    a = next(c for c in root_children if c["name"] == "a")
    assert a["folder"] == {"childCount": 1} and a["size"] == 1 and "cTag" not in a


@pytest.mark.parametrize("name", AWKWARD_NAMES)
def test_item_by_percent_encoded_path(graph: GraphHarness, library: Drive, name: str) -> None:
    item = library.put_file(f"In #box/{name}", name.encode())
    for suffix in ("", ":"):
        body = graph.json("GET", f"drives/{library.id}/root:/{quote('In #box/' + name)}{suffix}")
        assert body["id"] == item.id and body["name"] == name
    relative = graph.json("GET", f"drives/{library.id}/items/{item.parent_id}:/{quote(name)}:")
    assert relative["id"] == item.id


def test_drive_item_json_has_the_documented_shape(graph: GraphHarness, library: Drive) -> None:
    item = library.put_file("docs/report.pdf", b"%PDF-1.7 ...")
    body = graph.json("GET", f"drives/{library.id}/items/{item.id}")
    assert body["file"]["mimeType"] == "application/pdf"
    assert body["file"]["hashes"] == {"quickXorHash": item.quick_xor_hash}
    assert body["eTag"].startswith('"{') and body["cTag"].startswith('"c:{')
    assert body["size"] == len(b"%PDF-1.7 ...")
    assert body["@microsoft.graph.downloadUrl"].startswith(graph.files_origin)
    reference = body["parentReference"]
    assert reference["driveId"] == library.id and reference["siteId"] == library.site.id
    assert reference["path"] == f"/drives/{library.id}/root:/docs"
    assert body["webUrl"] == "https://contoso.sharepoint.com/sites/finance/Shared%20Documents/docs/report.pdf"
    root = graph.json("GET", f"drives/{library.id}/root")
    assert root["root"] == {} and root["folder"]["childCount"] == 1


def test_select_is_honoured_for_top_level_properties(graph: GraphHarness, library: Drive) -> None:
    item = library.put_file("x.txt", b"x")
    body = graph.json("GET", f"drives/{library.id}/items/{item.id}?$select=id,name,@microsoft.graph.downloadUrl")
    assert set(body) == {"id", "name", "@microsoft.graph.downloadUrl"}


def test_if_none_match_with_the_current_etag_gives_304(graph: GraphHarness, library: Drive) -> None:
    item = library.put_file("x.txt", b"x")
    etag = graph.get(f"drives/{library.id}/items/{item.id}").json()["eTag"]
    assert graph.get(f"drives/{library.id}/items/{item.id}", headers={"If-None-Match": etag}).status_code == 304
    assert graph.get(f"drives/{library.id}/items/{item.id}/content", headers={"If-None-Match": etag}).status_code == 304
    library.put_file("x.txt", b"changed")
    assert graph.get(f"drives/{library.id}/items/{item.id}", headers={"If-None-Match": etag}).status_code == 200


def test_missing_items_and_unknown_segments(graph: GraphHarness, library: Drive) -> None:
    missing = graph.get(f"drives/{library.id}/root:/no/such/file.txt")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "itemNotFound"
    assert graph.get(f"drives/{library.id}/items/01NOPE").status_code == 404
    assert graph.get("drives/b!unknown").status_code == 404
    assert graph.get("nonsense/path").status_code == 400


def test_delete_an_item(graph: GraphHarness, library: Drive) -> None:
    library.put_file("old/a.txt", b"a")
    assert graph.call("DELETE", f"drives/{library.id}/root:/old", token="sites-write").status_code == 204
    assert graph.get(f"drives/{library.id}/root:/old").status_code == 404
    assert library.root.size == 0
