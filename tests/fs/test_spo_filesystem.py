"""A data engineer works with SharePoint files through fsspec's spo:// file system."""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import pytest
from conftest import LIBRARY_PATH, LIBRARY_URL
from emulator_features import NEEDS_EMULATOR_COPY_AND_MOVE

from airflow_provider_graphcert.fs.server_side import CopyFailedError
from airflow_provider_graphcert.fs.spo import ConnectionFileSystem
from airflow_provider_graphcert.sharepoint.download import IntegrityError
from airflow_provider_graphcert.testing.emulator.faults import CapturedResponse, edit_json, replace_body
from airflow_provider_graphcert.testing.emulator.graph_state import Drive
from airflow_provider_graphcert.testing.emulator.server import GraphEmulator

MIB = 1024 * 1024


def patterned(size: int, seed: str = "spo") -> bytes:
    """``size`` bytes that differ at every position (a shifted copy would not compare equal)."""
    block = b"".join(hashlib.sha256(f"{seed}{i}".encode()).digest() for i in range(2048))
    return (block * (size // len(block) + 1))[:size]


def graph_requests(emulator: GraphEmulator, method: str, fragment: str) -> int:
    return sum(1 for r in emulator.requests.records() if r.method == method and fragment in r.path)


def test_a_file_reads_back_with_its_size_modified_time_etag_and_quickxorhash(
    spo: ConnectionFileSystem, documents: Drive
) -> None:
    item = documents.put_file("Reports/q1.csv", b"region,total\nnorth,12\n")
    info = spo.info(f"{LIBRARY_URL}/Reports/q1.csv")
    assert info["type"] == "file"
    assert info["size"] == 22
    assert info["quickXorHash"] == item.quick_xor_hash
    assert info["eTag"] == item.etag
    assert spo.ukey(f"{LIBRARY_URL}/Reports/q1.csv") == item.etag
    assert spo.modified(f"{LIBRARY_URL}/Reports/q1.csv").timestamp() == pytest.approx(item.modified.timestamp(), abs=1)
    assert "@microsoft.graph.downloadUrl" not in str(info)  # pre-authenticated URLs stay out of info()
    assert spo.cat_file(f"{LIBRARY_URL}/Reports/q1.csv") == b"region,total\nnorth,12\n"


def test_seeks_read_the_right_bytes_with_range_requests(
    spo: ConnectionFileSystem, documents: Drive, graph_emulator: GraphEmulator
) -> None:
    data = patterned(3 * MIB)
    documents.put_file("big.bin", data)
    with spo.open(f"{LIBRARY_URL}/big.bin", "rb", block_size=256 * 1024, cache_type="none") as handle:
        handle.seek(2 * MIB + 17)
        assert handle.read(1000) == data[2 * MIB + 17 : 2 * MIB + 1017]
        handle.seek(5)
        assert handle.read(10) == data[5:15]
        assert handle.read(10) == data[15:25]  # sequential: served by the response already open
    ranges = [r.headers.get("range") for r in graph_emulator.requests.records("files") if r.method == "GET"]
    assert ranges == [f"bytes={2 * MIB + 17}-", "bytes=5-"]


def test_a_whole_read_that_does_not_match_graphs_hash_fails(
    spo: ConnectionFileSystem, documents: Drive, graph_emulator: GraphEmulator
) -> None:
    documents.put_file("ledger.csv", b"a,b\n1,2\n")
    graph_emulator.faults.tamper("download", replace_body(b"a,b\n1,3\n", content_type="text/csv"), origin="files")
    with pytest.raises(IntegrityError, match="QuickXorHash"), spo.open(f"{LIBRARY_URL}/ledger.csv") as handle:
        handle.read()


def test_a_download_dropped_mid_body_resumes_where_it_stopped(
    spo: ConnectionFileSystem, documents: Drive, graph_emulator: GraphEmulator
) -> None:
    data = patterned(4 * MIB)
    documents.put_file("drop.bin", data)
    graph_emulator.faults.add("download", drop="mid_body", drop_after_bytes=MIB, times=1, origin="files")
    assert spo.cat_file(f"{LIBRARY_URL}/drop.bin") == data
    ranges = [r.headers.get("range") for r in graph_emulator.requests.records("files") if r.method == "GET"]
    assert ranges[0] == "bytes=0-" and len(ranges) == 2 and ranges[1] != "bytes=0-"


def test_listing_a_folder_and_globbing_its_files(spo: ConnectionFileSystem, documents: Drive) -> None:
    for name in ("Reports/q1.csv", "Reports/q2.csv", "Reports/notes.txt", "Reports/2025/q4.csv"):
        documents.put_file(name, name.encode())
    listing = spo.ls(f"{LIBRARY_URL}/Reports", detail=True)
    assert {(entry["name"].rsplit("/", 1)[1], entry["type"]) for entry in listing} == {
        ("q1.csv", "file"),
        ("q2.csv", "file"),
        ("notes.txt", "file"),
        ("2025", "directory"),
    }
    assert sorted(spo.glob(f"{LIBRARY_URL}/Reports/*.csv")) == [
        f"{LIBRARY_PATH}/Reports/q1.csv",
        f"{LIBRARY_PATH}/Reports/q2.csv",
    ]
    assert f"{LIBRARY_PATH}/Reports/2025/q4.csv" in spo.glob(f"{LIBRARY_URL}/Reports/**/*.csv")
    assert spo.isdir(f"{LIBRARY_URL}/Reports/2025") and spo.isfile(f"{LIBRARY_URL}/Reports/q1.csv")
    assert not spo.exists(f"{LIBRARY_URL}/Reports/q3.csv")


def test_a_site_lists_its_document_libraries(spo: ConnectionFileSystem, archive: Drive) -> None:
    names = spo.ls("spo://sharepoint_finance@contoso.sharepoint.com/sites/Finance", detail=False)
    assert sorted(names) == [
        "contoso.sharepoint.com/sites/Finance/Archive",
        "contoso.sharepoint.com/sites/Finance/Shared Documents",
    ]


def test_listings_are_cached_and_refreshed_after_a_write(
    spo: ConnectionFileSystem, documents: Drive, graph_emulator: GraphEmulator
) -> None:
    documents.put_file("Inbox/a.csv", b"a")
    folder = f"{LIBRARY_URL}/Inbox"
    assert len(spo.ls(folder)) == 1
    assert len(spo.ls(folder)) == 1
    assert graph_requests(graph_emulator, "GET", "/children") == 1  # the second listing came from the cache
    with spo.open(f"{folder}/b.csv", "wb") as handle:
        handle.write(b"b")
    assert sorted(spo.ls(folder, detail=False)) == [f"{LIBRARY_PATH}/Inbox/a.csv", f"{LIBRARY_PATH}/Inbox/b.csv"]


def test_a_percent_encoded_browser_address_is_explained(spo: ConnectionFileSystem, documents: Drive) -> None:
    with pytest.raises(FileNotFoundError, match="not 'Shared%20Documents'"):
        spo.info("spo://sharepoint_finance@contoso.sharepoint.com/sites/Finance/Shared%20Documents/a.csv")


@pytest.mark.parametrize("size", [1000, 9 * MIB], ids=["simple-upload", "upload-session"])
def test_writing_a_file_uploads_it_whole(
    spo: ConnectionFileSystem, documents: Drive, graph_emulator: GraphEmulator, size: int
) -> None:
    data = patterned(size)
    with spo.open(f"{LIBRARY_URL}/Out/new/data.bin", "wb") as handle:
        for start in range(0, size, 700_000):
            handle.write(data[start : start + 700_000])
        assert not _exists(documents, "Out/new/data.bin")  # nothing under the final name before close
    assert documents.resolve("Out/new/data.bin").blob.read_bytes() == data
    assert graph_requests(graph_emulator, "POST", "createUploadSession") == (1 if size > 4 * MIB else 0)


def test_a_write_that_fails_half_way_leaves_nothing_behind(spo: ConnectionFileSystem, documents: Drive) -> None:
    with pytest.raises(RuntimeError), spo.open(f"{LIBRARY_URL}/Out/partial.csv", "wb") as handle:
        handle.write(b"first half,")
        raise RuntimeError("the source broke")
    assert not _exists(documents, "Out/partial.csv")


def test_exclusive_create_refuses_an_existing_file(spo: ConnectionFileSystem, documents: Drive) -> None:
    documents.put_file("Out/keep.csv", b"keep me")
    with pytest.raises(FileExistsError), spo.open(f"{LIBRARY_URL}/Out/keep.csv", "xb") as handle:
        handle.write(b"overwrite?")
    assert documents.resolve("Out/keep.csv").blob.read_bytes() == b"keep me"


def test_folders_are_made_and_removed(spo: ConnectionFileSystem, documents: Drive) -> None:
    spo.makedirs(f"{LIBRARY_URL}/Staging/2026/12", exist_ok=True)
    assert documents.resolve("Staging/2026/12").is_folder
    with pytest.raises(FileExistsError):
        spo.mkdir(f"{LIBRARY_URL}/Staging/2026")
    spo.rmdir(f"{LIBRARY_URL}/Staging/2026/12")
    assert not _exists(documents, "Staging/2026/12")
    with pytest.raises(OSError, match="not empty"):
        spo.rmdir(f"{LIBRARY_URL}/Staging")


def test_removing_files_by_glob_and_a_whole_folder(
    spo: ConnectionFileSystem, documents: Drive, graph_emulator: GraphEmulator
) -> None:
    for name in ("Old/a.csv", "Old/b.csv", "Old/c.txt", "Old/deep/d.csv", "keep.csv"):
        documents.put_file(name, b"x")
    spo.ls(f"{LIBRARY_URL}/Old")  # cached, then invalidated by the removals
    spo.rm(f"{LIBRARY_URL}/Old/*.csv")
    assert sorted(spo.ls(f"{LIBRARY_URL}/Old", detail=False)) == [
        f"{LIBRARY_PATH}/Old/c.txt",
        f"{LIBRARY_PATH}/Old/deep",
    ]
    with pytest.raises(IsADirectoryError, match="recursive=True"):
        spo.rm(f"{LIBRARY_URL}/Old")
    spo.rm(f"{LIBRARY_URL}/Old", recursive=True)
    assert graph_requests(graph_emulator, "DELETE", "/items/") == 3  # two files, then the folder in one request
    assert not _exists(documents, "Old") and _exists(documents, "keep.csv")
    with pytest.raises(FileNotFoundError):
        spo.rm(f"{LIBRARY_URL}/Old/c.txt")


def test_get_and_put_use_the_verified_transfers(spo: ConnectionFileSystem, documents: Drive, tmp_path: Path) -> None:
    data = patterned(5 * MIB)
    documents.put_file("Exports/report.bin", data)
    spo.get(f"{LIBRARY_URL}/Exports/report.bin", str(tmp_path / "local" / "report.bin"))
    assert (tmp_path / "local" / "report.bin").read_bytes() == data
    assert [p.name for p in (tmp_path / "local").iterdir()] == ["report.bin"]  # no temp file left behind
    spo.put(str(tmp_path / "local" / "report.bin"), f"{LIBRARY_URL}/Imports/report.bin")
    assert documents.resolve("Imports/report.bin").blob.read_bytes() == data


# -- server-side copy and move (Graph's copy and PATCH routes) -----------------------------------


@NEEDS_EMULATOR_COPY_AND_MOVE
def test_copying_a_file_inside_sharepoint_replaces_the_target(spo: ConnectionFileSystem, documents: Drive) -> None:
    documents.put_file("Reports/q1.csv", b"fresh")
    documents.put_file("Backup/q1.csv", b"stale")
    spo.copy(f"{LIBRARY_URL}/Reports/q1.csv", f"{LIBRARY_URL}/Backup/q1.csv")
    assert documents.resolve("Backup/q1.csv").blob.read_bytes() == b"fresh"
    assert documents.resolve("Reports/q1.csv").blob.read_bytes() == b"fresh"


@NEEDS_EMULATOR_COPY_AND_MOVE
def test_renaming_and_moving_a_file_inside_a_library(spo: ConnectionFileSystem, documents: Drive) -> None:
    item = documents.put_file("Inbox/in.csv", b"payload")
    spo.ls(f"{LIBRARY_URL}/Inbox")
    spo.mv(f"{LIBRARY_URL}/Inbox/in.csv", f"{LIBRARY_URL}/Processed/2026/in-done.csv")
    moved = documents.resolve("Processed/2026/in-done.csv")
    assert moved.id == item.id  # a move, not a copy
    assert spo.ls(f"{LIBRARY_URL}/Inbox") == []


@NEEDS_EMULATOR_COPY_AND_MOVE
def test_moving_a_folder_into_an_existing_folder(spo: ConnectionFileSystem, documents: Drive) -> None:
    documents.put_file("Batch/a.csv", b"a")
    documents.put_file("Archive/old.csv", b"old")
    spo.mv(f"{LIBRARY_URL}/Batch", f"{LIBRARY_URL}/Archive")
    assert documents.resolve("Archive/Batch/a.csv").blob.read_bytes() == b"a"
    assert not _exists(documents, "Batch")


@NEEDS_EMULATOR_COPY_AND_MOVE
def test_moving_a_file_to_another_library_copies_then_deletes(
    spo: ConnectionFileSystem, documents: Drive, archive: Drive
) -> None:
    documents.put_file("done.csv", b"done")
    spo.mv(
        f"{LIBRARY_URL}/done.csv", "spo://sharepoint_finance@contoso.sharepoint.com/sites/Finance/Archive/2026/done.csv"
    )
    assert archive.resolve("2026/done.csv").blob.read_bytes() == b"done"
    assert not _exists(documents, "done.csv")


def _exists(drive: Drive, path: str) -> bool:
    try:
        drive.resolve(path)
    except Exception:
        return False
    return True


@NEEDS_EMULATOR_COPY_AND_MOVE
def test_a_copy_still_in_progress_is_waited_for_without_the_token(
    spo: ConnectionFileSystem, documents: Drive, graph_emulator: GraphEmulator
) -> None:
    documents.put_file("Reports/q1.csv", b"q1")
    pauses: list[float] = []
    spo.client.sleep = pauses.append  # the monitor is polled on the client's clock
    in_progress = edit_json(lambda report: {**report, "status": "inProgress", "percentageComplete": 40.0})
    graph_emulator.faults.tamper("monitor", in_progress, times=2, origin="files")
    spo.copy(f"{LIBRARY_URL}/Reports/q1.csv", f"{LIBRARY_URL}/Copies/q1.csv")
    assert documents.resolve("Copies/q1.csv").blob.read_bytes() == b"q1"
    assert pauses == [0.25, 0.5]  # growing pauses between the three polls
    polls = [r for r in graph_emulator.requests.records("files") if "monitor" in r.path]
    assert len(polls) == 3 and all("authorization" not in r.headers for r in polls)


@NEEDS_EMULATOR_COPY_AND_MOVE
def test_a_copy_graph_reports_as_failed_raises(
    spo: ConnectionFileSystem, documents: Drive, graph_emulator: GraphEmulator
) -> None:
    documents.put_file("Reports/q1.csv", b"q1")
    graph_emulator.faults.tamper("monitor", edit_json(lambda report: {**report, "status": "failed"}), origin="files")
    with pytest.raises(CopyFailedError, match=r"'q1\.csv'.*failed"):
        spo.copy(f"{LIBRARY_URL}/Reports/q1.csv", f"{LIBRARY_URL}/Copies/q1.csv")


def test_a_delete_whose_reply_was_lost_is_not_reported_as_missing(
    spo: ConnectionFileSystem, documents: Drive, graph_emulator: GraphEmulator
) -> None:
    documents.put_file("Old/a.csv", b"x")
    # The item is deleted, then the answer breaks off (a body announced, never sent): the client sends it again.
    graph_emulator.faults.tamper("/items/", _broken_off_answer, method="DELETE")
    spo.rm(f"{LIBRARY_URL}/Old/a.csv")
    assert graph_requests(graph_emulator, "DELETE", "/items/") == 2
    assert not _exists(documents, "Old/a.csv")


def _broken_off_answer(response: CapturedResponse) -> CapturedResponse:
    # A 204 has no body by definition, so announce a 200 with a body the server never sends.
    return dataclasses.replace(response, status=200, declared_length=10)


def test_a_subsite_library_is_reached_through_its_parent_site(
    spo: ConnectionFileSystem, documents: Drive, graph_emulator: GraphEmulator
) -> None:
    emea = graph_emulator.graph.add_site("contoso.sharepoint.com", "/sites/Finance/Emea", "EMEA")
    emea.add_library("Documents").put_file("Q1/emea.csv", b"emea")
    subsite = "spo://sharepoint_finance@contoso.sharepoint.com/sites/Finance/Emea"
    assert spo.cat_file(f"{subsite}/Shared Documents/Q1/emea.csv") == b"emea"
    assert spo.ls(subsite, detail=False) == ["contoso.sharepoint.com/sites/Finance/Emea/Shared Documents"]
