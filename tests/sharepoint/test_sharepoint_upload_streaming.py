"""A DAG uploads big local files whose fragments are read and sent a block at a time through one buffer.

Each fragment goes out as several reads of ``LOCAL_READ_BLOCK_BYTES``; these stories check that
what Graph keeps, and the hash the upload is verified with, stay right when a fragment is sent
twice, lost, or cut short because the file changed under the upload.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import pytest
from sharepoint_kit import SITE_URL, content_for, remote_exists

from airflow_provider_graphcert.quickxorhash import QuickXorHash
from airflow_provider_graphcert.sharepoint.service import SharePoint
from airflow_provider_graphcert.sharepoint.upload import (
    FRAGMENT_MULTIPLE_BYTES,
    LOCAL_READ_BLOCK_BYTES,
    FileUploader,
    UploadSourceError,
)
from airflow_provider_graphcert.sharepoint.upload_sources import LocalFile
from airflow_provider_graphcert.testing.emulator.graph_state import Drive
from airflow_provider_graphcert.testing.emulator.server import GraphEmulator

OUTBOX_URL = f"{SITE_URL}/Shared Documents/Outbox"
# A fragment of two and a bit reads: the last read of each is a short one.
CHUNK = (2 * LOCAL_READ_BLOCK_BYTES // FRAGMENT_MULTIPLE_BYTES + 1) * FRAGMENT_MULTIPLE_BYTES


def _read_remote(drive: Drive, path: str) -> bytes:
    blob = drive.resolve(path).blob
    assert blob is not None, f"{path} has no stored body"
    return blob.read_bytes()


def test_fragments_sent_in_several_reads_land_byte_exact_with_the_hash_graph_keeps(
    sharepoint: SharePoint, documents: Drive, graph_emulator: GraphEmulator, tmp_path: Path
) -> None:
    assert CHUNK > 2 * LOCAL_READ_BLOCK_BYTES
    data = content_for("streamed", size=3 * CHUNK + 12345)
    local = tmp_path / "streamed.bin"
    local.write_bytes(data)
    result = sharepoint.upload(local, url=OUTBOX_URL, chunk_size=CHUNK)
    assert result["bytes"] == len(data)
    assert _read_remote(documents, "Outbox/streamed.bin") == data
    fragments = [r for r in graph_emulator.requests.records("files") if r.method == "PUT"]
    assert [r.headers["content-length"] for r in fragments] == [str(CHUNK)] * 3 + ["12345"]
    assert documents.resolve("Outbox/streamed.bin").quick_xor_hash == QuickXorHash(data).b64digest()


def test_a_fragment_cut_off_mid_body_and_one_refused_are_sent_again_and_hashed_once(
    sharepoint: SharePoint, documents: Drive, graph_emulator: GraphEmulator, tmp_path: Path
) -> None:
    data = content_for("again", size=4 * CHUNK + 7)
    local = tmp_path / "again.bin"
    local.write_bytes(data)
    # The second fragment's reply is cut off after Graph stored it (the retry meets 416 and asks
    # where to go on); the fourth is refused once with 503 after its body was read and hashed.
    lost = graph_emulator.faults.add(
        "uploadSession", drop="mid_body", drop_after_bytes=10, skip=1, times=1, method="PUT", origin="files"
    )
    refused = graph_emulator.faults.add("uploadSession", status=503, skip=3, times=1, method="PUT", origin="files")
    done = FileUploader(sharepoint.client, fragment_bytes=CHUNK).upload(documents.id, "Outbox/again.bin", local)
    assert (lost.fired, refused.fired) == (1, 1)
    # A block hashed twice or skipped would give another digest (and fail the verification).
    assert (done.quick_xor_hash, done.verified) == (QuickXorHash(data).b64digest(), "hash")
    assert _read_remote(documents, "Outbox/again.bin") == data


class _RotatedWhileRead(io.FileIO):
    """The real file, which another process truncates in place as soon as the upload has read a block."""

    def readinto(self, buffer: Any) -> int | None:
        count = super().readinto(buffer)
        Path(str(self.name)).write_bytes(b"rotated")  # a log rotation, while the fragment is on the wire
        return count


@dataclass(frozen=True)
class _LogRotatedDuringUpload(LocalFile):
    def open(self) -> IO[bytes]:
        return _RotatedWhileRead(self.path)


def test_a_file_truncated_while_its_fragment_is_on_the_wire_is_cut_off_and_nothing_committed(
    sharepoint: SharePoint, documents: Drive, graph_emulator: GraphEmulator, tmp_path: Path
) -> None:
    log_file = tmp_path / "app.log"
    log_file.write_bytes(content_for("log", 2 * CHUNK + 5))
    uploader = FileUploader(sharepoint.client, fragment_bytes=CHUNK)
    with pytest.raises(UploadSourceError, match="changed while it was being uploaded") as failed:
        uploader.upload(documents.id, "Outbox/app.log", _LogRotatedDuringUpload(log_file))
    assert "Nothing was committed" in str(failed.value)
    assert not remote_exists(documents, "Outbox/app.log")
    assert graph_emulator.graph.upload_sessions == {}  # cancelled, not left to expire
    # The first fragment was cut off mid-body and not sent again: a changed source is no network fault.
    assert len([r for r in graph_emulator.requests.records("files") if r.method == "PUT"]) == 1
