"""What a previous run downloaded, so a nightly job transfers only what changed.

Kept as JSON beside the files (``.graphcert-manifest.json``) and saved even when a run fails, so
an Airflow retry skips what already landed.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

from airflow_provider_graphcert.files import atomic_writer

MANIFEST_NAME = ".graphcert-manifest.json"
_VERSION = 1


class Manifest:
    def __init__(self, directory: Path) -> None:
        self.path = directory / MANIFEST_NAME
        self._entries: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (FileNotFoundError, ValueError):
            data = {}
        if isinstance(data, dict) and data.get("version") == _VERSION and isinstance(data.get("files"), dict):
            self._entries = data["files"]

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
        remote = (item.get("file") or {}).get("hashes", {}).get("quickXorHash")
        if remote and remote == entry.get("quickXorHash"):
            return item.get("size") == entry.get("size")
        return bool(item.get("eTag")) and item.get("eTag") == entry.get("eTag")

    def record(self, relative: str, item: dict[str, Any], local: Path, quick_xor_hash: str) -> None:
        stat = local.stat()
        entry = {
            "id": item.get("id"),
            "eTag": item.get("eTag"),
            "size": stat.st_size,
            "mtime": int(stat.st_mtime),
            "quickXorHash": quick_xor_hash,
        }
        with self._lock:
            self._entries[relative] = entry

    def forget(self, relative: str) -> None:
        with self._lock:
            self._entries.pop(relative, None)

    def paths(self) -> list[str]:
        with self._lock:
            return list(self._entries)

    def save(self) -> None:
        with self._lock:
            payload = {"version": _VERSION, "files": dict(self._entries)}
        with atomic_writer(self.path, "w") as handle:
            json.dump(payload, handle, indent=0, sort_keys=True)
