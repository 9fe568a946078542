"""A DAG lands SharePoint files in an object store instead of the worker's disk, and the next run,
on another worker, continues from the state kept in that store."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import fsspec
import pytest
from airflow.sdk import ObjectStoragePath
from sharepoint_kit import SITE_URL, content_for, sharepoint_for

from airflow_provider_graphcert.files import OWN_FILE_PREFIX
from airflow_provider_graphcert.sharepoint.folder_download import FolderDownloadError
from airflow_provider_graphcert.sharepoint.manifest import MANIFEST_NAME
from airflow_provider_graphcert.sharepoint.service import SharePoint
from airflow_provider_graphcert.testing.emulator.faults import CapturedResponse
from airflow_provider_graphcert.testing.emulator.graph_routes import DOWNLOAD_PATH
from airflow_provider_graphcert.testing.emulator.graph_state import Drive
from airflow_provider_graphcert.testing.emulator.server import GraphEmulator
from airflow_provider_graphcert.testing.emulator.state import App

FOLDER_URL = f"{SITE_URL}/Shared Documents/Exports"


class MemoryStore:
    def __init__(self) -> None:
        self.link: str | None = None

    def load(self) -> str | None:
        return self.link

    def save(self, link: str) -> None:
        self.link = link


def _seed(documents: Drive) -> dict[str, bytes]:
    files = {
        "a.csv": content_for("a.csv"),
        "deep/er/b.bin": content_for("b.bin", 3 * 1024 * 1024 + 5),
        "ünï cödé.txt": content_for("u"),
    }
    for relative, data in files.items():
        documents.put_file(f"Exports/{relative}", data)
    return files


def _store_files(fs: fsspec.AbstractFileSystem, root: str) -> dict[str, bytes]:
    """Every object below ``root`` but our own state, by relative key."""
    found = {}
    for key in fs.find(root):
        relative = key[len(fs._strip_protocol(root)) :].lstrip("/")
        if not relative.rsplit("/", 1)[-1].startswith(OWN_FILE_PREFIX):
            found[relative] = fs.cat_file(key)
    return found


@pytest.fixture
def memory_root(tmp_path: Path) -> Iterator[str]:
    root = f"memory://graphcert-tests/{tmp_path.name}"
    yield root
    fs = fsspec.filesystem("memory")
    if fs.exists(root):
        fs.rm(root, recursive=True)


def test_a_folder_lands_in_an_object_store_and_the_next_worker_moves_only_changes(
    graph_emulator: GraphEmulator, sp_app: App, pem_file: Path, documents: Drive, memory_root: str
) -> None:
    expected = _seed(documents)
    first_worker = sharepoint_for(graph_emulator, sp_app, pem_file)
    summary = first_worker.download(memory_root, url=FOLDER_URL)
    first_worker.client.close()
    assert summary["downloaded"] == 3 and summary["target"] == memory_root
    fs = fsspec.filesystem("memory")
    assert _store_files(fs, memory_root) == expected
    assert fs.exists(f"{memory_root}/{MANIFEST_NAME}")  # the state travels with the data
    assert not [key for key in fs.find(memory_root) if key.endswith(".part")]

    documents.put_file("Exports/a.csv", b"a changed")
    graph_emulator.requests.clear()
    second_worker = sharepoint_for(graph_emulator, sp_app, pem_file)  # nothing shared but the store
    again = second_worker.download(memory_root, url=FOLDER_URL)
    second_worker.client.close()
    assert (again["downloaded"], again["skipped"], again["files"]) == (1, 2, ["a.csv"])
    assert len(graph_emulator.requests.records("files")) == 1
    assert fs.cat_file(f"{memory_root}/a.csv") == b"a changed"


def test_a_corrupted_body_never_reaches_the_store_under_its_final_key(
    graph_emulator: GraphEmulator, sharepoint: SharePoint, documents: Drive, memory_root: str
) -> None:
    documents.put_file("Exports/report.csv", b"1,2,3\n")

    def flipped(response: CapturedResponse) -> CapturedResponse:
        return replace(response, body=bytes(reversed(response.body)))

    graph_emulator.faults.tamper(DOWNLOAD_PATH, flipped, origin="files")
    with pytest.raises(FolderDownloadError, match="does not match"):
        sharepoint.download(memory_root, url=FOLDER_URL)
    fs = fsspec.filesystem("memory")
    assert _store_files(fs, memory_root) == {}
    assert not [key for key in fs.find(memory_root) if key.endswith(".part")]


def test_sync_lands_changes_in_an_object_store_and_mirrors_deletions(
    sharepoint: SharePoint, documents: Drive, memory_root: str
) -> None:
    _seed(documents)
    store = MemoryStore()
    first = sharepoint.sync(memory_root, store, url=FOLDER_URL, mirror_deletions=True)
    assert (first["downloaded"], first["full_pass"]) == (3, True)
    documents.delete("Exports/a.csv")
    documents.put_file("Exports/new.csv", b"new")
    second = sharepoint.sync(memory_root, store, url=FOLDER_URL, mirror_deletions=True)
    assert (second["downloaded"], second["deleted"], second["full_pass"]) == (1, 1, False)
    fs = fsspec.filesystem("memory")
    assert sorted(_store_files(fs, memory_root)) == ["deep/er/b.bin", "new.csv", "ünï cödé.txt"]


def test_a_file_url_takes_the_local_fast_path(sharepoint: SharePoint, documents: Drive, tmp_path: Path) -> None:
    expected = _seed(documents)
    summary = sharepoint.download(f"file://{tmp_path / 'landing'}", url=FOLDER_URL)
    assert summary["downloaded"] == 3
    assert (tmp_path / "landing" / "deep" / "er" / "b.bin").read_bytes() == expected["deep/er/b.bin"]
    assert (tmp_path / "landing" / MANIFEST_NAME).exists()


def test_the_old_argument_name_still_works(sharepoint: SharePoint, documents: Drive, tmp_path: Path) -> None:
    _seed(documents)
    assert sharepoint.download(local_dir=tmp_path / "old", url=FOLDER_URL)["downloaded"] == 3


def test_an_object_storage_path_on_s3_receives_the_folder_byte_exact(
    graph_emulator: GraphEmulator, sharepoint: SharePoint, documents: Drive, s3_landing: ObjectStoragePath
) -> None:
    expected = _seed(documents)
    summary = sharepoint.download(s3_landing, url=FOLDER_URL)
    assert summary["downloaded"] == 3
    for relative, data in expected.items():
        assert (s3_landing / relative).read_bytes() == data
    assert (s3_landing / MANIFEST_NAME).exists()
    assert not [p for p in s3_landing.rglob("*") if p.name.endswith(".part")]
    graph_emulator.requests.clear()
    assert sharepoint.download(s3_landing, url=FOLDER_URL)["skipped"] == 3
    assert graph_emulator.requests.records("files") == []
