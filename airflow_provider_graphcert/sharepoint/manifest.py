"""What a previous run downloaded, so a nightly job transfers only what changed.

Kept beside the files under names of our own (``files.OWN_FILE_PREFIX``: they contain "_vti_",
which SharePoint never allows in a name, so no remote file can collide with them):

* the manifest, a JSON snapshot written atomically when a run ends (however it ends);
* a journal, one JSON line appended the moment each file lands. A run killed mid-way (SIGKILL,
  a lost pod) leaves its journal behind and the next run replays it, so nothing that landed is
  downloaded again. Appending is linear in the files landed; the snapshot is rewritten once a run.

A manifest of an older version (``.graphcert-manifest.json``, which a remote file of that name
could overwrite) is read once and replaced.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
from pathlib import Path
from typing import IO, Any

from airflow_provider_graphcert.files import OWN_FILE_PREFIX, atomic_writer
from airflow_provider_graphcert.sharepoint.item_fields import MalformedItemError, file_size, quick_xor_hash

log = logging.getLogger(__name__)

MANIFEST_NAME = f"{OWN_FILE_PREFIX}manifest.json"
JOURNAL_NAME = f"{OWN_FILE_PREFIX}journal.jsonl"
LEGACY_MANIFEST_NAME = ".graphcert-manifest.json"
_VERSION = 1


class Manifest:
    def __init__(self, directory: Path) -> None:
        self.path = directory / MANIFEST_NAME
        self.journal_path = directory / JOURNAL_NAME
        self._legacy: Path | None = None
        self._entries: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()
        self._journal: IO[str] | None = None
        files = _read_files(self.path)
        if files is None:
            files = _read_files(directory / LEGACY_MANIFEST_NAME)
            if files is not None:
                self._legacy = directory / LEGACY_MANIFEST_NAME
        self._entries = files or {}
        self._replay_journal()

    def _replay_journal(self) -> None:
        try:
            lines = self.journal_path.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return
        for line in lines:
            try:
                record = json.loads(line)
            except ValueError:  # a line torn by the kill that ended the last run
                continue
            if not isinstance(record, dict) or not isinstance(record.get("path"), str):
                continue
            relative = record.pop("path")
            if record.get("forget"):
                self._entries.pop(relative, None)
            else:
                self._entries[relative] = record

    def unchanged(self, relative: str, item: dict[str, Any], local: Path) -> bool:
        """True when ``local`` is what we downloaded last time and the remote item did not change."""
        with self._lock:
            entry = self._entries.get(relative)
        if not entry or entry.get("id") != item.get("id"):
            return False
        try:
            stat = local.stat()
        except OSError:
            return False
        if stat.st_size != entry.get("size") or int(stat.st_mtime) != int(entry.get("mtime", -1)):
            return False
        try:
            remote, size = quick_xor_hash(item), file_size(item)
        except MalformedItemError:
            return False  # the download reports it
        if remote and remote == entry.get("quickXorHash"):
            return size == entry.get("size")
        return bool(item.get("eTag")) and item.get("eTag") == entry.get("eTag")

    def record(self, relative: str, *, item_id: str, e_tag: str | None, local: Path, quick_xor_hash: str) -> None:
        """Remember a file that landed, in memory and at once in the journal."""
        stat = local.stat()
        entry = {
            "id": item_id,
            "eTag": e_tag,
            "size": stat.st_size,
            "mtime": int(stat.st_mtime),
            "quickXorHash": quick_xor_hash,
        }
        with self._lock:
            self._entries[relative] = entry
            self._append({"path": relative, **entry})

    def forget(self, relative: str) -> None:
        with self._lock:
            self._entries.pop(relative, None)
            self._append({"path": relative, "forget": True})

    def _append(self, record: dict[str, Any]) -> None:
        # Flushed per line, not fsynced: it survives the process being killed (the kernel has it);
        # after a power loss the next run merely downloads those files again.
        if self._journal is None:
            self._journal = self.journal_path.open("a", encoding="utf-8")
        self._journal.write(json.dumps(record, separators=(",", ":")) + "\n")
        self._journal.flush()

    def paths(self) -> list[str]:
        with self._lock:
            return list(self._entries)

    def save(self) -> None:
        """Write the snapshot, then drop the journal it now contains (and an old-format manifest)."""
        with self._lock:
            payload = {"version": _VERSION, "files": dict(self._entries)}
            with atomic_writer(self.path, "w") as handle:
                json.dump(payload, handle, indent=0, sort_keys=True)
            if self._journal is not None:
                self._journal.close()
                self._journal = None
            self.journal_path.unlink(missing_ok=True)
            if self._legacy is not None:
                with contextlib.suppress(OSError):
                    self._legacy.unlink()
                log.info("Moved the download manifest from %s to %s.", self._legacy.name, self.path.name)
                self._legacy = None


def _read_files(path: Path) -> dict[str, dict[str, Any]] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if isinstance(data, dict) and data.get("version") == _VERSION and isinstance(data.get("files"), dict):
        files: dict[str, dict[str, Any]] = data["files"]
        return files
    return None
