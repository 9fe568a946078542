"""The state model on its own: seeding helpers, bodies on disk, sizes and tombstones."""

from __future__ import annotations

import io
import threading
from pathlib import Path

import pytest

from airflow_provider_graphcert.quickxorhash import quickxorhash
from airflow_provider_graphcert.testing.emulator.graph_routes import parse_item_address, parse_site_address
from airflow_provider_graphcert.testing.emulator.graph_state import (
    FRAGMENT_MULTIPLE_BYTES,
    MAX_FRAGMENT_BYTES,
    GraphError,
    GraphState,
    numbered_name,
)


def test_put_file_from_bytes_path_or_stream_keeps_bodies_on_disk(tmp_path: Path) -> None:
    state = GraphState(storage_dir=tmp_path / "state")
    drive = state.add_site("contoso.sharepoint.com", "/sites/x", "X").add_library("Documents")
    source = tmp_path / "source.bin"
    source.write_bytes(b"from a file" * 1000)
    from_bytes = drive.put_file("a/b/c.txt", b"bytes")
    from_path = drive.put_file("a/d.bin", source)
    from_stream = drive.put_file("e.bin", io.BytesIO(b"stream"))
    for item, data in ((from_bytes, b"bytes"), (from_path, source.read_bytes()), (from_stream, b"stream")):
        assert item.blob is not None and item.blob.parent == state.blob_dir
        assert item.blob.read_bytes() == data
        assert item.quick_xor_hash == quickxorhash(data)
    assert drive.resolve("A/B").is_folder  # names are case-insensitive
    assert drive.resolve("a").size == 5 + 11_000
    assert drive.root.size == drive.used == 5 + 11_000 + 6
    drive.delete("a")
    assert drive.root.size == 6
    assert from_bytes.blob is not None and not from_bytes.blob.exists()
    assert set(drive.tombstones) >= {from_bytes.id, from_path.id}


def test_temporary_storage_is_removed_on_close() -> None:
    state = GraphState()
    drive = state.root_site.add_library("Documents")
    drive.put_file("x.txt", b"x")
    directory = state.storage_dir
    assert directory.exists()
    state.close()
    assert not directory.exists()


def test_users_and_groups_are_generated_not_stored() -> None:
    state = GraphState()
    state.add_users(1_000_000)
    assert state.users.count == 1_000_000
    last = state.users.entry(999_999)
    assert state.users.index_of(last["id"]) == 999_999
    assert state.users.index_of(state.groups.id_of(0)) is None
    state.close()


def test_names_that_sharepoint_refuses() -> None:
    state = GraphState()
    drive = state.root_site.add_library("Documents")
    for bad in ("a:b", "what?", "~$lock.docx", " padded", "CON", "folder."):
        with pytest.raises(GraphError):
            drive.mkdir(bad)
    drive.put_file("100% #1.txt", b"ok")
    state.close()


def test_numbered_names_for_rename() -> None:
    assert numbered_name("report.pdf", 1) == "report 1.pdf"
    assert numbered_name("archive.tar.gz", 2) == "archive.tar 2.gz"
    assert numbered_name("README", 3) == "README 3"
    assert numbered_name(".env", 1) == ".env 1"


def test_concurrent_seeding_is_safe() -> None:
    state = GraphState()
    drive = state.root_site.add_library("Documents")

    def writer(worker: int) -> None:
        for index in range(50):
            drive.put_file(f"shared/w{worker}/{index}.txt", b"x" * index)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert drive.resolve("shared").size == 8 * sum(range(50))
    assert len(drive.items) == 1 + 1 + 8 + 400
    state.close()


def test_address_parsers() -> None:
    item = parse_item_address("root:/a b/c.txt:/content")
    assert item is not None and (item.item_id, item.path, item.action) == (None, "/a b/c.txt", "content")
    by_id = parse_item_address("items/01ABC:/new.txt:/createUploadSession")
    assert by_id is not None and (by_id.item_id, by_id.path, by_id.action) == (
        "01ABC",
        "/new.txt",
        "createUploadSession",
    )
    assert parse_item_address("items/01ABC/children") == parse_item_address("items/01ABC/children")
    assert parse_item_address("drive/root") is None
    alias = parse_item_address("items/root:/a/b.txt:/content")
    assert alias is not None and (alias.item_id, alias.path, alias.action) == (None, "/a/b.txt", "content")
    call = parse_item_address("root/microsoft.graph.delta(token='it''s')")
    assert call is not None and (call.action, dict(call.arguments)) == ("delta", {"token": "it's"})
    search = parse_item_address("items/01ABC/search(q='q1 report')")
    assert search is not None and (search.item_id, search.action, dict(search.arguments)) == (
        "01ABC",
        "search",
        {"q": "q1 report"},
    )
    child = parse_item_address("items/01ABC/children/01DEF/content")
    assert child is not None and (child.action, child.rest) == ("children", "/01DEF/content")
    site = parse_site_address("contoso.sharepoint.com:/sites/x:/drives")
    assert (site.hostname, site.path, site.rest) == ("contoso.sharepoint.com", "/sites/x", "/drives")
    assert parse_site_address("root/lists").rest == "/lists"


def test_fragments_of_60_mib_or_more_are_refused_before_any_byte_is_read() -> None:
    state = GraphState()
    drive = state.root_site.add_library("Documents")
    session = state.create_upload_session(
        drive, parent=drive.root, missing_folders=[], name="huge.bin", conflict="fail", actor={}
    )
    total = 10 * MAX_FRAGMENT_BYTES
    with pytest.raises(GraphError) as refused:
        state.begin_fragment(session, 0, MAX_FRAGMENT_BYTES - 1, total)
    assert refused.value.status == 400 and refused.value.code == "invalidRange"
    largest = (MAX_FRAGMENT_BYTES // FRAGMENT_MULTIPLE_BYTES - 1) * FRAGMENT_MULTIPLE_BYTES
    writer = state.begin_fragment(session, 0, largest - 1, total)
    state.abort_fragment(writer)
    assert session.received == 0 and not session.busy
    state.close()


def test_simple_upload_bodies_stop_at_the_limit() -> None:
    state = GraphState()
    writer = state.new_blob(max_size=10)
    writer.write(b"0123456789")
    with pytest.raises(GraphError) as too_big:
        writer.write(b"!")
    assert too_big.value.status == 413
    writer.discard()
    assert not writer.path.exists()
    state.close()


def test_a_restored_snapshot_keeps_list_indexes_and_the_office_rewrite_switch(tmp_path: Path) -> None:
    from airflow_provider_graphcert.testing.emulator.graph.snapshots import load_snapshot, save_snapshot

    state = GraphState(storage_dir=tmp_path / "files")
    site = state.add_site("contoso.sharepoint.com", "/sites/x", "X")
    site.add_library("Archive", rewrite_office_documents=False)
    state.add_list(site, "Invoices", ["Status", "Amount"], [{"Title": "a"}], indexed=["Amount"])
    save_snapshot(state, tmp_path / "snapshot.json")
    restored = GraphState(storage_dir=tmp_path / "files")
    assert load_snapshot(restored, tmp_path / "snapshot.json")
    again = restored.site_by_path("contoso.sharepoint.com", "/sites/x")
    assert [d.rewrite_office_documents for d in again.drives.values()] == [False]
    assert again.find_list("Invoices").indexed_columns == {"Amount"}
