"""A DAG pushes the day's output to SharePoint: small files in one PUT, big ones in resumable sessions."""

from __future__ import annotations

from pathlib import Path

import pytest
from sharepoint_kit import SITE_URL, content_for

from airflow_provider_graphcert.errors import ConfigurationError, GraphCertError, GraphConflictError
from airflow_provider_graphcert.quickxorhash import QuickXorHash
from airflow_provider_graphcert.sharepoint.service import SharePoint
from airflow_provider_graphcert.sharepoint.upload import FRAGMENT_MULTIPLE_BYTES, FileUploader, check_fragment_size
from airflow_provider_graphcert.testing.emulator.graph_state import Drive
from airflow_provider_graphcert.testing.emulator.server import GraphEmulator

OUTBOX_URL = f"{SITE_URL}/Shared Documents/Outbox"
CHUNK = 2 * FRAGMENT_MULTIPLE_BYTES


def _read_remote(drive: Drive, path: str) -> bytes:
    blob = drive.resolve(path).blob
    assert blob is not None, f"{path} has no stored body"
    return blob.read_bytes()


def test_a_small_file_goes_in_one_put(sharepoint: SharePoint, documents: Drive, tmp_path: Path) -> None:
    local = tmp_path / "summary.csv"
    local.write_bytes(b"a,b\n1,2\n")
    result = sharepoint.upload(local, url=OUTBOX_URL)
    assert result["uploaded"] == 1
    assert _read_remote(documents, "Outbox/summary.csv") == b"a,b\n1,2\n"


def test_a_large_file_goes_through_an_upload_session_without_the_token(
    sharepoint: SharePoint, documents: Drive, graph_emulator: GraphEmulator, tmp_path: Path
) -> None:
    data = content_for("big", size=5 * 1024 * 1024 + 17)
    local = tmp_path / "big.parquet"
    local.write_bytes(data)
    result = sharepoint.upload(local, url=OUTBOX_URL, chunk_size=CHUNK)
    assert result["bytes"] == len(data)
    assert _read_remote(documents, "Outbox/big.parquet") == data
    fragments = [r for r in graph_emulator.requests.records("files") if r.method == "PUT"]
    assert len(fragments) == -(-len(data) // CHUNK)
    assert not [r for r in fragments if "authorization" in r.headers]
    assert all(r.headers["content-range"].endswith(f"/{len(data)}") for r in fragments)
    assert documents.resolve("Outbox/big.parquet").quick_xor_hash == QuickXorHash(data).b64digest()


def test_an_interrupted_upload_resumes_from_next_expected_ranges(
    sharepoint: SharePoint, documents: Drive, graph_emulator: GraphEmulator, tmp_path: Path
) -> None:
    data = content_for("resume", size=8 * CHUNK + 5)  # over the 4 MiB single-PUT limit
    local = tmp_path / "resume.bin"
    local.write_bytes(data)
    # Graph stores the third fragment but its reply is lost; the retry then gets 416 and the
    # client asks the session where to go on. A 503 on a later fragment is simply retried.
    lost_reply = graph_emulator.faults.add(
        "uploadSession", drop="mid_body", drop_after_bytes=10, skip=2, times=1, method="PUT", origin="files"
    )
    unavailable = graph_emulator.faults.add("uploadSession", status=503, skip=4, times=1, method="PUT", origin="files")
    sharepoint.upload(local, url=OUTBOX_URL, chunk_size=CHUNK)
    assert (lost_reply.fired, unavailable.fired) == (1, 1)
    status_checks = [r for r in graph_emulator.requests.records("files") if r.method == "GET"]
    assert len(status_checks) == 1
    assert _read_remote(documents, "Outbox/resume.bin") == data


def test_conflict_behaviours(sharepoint: SharePoint, documents: Drive, tmp_path: Path) -> None:
    documents.put_file("Outbox/daily.csv", b"old")
    local = tmp_path / "daily.csv"
    local.write_bytes(b"new")
    with pytest.raises(GraphConflictError, match="conflict_behavior is 'fail'"):
        sharepoint.upload(local, url=OUTBOX_URL, conflict_behavior="fail")
    assert _read_remote(documents, "Outbox/daily.csv") == b"old"
    sharepoint.upload(local, url=OUTBOX_URL, conflict_behavior="rename")
    assert _read_remote(documents, "Outbox/daily.csv") == b"old"
    assert _read_remote(documents, "Outbox/daily 1.csv") == b"new"
    sharepoint.upload(local, url=OUTBOX_URL, conflict_behavior="replace")
    assert _read_remote(documents, "Outbox/daily.csv") == b"new"


def test_a_folder_uploads_with_its_subfolders(
    sharepoint: SharePoint, documents: Drive, site: object, tmp_path: Path
) -> None:
    source = tmp_path / "out"
    expected = {}
    for relative in ("a.txt", "deep/er/b.txt", "deep/c d.txt", "big/large.bin"):
        size = 5 * 1024 * 1024 if relative.endswith(".bin") else 0
        data = content_for(relative, size)
        (source / relative).parent.mkdir(parents=True, exist_ok=True)
        (source / relative).write_bytes(data)
        expected[relative] = data
    result = sharepoint.upload(
        source, site_url=SITE_URL, library="Documents", path="Outbox/2026-01-01", chunk_size=CHUNK
    )
    assert result["uploaded"] == 4
    for relative, data in expected.items():
        assert _read_remote(documents, f"Outbox/2026-01-01/{relative}") == data


def test_bad_upload_inputs(sharepoint: SharePoint, documents: Drive, tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="does not exist") as missing:
        sharepoint.upload(tmp_path / "nope.csv", url=OUTBOX_URL)
    assert missing.value.field == "local_path"
    with pytest.raises(ConfigurationError, match="multiple of 327,680") as chunk:
        check_fragment_size(1_000_000)
    assert chunk.value.field == "chunk_size"
    with pytest.raises(ConfigurationError, match="fail, replace, rename"):
        sharepoint.upload(tmp_path, url=OUTBOX_URL, conflict_behavior="overwrite")
    with pytest.raises(GraphCertError):
        FileUploader(sharepoint.client, fragment_bytes=60 * 1024 * 1024)
