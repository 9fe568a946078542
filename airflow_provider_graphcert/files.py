"""Write local files so that a reader never sees half of one under its final name."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

from airflow_provider_graphcert.errors import ConfigurationError

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


def write_failure(exc: OSError, where: Path, field: str) -> str:
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
        fd, probe = tempfile.mkstemp(prefix=".graphcert-probe-", dir=path)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise ConfigurationError(write_failure(exc, path, field), field=field) from None


@contextlib.contextmanager
def atomic_writer(path: Path, mode: str = "wb") -> Iterator[IO[Any]]:
    """Yield a temp file beside ``path``; on success fsync and rename it into place, else delete it.

    The temp file lives in the same directory so the rename is atomic on the same filesystem.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, mode) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _fsync_dir(directory: Path) -> None:
    # Makes the rename itself durable; not every platform lets a directory be opened.
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def write_json_lines(path: Path, records: Iterable[Any]) -> int:
    """Stream records to ``path`` as JSON Lines, atomically; returns how many were written."""
    count = 0
    with atomic_writer(path, "w") as handle:
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False, separators=(",", ":")))
            handle.write("\n")
            count += 1
    return count
