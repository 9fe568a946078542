"""Upload sessions and the fragments they receive (docs/microsoft-rules.md §B9)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from airflow_provider_graphcert.quickxorhash import QuickXorHash
from airflow_provider_graphcert.testing.emulator.graph.common import Identity, invalid_request
from airflow_provider_graphcert.testing.emulator.graph.drives import Drive, Item

# -- upload sessions (B9) ------------------------------------------------------------------------


@dataclass(eq=False)
class UploadSession:
    id: str
    drive: Drive
    parent_id: str
    # Folders of the target path that did not exist yet: created at commit, as uploads by path do.
    missing_folders: tuple[str, ...]
    name: str
    conflict: str
    actor: Identity
    expires: dt.datetime
    temp_path: Path
    replace_item_id: str | None = None
    declared_size: int | None = None
    defer_commit: bool = False
    total: int | None = None
    received: int = 0
    busy: bool = False
    hasher: QuickXorHash = field(default_factory=QuickXorHash)

    @property
    def complete(self) -> bool:
        return self.total is not None and self.received == self.total

    @property
    def next_expected_ranges(self) -> list[str]:
        return [] if self.complete else [f"{self.received}-"]


@dataclass(frozen=True)
class UploadOutcome:
    """After a fragment: still open (item is None) or committed as ``item`` (created or replaced)."""

    session: UploadSession
    item: Item | None = None
    created: bool = False


class FragmentWriter:
    """Receives one Content-Range fragment into the session's file; rolls back if it falls short."""

    def __init__(self, session: UploadSession, start: int, length: int) -> None:
        self.session = session
        self.start = start
        self.length = length
        self.received = 0
        self._hash_before = session.hasher.copy()
        self._file: IO[bytes] = open(session.temp_path, "r+b")  # noqa: SIM115 - closed by finish()
        self._file.seek(start)

    def write(self, chunk: bytes | bytearray | memoryview) -> None:
        if self.received + len(chunk) > self.length:
            raise invalid_request(
                "The request body is longer than its Content-Range.", inner_code="fragmentLengthMismatch"
            )
        self._file.write(chunk)
        self.session.hasher.update(chunk)
        self.received += len(chunk)

    def close(self) -> None:
        self._file.close()

    def rollback(self) -> None:
        self._file.truncate(self.start)
        self._file.close()
        self.session.hasher = self._hash_before
