"""Where downloaded files land: a local folder (the fast path) or any fsspec store.

Download and sync hand every file to a :class:`Landing`; it decides where the bytes go and where
our state (manifest, journal, sync map) is kept, always beside the files in the same store, so a
run on another worker continues where the last one stopped.

* :class:`LocalLanding`: a folder on this machine, written as before (temp file beside the final
  name, fsync, rename, remote modified time, a lock against a second job in the same folder).
* :class:`StoreLanding`: any fsspec file system: an Airflow ``ObjectStoragePath`` (``s3://``,
  ``abfs://``, ``gs://`` ... through the connection it names) or a URL such as ``memory://``. Each
  file is downloaded, verified, into a local spool file first (streamed, flat memory; disk use
  is one file per worker), then put under a temporary key of ours and moved to its final key, so
  no partial object ever appears under a final key. The journal is kept as small batch objects,
  since object stores cannot append.

Nothing here imports Airflow: an ``ObjectStoragePath`` is used through its ``fs`` and ``path``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import posixpath
import secrets
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from airflow_provider_graphcert.errors import ConfigurationError
from airflow_provider_graphcert.files import (
    OWN_FILE_PREFIX,
    TEMP_SUFFIX,
    atomic_writer,
    ensure_writable_dir,
    exclusive_target,
    is_own_file,
    local_argument,
    remove_stale_temp_files,
)
from airflow_provider_graphcert.sharepoint.download import DownloadedFile, FileDownloader
from airflow_provider_graphcert.sharepoint.local_names import LocalTree, UnsafeNameError, safe_segment

log = logging.getLogger(__name__)

JOURNAL_NAME = f"{OWN_FILE_PREFIX}journal.jsonl"
# Object stores cannot append: the journal is written as one object per this many landed files.
STORE_JOURNAL_BATCH = 50
_STORE_JOURNAL_PREFIX = f"{OWN_FILE_PREFIX}journal-"
# Block written to a store at a time: one multipart part on S3 (whose minimum part is 5 MiB).
STORE_WRITE_BLOCK_BYTES = 8 * 1024 * 1024


class StateFiles(Protocol):
    """Our own state beside the files: whole small documents, and an append-only journal."""

    def read_text(self, name: str) -> str | None: ...

    def write_text(self, name: str, text: str) -> None: ...

    def remove(self, name: str) -> None: ...

    def append_journal(self, line: str) -> None: ...

    def read_journal(self) -> list[str]: ...

    def clear_journal(self) -> None: ...


class Landing(Protocol):
    label: str  # for messages: the folder or URL
    field: str  # the task argument that named it

    @property
    def state(self) -> StateFiles: ...

    def held(self) -> contextlib.AbstractContextManager[None]: ...

    def destination(self, relative: str) -> str:
        """Where ``relative`` lands; raises UnsafeNameError for a path that cannot land safely."""
        ...

    def land(
        self, downloader: FileDownloader, drive_id: str, item: dict[str, Any], destination: str
    ) -> DownloadedFile: ...

    def stat(self, destination: str) -> tuple[int, int | None] | None:
        """(size, whole-second mtime or None when the store keeps none) of a landed file, or None."""
        ...

    def delete(self, destination: str) -> None: ...


# -- local folder ---------------------------------------------------------------------------------


class LocalStateFiles:
    def __init__(self, root: Path) -> None:
        self.root = root
        self._journal: Any = None
        self._lock = threading.Lock()

    def read_text(self, name: str) -> str | None:
        try:
            return (self.root / name).read_text(encoding="utf-8")
        except OSError:
            return None

    def write_text(self, name: str, text: str) -> None:
        with atomic_writer(self.root / name, "w") as handle:
            handle.write(text)

    def remove(self, name: str) -> None:
        with contextlib.suppress(OSError):
            (self.root / name).unlink()

    def append_journal(self, line: str) -> None:
        # Flushed per line, not fsynced: it survives the process being killed (the kernel has it);
        # after a power loss the next run merely downloads those files again.
        with self._lock:
            if self._journal is None:
                self._journal = (self.root / JOURNAL_NAME).open("a", encoding="utf-8")
            self._journal.write(line + "\n")
            self._journal.flush()

    def read_journal(self) -> list[str]:
        text = self.read_text(JOURNAL_NAME)
        return text.splitlines() if text else []

    def clear_journal(self) -> None:
        with self._lock:
            if self._journal is not None:
                self._journal.close()
                self._journal = None
            (self.root / JOURNAL_NAME).unlink(missing_ok=True)


@dataclasses.dataclass
class LocalLanding:
    root: Path
    field: str = "local_dir"

    def __post_init__(self) -> None:
        self.label = str(self.root)
        self._state = LocalStateFiles(self.root)
        self._tree = LocalTree(self.root)

    @property
    def state(self) -> StateFiles:
        return self._state

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        """Check the folder is writable, hold it for this job and remove temp files a killed run left."""
        ensure_writable_dir(self.root, self.field)
        with exclusive_target(self.root, self.field):
            removed = remove_stale_temp_files(self.root)
            if removed:
                log.info("Removed %d temp files that an interrupted run left in %s.", removed, self.root)
            yield

    def destination(self, relative: str) -> str:
        return str(self._tree.path(relative))

    def land(self, downloader: FileDownloader, drive_id: str, item: dict[str, Any], destination: str) -> DownloadedFile:
        return downloader.download(drive_id, item, Path(destination))

    def stat(self, destination: str) -> tuple[int, int | None] | None:
        try:
            found = os.stat(destination)
        except OSError:
            return None
        return found.st_size, int(found.st_mtime)

    def delete(self, destination: str) -> None:
        Path(destination).unlink(missing_ok=True)


# -- any fsspec store ---------------------------------------------------------------------------


class StoreStateFiles:
    def __init__(self, fs: Any, root: str) -> None:
        self.fs, self.root = fs, root
        self._pending: list[str] = []
        self._parts: set[str] = set()
        self._lock = threading.Lock()

    def _key(self, name: str) -> str:
        return f"{self.root}/{name}"

    def read_text(self, name: str) -> str | None:
        try:
            data: bytes = self.fs.cat_file(self._key(name))
        except (OSError, ValueError):
            return None
        return data.decode("utf-8", errors="replace")

    def write_text(self, name: str, text: str) -> None:
        # One PUT: object stores make it visible whole or not at all.
        self.fs.pipe_file(self._key(name), text.encode("utf-8"))

    def remove(self, name: str) -> None:
        with contextlib.suppress(OSError):
            self.fs.rm_file(self._key(name))

    def append_journal(self, line: str) -> None:
        with self._lock:
            self._pending.append(line)
            if len(self._pending) < STORE_JOURNAL_BATCH:
                return
            lines, self._pending = self._pending, []
        self._write_part(lines)

    def _write_part(self, lines: list[str]) -> None:
        key = self._key(f"{_STORE_JOURNAL_PREFIX}{secrets.token_hex(8)}.jsonl")
        self.fs.pipe_file(key, ("\n".join(lines) + "\n").encode("utf-8"))
        with self._lock:
            self._parts.add(key)

    def read_journal(self) -> list[str]:
        lines: list[str] = []
        for key in sorted(self.fs.glob(self._key(f"{_STORE_JOURNAL_PREFIX}*.jsonl"))):
            with contextlib.suppress(OSError):
                lines.extend(self.fs.cat_file(key).decode("utf-8", errors="replace").splitlines())
                self._parts.add(_strip_protocol(self.fs, key))
        return lines

    def clear_journal(self) -> None:
        with self._lock:
            parts, self._parts, self._pending = set(self._parts), set(), []
        for key in parts:
            with contextlib.suppress(OSError):
                self.fs.rm_file(key)


def _strip_protocol(fs: Any, key: str) -> str:
    stripped: str = fs._strip_protocol(key)
    return stripped


@dataclasses.dataclass
class StoreLanding:
    fs: Any
    root: str
    label: str
    field: str = "destination"
    spool_dir: str | None = None  # where files wait locally before they are put (None: the system's temp dir)

    def __post_init__(self) -> None:
        self.root = self.root.rstrip("/")
        self._state = StoreStateFiles(self.fs, self.root)

    @property
    def state(self) -> StateFiles:
        return self._state

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        """Make sure the prefix exists and remove temp objects an interrupted run left (no lock: stores have none)."""
        try:
            self.fs.makedirs(self.root, exist_ok=True)
            stale = [key for key in self._own_temp_keys()]
        except OSError as exc:
            raise ConfigurationError(
                f"Cannot use {self.label} ({exc}); check the location and the credentials of its connection.",
                field=self.field,
            ) from None
        for key in stale:
            with contextlib.suppress(OSError):
                self.fs.rm_file(key)
        if stale:
            log.info("Removed %d temp objects that an interrupted run left in %s.", len(stale), self.label)
        yield

    def _own_temp_keys(self) -> Iterator[str]:
        with contextlib.suppress(FileNotFoundError):
            for key in self.fs.find(self.root):
                name = posixpath.basename(key)
                if is_own_file(name) and name.endswith(TEMP_SUFFIX):
                    yield key

    def destination(self, relative: str) -> str:
        segments = [safe_segment(s) for s in relative.split("/") if s != ""]
        if not segments:
            raise UnsafeNameError("refusing an empty path")
        return "/".join([self.root, *segments])

    def land(self, downloader: FileDownloader, drive_id: str, item: dict[str, Any], destination: str) -> DownloadedFile:
        with tempfile.TemporaryDirectory(prefix="graphcert-spool-", dir=self.spool_dir) as spool:
            # The spool copy only bridges to the store (a crash starts the file over), so no fsync:
            # it would write every byte to the local disk once more before the store gets it.
            done = downloader.download(drive_id, item, Path(spool) / "body", durable=False)
            if _commits_on_close(self.fs):
                # The object appears whole when the write completes, or not at all: no temp key,
                # and no server-side copy of every file (which doubles the store's work).
                self._put(Path(spool) / "body", destination)
                return dataclasses.replace(done, path=destination)
            temp_key = f"{posixpath.dirname(destination)}/{OWN_FILE_PREFIX}{secrets.token_hex(6)}{TEMP_SUFFIX}"
            try:
                self._put(Path(spool) / "body", temp_key)
                # A move is a rename where the store has one, else copy + delete: either way the
                # final key only ever holds a whole, verified file.
                self.fs.mv(temp_key, destination)
            except BaseException:
                with contextlib.suppress(Exception):
                    self.fs.rm_file(temp_key)
                raise
        return dataclasses.replace(done, path=destination)

    def _put(self, local: Path, key: str) -> None:
        """Copy a local file to ``key`` one block at a time.

        Not ``fs.put_file``: s3fs reads a file below 100 MiB whole into memory, and sends larger
        ones as up to 10 parts of 50 MiB at once (about 500 MiB of memory for one 256 MiB file).
        """
        remote = self.fs.open(key, "wb", block_size=STORE_WRITE_BLOCK_BYTES)
        try:
            with local.open("rb") as source:
                while block := source.read(STORE_WRITE_BLOCK_BYTES):
                    remote.write(block)
            remote.close()  # commits: completes the multipart upload on S3
        except BaseException:
            # Abort the store's multipart upload rather than commit what was written so far, and
            # mark the file closed so that its finaliser does not commit it either.
            with contextlib.suppress(Exception):
                remote.discard()
            with contextlib.suppress(Exception):
                remote.closed = True
            raise

    def stat(self, destination: str) -> tuple[int, int | None] | None:
        try:
            info = self.fs.info(destination)
        except (OSError, ValueError):
            return None
        size = info.get("size")
        return (int(size), None) if isinstance(size, int) else None

    def delete(self, destination: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.fs.rm_file(destination)


# Stores on which a written object becomes visible only when its writer closes it, whole: on S3 a
# write is one PUT or a multipart upload completed at close (an aborted one leaves no object;
# https://docs.aws.amazon.com/AmazonS3/latest/userguide/mpuoverview.html). Files land there
# under their final key directly; other stores get a temporary key and a move.
COMMIT_ON_CLOSE_PROTOCOLS = frozenset({"s3", "s3a"})


def _commits_on_close(fs: Any) -> bool:
    protocol = getattr(fs, "protocol", ())
    protocols = protocol if isinstance(protocol, list | tuple) else (protocol,)
    return bool(COMMIT_ON_CLOSE_PROTOCOLS & set(protocols))


# -- choosing one ---------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class StoreAddress:
    """A place in an fsspec store: its file system, the path in it, and how to name it in messages."""

    fs: Any
    root: str
    label: str


def locate(value: Any, field: str) -> Path | StoreAddress:
    """What a task argument names: a local path, or a place in a store (URL with a scheme, ObjectStoragePath).

    ``file://`` URLs and ``file`` ObjectStoragePaths are local paths: they take the local fast path.
    """
    if value is None:
        raise ConfigurationError(f"{field} is missing; give a local path or an object storage URL.", field=field)
    protocol = getattr(value, "protocol", None)
    if hasattr(value, "fs") and hasattr(value, "path") and protocol is not None:  # an ObjectStoragePath
        protocols = protocol if isinstance(protocol, list | tuple) else (protocol,)
        if set(protocols) & {"file", "local"}:
            return local_argument(str(value.path), field)
        return StoreAddress(value.fs, str(value.path), label=str(value))
    text = os.fspath(value) if isinstance(value, str | os.PathLike) else str(value)
    scheme = urlsplit(text).scheme if "://" in text else ""
    if not scheme:
        return local_argument(text, field)
    if scheme == "file":
        return local_argument(urlsplit(text).path, field)
    label = shown_url(text)
    try:
        import fsspec  # part of Apache Airflow's dependencies

        fs, root = fsspec.core.url_to_fs(text)
    except (ImportError, ValueError, OSError) as exc:
        raise ConfigurationError(
            f"{field} {label!r} names a store this worker cannot open ({type(exc).__name__}); install its fsspec "
            "package, check the address, or pass an ObjectStoragePath built with an Airflow connection.",
            field=field,
        ) from None
    return StoreAddress(fs, str(root), label=label)


def shown_url(text: str) -> str:
    """``text`` as it may appear in logs, errors and results: a password in the URL is masked."""
    parts = urlsplit(text)
    if parts.password is None:
        return text
    host = parts.netloc.rsplit("@", 1)[-1]
    return parts._replace(netloc=f"{parts.username or ''}:***@{host}").geturl()


def landing_for(value: Any, field: str) -> LocalLanding | StoreLanding:
    """The landing for a task argument: a local path, a URL with a scheme, or an ObjectStoragePath."""
    place = locate(value, field)
    if isinstance(place, Path):
        return LocalLanding(place, field)
    return StoreLanding(place.fs, place.root, label=place.label, field=field)
