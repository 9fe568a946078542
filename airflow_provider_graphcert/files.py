"""Write local files so that a reader never sees half of one under its final name."""

from __future__ import annotations

import contextlib
import errno
import itertools
import os
import secrets
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

from airflow_provider_graphcert.errors import ConfigurationError

# Every file of our own (temp files, manifest, journal) starts with this prefix. It contains
# "_vti_", which SharePoint Online refuses anywhere in a file or folder name
# (https://support.microsoft.com/office/64883a5d-228e-48f5-b3d2-eb39e07630fa, "Invalid file or
# folder names"), so no downloaded item can ever share a name with our state.
OWN_FILE_PREFIX = ".graphcert-_vti_"
TEMP_SUFFIX = ".part"
# Temp names have a fixed length (prefix + 12 hex digits + suffix = 33 bytes), so a temp file fits
# wherever its final name fits, whatever that name's length (docs/reliability.md).
_TEMP_RANDOM_BYTES = 6
# Data files follow the umask like any other file the worker writes (private keys are written
# elsewhere, with 0600).
_DATA_FILE_MODE = 0o666

# What to do about a local write that failed, by errno; the message names the task argument.
_WRITE_ADVICE = {
    errno.ENOSPC: "the disk is full: free space there or choose another",
    errno.EDQUOT: "the disk quota is used up: free space there or choose another",
    errno.EFBIG: "the file is larger than this filesystem (or a process limit) allows: choose another",
    errno.EACCES: "permission denied: make it writable by the user the workers run as, or choose another",
    errno.EPERM: "permission denied: make it writable by the user the workers run as, or choose another",
    errno.EROFS: "the filesystem is read-only: choose another",
    errno.ENOTDIR: "part of the path is a file, not a directory: choose another",
    errno.EEXIST: "a file is in the way where a directory should be: choose another",
    errno.ENAMETOOLONG: "the path is too long for this filesystem: choose a shorter",
}


def write_failure(exc: OSError, where: object, field: str) -> str:
    """One sentence for a failed local write: what, why and the fix, naming the task argument."""
    reason = exc.strerror or type(exc).__name__
    advice = _WRITE_ADVICE.get(exc.errno or 0, "check it, or choose another")
    return f"Cannot write to {where} ({reason}); {advice} {field}."


def local_argument(value: str | os.PathLike[str] | None, field: str) -> Path:
    """A local path argument (often templated): refuse empty ones instead of meaning the current directory."""
    text = os.fspath(value) if value is not None else ""
    if not text.strip():
        raise ConfigurationError(
            f"{field} is empty (did a template render to nothing?); give the full path to use.", field=field
        )
    if "\x00" in text:
        raise ConfigurationError(f"{field} {text!r} contains a NUL character; give a valid path.", field=field)
    return Path(text).expanduser()


def ensure_writable_dir(path: Path, field: str) -> None:
    """Create ``path`` if needed and prove a file can be created in it, before any transfer starts."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        fd, probe = create_temp_file(path)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise ConfigurationError(write_failure(exc, path, field), field=field) from None


class FolderSync:
    """The folders a job renames files into: each created once, and fsynced once when the job ends.

    A folder job lands thousands of files in a few folders. Syncing the folder after every rename
    cost an open, an fsync and a journal commit per file (docs/benchmarks.md, bulk small files).
    Each file's own data is still fsynced before its rename, so a crash leaves the old file or the
    new one, never a torn one; what waits for :meth:`sync` is only the durability of the renames.
    A rename lost to a power cut before then is caught by the next run, which compares what is on
    disk (size, modified time) with its manifest and downloads that file again
    (docs/reliability.md). Thread-safe.
    """

    def __init__(self) -> None:
        self._made: set[Path] = set()
        self._renamed_into: set[Path] = set()
        self._lock = threading.Lock()

    def make(self, folder: Path) -> None:
        with self._lock:
            if folder in self._made:
                return
        folder.mkdir(parents=True, exist_ok=True)
        with self._lock:
            self._made.add(folder)

    def renamed_into(self, folder: Path) -> None:
        with self._lock:
            self._renamed_into.add(folder)

    def sync(self) -> None:
        """fsync every folder renamed into since the last call."""
        with self._lock:
            folders, self._renamed_into = self._renamed_into, set()
        for folder in sorted(folders):
            _fsync_dir(folder)


@contextlib.contextmanager
def atomic_writer(
    path: Path, mode: str = "wb", *, durable: bool = True, folders: FolderSync | None = None
) -> Iterator[IO[Any]]:
    """Yield a temp file beside ``path``; on success fsync and rename it into place, else delete it.

    The temp file lives in the same directory so the rename is atomic on the same filesystem.
    ``durable=False`` skips the fsyncs (for scratch copies that a crash may lose, e.g. a spool file
    before it goes to object storage); ``folders`` defers the folder's fsync to ``folders.sync()``.
    """
    if folders is not None and durable:
        folders.make(path.parent)
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = create_temp_file(path.parent)
    try:
        with os.fdopen(fd, mode, encoding=None if "b" in mode else "utf-8") as handle:
            yield handle
            handle.flush()
            if durable:
                os.fsync(handle.fileno())
        os.replace(tmp, path)
        if durable and folders is None:
            _fsync_dir(path.parent)
        elif durable and folders is not None:
            folders.renamed_into(path.parent)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def is_own_file(name: str) -> bool:
    """Whether a file name is one of ours (state or temp file), never a user's or a remote item's."""
    return name.startswith(OWN_FILE_PREFIX)


def create_temp_file(directory: Path) -> tuple[int, Path]:
    """Create a new, empty temp file of ours in ``directory``: (open descriptor, path).

    Unlike ``tempfile.mkstemp`` (always 0600) the mode follows the umask, and the name has a
    fixed, short length.
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0) | getattr(os, "O_NOFOLLOW", 0)
    for _ in range(100):
        path = directory / f"{OWN_FILE_PREFIX}{secrets.token_hex(_TEMP_RANDOM_BYTES)}{TEMP_SUFFIX}"
        try:
            return os.open(path, flags, _DATA_FILE_MODE), path
        except FileExistsError:
            continue
    raise FileExistsError(f"Could not create a temp file in {directory}: every name tried exists.")


def remove_stale_temp_files(root: Path) -> int:
    """Delete temp files that an interrupted run (a SIGKILL, a lost pod) left below ``root``.

    Only names of ours are touched (see OWN_FILE_PREFIX); symlinked folders are not followed.
    Returns how many were removed.
    """
    removed = 0
    for directory, _folders, names in os.walk(root):
        for name in names:
            if is_own_file(name) and name.endswith(TEMP_SUFFIX):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(os.path.join(directory, name))
                    removed += 1
    return removed


LOCK_NAME = f"{OWN_FILE_PREFIX}lock"


@contextlib.contextmanager
def exclusive_target(root: Path, field: str) -> Iterator[None]:
    """Hold the target for one job: a second job writing there at the same time is refused.

    Two jobs in one folder would clean up each other's temp files and overwrite each other's
    manifest. The lock is an advisory ``flock`` (released by the kernel if the process dies);
    platforms without ``fcntl`` run unlocked.
    """
    try:
        import fcntl
    except ImportError:  # Windows
        yield
        return
    handle = (root / LOCK_NAME).open("a")
    try:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ConfigurationError(
                f"Another task is writing to {root} right now; give each task its own {field}, or run them "
                "one after the other.",
                field=field,
            ) from None
        yield
    finally:
        handle.close()


def _fsync_dir(directory: Path) -> None:
    # Makes the rename itself durable; not every platform lets a directory be opened.
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def write_json_lines(path: Path, records: Iterable[Any]) -> int:
    """Stream records to ``path`` as JSON Lines (UTF-8), atomically; returns how many were written.

    Each record is one line of compact JSON with characters as they are (not ``\\u`` escapes), as
    ``json.dumps(record, ensure_ascii=False, separators=(",", ":"))`` writes it (only a float may be
    spelled differently, 1e-7 for 1e-07: the same number). pydantic-core encodes it, and lines are
    written a batch at a time: for a Graph page of 999 users that is about a quarter of the CPU of
    ``json.dumps`` per record (docs/benchmarks.md: 100,000-user export). At most
    ``_LINES_PER_WRITE`` encoded records are held at a time, so memory stays flat whatever the count.
    """
    # Imported here: pydantic-core comes with Airflow, but a plain-Python client that never
    # exports should not pay for importing it (about 50 ms cold).
    from pydantic_core import to_json

    count = 0
    source = iter(records)
    with atomic_writer(path, "wb") as handle:
        while batch := list(itertools.islice(source, _LINES_PER_WRITE)):
            lines = list(map(to_json, batch))
            lines.append(b"")  # the last line ends with a newline too
            handle.write(b"\n".join(lines))
            count += len(batch)
    return count


# A Graph page holds at most 999 directory objects ($top), so a page is usually one write.
_LINES_PER_WRITE = 1000
