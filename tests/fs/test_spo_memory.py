"""Streaming a large SharePoint file through spo:// keeps a worker's memory flat."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import LIBRARY_URL

from airflow_provider_graphcert.testing.emulator.graph_state import Drive

MIB = 1024 * 1024
FILE_BYTES = 256 * MIB
# Generous: fsspec's read-ahead block (5 MiB) and one 1 MiB socket read are what should be held.
MAX_GROWTH_MIB = 48
HERE = Path(__file__).resolve().parent


@pytest.mark.slow
def test_streaming_a_256_mib_file_keeps_memory_flat(
    documents: Drive, connection_env: dict[str, str], tmp_path: Path
) -> None:
    source = tmp_path / "big.bin"
    digest = hashlib.sha256()
    with source.open("wb") as handle:
        for index in range(FILE_BYTES // MIB):
            block = hashlib.sha256(str(index).encode()).digest() * (MIB // 32)
            handle.write(block)
            digest.update(block)
    documents.put_file("Exports/big.bin", source)
    source.unlink()

    env = {
        **os.environ,
        **connection_env,
        "PYTHONPATH": os.pathsep.join([str(HERE), str(HERE.parents[1]), os.environ.get("PYTHONPATH", "")]),
    }
    finished = subprocess.run(
        [sys.executable, str(HERE / "stream_spo_file.py"), f"{LIBRARY_URL}/Exports/big.bin"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert finished.returncode == 0, finished.stderr[-3000:]
    report = json.loads(finished.stdout.strip().splitlines()[-1])
    assert report["bytes"] == FILE_BYTES
    assert report["sha256"] == digest.hexdigest()
    growth_mib = (report["peak_kib"] - report["baseline_kib"]) / 1024
    assert growth_mib < MAX_GROWTH_MIB, f"peak RSS grew by {growth_mib:.1f} MiB while streaming 256 MiB"
