"""A nightly job pulls a SharePoint folder: every byte right, nothing half-written, only changes moved."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from sharepoint_kit import SITE_URL, content_for

from airflow_provider_graphcert.errors import GraphCertError
from airflow_provider_graphcert.sharepoint.download import FileDownloader
from airflow_provider_graphcert.sharepoint.folder_download import FolderDownloadError
from airflow_provider_graphcert.sharepoint.local_names import UnsafeNameError, local_path
from airflow_provider_graphcert.sharepoint.service import SharePoint
from airflow_provider_graphcert.testing.emulator.graph_state import Drive
from airflow_provider_graphcert.testing.emulator.server import GraphEmulator

FOLDER_URL = f"{SITE_URL}/Shared Documents/Exports"
AWKWARD = [
    "plain.csv",
    "with space.txt",
    "hash #1.txt",
    "percent 100%.txt",
    "ünïcödé ñandú.txt",
    "日本語.txt",
    "a'b&c.txt",
]


def _seed_awkward_tree(drive: Drive, count: int) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    for i in range(count):
        depth = "/".join(f"level {d} #{i % 3}" for d in range(i % 5))
        name = f"{i:03d} {AWKWARD[i % len(AWKWARD)]}"
        relative = f"{depth}/{name}" if depth else name
        data = content_for(relative, size=(i * 977) % 5000)
        drive.put_file(f"Exports/{relative}", data)
        files[relative] = data
    return files


def _local_files(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in root.rglob("*")
        if p.is_file() and not p.name.startswith(".graphcert-")
    }


@pytest.mark.slow
def test_500_awkward_names_download_byte_exact_and_a_second_run_moves_nothing(
    sharepoint: SharePoint, documents: Drive, graph_emulator: GraphEmulator, tmp_path: Path
) -> None:
    expected = _seed_awkward_tree(documents, 500)
    target = tmp_path / "landing"
    summary = sharepoint.download(target, url=FOLDER_URL)
    assert summary["downloaded"] == 500 and summary["failed"] == 0
    assert _local_files(target) == expected
    assert not [p for p in target.rglob("*.part")]
    # The token never went to the download host.
    files_requests = graph_emulator.requests.records("files")
    assert len(files_requests) == 500
    assert not [r for r in files_requests if "authorization" in r.headers]
    # Remote modified times are kept.
    some = next(iter(expected))
    assert abs(os.stat(target / some).st_mtime - documents.resolve(f"Exports/{some}").modified.timestamp()) < 1

    graph_emulator.requests.clear()
    again = sharepoint.download(target, url=FOLDER_URL)
    assert (again["downloaded"], again["skipped"]) == (0, 500)
    assert graph_emulator.requests.records("files") == []


def test_only_changed_files_move_on_the_next_run(
    sharepoint: SharePoint, documents: Drive, graph_emulator: GraphEmulator, tmp_path: Path
) -> None:
    for name in ("a.txt", "b.txt", "c.txt"):
        documents.put_file(f"Exports/{name}", content_for(name))
    sharepoint.download(tmp_path, url=FOLDER_URL)
    documents.put_file("Exports/b.txt", b"new contents of b")
    documents.put_file("Exports/d.txt", b"brand new")
    summary = sharepoint.download(tmp_path, url=FOLDER_URL)
    assert (summary["downloaded"], summary["skipped"]) == (2, 2)
    assert (tmp_path / "b.txt").read_bytes() == b"new contents of b"


def test_filters_include_exclude_and_modified_since(sharepoint: SharePoint, documents: Drive, tmp_path: Path) -> None:
    for name in ("r1.csv", "r2.csv", "notes.txt", "sub/r3.csv", "sub/tmp.csv"):
        documents.put_file(f"Exports/{name}", content_for(name))
    summary = sharepoint.download(tmp_path, url=FOLDER_URL, include=["*.csv"], exclude=["tmp*"])
    assert sorted(summary["files"]) == ["r1.csv", "r2.csv", "sub/r3.csv"]
    later = sharepoint.download(tmp_path / "none", url=FOLDER_URL, modified_since="2999-01-01T00:00:00Z")
    assert later["downloaded"] == 0


def test_a_connection_dropped_mid_file_resumes_with_range(
    sharepoint: SharePoint, documents: Drive, graph_emulator: GraphEmulator, tmp_path: Path
) -> None:
    data = content_for("big.bin", size=3 * 1024 * 1024 + 123)
    documents.put_file("Exports/big.bin", data)
    graph_emulator.faults.add("download", drop="mid_body", drop_after_bytes=1024 * 1024, times=1, origin="files")
    summary = sharepoint.download(tmp_path, url=f"{FOLDER_URL}/big.bin")
    assert summary["downloaded"] == 1
    assert (tmp_path / "big.bin").read_bytes() == data
    ranges = [r.headers.get("range") for r in graph_emulator.requests.records("files")]
    assert ranges[0] is None
    assert ranges[1] is not None and ranges[1].startswith("bytes=") and ranges[1] != "bytes=0-"


def test_a_corrupted_body_is_never_written(
    sharepoint: SharePoint, documents: Drive, graph_emulator: GraphEmulator, tmp_path: Path
) -> None:
    documents.put_file("Exports/report.csv", b"1,2,3\n")
    # The file changes between listing and download: the bytes no longer match the size and hash
    # the listing promised, so nothing may appear under the final name.
    resolved = sharepoint.resolve(url=f"{FOLDER_URL}/report.csv")
    documents.put_file("Exports/report.csv", b"9,9,9,9,9\n")
    target = tmp_path / "landing"
    with pytest.raises(GraphCertError, match="the file was not written"):
        FileDownloader(sharepoint.client).download(resolved.drive_id, resolved.item, target / "report.csv")
    assert not list(target.iterdir())


def test_one_failure_does_not_lose_the_others(
    sharepoint: SharePoint, documents: Drive, graph_emulator: GraphEmulator, tmp_path: Path
) -> None:
    for name in ("ok1.txt", "ok2.txt", "ok3.txt"):
        documents.put_file(f"Exports/{name}", content_for(name))
    (tmp_path / "ok2.txt").mkdir()  # a directory squats the target name: that file cannot land
    with pytest.raises(FolderDownloadError) as info:
        sharepoint.download(tmp_path, url=FOLDER_URL)
    result = info.value.result
    assert sorted(Path(f.path).name for f in result.downloaded) == ["ok1.txt", "ok3.txt"]
    assert list(result.failed) == ["ok2.txt"]
    assert "1 of 3 files failed" in str(info.value)


@pytest.mark.parametrize("name", ["..", ".", "a/../../etc", "back\\slash", "nul\x00byte", "x" * 300])
def test_hostile_names_never_leave_the_target(tmp_path: Path, name: str) -> None:
    with pytest.raises(UnsafeNameError):
        local_path(tmp_path, name)


def test_a_symlinked_folder_cannot_redirect_writes(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    target = tmp_path / "target"
    target.mkdir()
    (target / "link").symlink_to(outside)
    with pytest.raises(UnsafeNameError, match="outside"):
        local_path(target, "link/file.txt")


@pytest.mark.parametrize("with_numpy", [True, False], ids=["hash-inline-with-numpy", "hash-thread-without-numpy"])
def test_large_bodies_read_into_one_buffer_and_still_resume_byte_exact(
    sharepoint: SharePoint,
    documents: Drive,
    graph_emulator: GraphEmulator,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    with_numpy: bool,
) -> None:
    """The large-body path (one reused buffer, writeback, and without numpy a hash thread) normally
    starts at 32 MiB; start it at 1 byte."""
    from airflow_provider_graphcert.sharepoint import download

    if not with_numpy:
        monkeypatch.setattr(download, "numpy_or_none", lambda: None)  # as on a worker without numpy
    monkeypatch.setattr(download, "PIPELINE_MIN_BYTES", 1)
    monkeypatch.setattr(download, "WRITEBACK_EVERY_BYTES", 512 * 1024)
    data = content_for("pipelined.bin", size=5 * 1024 * 1024 + 7)
    documents.put_file("Exports/pipelined.bin", data)
    graph_emulator.faults.add("download", drop="mid_body", drop_after_bytes=2 * 1024 * 1024, times=1, origin="files")
    summary = sharepoint.download(tmp_path / "landing", url=f"{FOLDER_URL}/pipelined.bin")
    assert summary["downloaded"] == 1
    assert (tmp_path / "landing" / "pipelined.bin").read_bytes() == data
    assert len(graph_emulator.requests.records("files")) == 2
