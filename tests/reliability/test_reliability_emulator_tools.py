"""The emulator's tools for this suite keep their promises: snapshots restore everything, tamper
rules rewrite only what they match, and the test-only door for hostile names leaves the normal
rules as strict as before."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests
from reliability_kit import sharepoint_for

from airflow_provider_graphcert.testing.emulator.faults import FaultSwitchboard, edit_json, set_header
from airflow_provider_graphcert.testing.emulator.graph_snapshot import (
    SNAPSHOT_NAME,
    change_marker,
    load_snapshot,
    save_snapshot,
)
from airflow_provider_graphcert.testing.emulator.graph_state import Drive, GraphError, GraphState
from airflow_provider_graphcert.testing.emulator.server import GraphEmulator
from airflow_provider_graphcert.testing.emulator.state import App


def test_a_snapshot_brings_back_the_same_content_ids_and_links(tmp_path: Path) -> None:
    storage = tmp_path / "graph-files"
    before = GraphState(storage_dir=storage)
    site = before.add_site("contoso.sharepoint.com", "/sites/Finance", "Finance")
    drive = site.add_library("Documents")
    report = drive.put_file("Reports/2026/q1.csv", b"a,b\n1,2\n")
    drive.put_file("Reports/2026/q1.csv", b"a,b\n1,2\n3,4\n")  # a second version
    drive.put_file("Old/gone.txt", b"x")
    drive.delete("Old/gone.txt")
    site.add_list("Invoices", columns=["Title"], items=[{"Title": "INV-1"}, {"Title": "INV-2"}])
    before.add_users(42)
    token = before.download_token(report)
    delta = drive.encode_delta_token(drive.delta_first())
    save_snapshot(before, tmp_path / SNAPSHOT_NAME)

    after = GraphState(storage_dir=storage)
    assert load_snapshot(after, tmp_path / SNAPSHOT_NAME)
    restored = after.site_by_path("contoso.sharepoint.com", "/sites/Finance")
    same = restored.default_drive.resolve("Reports/2026/q1.csv")
    assert (same.id, same.etag, same.ctag, same.quick_xor_hash) == (
        report.id,
        report.etag,
        report.ctag,
        report.quick_xor_hash,
    )
    assert same.blob is not None and same.blob.read_bytes() == b"a,b\n1,2\n3,4\n"
    assert restored.id == site.id and restored.default_drive.id == drive.id
    assert after.resolve_download(token) is same  # download URLs handed out before still work
    assert restored.default_drive.decode_delta_token(delta).initial  # and so do delta links
    assert report.id not in restored.default_drive.tombstones and len(restored.default_drive.tombstones) == 1
    assert [i.fields["Title"] for i in restored.find_list("Invoices").items.values()] == ["INV-1", "INV-2"]
    assert after.users.count == 42 and after.users.id_of(7) == before.users.id_of(7)
    assert change_marker(after) == change_marker(before)
    assert not load_snapshot(GraphState(storage_dir=tmp_path / "other"), tmp_path / "missing.json")


def test_tamper_rules_rewrite_matching_answers_only_and_refuse_mixed_rules(
    graph_emulator: GraphEmulator, app: App, documents: Drive, pem_file: Path
) -> None:
    documents.put_file("Exports/a.csv", b"1")
    service = sharepoint_for(graph_emulator, app, pem_file)
    graph_emulator.faults.tamper(r"/children$", edit_json(lambda page: {**page, "tampered": True}), times=1)
    children = service.client.get_json(f"drives/{documents.id}/root:/Exports:/children")
    again = service.client.get_json(f"drives/{documents.id}/root:/Exports:/children")
    assert children["tampered"] is True and "tampered" not in again
    assert graph_emulator.faults.count(kind="tamper") == 1
    with pytest.raises(ValueError, match="takes no status"):
        FaultSwitchboard().add(None, status=429, edit=set_header("x", "y"))


def test_hostile_names_enter_only_through_the_test_door(graph_emulator: GraphEmulator, documents: Drive) -> None:
    hostile = documents.put_unchecked("", "../escape.txt", b"x")
    twin = documents.put_unchecked("", "ESCAPE", b"y")
    documents.put_unchecked("", "escape", b"z")  # differs only in case from its sibling: allowed here only
    assert hostile.name == "../escape.txt" and documents.child(documents.root, "escape") is twin
    for name in ("../escape.txt", "a:b", "CON", " padded"):
        with pytest.raises(GraphError) as info:
            documents.put_file(name, b"x")
        assert info.value.status in (400, 409)
    documents.delete_item(twin)  # deleting a case twin leaves its sibling listed
    assert [item.name for item in documents.children_page(documents.root, after=None, top=10).items] == [
        "../escape.txt",
        "escape",
    ]


def test_the_standalone_emulator_needs_a_state_dir_to_persist(tmp_path: Path) -> None:
    from airflow_provider_graphcert.testing.emulator.standalone import main

    assert main(["--persist"]) == 2
    with pytest.raises(ValueError, match="state_dir"):
        GraphEmulator(persist_graph=True)


def test_a_tampered_redirect_is_what_the_client_sees(graph_emulator: GraphEmulator, documents: Drive) -> None:
    """Status and headers of a tamper edit reach the wire as written."""
    documents.put_file("Exports/a.csv", b"1")
    graph_emulator.faults.tamper(None, set_header("location", "https://example.invalid/", status=302), origin="graph")
    response = requests.get(
        f"{graph_emulator.graph_url}/v1.0/sites/root",
        verify=graph_emulator.ca_bundle,
        allow_redirects=False,
        timeout=10,
    )
    assert response.status_code == 302 and response.headers["location"] == "https://example.invalid/"
