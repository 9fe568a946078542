"""Document libraries: the item tree, its bodies and its delta change log (docs/microsoft-rules.md §B4, §B6, §B10)."""

from __future__ import annotations

import bisect
import datetime as dt
import hmac
import itertools
import json
import mimetypes
import threading
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, TypeAlias

from airflow_provider_graphcert.testing.emulator.graph.blobs import StoredBody
from airflow_provider_graphcert.testing.emulator.graph.common import (
    CONFLICT_BEHAVIORS,
    DEFAULT_DRIVE_QUOTA_BYTES,
    SYSTEM_ACCOUNT,
    DeltaTokenExpired,
    FileData,
    GraphError,
    Identity,
    b64url,
    invalid_request,
    item_not_found,
    name_already_exists,
    new_drive_id,
    new_item_id,
    numbered_name,
    split_path,
    unb64url,
    validate_name,
)

if TYPE_CHECKING:
    from airflow_provider_graphcert.testing.emulator.graph.sites import Site


# -- drive items -------------------------------------------------------------------------------


@dataclass(eq=False)
class Item:
    """A driveItem: a folder (with children) or a file (with a body on disk)."""

    id: str
    name: str
    drive: Drive
    parent_id: str | None
    is_folder: bool
    created: dt.datetime
    modified: dt.datetime
    created_by: Identity
    modified_by: Identity
    size: int = 0
    mime_type: str | None = None
    quick_xor_hash: str | None = None
    blob: Path | None = None
    # casefolded name -> child id: SharePoint names are case-insensitive but case-preserving.
    children: dict[str, str] = field(default_factory=dict)
    version: int = 1
    content_version: int = 1
    etag_guid: str = field(default_factory=lambda: str(uuid.uuid4()).upper())
    seq: int = 0

    @property
    def is_root(self) -> bool:
        return self.parent_id is None

    @property
    def etag(self) -> str:
        return f'"{{{self.etag_guid}}},{self.version}"'

    @property
    def ctag(self) -> str:
        return f'"c:{{{self.etag_guid}}},{self.content_version}"'

    @property
    def child_count(self) -> int:
        return len(self.children)

    def matches_etag(self, header_value: str) -> bool:
        """If-None-Match / If-Match semantics over eTag or cTag (B7), with '*' and lists."""
        mine = {_bare_tag(self.etag), _bare_tag(self.ctag)}
        candidates = [part.strip() for part in header_value.split(",")]
        # eTags contain a comma themselves ("{GUID},3"), so also try the whole value.
        candidates.append(header_value.strip())
        return any(c == "*" or _bare_tag(c) in mine for c in candidates)


def _bare_tag(tag: str) -> str:
    tag = tag.strip()
    if tag.startswith("W/"):
        tag = tag[2:]
    return tag.strip('"')


@dataclass(frozen=True)
class Tombstone:
    """What the delta feed still knows about a deleted item (B4: deleted facet, no name/cTag)."""

    id: str
    parent_id: str | None
    is_folder: bool
    deleted: dt.datetime
    seq: int


DeltaEntry: TypeAlias = Item | Tombstone


@dataclass(frozen=True)
class DeltaCursor:
    """Where a delta enumeration is. ``since`` < reported seq <= ``upto``; ``after`` is the resume point."""

    epoch: int
    since: int
    upto: int
    after: int
    initial: bool


@dataclass(frozen=True)
class DeltaPage:
    entries: list[DeltaEntry]
    next_token: str | None
    delta_token: str | None


@dataclass(frozen=True)
class ChildrenPage:
    items: list[Item]
    next_after: str | None


class Drive:
    """A document library: an item tree, its bodies on disk and its delta change log."""

    def __init__(self, site: Site, name: str, url_name: str, description: str = "") -> None:
        self.site = site
        self.state = site.state
        self.id = new_drive_id()
        self.name = name
        self.url_name = url_name
        self.description = description
        self.created = self.state.now()
        self.quota_total = DEFAULT_DRIVE_QUOTA_BYTES
        # SharePoint adds its metadata to Office files uploaded to a document library (graph/office.py).
        self.rewrite_office_documents = True
        self.used = 0
        self.items: dict[str, Item] = {}
        self.tombstones: dict[str, Tombstone] = {}
        self.delta_epoch = 0
        self._seq = 0
        self._log_seqs: list[int] = []
        self._log_ids: list[str] = []
        self._log_times: list[dt.datetime] = []
        self._creation_order: list[str] = []
        self.root = self._new_item("root", None, is_folder=True, actor=SYSTEM_ACCOUNT)

    @property
    def lock(self) -> threading.RLock:
        return self.state.lock

    @property
    def web_url(self) -> str:
        return self.site.web_url_for(self.url_name)

    # -- change log ----------------------------------------------------------------------------

    def record_change(self, entry_id: str) -> int:
        self._seq += 1
        self._log_seqs.append(self._seq)
        self._log_ids.append(entry_id)
        when = self.state.now()
        # Keep times monotonic for the timestamp-token bisect even if the clock steps back.
        if self._log_times and when < self._log_times[-1]:
            when = self._log_times[-1]
        self._log_times.append(when)
        return self._seq

    def touch(self, item: Item) -> None:
        item.seq = self.record_change(item.id)

    # -- lookups -------------------------------------------------------------------------------

    def item(self, item_id: str) -> Item:
        with self.lock:
            found = self.items.get(item_id)
            if found is None:
                raise item_not_found(f"Item not found: {item_id}")
            return found

    def child(self, folder: Item, name: str) -> Item | None:
        with self.lock:
            child_id = folder.children.get(name.casefold())
            return self.items[child_id] if child_id is not None else None

    def resolve(self, path: str, *, base: Item | None = None) -> Item:
        """The item at a drive path relative to ``base`` (the root by default), or 404."""
        with self.lock:
            current = base or self.root
            for segment in split_path(path):
                found = self.child(current, segment) if current.is_folder else None
                if found is None:
                    raise item_not_found(f"The resource could not be found: {path}")
                current = found
            return current

    def path_of(self, item: Item) -> str:
        """'/a/b/c.txt' for an item, '' for the root."""
        names: list[str] = []
        with self.lock:
            current = item
            while current.parent_id is not None:
                names.append(current.name)
                current = self.items[current.parent_id]
        return "".join(f"/{name}" for name in reversed(names))

    def descendants(self, folder: Item) -> list[Item]:
        """Every item below ``folder``, parents before children."""
        found: list[Item] = []
        with self.lock:
            pending = [folder]
            while pending:
                current = pending.pop()
                children = [self.items[child_id] for child_id in current.children.values()]
                found.extend(children)
                pending.extend(child for child in children if child.is_folder)
        return found

    def ancestors(self, item_id: str | None) -> list[Item]:
        """Live ancestors of an item (or of a tombstone's parent), root first."""
        chain: list[Item] = []
        with self.lock:
            current = self.items.get(item_id) if item_id else None
            while current is not None:
                chain.append(current)
                current = self.items.get(current.parent_id) if current.parent_id else None
        return list(reversed(chain))

    def children_page(self, folder: Item, *, after: str | None, top: int) -> ChildrenPage:
        """Children ordered by name; ``after`` is the casefolded name the previous page ended on.

        Keyed by name rather than offset so that inserts and deletes between pages neither skip
        nor repeat the children that stay.
        """
        with self.lock:
            if not folder.is_folder:
                return ChildrenPage([], None)
            keys = sorted(folder.children)
            start = bisect.bisect_right(keys, after) if after is not None else 0
            chosen = keys[start : start + top]
            items = [self.items[folder.children[key]] for key in chosen]
            more = start + top < len(keys)
            return ChildrenPage(items, chosen[-1] if more and chosen else None)

    # -- seeding -------------------------------------------------------------------------------

    def mkdir(self, path: str, *, actor: Identity = SYSTEM_ACCOUNT) -> Item:
        """Create a folder and any missing parents (like ``mkdir -p``); returns the deepest one."""
        with self.lock:
            parent = self.root
            for segment in split_path(path):
                existing = self.child(parent, segment)
                if existing is None:
                    existing = self._create_folder_unlocked(parent, segment, actor)
                elif not existing.is_folder:
                    raise name_already_exists(segment)
                parent = existing
            return parent

    def put_file(
        self,
        path: str,
        data: FileData,
        *,
        mime_type: str | None = None,
        actor: Identity = SYSTEM_ACCOUNT,
    ) -> Item:
        """Seed a file at ``path`` ("a/b/c.txt"), creating folders; replaces an existing file.

        ``data`` is bytes, the path of a local file (str or PathLike, copied in chunks) or a binary
        stream. Text must be encoded first: a str is always a path.
        """
        segments = split_path(path)
        if not segments:
            raise invalid_request("put_file needs a file name")
        body = self.state.store_body(data)
        try:
            with self.lock:
                parent = self.mkdir("/".join(segments[:-1]), actor=actor)
                item, _ = self.commit_file(
                    parent, segments[-1], body, conflict="replace", actor=actor, mime_type=mime_type
                )
                return item
        except BaseException:
            body.path.unlink(missing_ok=True)
            raise

    def delete(self, path: str) -> None:
        """Delete the file or folder (recursively) at ``path``."""
        with self.lock:
            self.delete_item(self.resolve(path))

    def put_unchecked(self, folder: str | Item, name: str, data: FileData | None = None) -> Item:
        """TEST ONLY: add a file (or, with ``data=None``, a folder) whose name Graph would refuse.

        Models a hostile or buggy service for client robustness tests: ``..``, separators,
        control characters, reserved or over-long names, and names differing from a sibling only
        in case. Name validation is skipped here and nowhere else; no route calls this.
        """
        body = self.state.store_body(data) if data is not None else None
        try:
            with self.lock:
                parent = folder if isinstance(folder, Item) else self.resolve(folder)
                if not parent.is_folder:
                    raise invalid_request(f"{folder!r} is a file, so it cannot contain items.")
                key = name.casefold()
                # A case-insensitive sibling keeps its slot; the duplicate gets a unique key after it.
                suffix = 0
                while key in parent.children:
                    suffix += 1
                    key = f"{name.casefold()}\x00{suffix}"
                return self._new_item(name, parent, is_folder=body is None, actor=SYSTEM_ACCOUNT, body=body, key=key)
        except BaseException:
            if body is not None:
                body.path.unlink(missing_ok=True)
            raise

    # -- operations (used by routes and seeders) -----------------------------------------------

    def _new_item(
        self,
        name: str,
        parent: Item | None,
        *,
        is_folder: bool,
        actor: Identity,
        body: StoredBody | None = None,
        mime_type: str | None = None,
        key: str | None = None,
    ) -> Item:
        now = self.state.now()
        item = Item(
            id=new_item_id(),
            name=name,
            drive=self,
            parent_id=parent.id if parent else None,
            is_folder=is_folder,
            created=now,
            modified=now,
            created_by=actor,
            modified_by=actor,
        )
        if body is not None:
            self._attach_body(item, body, mime_type)
        self.items[item.id] = item
        self._creation_order.append(item.id)
        if parent is not None:
            parent.children[key if key is not None else name.casefold()] = item.id
        self.touch(item)
        return item

    def adjust_folder_sizes(self, folder_id: str | None, delta: int) -> None:
        """A folder's size is the total of the files below it, kept current on every change."""
        while folder_id is not None and delta:
            folder = self.items[folder_id]
            folder.size += delta
            folder_id = folder.parent_id

    def _attach_body(self, item: Item, body: StoredBody, mime_type: str | None) -> None:
        old_blob = item.blob
        self.used += body.size - item.size
        self.adjust_folder_sizes(item.parent_id, body.size - item.size)
        item.blob = body.path
        item.size = body.size
        item.quick_xor_hash = body.quick_xor_hash
        item.mime_type = mime_type or mimetypes.guess_type(item.name)[0] or "application/octet-stream"
        if old_blob is not None and old_blob != body.path:
            old_blob.unlink(missing_ok=True)

    def _create_folder_unlocked(self, parent: Item, name: str, actor: Identity) -> Item:
        validate_name(name, is_folder=True)
        return self._new_item(name, parent, is_folder=True, actor=actor)

    def resolve_conflict(self, parent: Item, name: str, conflict: str) -> tuple[str, Item | None]:
        """The name to create under and the item to replace, per @microsoft.graph.conflictBehavior."""
        if conflict not in CONFLICT_BEHAVIORS:
            raise invalid_request(f"Unknown @microsoft.graph.conflictBehavior {conflict!r}.")
        existing = self.child(parent, name)
        if existing is None:
            return name, None
        if conflict == "fail":
            raise name_already_exists(name)
        if conflict == "replace":
            return name, existing
        for number in itertools.count(1):
            candidate = numbered_name(name, number)
            if self.child(parent, candidate) is None:
                return candidate, None
        raise AssertionError("unreachable")

    def create_folder(
        self, parent: Item, name: str, *, conflict: str = "fail", actor: Identity = SYSTEM_ACCOUNT
    ) -> Item:
        """POST …/children with a folder facet. ``replace`` swaps the old item for a new empty folder."""
        with self.lock:
            if not parent.is_folder:
                raise invalid_request("Only folders can have children.")
            validate_name(name, is_folder=True)
            final_name, existing = self.resolve_conflict(parent, name, conflict)
            if existing is not None:
                self.delete_item(existing)
            return self._new_item(final_name, parent, is_folder=True, actor=actor)

    def ensure_parent(self, base: Item, folders: Sequence[str], actor: Identity) -> Item:
        """Walk (creating when missing) the folders below ``base``: uploads by path create parents."""
        with self.lock:
            parent = base
            for segment in folders:
                existing = self.child(parent, segment)
                if existing is None:
                    existing = self._create_folder_unlocked(parent, segment, actor)
                elif not existing.is_folder:
                    raise invalid_request(f"{segment!r} is a file, so it cannot contain items.")
                parent = existing
            return parent

    def commit_file(
        self,
        parent: Item,
        name: str,
        body: StoredBody,
        *,
        conflict: str = "replace",
        actor: Identity = SYSTEM_ACCOUNT,
        mime_type: str | None = None,
    ) -> tuple[Item, bool]:
        """Attach a finished body as ``name`` under ``parent``. Returns (item, created)."""
        with self.lock:
            if parent.id not in self.items or not parent.is_folder:
                raise item_not_found("The parent folder no longer exists.")
            validate_name(name, is_folder=False)
            final_name, existing = self.resolve_conflict(parent, name, conflict)
            if existing is not None and not existing.is_folder:
                return self.replace_content(existing, body, actor=actor, mime_type=mime_type), False
            if existing is not None:
                self.delete_item(existing)
            item = self._new_item(final_name, parent, is_folder=False, actor=actor, body=body, mime_type=mime_type)
            return item, True

    def replace_content(
        self, item: Item, body: StoredBody, *, actor: Identity = SYSTEM_ACCOUNT, mime_type: str | None = None
    ) -> Item:
        """PUT …/items/{id}/content: same id, new version (eTag and cTag change)."""
        with self.lock:
            if item.id not in self.items:
                raise item_not_found()
            if item.is_folder:
                raise invalid_request("A folder has no content to replace.")
            self._attach_body(item, body, mime_type or item.mime_type)
            item.version += 1
            item.content_version += 1
            item.modified = self.state.now()
            item.modified_by = actor
            self.touch(item)
            return item

    def delete_item(self, item: Item) -> None:
        """Delete an item and everything below it, leaving tombstones for the delta feed."""
        with self.lock:
            if item.is_root:
                raise GraphError(403, "accessDenied", "The root of a drive cannot be deleted.")
            if item.id not in self.items:
                raise item_not_found()
            for child_id in list(item.children.values()):
                self.delete_item(self.items[child_id])
            parent = self.items[item.parent_id] if item.parent_id else None
            if parent is not None:
                key = item.name.casefold()
                if parent.children.get(key) != item.id:  # a put_unchecked duplicate has its own key
                    key = next((k for k, child_id in parent.children.items() if child_id == item.id), key)
                parent.children.pop(key, None)
            del self.items[item.id]
            if item.blob is not None:
                item.blob.unlink(missing_ok=True)
                self.used -= item.size
                self.adjust_folder_sizes(item.parent_id, -item.size)
            seq = self.record_change(item.id)
            self.tombstones[item.id] = Tombstone(item.id, item.parent_id, item.is_folder, self.state.now(), seq)

    # -- delta (B4) ----------------------------------------------------------------------------

    def expire_delta_tokens(self) -> None:
        """Make every delta/next token issued so far answer 410 Gone."""
        with self.lock:
            self.delta_epoch += 1

    def delta_first(self) -> DeltaCursor:
        """A fresh enumeration: every live item as of now, parents before children."""
        with self.lock:
            return DeltaCursor(self.delta_epoch, since=0, upto=self._seq, after=-1, initial=True)

    def delta_latest_token(self) -> str:
        """?token=latest: a delta token that reports only changes made from now on."""
        with self.lock:
            return self.encode_delta_token(DeltaCursor(self.delta_epoch, self._seq, self._seq, self._seq, False))

    def delta_from_time(self, when: dt.datetime) -> DeltaCursor:
        """?token=<timestamp>: changes after ``when`` (SharePoint and OneDrive for Business only)."""
        with self.lock:
            index = bisect.bisect_right(self._log_times, when)
            since = self._log_seqs[index - 1] if index > 0 else 0
            return DeltaCursor(self.delta_epoch, since, self._seq, since, initial=False)

    def encode_delta_token(self, cursor: DeltaCursor) -> str:
        fields = [self.id, cursor.epoch, cursor.since, cursor.upto, cursor.after, int(cursor.initial)]
        payload = b64url(json.dumps(fields, separators=(",", ":")).encode())
        return f"{payload}.{self.state.sign('delta', payload)}"

    def decode_delta_token(self, token: str) -> DeltaCursor:
        """The cursor behind a token from this drive; anything else (or an old epoch) is 410."""
        payload, _, mac = token.partition(".")
        if not hmac.compare_digest(mac, self.state.sign("delta", payload)):
            raise DeltaTokenExpired(self)
        try:
            drive_id, epoch, since, upto, after, initial = json.loads(unb64url(payload))
        except (ValueError, TypeError):
            raise DeltaTokenExpired(self) from None
        with self.lock:
            if drive_id != self.id or epoch != self.delta_epoch:
                raise DeltaTokenExpired(self)
            if not initial and upto == since:
                # A deltaLink: the new round reports everything up to now.
                upto = self._seq
            return DeltaCursor(epoch, since, upto, after, bool(initial))

    def delta_page(self, cursor: DeltaCursor, *, top: int, include_parents: bool = True) -> DeltaPage:
        with self.lock:
            if cursor.initial:
                entries, after, done = self._initial_entries(cursor, top)
            else:
                entries, after, done = self._change_entries(cursor, top, include_parents)
            if done:
                final = DeltaCursor(cursor.epoch, cursor.upto, cursor.upto, cursor.upto, initial=False)
                return DeltaPage(entries, None, self.encode_delta_token(final))
            following = DeltaCursor(cursor.epoch, cursor.since, cursor.upto, after, cursor.initial)
            return DeltaPage(entries, self.encode_delta_token(following), None)

    def _initial_entries(self, cursor: DeltaCursor, top: int) -> tuple[list[DeltaEntry], int, bool]:
        entries: list[DeltaEntry] = []
        index = cursor.after + 1
        while index < len(self._creation_order) and len(entries) < top:
            item = self.items.get(self._creation_order[index])
            # Items changed after the snapshot are left to the next round, which reports them anyway.
            if item is not None and item.seq <= cursor.upto:
                entries.append(item)
            index += 1
        return entries, index - 1, index >= len(self._creation_order)

    def _change_entries(
        self, cursor: DeltaCursor, top: int, include_parents: bool
    ) -> tuple[list[DeltaEntry], int, bool]:
        entries: list[DeltaEntry] = []
        seen: set[str] = set()
        position = bisect.bisect_right(self._log_seqs, max(cursor.since, cursor.after))
        last = max(cursor.since, cursor.after)
        while position < len(self._log_seqs) and len(entries) < top:
            seq, entry_id = self._log_seqs[position], self._log_ids[position]
            if seq > cursor.upto:
                break
            position += 1
            last = seq
            current: DeltaEntry | None = self.items.get(entry_id) or self.tombstones.get(entry_id)
            # Only an item's latest change is reported (B4: the feed shows the latest state).
            if current is None or current.seq != seq:
                continue
            if include_parents:
                parent_id = current.parent_id
                for ancestor in self.ancestors(parent_id):
                    if ancestor.id not in seen:
                        seen.add(ancestor.id)
                        entries.append(ancestor)
            seen.add(current.id)
            entries.append(current)
        done = position >= len(self._log_seqs) or self._log_seqs[position] > cursor.upto
        return entries, last, done
