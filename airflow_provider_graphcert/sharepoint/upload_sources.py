"""Which local files a folder upload sends, and under which names, decided before anything is sent.

Skipped with a log line: symbolic links that lead outside the source folder (a link must not
smuggle ``/etc/passwd`` or another job's data into SharePoint), symlinked folders (never walked:
they may loop or lead anywhere), anything that is not a regular file, and the provider's own
state files (``sharepoint/state_files.py``). Refused as a whole: two files whose names SharePoint
would take for the same one, since names there are case-insensitive and one upload would silently
replace the other.
"""

from __future__ import annotations

import os
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

from airflow_provider_graphcert.errors import ConfigurationError
from airflow_provider_graphcert.sharepoint.folder_download import FileFilter
from airflow_provider_graphcert.sharepoint.progress import InfoLogger
from airflow_provider_graphcert.sharepoint.state_files import SHAREPOINT_RESERVED_MARKER, is_own_state_file

# How many clashing pairs an error lists, and how many skipped files the log names; the rest are counted.
MAX_LISTED_CLASHES = 10
MAX_LOGGED_SKIPS = 20


@dataclass
class UploadSources:
    files: list[tuple[Path, str]] = field(default_factory=list)  # (local file, path relative to the source)
    skipped: dict[str, str] = field(default_factory=dict)  # relative path -> why


def sharepoint_name_key(relative: str) -> str:
    """The form under which SharePoint compares two paths: case-insensitive, Unicode-normalised.

    SharePoint keeps the case it was given but finds ``Report.csv`` under ``report.csv``; an NFD
    name (as macOS writes it) and its NFC twin are likewise one name there.
    """
    return unicodedata.normalize("NFC", relative).casefold()


def upload_sources(source: Path, patterns: FileFilter, logger: InfoLogger) -> UploadSources:
    """Every file below ``source`` that a folder upload sends, sorted, with what it skipped and why."""
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
                found.files.append((local, relative))
    skipped = sorted(found.skipped.items())
    for relative, reason in skipped[:MAX_LOGGED_SKIPS]:
        logger.info("Not uploading %s: %s.", relative, reason)
    if len(skipped) > MAX_LOGGED_SKIPS:
        logger.info("Not uploading %d more file(s) for the same kinds of reasons.", len(skipped) - MAX_LOGGED_SKIPS)
    refuse_name_twins(source, [relative for _, relative in found.files])
    return found


def _reason_to_skip(local: Path, name: str, root: Path) -> str | None:
    if is_own_state_file(name):
        if SHAREPOINT_RESERVED_MARKER in name.casefold() and not name.startswith(".graphcert"):
            return f"SharePoint does not allow {SHAREPOINT_RESERVED_MARKER!r} in a name"
        return "the provider's own state (a download manifest or an unfinished temp file), not data"
    if local.is_symlink():
        target = local.resolve()
        if target != root and root not in target.parents:
            return f"a symbolic link to {target}, outside the folder being uploaded"
    if not local.is_file():
        return "not a regular file"
    return None


def refuse_name_twins(source: Path, relatives: list[str]) -> None:
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
        field="local_path",
    )
