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

import json
import logging
import threading
from pathlib import Path
from typing import Any

from airflow_provider_graphcert.files import OWN_FILE_PREFIX
from airflow_provider_graphcert.sharepoint.item_fields import MalformedItemError, file_size, quick_xor_hash
from airflow_provider_graphcert.sharepoint.landing import JOURNAL_NAME, LocalStateFiles, StateFiles

log = logging.getLogger(__name__)

MANIFEST_NAME = f"{OWN_FILE_PREFIX}manifest.json"
LEGACY_MANIFEST_NAME = ".graphcert-manifest.json"
_VERSION = 1
# One encoder for every journal line: json.dumps with options builds a new one per call.
_COMPACT = json.JSONEncoder(separators=(",", ":"))

__all__ = ["JOURNAL_NAME", "LEGACY_MANIFEST_NAME", "MANIFEST_NAME", "Manifest"]


class Manifest:
    """``state``: a local folder, or the state files of any landing (see sharepoint/landing.py)."""

    def __init__(self, state: Path | StateFiles) -> None:
        self.state = LocalStateFiles(state) if isinstance(state, Path) else state
        self.path = state / MANIFEST_NAME if isinstance(state, Path) else MANIFEST_NAME
        self._legacy = False
        self._lock = threading.Lock()
        files = _parse_files(self.state.read_text(MANIFEST_NAME))
        if files is None:
            files = _parse_files(self.state.read_text(LEGACY_MANIFEST_NAME))
            self._legacy = files is not None
        self._entries: dict[str, dict[str, Any]] = files or {}
        self._replay_journal()

    def _replay_journal(self) -> None:
        for line in self.state.read_journal():
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

    def knows(self, relative: str) -> bool:
        """Whether an earlier run recorded ``relative`` (only then is the landed file worth a stat)."""
        with self._lock:
            return relative in self._entries

    def unchanged(self, relative: str, item: dict[str, Any], landed: tuple[int, int | None] | None) -> bool:
        """True when what landed (size, mtime) is what we downloaded last time and the remote item did not change."""
        with self._lock:
            entry = self._entries.get(relative)
        if not entry or entry.get("id") != item.get("id") or landed is None:
            return False
        size, mtime = landed
        if size != entry.get("size"):
            return False
        if mtime is not None and mtime != int(entry.get("mtime") or -1):
            return False
        try:
            remote, remote_size = quick_xor_hash(item), file_size(item)
        except MalformedItemError:
            return False  # the download reports it
        if remote and remote == entry.get("quickXorHash"):
            return remote_size == entry.get("size")
        return bool(item.get("eTag")) and item.get("eTag") == entry.get("eTag")

    def record(
        self,
        relative: str,
        *,
        item_id: str,
        e_tag: str | None,
        landed: tuple[int, int | None],
        quick_xor_hash: str,
    ) -> None:
        """Remember a file that landed (its size and mtime there), in memory and at once in the journal."""
        size, mtime = landed
        entry = {"id": item_id, "eTag": e_tag, "size": size, "mtime": mtime, "quickXorHash": quick_xor_hash}
        with self._lock:
            self._entries[relative] = entry
        self.state.append_journal(_COMPACT.encode({"path": relative, **entry}))

    def forget(self, relative: str) -> None:
        with self._lock:
            self._entries.pop(relative, None)
        self.state.append_journal(_COMPACT.encode({"path": relative, "forget": True}))

    def paths(self) -> list[str]:
        with self._lock:
            return list(self._entries)

    def save(self) -> None:
        """Write the snapshot, then drop the journal it now contains (and an old-format manifest)."""
        with self._lock:
            payload = {"version": _VERSION, "files": dict(self._entries)}
        # No indent: the C encoder then does the work (indent=0 switches to the pure-Python one, which
        # cost 17 ms per 2,000 files against 3 ms; docs/benchmarks.md).
        self.state.write_text(MANIFEST_NAME, json.dumps(payload, sort_keys=True, separators=(",", ":")))
        self.state.clear_journal()
        if self._legacy:
            self.state.remove(LEGACY_MANIFEST_NAME)
            log.info("Moved the download manifest from %s to %s.", LEGACY_MANIFEST_NAME, MANIFEST_NAME)
            self._legacy = False


def _parse_files(text: str | None) -> dict[str, dict[str, Any]] | None:
    if text is None:
        return None
    try:
        data = json.loads(text)
    except ValueError:
        return None
    if isinstance(data, dict) and data.get("version") == _VERSION and isinstance(data.get("files"), dict):
        files: dict[str, dict[str, Any]] = data["files"]
        return files
    return None
