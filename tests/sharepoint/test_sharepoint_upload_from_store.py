"""A DAG pushes files that an earlier task left in an object store (S3, memory://) to SharePoint,
without passing them through the worker's disk."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from pathlib import Path

import fsspec
import pytest
import s3fs
from airflow.sdk import ObjectStoragePath
from sharepoint_kit import SITE_URL, content_for, remote_exists

from airflow_provider_graphcert.errors import ConfigurationError
from airflow_provider_graphcert.quickxorhash import QuickXorHash
from airflow_provider_graphcert.sharepoint.download import IntegrityError
from airflow_provider_graphcert.sharepoint.manifest import MANIFEST_NAME
from airflow_provider_graphcert.sharepoint.service import SharePoint
from airflow_provider_graphcert.sharepoint.upload import FRAGMENT_MULTIPLE_BYTES, UploadSourceError
from airflow_provider_graphcert.testing.emulator.faults import CapturedResponse
from airflow_provider_graphcert.testing.emulator.graph.render import UPLOAD_PATH
from airflow_provider_graphcert.testing.emulator.graph_state import Drive
from airflow_provider_graphcert.testing.emulator.server import GraphEmulator

OUTBOX_URL = f"{SITE_URL}/Shared Documents/Outbox"
CHUNK = 2 * FRAGMENT_MULTIPLE_BYTES


def _stored(drive: Drive, path: str) -> bytes:
    item = drive.resolve(path)
    assert item.blob is not None, f"{path} has no stored body"
    return item.blob.read_bytes()


@pytest.fixture
def memory_root(tmp_path: Path) -> Iterator[str]:
    root = f"memory://graphcert-upload-tests/{tmp_path.name}"
    yield root
    fs = fsspec.filesystem("memory")
    if fs.exists(root):
        fs.rm(root, recursive=True)


def test_a_store_prefix_uploads_as_a_folder_byte_exact_with_the_hash_sharepoint_keeps(
    sharepoint: SharePoint, documents: Drive, memory_root: str
) -> None:
    files = {
        "report.csv": b"a,b\n1,2\n",
        "deep/er/big.bin": content_for("big", 5 * 1024 * 1024 + 3),  # over the single-PUT limit
        "ünï cödé.txt": content_for("u"),
    }
    fs = fsspec.filesystem("memory")
    for relative, data in files.items():
        fs.pipe_file(f"{memory_root}/{relative}", data)
    summary = sharepoint.upload(memory_root, url=OUTBOX_URL, chunk_size=CHUNK)
    assert (summary["uploaded"], summary["bytes"]) == (3, sum(len(d) for d in files.values()))
    for relative, data in files.items():
        assert _stored(documents, f"Outbox/{relative}") == data
        assert documents.resolve(f"Outbox/{relative}").quick_xor_hash == QuickXorHash(data).b64digest()


def test_a_round_trip_through_a_store_leaves_the_download_state_behind(
    sharepoint: SharePoint, documents: Drive, memory_root: str
) -> None:
    documents.put_file("Inbox/a.csv", b"1,2,3\n")
    documents.put_file("Inbox/sub/b.csv", b"4,5,6\n")
    sharepoint.download(memory_root, url=f"{SITE_URL}/Shared Documents/Inbox")
    fs = fsspec.filesystem("memory")
    assert fs.exists(f"{memory_root}/{MANIFEST_NAME}")
    fs.pipe_file(f"{memory_root}/notes_vti_x.txt", b"a name SharePoint refuses")
    summary = sharepoint.upload(memory_root, url=OUTBOX_URL)
    assert (summary["uploaded"], summary["skipped"]) == (2, 2)
    outbox = documents.resolve("Outbox")
    assert sorted(documents.item(child).name for child in outbox.children.values()) == ["a.csv", "sub"]
    assert _stored(documents, "Outbox/sub/b.csv") == b"4,5,6\n"


def test_names_that_sharepoint_would_fold_into_one_refuse_the_whole_store_upload(
    sharepoint: SharePoint, documents: Drive, graph_emulator: GraphEmulator, memory_root: str
) -> None:
    fs = fsspec.filesystem("memory")
    fs.pipe_file(f"{memory_root}/Report.csv", b"upper")
    fs.pipe_file(f"{memory_root}/report.csv", b"lower")
    fs.pipe_file(f"{memory_root}/caf\u00e9/x.txt", b"nfc")
    fs.pipe_file(f"{memory_root}/cafe\u0301/y.txt", b"nfd")
    graph_emulator.requests.clear()
    with pytest.raises(ConfigurationError, match=r"'Report\.csv' and 'report\.csv'") as refused:
        sharepoint.upload(memory_root, url=OUTBOX_URL)
    assert refused.value.field == "source"
    assert "café" in str(refused.value)
    assert graph_emulator.requests.records("files") == []
    assert not remote_exists(documents, "Outbox")


def test_include_picks_files_from_a_store_prefix(sharepoint: SharePoint, documents: Drive, memory_root: str) -> None:
    fs = fsspec.filesystem("memory")
    for name in ("keep.csv", "drop.tmp", "sub/also.csv"):
        fs.pipe_file(f"{memory_root}/{name}", name.encode())
    summary = sharepoint.upload(memory_root, url=OUTBOX_URL, include="*.csv")
    assert summary["uploaded"] == 2
    assert _stored(documents, "Outbox/sub/also.csv") == b"sub/also.csv"
    assert not remote_exists(documents, "Outbox/drop.tmp")


def test_a_large_s3_object_goes_through_an_upload_session_in_fragments(
    sharepoint: SharePoint,
    documents: Drive,
    graph_emulator: GraphEmulator,
    s3_landing: ObjectStoragePath,
) -> None:
    data = content_for("s3-big", 7 * CHUNK + 11)
    (s3_landing / "exports" / "big.parquet").write_bytes(data)
    graph_emulator.requests.clear()
    result = sharepoint.upload(s3_landing / "exports" / "big.parquet", url=OUTBOX_URL, chunk_size=CHUNK)
    assert result["uploaded"] == 1 and result["bytes"] == len(data)
    stored = documents.resolve("Outbox/big.parquet")
    assert stored.quick_xor_hash == QuickXorHash(data).b64digest()
    assert _stored(documents, "Outbox/big.parquet") == data
    fragments = [r for r in graph_emulator.requests.records("files") if r.method == "PUT"]
    assert len(fragments) == 8
    assert not [r for r in fragments if "authorization" in r.headers]


def test_a_plain_s3_url_and_the_old_argument_name_both_work(
    sharepoint: SharePoint, documents: Drive, s3_fs: s3fs.S3FileSystem, s3_landing: ObjectStoragePath
) -> None:
    (s3_landing / "one.csv").write_bytes(b"x,y\n")
    (s3_landing / "two.csv").write_bytes(b"z\n")
    # s3fs finds the moto endpoint through its own configuration, as it would AWS's.
    fsspec.config.conf["s3"] = {"key": "testing", "secret": "testing", "endpoint_url": s3_fs.endpoint_url}
    try:
        assert sharepoint.upload(f"s3://{s3_landing.path}/one.csv", url=OUTBOX_URL)["uploaded"] == 1
    finally:
        fsspec.config.conf.pop("s3", None)
    assert sharepoint.upload(local_path=s3_landing / "two.csv", url=OUTBOX_URL)["uploaded"] == 1
    assert _stored(documents, "Outbox/one.csv") == b"x,y\n"
    assert _stored(documents, "Outbox/two.csv") == b"z\n"
    with pytest.raises(ConfigurationError, match="not both") as both:
        sharepoint.upload(s3_landing / "one.csv", local_path=s3_landing / "two.csv", url=OUTBOX_URL)
    assert both.value.field == "source"


def test_a_missing_store_object_is_one_clear_error_naming_the_source(
    sharepoint: SharePoint, s3_landing: ObjectStoragePath
) -> None:
    with pytest.raises(ConfigurationError, match="does not exist") as missing:
        sharepoint.upload(s3_landing / "nope.csv", url=OUTBOX_URL)
    assert missing.value.field == "source"


def test_an_s3_object_replaced_mid_upload_leaves_nothing_committed_in_sharepoint(
    sharepoint: SharePoint,
    documents: Drive,
    graph_emulator: GraphEmulator,
    s3_fs: s3fs.S3FileSystem,
    s3_landing: ObjectStoragePath,
) -> None:
    source = s3_landing / "moving.bin"
    source.write_bytes(content_for("before", 8 * CHUNK + 5))  # over the single-PUT limit
    key = f"{s3_landing.path}/moving.bin"

    def another_job_overwrites_the_object(response: CapturedResponse) -> CapturedResponse:
        # Once SharePoint has taken the first fragment, the object in S3 is replaced.
        s3_fs.pipe_file(key, b"a different, shorter object")
        return response

    graph_emulator.faults.tamper(UPLOAD_PATH, another_job_overwrites_the_object, origin="files", method="PUT")
    with pytest.raises(UploadSourceError, match=r"moving\.bin") as failed:
        sharepoint.upload(source, url=OUTBOX_URL, chunk_size=CHUNK)
    assert "committed nothing" in str(failed.value)
    assert not remote_exists(documents, "Outbox/moving.bin")
    assert graph_emulator.graph.upload_sessions == {}  # cancelled, not left to expire
    assert [r for r in graph_emulator.requests.records("files") if r.method == "DELETE"]


def test_a_local_file_truncated_mid_upload_is_not_sent_short(
    sharepoint: SharePoint, documents: Drive, graph_emulator: GraphEmulator, tmp_path: Path
) -> None:
    log_file = tmp_path / "app.log"
    log_file.write_bytes(content_for("log", 8 * CHUNK + 5))

    def the_log_is_rotated(response: CapturedResponse) -> CapturedResponse:
        log_file.write_bytes(b"rotated")  # truncated in place, as a log rotation does
        return response

    graph_emulator.faults.tamper(UPLOAD_PATH, the_log_is_rotated, origin="files", method="PUT")
    with pytest.raises(UploadSourceError, match="changed while it was being uploaded"):
        sharepoint.upload(log_file, url=OUTBOX_URL, chunk_size=CHUNK)
    assert not remote_exists(documents, "Outbox/app.log")
    assert graph_emulator.graph.upload_sessions == {}


def _workbook_bytes() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as package:
        package.writestr("[Content_Types].xml", '<?xml version="1.0"?><Types/>')
        package.writestr("xl/workbook.xml", '<?xml version="1.0"?><workbook/>')
    return buffer.getvalue()


def test_a_workbook_from_a_store_meets_the_same_verification_policy(
    sharepoint: SharePoint, documents: Drive, memory_root: str
) -> None:
    workbook = f"{memory_root}/budget.xlsx"
    fsspec.filesystem("memory").pipe_file(workbook, _workbook_bytes())
    accepted = sharepoint.upload(workbook, url=OUTBOX_URL)  # office_aware by default
    assert accepted["items"][0]["verified"] == "rewritten_by_sharepoint"
    assert accepted["items"][0]["stored_size"] == documents.resolve("Outbox/budget.xlsx").size
    with pytest.raises(IntegrityError, match="upload with verify='office_aware'"):
        sharepoint.upload(workbook, url=OUTBOX_URL, verify="strict")


def test_a_file_url_uploads_from_the_local_disk(sharepoint: SharePoint, documents: Drive, tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "a.csv").write_bytes(b"1\n")
    assert sharepoint.upload(f"file://{tmp_path / 'out'}", url=OUTBOX_URL)["uploaded"] == 1
    assert _stored(documents, "Outbox/a.csv") == b"1\n"


def test_a_password_in_a_store_url_never_reaches_the_error(sharepoint: SharePoint) -> None:
    with pytest.raises(ConfigurationError) as refused:
        sharepoint.upload("memory://reader:hunter2@graphcert-upload-tests/none.csv", url=OUTBOX_URL)
    assert "hunter2" not in str(refused.value)
    assert "reader:***@" in str(refused.value)
