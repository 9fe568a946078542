"""Listing a large directory page by page, and what Graph answers without the right token or role."""

from __future__ import annotations

import tracemalloc
from urllib.parse import parse_qs, urlsplit

from graph_harness import GraphHarness

from airflow_provider_graphcert.testing.emulator.graph_state import Drive


def test_ten_thousand_users_page_by_page(graph: GraphHarness) -> None:
    graph.state.add_users(10_000)
    users, pages = graph.follow_pages("users?$top=999&$select=id,displayName,userPrincipalName", token="directory")
    assert pages == 11
    assert len(users) == 10_000
    assert len({u["id"] for u in users}) == 10_000
    assert set(users[0]) == {"id", "displayName", "userPrincipalName"}


def test_users_default_page_and_next_link_keep_query_options(graph: GraphHarness) -> None:
    graph.state.add_users(250)
    first = graph.json("GET", "users?$select=displayName", token="directory")
    assert len(first["value"]) == 100
    assert first["@odata.context"].endswith("/$metadata#users")
    next_link = first["@odata.nextLink"]
    assert next_link.startswith(f"{graph.base}/users?")
    query = parse_qs(urlsplit(next_link).query)
    assert query["$select"] == ["displayName"] and "$skiptoken" in query
    default = graph.json("GET", "users?$top=1", token="directory")["value"][0]
    assert "userPrincipalName" in default and "department" not in default


def test_page_size_above_999_is_refused(graph: GraphHarness) -> None:
    graph.state.add_users(5)
    response = graph.get("users?$top=1000", token="directory")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "Request_UnsupportedQuery"


def test_a_user_by_id_or_principal_name_and_groups(graph: GraphHarness) -> None:
    graph.state.add_users(3)
    graph.state.add_groups(1500)
    user_id = graph.state.users.id_of(2)
    assert graph.json("GET", f"users/{user_id}", token="directory")["id"] == user_id
    upn = graph.json("GET", f"users/{user_id}", token="directory")["userPrincipalName"]
    assert graph.json("GET", f"users/{upn}?$select=department", token="directory") == {"department": "Sales"}
    assert graph.get("users/00000000-0000-0000-0000-000000000000", token="directory").status_code == 404
    groups, pages = graph.follow_pages("groups?$top=500", token="directory")
    assert len(groups) == 1500 and pages == 3


def test_paging_a_huge_directory_builds_one_page_at_a_time(graph: GraphHarness) -> None:
    graph.state.add_users(100_000)
    tracemalloc.start()
    try:
        page = graph.json("GET", "users?$top=999", token="directory")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(page["value"]) == 999
    # 100,000 rendered users would take well over 100 MB; one page is a few MB.
    assert peak < 30 * 1024 * 1024


def test_missing_or_bad_token_is_invalid_authentication_token(graph: GraphHarness, library: Drive) -> None:
    for token in (None, "not-a-token"):
        response = graph.get(f"drives/{library.id}", token=token)
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "InvalidAuthenticationToken"
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert graph.get(f"drives/{library.id}", token=None).json()["error"]["message"] == "Access token is empty."


def test_missing_roles_are_403(graph: GraphHarness, library: Drive) -> None:
    graph.state.add_users(1)
    denied_users = graph.get("users", token="sites-read")
    assert denied_users.status_code == 403
    assert denied_users.json()["error"]["code"] == "Authorization_RequestDenied"
    denied_drive = graph.get(f"drives/{library.id}/root/children", token="directory")
    assert denied_drive.status_code == 403 and denied_drive.json()["error"]["code"] == "accessDenied"
    assert graph.get(f"drives/{library.id}", token="no-roles").status_code == 403


def test_read_roles_cannot_write(graph: GraphHarness, library: Drive) -> None:
    read_only = graph.call("PUT", f"drives/{library.id}/root:/x.txt:/content", token="sites-read", data=b"x")
    assert read_only.status_code == 403
    files_read = graph.call("PUT", f"drives/{library.id}/root:/x.txt:/content", token="files-read", data=b"x")
    assert files_read.status_code == 403
    assert graph.call("PUT", f"drives/{library.id}/root:/x.txt:/content", token="sites-write", data=b"x").ok


def test_files_roles_reach_drives_but_not_the_site_object(graph: GraphHarness, library: Drive) -> None:
    """Per the API pages, getting a site needs Sites.*; drives also accept Files.*."""
    assert graph.get(f"drives/{library.id}/root/children", token="files-read").status_code == 200
    assert graph.get(f"sites/{library.site.id}/drives", token="files-read").status_code == 200
    assert graph.get(f"sites/{library.site.id}", token="files-read").status_code == 403
