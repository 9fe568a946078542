"""Keep the emulated Graph's content across a restart: a JSON snapshot beside the file bodies.

A standalone emulator started with ``--persist`` (see ``standalone``) restores the snapshot at
start and writes it after seeding, while content changes and at a clean stop, so a process that
is killed and started again serves the same sites, drives, items (same ids, eTags and bodies),
lists and directory. The state's signing secret is kept too, so download URLs, skiptokens and
delta links handed out before the restart stay valid, as they do across a real service's
restarts. Upload sessions are not kept: after a restart their URLs answer 404 and a client starts
a new session (docs/microsoft-rules.md §B9).

Only plain data goes into the snapshot; the bodies stay where they are, in the state's
``blobs`` directory, and are referred to by file name.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from airflow_provider_graphcert.testing.emulator.graph.directory import Directory
from airflow_provider_graphcert.testing.emulator.graph.drives import Drive, Item, Tombstone
from airflow_provider_graphcert.testing.emulator.graph.sites import ListItem, SharePointList, Site
from airflow_provider_graphcert.testing.emulator.graph.state import GraphState

SNAPSHOT_VERSION = 1
SNAPSHOT_NAME = "graph-state.json"

ChangeMarker = tuple[int, ...]


def change_marker(state: GraphState) -> ChangeMarker:
    """A value that changes whenever the content does (to save only when something changed)."""
    with state.lock:
        return (
            len(state.sites),
            len(state.drives),
            sum(drive._seq for drive in state.drives.values()),
            sum(len(sp_list.items) for site in state.sites.values() for sp_list in site.lists.values()),
            state.users.count,
            state.groups.count,
        )


def save_snapshot(state: GraphState, path: Path) -> None:
    """Write the snapshot atomically: a reader (or a restart) never sees half of one."""
    data = json.dumps(snapshot(state), ensure_ascii=False, separators=(",", ":"))
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(data, encoding="utf-8")
    os.replace(partial, path)


def load_snapshot(state: GraphState, path: Path) -> bool:
    """Restore ``state`` from ``path`` if it exists; returns whether it did."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return False
    restore(state, json.loads(text))
    return True


# -- to plain data -------------------------------------------------------------------------------


def snapshot(state: GraphState) -> dict[str, Any]:
    with state.lock:
        return {
            "version": SNAPSHOT_VERSION,
            "secret": base64.b64encode(state._secret).decode("ascii"),
            "hostname": state.hostname,
            "sites": [_site_record(site) for site in state.sites.values()],
            "users": _directory_record(state.users),
            "groups": _directory_record(state.groups),
        }


def _time(moment: dt.datetime) -> str:
    return moment.isoformat()


def _site_record(site: Site) -> dict[str, Any]:
    return {
        "id": site.id,
        "hostname": site.hostname,
        "path": site.path,
        "display_name": site.display_name,
        "description": site.description,
        "created": _time(site.created),
        "drives": [_drive_record(drive) for drive in site.drives.values()],
        "lists": [_list_record(sp_list) for sp_list in site.lists.values()],
    }


def _drive_record(drive: Drive) -> dict[str, Any]:
    return {
        "id": drive.id,
        "name": drive.name,
        "url_name": drive.url_name,
        "description": drive.description,
        "created": _time(drive.created),
        "quota_total": drive.quota_total,
        "rewrite_office_documents": drive.rewrite_office_documents,
        "used": drive.used,
        "delta_epoch": drive.delta_epoch,
        "seq": drive._seq,
        "log": [
            [seq, item_id, _time(when)]
            for seq, item_id, when in zip(drive._log_seqs, drive._log_ids, drive._log_times, strict=True)
        ],
        "creation_order": list(drive._creation_order),
        "root": drive.root.id,
        "items": [_item_record(item) for item in drive.items.values()],
        "tombstones": [
            [entry.id, entry.parent_id, entry.is_folder, _time(entry.deleted), entry.seq]
            for entry in drive.tombstones.values()
        ],
    }


def _item_record(item: Item) -> dict[str, Any]:
    return {
        "id": item.id,
        "name": item.name,
        "parent_id": item.parent_id,
        "is_folder": item.is_folder,
        "created": _time(item.created),
        "modified": _time(item.modified),
        "created_by": item.created_by,
        "modified_by": item.modified_by,
        "size": item.size,
        "mime_type": item.mime_type,
        "quick_xor_hash": item.quick_xor_hash,
        "blob": item.blob.name if item.blob is not None else None,
        "children": dict(item.children),
        "version": item.version,
        "content_version": item.content_version,
        "etag_guid": item.etag_guid,
        "seq": item.seq,
    }


def _list_record(sp_list: SharePointList) -> dict[str, Any]:
    return {
        "id": sp_list.id,
        "name": sp_list.name,
        "display_name": sp_list.display_name,
        "description": sp_list.description,
        "columns": list(sp_list.columns),
        "indexed_columns": sorted(sp_list.indexed_columns),
        "created": _time(sp_list.created),
        "modified": _time(sp_list.modified),
        "next_id": sp_list._next_id,
        "items": [
            {
                "id": item.id,
                "fields": item.fields,
                "created": _time(item.created),
                "modified": _time(item.modified),
                "etag_guid": item.etag_guid,
                "version": item.version,
            }
            for item in sp_list.items.values()
        ],
    }


def _directory_record(directory: Directory) -> dict[str, Any]:
    return {"count": directory.count, "base": directory._base, "created": _time(directory._created)}


# -- back into objects ---------------------------------------------------------------------------


def restore(state: GraphState, data: Mapping[str, Any]) -> None:
    """Replace everything ``state`` holds with the snapshot's content."""
    if data.get("version") != SNAPSHOT_VERSION:
        raise ValueError(f"unknown Graph snapshot version {data.get('version')!r}")
    with state.lock:
        state._secret = base64.b64decode(data["secret"])
        state.sites.clear()
        state.drives.clear()
        state.upload_sessions.clear()
        for record in data["sites"]:
            site = _restore_site(state, record)
            state.sites[site.id] = site
        root = state.find_site_by_path(state.hostname, "/")
        state.root_site = root if root is not None else state.add_site(state.hostname, "/", "Communication site")
        _restore_directory(state.users, data["users"])
        _restore_directory(state.groups, data["groups"])


def _moment(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


def _restore_site(state: GraphState, record: Mapping[str, Any]) -> Site:
    site = Site(state, record["hostname"], record["path"], record["display_name"])
    site.id = record["id"]
    site.description = record["description"]
    site.created = _moment(record["created"])
    for drive_record in record["drives"]:
        drive = _restore_drive(site, drive_record)
        site.drives[drive.id] = drive
        state.drives[drive.id] = drive
    for list_record in record["lists"]:
        sp_list = _restore_list(site, list_record)
        site.lists[sp_list.id] = sp_list
    return site


def _restore_drive(site: Site, record: Mapping[str, Any]) -> Drive:
    drive = Drive(site, record["name"], record["url_name"], record["description"])
    drive.id = record["id"]
    drive.created = _moment(record["created"])
    drive.quota_total = record["quota_total"]
    drive.rewrite_office_documents = record.get("rewrite_office_documents", True)
    drive.used = record["used"]
    drive.delta_epoch = record["delta_epoch"]
    drive._seq = record["seq"]
    drive._log_seqs = [int(seq) for seq, _, _ in record["log"]]
    drive._log_ids = [str(item_id) for _, item_id, _ in record["log"]]
    drive._log_times = [_moment(when) for _, _, when in record["log"]]
    drive._creation_order = list(record["creation_order"])
    drive.items = {item["id"]: _restore_item(drive, item) for item in record["items"]}
    drive.root = drive.items[record["root"]]
    drive.tombstones = {
        entry_id: Tombstone(entry_id, parent_id, bool(is_folder), _moment(deleted), int(seq))
        for entry_id, parent_id, is_folder, deleted, seq in record["tombstones"]
    }
    return drive


def _restore_item(drive: Drive, record: Mapping[str, Any]) -> Item:
    blob = record["blob"]
    return Item(
        id=record["id"],
        name=record["name"],
        drive=drive,
        parent_id=record["parent_id"],
        is_folder=record["is_folder"],
        created=_moment(record["created"]),
        modified=_moment(record["modified"]),
        created_by=record["created_by"],
        modified_by=record["modified_by"],
        size=record["size"],
        mime_type=record["mime_type"],
        quick_xor_hash=record["quick_xor_hash"],
        blob=drive.state.blob_dir / blob if blob is not None else None,
        children=dict(record["children"]),
        version=record["version"],
        content_version=record["content_version"],
        etag_guid=record["etag_guid"],
        seq=record["seq"],
    )


def _restore_list(site: Site, record: Mapping[str, Any]) -> SharePointList:
    sp_list = SharePointList(site, record["display_name"], record["columns"], record["description"])
    sp_list.id = record["id"]
    sp_list.name = record["name"]
    sp_list.created = _moment(record["created"])
    sp_list.modified = _moment(record["modified"])
    sp_list._next_id = record["next_id"]
    sp_list.indexed_columns = set(record.get("indexed_columns", []))
    sp_list.items = {
        int(item["id"]): ListItem(
            item["id"],
            dict(item["fields"]),
            _moment(item["created"]),
            _moment(item["modified"]),
            item["etag_guid"],
            item["version"],
        )
        for item in record["items"]
    }
    return sp_list


def _restore_directory(directory: Directory, record: Mapping[str, Any]) -> None:
    directory.count = record["count"]
    directory._base = record["base"]
    directory._created = _moment(record["created"])
