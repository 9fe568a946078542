"""Moving a quarter-gigabyte file between SharePoint and S3 keeps the worker's memory flat.

Each transfer runs in a fresh process (store_transfer_child.py) that reports its own peak RSS, so
nothing else in the test process (the emulator, the S3 server) counts. Memory only, never time:
speed is measured by bench/object_storage.py.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import s3fs
from sharepoint_kit import SITE_URL
from store_kit import BUCKET

from airflow_provider_graphcert.quickxorhash import QuickXorHash
from airflow_provider_graphcert.testing.emulator.graph_state import Drive
from airflow_provider_graphcert.testing.emulator.seeds import PatternStream
from airflow_provider_graphcert.testing.emulator.server import GraphEmulator
from airflow_provider_graphcert.testing.emulator.state import App

pytestmark = pytest.mark.slow

FILE_BYTES = 256 * 1024 * 1024
# Generous (measured: about 20 MiB up, 40 MiB down): a fragment, its copy in flight, a store block and the
# allocator's slack. Holding the file would cost 256 MiB; the bound proves it is never held.
MAX_PEAK_GROWTH_BYTES = 96 * 1024 * 1024
CHILD = Path(__file__).with_name("store_transfer_child.py")
BLOCK = 8 * 1024 * 1024


def _pattern_hash(size: int) -> str:
    hasher, stream = QuickXorHash(), PatternStream(size)
    while block := stream.read(BLOCK):
        hasher.update(block)
    return hasher.b64digest()


def _run_child(arguments: dict[str, Any], tmp_path: Path) -> dict[str, Any]:
    finished = subprocess.run(
        [sys.executable, str(CHILD), json.dumps(arguments)],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=tmp_path,
        check=False,
    )
    assert finished.returncode == 0, finished.stderr[-3000:]
    report: dict[str, Any] = json.loads(finished.stdout.strip().splitlines()[-1])
    return report


def _arguments(
    graph_emulator: GraphEmulator, sp_app: App, pem_file: Path, s3_endpoint: str, prefix: str, **extra: str
) -> dict[str, Any]:
    return {
        "connection": graph_emulator.connection(sp_app, certificate_path=str(pem_file)),
        "s3_endpoint": s3_endpoint,
        "s3_prefix": prefix,
        "upload_url": f"{SITE_URL}/Shared Documents/Outbox",
        "download_url": f"{SITE_URL}/Shared Documents/Big",
        **extra,
    }


def test_uploading_a_quarter_gigabyte_s3_object_keeps_memory_flat(
    graph_emulator: GraphEmulator,
    sp_app: App,
    pem_file: Path,
    documents: Drive,
    s3_endpoint: str,
    s3_fs: s3fs.S3FileSystem,
    tmp_path: Path,
) -> None:
    prefix = f"{BUCKET}/{tmp_path.name}"
    with s3_fs.open(f"{prefix}/big.bin", "wb", block_size=BLOCK) as target:
        stream = PatternStream(FILE_BYTES)
        while block := stream.read(BLOCK):
            target.write(block)
    arguments = _arguments(graph_emulator, sp_app, pem_file, s3_endpoint, prefix, direction="upload", object="big.bin")
    report = _run_child(arguments, tmp_path)
    assert report["summary"]["bytes"] == FILE_BYTES
    assert documents.resolve("Outbox/big.bin").quick_xor_hash == _pattern_hash(FILE_BYTES)
    growth = report["peak_after"] - report["rss_before"]
    assert growth < MAX_PEAK_GROWTH_BYTES, f"peak RSS grew by {growth / 2**20:.0f} MiB"


def test_downloading_a_quarter_gigabyte_file_into_s3_keeps_memory_flat(
    graph_emulator: GraphEmulator,
    sp_app: App,
    pem_file: Path,
    documents: Drive,
    s3_endpoint: str,
    s3_fs: s3fs.S3FileSystem,
    tmp_path: Path,
) -> None:
    documents.put_file("Big/big.bin", io.BufferedReader(PatternStream(FILE_BYTES), BLOCK))
    prefix = f"{BUCKET}/{tmp_path.name}"
    arguments = _arguments(graph_emulator, sp_app, pem_file, s3_endpoint, prefix, direction="download")
    report = _run_child(arguments, tmp_path)
    assert report["summary"]["downloaded"] == 1
    landed = f"{prefix}/landed/big.bin"
    assert s3_fs.info(landed)["size"] == FILE_BYTES
    hasher = QuickXorHash()
    with s3_fs.open(landed, "rb", block_size=BLOCK, cache_type="none") as handle:
        while block := handle.read(BLOCK):
            hasher.update(block)
    assert hasher.b64digest() == _pattern_hash(FILE_BYTES)
    growth = report["peak_after"] - report["rss_before"]
    assert growth < MAX_PEAK_GROWTH_BYTES, f"peak RSS grew by {growth / 2**20:.0f} MiB"
