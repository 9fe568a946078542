"""A sync job enumerates a library with delta, then picks up only what changed since."""

from __future__ import annotations

import datetime as dt
from typing import Any
from urllib.parse import quote

from graph_harness import GraphHarness

from airflow_provider_graphcert.testing.emulator.graph_state import Drive


def run_delta(graph: GraphHarness, url: str, **kwargs: Any) -> tuple[list[dict[str, Any]], str, int]:
    """Follow nextLinks to the deltaLink; returns (items, deltaLink, pages)."""
    items: list[dict[str, Any]] = []
    pages = 0
    while True:
        page = graph.json("GET", url, **kwargs)
        pages += 1
        items.extend(page["value"])
        if "@odata.deltaLink" in page:
            assert "@odata.nextLink" not in page
            return items, page["@odata.deltaLink"], pages
        url = page["@odata.nextLink"]


def latest_by_id(items: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """B4: the same item may repeat; the last occurrence wins."""
    return {item["id"]: item for item in items}


def test_initial_enumeration_then_changes_and_deletions(graph: GraphHarness, library: Drive) -> None:
    for index in range(12):
        library.put_file(f"docs/{index:02d}.txt", b"v1")
    doomed = library.put_file("old/gone.txt", b"bye")
    items, delta_link, pages = run_delta(graph, f"drives/{library.id}/root/delta?$top=5")
    assert pages == 4  # root + 2 folders + 13 files = 16 items
    state = latest_by_id(items)
    assert len(state) == 16
    assert items[0]["root"] == {}
    positions = {item["id"]: index for index, item in enumerate(items)}
    assert all(positions[i["parentReference"]["id"]] < positions[i["id"]] for i in items if "root" not in i)
    assert all("path" not in item["parentReference"] for item in items)
    assert "$top=5" in delta_link

    library.put_file("docs/03.txt", b"v2, longer")
    library.put_file("docs/03.txt", b"v3, longer still")
    new = library.put_file("docs/new.txt", b"new")
    library.delete("old")
    changes, delta_link, _ = run_delta(graph, delta_link)
    changed = latest_by_id(changes)
    assert changed[library.resolve("docs/03.txt").id]["size"] == len(b"v3, longer still")
    assert "cTag" not in changed[new.id]
    assert new.id in changed
    assert changed[doomed.id]["deleted"] == {"state": "deleted"}
    assert "name" not in changed[doomed.id]
    assert sum(1 for c in changes if c["id"] == library.resolve("docs/03.txt").id) == 1
    # Parents of changed items come along unless deltaExcludeParent is sent.
    assert library.root.id in changed

    quiet, _, _ = run_delta(graph, delta_link)
    assert quiet == []


def test_delta_exclude_parent(graph: GraphHarness, library: Drive) -> None:
    library.put_file("a/b/c.txt", b"1")
    _, delta_link, _ = run_delta(graph, f"drives/{library.id}/root/delta")
    changed = library.put_file("a/b/c.txt", b"2")
    with_parents, _, _ = run_delta(graph, delta_link)
    assert [i["name"] for i in with_parents] == ["root", "a", "b", "c.txt"]
    only_changes, _, _ = run_delta(graph, delta_link, headers={"deltaExcludeParent": "true"})
    assert [i["id"] for i in only_changes] == [changed.id]


def test_token_latest_starts_from_now(graph: GraphHarness, library: Drive) -> None:
    library.put_file("before.txt", b"b")
    page = graph.json("GET", f"sites/{library.site.id}/drive/root/delta?token=latest")
    assert page["value"] == [] and "@odata.nextLink" not in page
    after = library.put_file("after.txt", b"a")
    changes, _, _ = run_delta(graph, page["@odata.deltaLink"], headers={"deltaExcludeParent": "1"})
    assert [c["id"] for c in changes] == [after.id]


def test_token_can_be_a_timestamp(graph: GraphHarness, library: Drive) -> None:
    tomorrow = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(days=1)
    graph.state.now = lambda: current
    current = tomorrow
    library.put_file("early.txt", b"e")
    current = tomorrow + dt.timedelta(minutes=5)
    late = library.put_file("late.txt", b"l")
    cutoff = tomorrow + dt.timedelta(minutes=2)
    stamp = quote(cutoff.strftime("%Y-%m-%dT%H:%M:%SZ"), safe="")
    changes, _, _ = run_delta(
        graph, f"drives/{library.id}/root/delta?token={stamp}", headers={"deltaExcludeParent": "1"}
    )
    assert [c["id"] for c in changes] == [late.id]


def test_expired_or_unknown_token_is_410_with_a_fresh_start(graph: GraphHarness, library: Drive) -> None:
    library.put_file("a.txt", b"a")
    _, delta_link, _ = run_delta(graph, f"drives/{library.id}/root/delta?$select=id,name")
    graph.state.expire_delta_tokens(library)
    gone = graph.get(delta_link)
    assert gone.status_code == 410
    assert gone.json()["error"]["code"] == "resyncChangesApplyDifferences"
    location = gone.headers["Location"]
    assert location == f"{graph.base}/drives/{library.id}/root/delta?$select=id,name"
    items, _, _ = run_delta(graph, location)
    assert {i["name"] for i in items} == {"root", "a.txt"}
    assert graph.get(f"drives/{library.id}/root/delta?token=garbage").status_code == 410


def test_delta_is_only_on_the_root(graph: GraphHarness, library: Drive) -> None:
    folder = library.mkdir("sub")
    assert graph.get(f"drives/{library.id}/items/{folder.id}/delta").status_code == 400


def test_changes_made_while_paging_are_not_lost(graph: GraphHarness, library: Drive) -> None:
    for index in range(10):
        library.put_file(f"{index}.txt", b"x")
    first = graph.json("GET", f"drives/{library.id}/root/delta?$top=3")
    touched = library.put_file("0.txt", b"changed during enumeration")
    items, delta_link, _ = run_delta(graph, first["@odata.nextLink"])
    changes, _, _ = run_delta(graph, delta_link, headers={"deltaExcludeParent": "1"})
    seen = latest_by_id(first["value"] + items + changes)
    assert seen[touched.id]["size"] == len(b"changed during enumeration")
    assert len(seen) == 11
