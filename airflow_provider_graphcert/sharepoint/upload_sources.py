"""Which files an upload sends, and under which names, decided before anything is sent.

The files are local, or objects in any fsspec store (an Airflow ``ObjectStoragePath`` or a URL
such as ``s3://`` or ``memory://``): :class:`LocalFile` and :class:`StoreFile` give the uploader
the same two things, a size and a seekable binary stream it reads one fragment at a time.

Skipped with a log line: symbolic links that lead outside the source folder (a link must not
smuggle ``/etc/passwd`` or another job's data into SharePoint), symlinked folders (never walked:
they may loop or lead anywhere), anything that is not a regular file, and the provider's own
state files (``sharepoint/state_files.py``), also the ones a download wrote into a store prefix.
Refused as a whole: two files whose names SharePoint would take for the same one, since names
there are case-insensitive and one upload would silently replace the other.
"""

from __future__ import annotations

import os
import posixpath
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Protocol

from airflow_provider_graphcert.errors import ConfigurationError
from airflow_provider_graphcert.sharepoint.folder_download import FileFilter
from airflow_provider_graphcert.sharepoint.progress import InfoLogger
from airflow_provider_graphcert.sharepoint.state_files import SHAREPOINT_RESERVED_MARKER, is_own_state_file

# How many clashing pairs an error lists, and how many skipped files the log names; the rest are counted.
MAX_LISTED_CLASHES = 10
MAX_LOGGED_SKIPS = 20


# Read block size asked of a store's file object. Reads are one fragment each, sent straight to
# the store as one ranged GET (no read-ahead cache), so this only matters to stores that ignore it.
STORE_READ_BLOCK_BYTES = 8 * 1024 * 1024


class UploadFile(Protocol):
    """One file to upload: where it comes from (for messages), its size, and a stream of its bytes."""

    @property
    def label(self) -> str: ...

    @property
    def name(self) -> str: ...

    def size(self) -> int: ...

    def open(self) -> IO[bytes]: ...


@dataclass(frozen=True)
class LocalFile:
    path: Path
    field: str = "local_path"

    @property
    def label(self) -> str:
        return str(self.path)

    @property
    def name(self) -> str:
        return self.path.name

    def size(self) -> int:
        try:
            found = self.path.stat()
        except FileNotFoundError:
            raise ConfigurationError(f"The file to upload, {self.path}, does not exist.", field=self.field) from None
        if not self.path.is_file():
            raise ConfigurationError(f"{self.path} is not a regular file.", field=self.field)
        return found.st_size

    def open(self) -> IO[bytes]:
        return self.path.open("rb")


@dataclass(frozen=True)
class StoreFile:
    """An object in an fsspec store, read in ranges (never whole into memory)."""

    fs: Any
    key: str  # as the store's file system names it (no protocol)
    label: str
    known_size: int | None = None  # from the listing, saving one request per file
    field: str = "source"

    @property
    def name(self) -> str:
        return posixpath.basename(self.key.rstrip("/"))

    def size(self) -> int:
        if self.known_size is not None:
            return self.known_size
        try:
            info = self.fs.info(self.key)
        except FileNotFoundError:
            raise ConfigurationError(f"The file to upload, {self.label}, does not exist.", field=self.field) from None
        size = info.get("size")
        if info.get("type") == "directory" or not isinstance(size, int):
            raise ConfigurationError(f"{self.label} is not a file.", field=self.field)
        return size

    def open(self) -> IO[bytes]:
        try:
            # "none": each read is one ranged request of exactly the bytes asked for. The default
            # read-ahead cache of s3fs would hold a 50 MiB block beside every fragment.
            handle = self.fs.open(self.key, "rb", block_size=STORE_READ_BLOCK_BYTES, cache_type="none")
        except TypeError:  # a file system whose open() takes no cache_type
            handle = self.fs.open(self.key, "rb")
        return handle  # type: ignore[no-any-return]


@dataclass
class UploadSources:
    files: list[tuple[UploadFile, str]] = field(default_factory=list)  # (file, path relative to the source)
    skipped: dict[str, str] = field(default_factory=dict)  # relative path -> why


def sharepoint_name_key(relative: str) -> str:
    """The form under which SharePoint compares two paths: case-insensitive, Unicode-normalised.

    SharePoint keeps the case it was given but finds ``Report.csv`` under ``report.csv``; an NFD
    name (as macOS writes it) and its NFC twin are likewise one name there.
    """
    return unicodedata.normalize("NFC", relative).casefold()


def upload_sources(source: Path, patterns: FileFilter, logger: InfoLogger, field: str = "local_path") -> UploadSources:
    """Every file below the local folder ``source`` that a folder upload sends, sorted, with what it skipped."""
    root = source.resolve()
    found = UploadSources()
    for directory, folders, names in os.walk(source, followlinks=False):
        base = Path(directory)
        for name in list(folders):
            relative = (base / name).relative_to(source).as_posix()
            if (base / name).is_symlink():
                found.skipped[relative] = "a symbolic link to a folder is not followed"
                folders.remove(name)
            elif is_own_state_file(name):
                found.skipped[relative] = "the provider's own state, not data"
                folders.remove(name)
        folders.sort()
        for name in sorted(names):
            local = base / name
            relative = local.relative_to(source).as_posix()
            reason = _reason_to_skip(local, name, root)
            if reason is not None:
                found.skipped[relative] = reason
            elif patterns.accepts(relative, {}):
                found.files.append((LocalFile(local, field), relative))
    return _checked(found, str(source), logger, field)


def store_upload_sources(
    fs: Any, root: str, label: str, patterns: FileFilter, logger: InfoLogger, field: str = "source"
) -> UploadSources:
    """Every object below the store prefix ``root`` that a folder upload sends, sorted, with what it skipped."""
    base = str(fs._strip_protocol(root)).rstrip("/")
    found = UploadSources()
    # A prefix holds objects only (folders are implied by keys), so there are no links to follow.
    listing: dict[str, dict[str, Any]] = fs.find(base, withdirs=False, detail=True)
    for key in sorted(listing):
        if not key.startswith(base + "/"):
            continue
        relative = key[len(base) + 1 :]
        reason = _store_reason_to_skip(relative, listing[key])
        if reason is not None:
            found.skipped[relative] = reason
        elif patterns.accepts(relative, {}):
            size = listing[key].get("size")
            known = size if isinstance(size, int) else None
            found.files.append((StoreFile(fs, key, f"{label.rstrip('/')}/{relative}", known, field), relative))
    return _checked(found, label, logger, field)


def _checked(found: UploadSources, source: str, logger: InfoLogger, field: str) -> UploadSources:
    skipped = sorted(found.skipped.items())
    for relative, reason in skipped[:MAX_LOGGED_SKIPS]:
        logger.info("Not uploading %s: %s.", relative, reason)
    if len(skipped) > MAX_LOGGED_SKIPS:
        logger.info("Not uploading %d more file(s) for the same kinds of reasons.", len(skipped) - MAX_LOGGED_SKIPS)
    refuse_name_twins(source, [relative for _, relative in found.files], field)
    return found


def _store_reason_to_skip(relative: str, info: dict[str, Any]) -> str | None:
    # A download into a store keeps its manifest and journal beside the files: never data to upload.
    for segment in relative.split("/"):
        reason = _own_state_reason(segment)
        if reason is not None:
            return reason
    if info.get("type", "file") != "file":
        return "not a file"
    return None


def _own_state_reason(name: str) -> str | None:
    if not is_own_state_file(name):
        return None
    if SHAREPOINT_RESERVED_MARKER in name.casefold() and not name.startswith(".graphcert"):
        return f"SharePoint does not allow {SHAREPOINT_RESERVED_MARKER!r} in a name"
    return "the provider's own state (a download manifest or an unfinished temp file), not data"


def _reason_to_skip(local: Path, name: str, root: Path) -> str | None:
    own = _own_state_reason(name)
    if own is not None:
        return own
    if local.is_symlink():
        target = local.resolve()
        if target != root and root not in target.parents:
            return f"a symbolic link to {target}, outside the folder being uploaded"
    if not local.is_file():
        return "not a regular file"
    return None


def refuse_name_twins(source: str | Path, relatives: list[str], field: str = "local_path") -> None:
    """Refuse, before anything is sent, paths (or folders on them) that SharePoint folds into one."""
    first_seen: dict[str, str] = {}
    clashes: dict[tuple[str, str], None] = {}
    for relative in relatives:
        parts = relative.split("/")
        for depth in range(1, len(parts) + 1):
            prefix = "/".join(parts[:depth])
            earlier = first_seen.setdefault(sharepoint_name_key(prefix), prefix)
            if earlier != prefix:
                clashes[(earlier, prefix)] = None
    if not clashes:
        return
    pairs = list(clashes)
    listed = "; ".join(f"'{a}' and '{b}'" for a, b in pairs[:MAX_LISTED_CLASHES])
    more = f" (and {len(pairs) - MAX_LISTED_CLASHES} more)" if len(pairs) > MAX_LISTED_CLASHES else ""
    raise ConfigurationError(
        f"Nothing was uploaded from {source}: SharePoint names ignore case and Unicode normalisation, so "
        f"these would land on the same item and one would silently replace the other: {listed}{more}. "
        "Rename one of each pair, or leave one out with include.",
        field=field,
    )
