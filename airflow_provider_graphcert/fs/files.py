"""Open files of the ``spo://`` file system: streamed reads, writes that land whole or not at all.

Reading goes through :class:`RangedReader` under fsspec's block cache. Writing spools the bytes
to a local temporary file (Graph's upload sessions need the total size in every fragment's
``Content-Range``, docs/microsoft-rules.md §B9) and hands it to the provider's uploader on
``close()``: simple PUT or upload session, fragments retried and resumed, QuickXorHash compared.
Until then nothing exists under the final name; a ``with`` block left by an exception uploads
nothing.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fsspec.spec import AbstractBufferedFile

from airflow_provider_graphcert.errors import GraphConflictError
from airflow_provider_graphcert.fs.ranged_reader import RangedReader

if TYPE_CHECKING:
    from airflow_provider_graphcert.fs.filesystem import DrivePlace, SharePointFileSystem

log = logging.getLogger(__name__)


class SharePointFile(AbstractBufferedFile):  # type: ignore[misc]  # fsspec is untyped
    """A file opened with ``rb``, ``wb`` or ``xb`` (``xb`` fails if the file exists)."""

    fs: SharePointFileSystem

    def __init__(
        self,
        fs: SharePointFileSystem,
        path: str,
        place: DrivePlace,
        mode: str = "rb",
        *,
        item: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        if mode not in ("rb", "wb", "xb"):
            raise NotImplementedError(
                f"spo:// files open with 'rb', 'wb' or 'xb', not {mode!r}: SharePoint has no append; read the "
                "file and write it back whole."
            )
        self.place = place
        self._reader: RangedReader | None = None
        self._spool: Any = None
        if mode == "rb":
            assert item is not None
            self._reader = RangedReader(fs.client, place.drive.id, item)
            kwargs["size"] = self._reader.size
        super().__init__(fs, path, mode=mode, **kwargs)
        if mode == "rb":
            self.details = fs.item_info(path, item or {})

    # -- reading ---------------------------------------------------------------------------------

    def _fetch_range(self, start: int, end: int) -> bytes:
        assert self._reader is not None
        return self._reader.read(start, end)

    # -- writing ---------------------------------------------------------------------------------

    def _initiate_upload(self) -> None:
        self._spool = tempfile.NamedTemporaryFile(  # noqa: SIM115  # closed by commit/discard
            prefix=".graphcert-spo-", dir=self.fs.spool_dir, delete=False
        )

    def _upload_chunk(self, final: bool = False) -> bool:
        if self._spool is None:
            self._initiate_upload()
        self.buffer.seek(0)
        # Copy in slices, not buffer.getvalue(): no second copy of the block in memory.
        while block := self.buffer.read(1024 * 1024):
            self._spool.write(block)
        if final and self.autocommit:
            self.commit()
        return True

    def commit(self) -> None:
        if self._spool is None:
            self._initiate_upload()
        spool = self._spool
        spool.close()
        try:
            self.fs.upload_file(Path(spool.name), self.place, conflict="fail" if self.mode == "xb" else "replace")
        except GraphConflictError:
            raise FileExistsError(f"{self.path} already exists (opened with 'xb').") from None
        finally:
            self._remove_spool()

    def discard(self) -> None:
        self._remove_spool()

    def _remove_spool(self) -> None:
        if self._spool is not None:
            self._spool.close()
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._spool.name)
            self._spool = None

    # -- closing ---------------------------------------------------------------------------------

    def close(self) -> None:
        try:
            super().close()
        finally:
            if self._reader is not None:
                self._reader.close()
            self._remove_spool()

    def __exit__(self, exc_type: object, *rest: object) -> None:
        if exc_type is not None and self.writable() and not self.closed:
            # The block failed half-way: what was written is not the file the caller meant.
            self._abandon()
            return
        self.close()

    def __del__(self) -> None:
        if not self.closed and self.writable():
            log.warning("%s was never closed; its bytes were not uploaded.", self.path)
            self._abandon()
            return
        super().__del__()

    def _abandon(self) -> None:
        self.discard()
        self.closed = True


class TextWriter(io.TextIOWrapper):
    """Text mode over a SharePointFile being written: a ``with`` block that raises uploads nothing.

    io.TextIOWrapper's own ``__exit__`` would close (and so upload) the binary file whatever happened.
    """

    def __exit__(self, exc_type: object, *rest: object) -> None:
        if exc_type is not None and isinstance(self.buffer, SharePointFile) and not self.buffer.closed:
            self.buffer._abandon()  # the wrapper's close() then has nothing left to flush
        self.close()
