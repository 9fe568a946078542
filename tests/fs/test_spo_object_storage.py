"""A DAG author uses ObjectStoragePath("spo://conn@host/...") like any other object store."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from airflow.sdk import ObjectStoragePath
from airflow.sdk.io import attach, get_fs, has_fs
from conftest import CONN_ID, LIBRARY_URL
from emulator_features import NEEDS_EMULATOR_COPY_AND_MOVE
from s3_server import S3_CONN_ID, S3Server, attach_s3, running_s3_server

import airflow_provider_graphcert
from airflow_provider_graphcert.fs import spo as spo_module
from airflow_provider_graphcert.fs.spo import ConnectionFileSystem
from airflow_provider_graphcert.fs.spo import get_fs as get_fs_for
from airflow_provider_graphcert.testing.emulator.graph_state import Drive
from airflow_provider_graphcert.testing.emulator.server import GraphEmulator

MIB = 1024 * 1024
BUCKET = "landing"


def patterned(size: int) -> bytes:
    block = b"".join(hashlib.sha256(f"osp{i}".encode()).digest() for i in range(2048))
    return (block * (size // len(block) + 1))[:size]


@pytest.fixture(scope="module")
def s3_server() -> Iterator[S3Server]:
    with running_s3_server() as server:
        yield server


@pytest.fixture
def s3_bucket(s3_server: S3Server) -> str:
    fs = attach_s3(s3_server)
    if not fs.exists(BUCKET):
        fs.mkdir(BUCKET)
    return f"s3://{S3_CONN_ID}@{BUCKET}"


def test_the_provider_registers_only_the_spo_scheme_with_airflow(spo_connection: str) -> None:
    assert airflow_provider_graphcert.get_provider_info()["filesystems"] == ["airflow_provider_graphcert.fs.spo"]
    # The Azure provider owns msgraph, sharepoint, onedrive and msgd: both providers can be installed.
    assert spo_module.schemes == ["spo"]
    assert has_fs("spo")
    assert isinstance(get_fs("spo", CONN_ID), ConnectionFileSystem)


def test_a_browser_address_with_spo_reads_and_stats_a_file(spo_connection: str, documents: Drive) -> None:
    item = documents.put_file("Reports/q1.csv", b"region,total\nnorth,12\n")
    path = ObjectStoragePath(
        "spo://sharepoint_finance@contoso.sharepoint.com/sites/Finance/Shared Documents/Reports/q1.csv"
    )
    assert path.conn_id == CONN_ID
    assert path.read_text() == "region,total\nnorth,12\n"
    stat = path.stat()
    assert stat.st_size == 22
    assert stat.st_mtime == pytest.approx(item.modified.timestamp(), abs=1)
    assert stat["eTag"] == item.etag
    assert stat["quickXorHash"] == item.quick_xor_hash
    assert path.is_file() and path.parent.is_dir()


def test_paths_list_glob_write_and_remove(spo_connection: str, documents: Drive) -> None:
    documents.put_file("Inbox/a.csv", b"a")
    documents.put_file("Inbox/b.txt", b"b")
    inbox = ObjectStoragePath(f"{LIBRARY_URL}/Inbox")
    assert sorted(p.name for p in inbox.iterdir()) == ["a.csv", "b.txt"]
    assert [p.name for p in inbox.glob("*.csv")] == ["a.csv"]
    assert all(p.conn_id == CONN_ID for p in inbox.iterdir())
    (inbox / "Done").mkdir()
    (inbox / "Done" / "c.csv").write_bytes(b"c")
    assert documents.resolve("Inbox/Done/c.csv").blob.read_bytes() == b"c"
    (inbox / "a.csv").unlink()
    assert sorted(p.name for p in inbox.iterdir()) == ["Done", "b.txt"]
    (inbox / "Done" / "c.csv").unlink()
    (inbox / "Done").rmdir()
    assert not (inbox / "Done").exists()


@NEEDS_EMULATOR_COPY_AND_MOVE
def test_a_path_is_renamed_in_place(spo_connection: str, documents: Drive) -> None:
    item = documents.put_file("Inbox/in.csv", b"x")
    ObjectStoragePath(f"{LIBRARY_URL}/Inbox/in.csv").rename(ObjectStoragePath(f"{LIBRARY_URL}/Inbox/in.done.csv"))
    assert documents.resolve("Inbox/in.done.csv").id == item.id


def test_copy_from_sharepoint_to_s3_and_back_is_byte_exact(
    spo_connection: str, documents: Drive, s3_bucket: str
) -> None:
    data = patterned(9 * MIB + 123)  # more than one upload-session fragment on the way back
    documents.put_file("Exports/ledger.bin", data)
    source = ObjectStoragePath(f"{LIBRARY_URL}/Exports/ledger.bin")
    in_s3 = ObjectStoragePath(f"{s3_bucket}/raw/ledger.bin")
    source.copy(in_s3)
    assert in_s3.read_bytes() == data

    back = ObjectStoragePath(f"{LIBRARY_URL}/Imports/ledger.bin")
    in_s3.copy(back)
    assert documents.resolve("Imports/ledger.bin").blob.read_bytes() == data
    assert back.stat()["quickXorHash"] == documents.resolve("Exports/ledger.bin").quick_xor_hash


def test_pandas_reads_a_sharepoint_csv_and_writes_one_back(spo_connection: str, documents: Drive) -> None:
    documents.put_file("Reports/sales.csv", b"region,total\nnorth,12\nsouth,30\n")
    path = ObjectStoragePath(f"{LIBRARY_URL}/Reports/sales.csv")
    with path.open("rb") as handle:
        frame = pd.read_csv(handle)
    assert frame["total"].sum() == 42
    # pandas' own fsspec route: the URL alone names the connection.
    assert pd.read_csv(f"{LIBRARY_URL}/Reports/sales.csv")["region"].tolist() == ["north", "south"]

    summary = frame.groupby("region", as_index=False)["total"].sum()
    with ObjectStoragePath(f"{LIBRARY_URL}/Reports/summary.csv").open("w") as handle:
        summary.to_csv(handle, index=False)
    assert documents.resolve("Reports/summary.csv").blob.read_bytes() == b"region,total\nnorth,12\nsouth,30\n"


def test_options_reach_the_file_system_through_attach(
    spo_connection: str, documents: Drive, graph_emulator: GraphEmulator, tmp_path: Path
) -> None:
    spool = tmp_path / "spool"
    spool.mkdir()
    attach("spo", conn_id=CONN_ID, fs=get_fs_for(CONN_ID, {"listings_expiry_time": 0, "spool_dir": str(spool)}))
    documents.put_file("Inbox/a.csv", b"a")
    inbox = ObjectStoragePath(f"{LIBRARY_URL}/Inbox")
    list(inbox.iterdir())
    list(inbox.iterdir())
    listings = [r for r in graph_emulator.requests.records() if r.method == "GET" and r.path.endswith("/children")]
    assert len(listings) == 2  # no listing cache
    data = patterned(6 * MIB)  # more than one write block: the first block goes to the spool file
    with (inbox / "b.bin").open("wb") as handle:
        handle.write(data)
        assert len(list(spool.iterdir())) == 1
    assert documents.resolve("Inbox/b.bin").blob.read_bytes() == data
    assert list(spool.iterdir()) == []  # removed once uploaded


def test_a_text_write_that_fails_half_way_leaves_nothing_behind(spo_connection: str, documents: Drive) -> None:
    target = ObjectStoragePath(f"{LIBRARY_URL}/Reports/summary.csv")
    with pytest.raises(KeyError), target.open("w") as handle:
        handle.write("region,total\n")
        raise KeyError("a column the report needs")
    assert not target.exists()
    target.write_text("region,total\n")
    assert documents.resolve("Reports/summary.csv").blob.read_bytes() == b"region,total\n"


def test_copy_to_and_from_a_local_path_uses_the_verified_transfers(
    spo_connection: str, documents: Drive, tmp_path: Path
) -> None:
    data = patterned(5 * MIB)
    item = documents.put_file("Exports/ledger.bin", data)
    local = ObjectStoragePath(f"file://{tmp_path}/landing/ledger.bin")
    ObjectStoragePath(f"{LIBRARY_URL}/Exports/ledger.bin").copy(local)
    landed = tmp_path / "landing" / "ledger.bin"
    assert landed.read_bytes() == data
    assert landed.stat().st_mtime == pytest.approx(item.modified.timestamp(), abs=1)  # the downloader keeps it
    local.copy(ObjectStoragePath(f"{LIBRARY_URL}/Imports/ledger.bin"))
    assert documents.resolve("Imports/ledger.bin").blob.read_bytes() == data
