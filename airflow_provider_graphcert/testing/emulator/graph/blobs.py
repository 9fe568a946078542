"""File bodies on disk, hashed (quickXorHash) as they arrive: tests move files of any size in flat memory."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO

from airflow_provider_graphcert.quickxorhash import QuickXorHash
from airflow_provider_graphcert.testing.emulator.graph.common import GraphError

_COPY_CHUNK_BYTES = 1024 * 1024


# -- file bodies on disk -----------------------------------------------------------------------


class BlobWriter:
    """A new file body written straight to the state's disk and hashed as it arrives."""

    def __init__(self, path: Path, *, max_size: int | None = None) -> None:
        self.path = path
        self.max_size = max_size
        self.size = 0
        self._hasher = QuickXorHash()
        self._file: IO[bytes] | None = open(path, "wb")  # noqa: SIM115 - closed by close()/discard()

    def write(self, chunk: bytes | bytearray | memoryview) -> None:
        if self._file is None:
            raise ValueError("the blob is already closed")
        if self.max_size is not None and self.size + len(chunk) > self.max_size:
            raise GraphError(
                413,
                "requestTooLarge",
                f"A simple upload is limited to {self.max_size} bytes; use an upload session.",
            )
        self._file.write(chunk)
        self._hasher.update(chunk)
        self.size += len(chunk)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def discard(self) -> None:
        self.close()
        self.path.unlink(missing_ok=True)

    @property
    def quick_xor_hash(self) -> str:
        return self._hasher.b64digest()

    def __enter__(self) -> BlobWriter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        if exc_type is not None:
            self.discard()
        else:
            self.close()


@dataclass(frozen=True)
class StoredBody:
    """A finished body on disk, ready to be attached to an item."""

    path: Path
    size: int
    quick_xor_hash: str

    @classmethod
    def from_writer(cls, writer: BlobWriter) -> StoredBody:
        writer.close()
        return cls(writer.path, writer.size, writer.quick_xor_hash)


def copy_stream(source: IO[bytes], writer: BlobWriter) -> None:
    while chunk := source.read(_COPY_CHUNK_BYTES):
        writer.write(chunk)
