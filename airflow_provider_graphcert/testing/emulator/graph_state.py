"""The emulated Graph/SharePoint data: sites, drives, items, lists, directory, delta, upload sessions.

Plain Python objects and no HTTP (the moto split, STYLE.md): ``graph_routes`` parses requests and
renders JSON; everything that decides an outcome lives here, raising ``GraphError`` with the
status and code Graph would answer with. File bodies live on disk in a directory the state owns,
never in memory, so tests can move files of any size.

One re-entrant lock guards the whole model; disk writes of bodies happen outside it and are only
attached to items (a pointer swap) under it.
"""

from __future__ import annotations

import base64
import bisect
import datetime as dt
import hashlib
import hmac
import itertools
import json
import mimetypes
import os
import secrets
import shutil
import tempfile
import threading
import uuid
import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO, Any, BinaryIO, Literal, TypeAlias
from urllib.parse import quote

from airflow_provider_graphcert.quickxorhash import QuickXorHash

# -- Microsoft's limits and defaults (reference part B) ------------------------------------------

# B8: the current put-content page allows simple uploads "up to 250 MB" (older pages said 4 MB).
SIMPLE_UPLOAD_MAX_BYTES = 250 * 1024 * 1024
# B9: upload-session fragments must each be smaller than 60 MiB ...
MAX_FRAGMENT_BYTES = 60 * 1024 * 1024
# B9: ... and, when a file is split, a multiple of 320 KiB except the last one.
FRAGMENT_MULTIPLE_BYTES = 320 * 1024
# B9: the default session length is UNCONFIRMED; each accepted fragment extends it (also UNCONFIRMED).
UPLOAD_SESSION_LIFETIME = dt.timedelta(minutes=15)
# B7: documents disagree ("a few minutes" vs "1 hour"); the longer one avoids flaky slow tests.
DOWNLOAD_URL_LIFETIME = dt.timedelta(hours=1)
# B5: at most 20 requests in one JSON batch.
MAX_BATCH_REQUESTS = 20
# B3: page sizes. Directory lists default to 100 and cap at 999; other sizes are not documented,
# 200 is what SharePoint answers with in practice.
DIRECTORY_DEFAULT_PAGE_SIZE = 100
DIRECTORY_MAX_PAGE_SIZE = 999
DRIVE_DEFAULT_PAGE_SIZE = 200
DRIVE_MAX_PAGE_SIZE = 1000
DELTA_DEFAULT_PAGE_SIZE = 200
LIST_ITEMS_DEFAULT_PAGE_SIZE = 200
# A SharePoint Online tenant's default site storage; only reported in drive.quota and checked
# against a declared upload fileSize (B9: 507).
DEFAULT_DRIVE_QUOTA_BYTES = 25 * 1024**4

DEFAULT_HOSTNAME = "contoso.sharepoint.com"
DEFAULT_TENANT_DOMAIN = "contoso.onmicrosoft.com"
# B6: characters SharePoint refuses in names. '#' and '%' are allowed: SharePoint Online has
# accepted them since 2017 (the reference's note about Business is from older pages).
INVALID_NAME_CHARACTERS = frozenset('"*:<>?/\\|')
RESERVED_NAMES = frozenset(
    {".lock", "con", "prn", "aux", "nul", "desktop.ini"}
    | {f"com{i}" for i in range(10)}
    | {f"lpt{i}" for i in range(10)}
)

CONFLICT_BEHAVIORS: frozenset[str] = frozenset({"fail", "replace", "rename"})
Identity: TypeAlias = dict[str, Any]
# Seed data: the bytes themselves, the path of a local file (str or PathLike), or a binary stream.
FileData: TypeAlias = bytes | bytearray | memoryview | str | os.PathLike[str] | BinaryIO

SYSTEM_ACCOUNT: Identity = {"user": {"displayName": "System Account"}}
_COPY_CHUNK_BYTES = 1024 * 1024


# -- errors ----------------------------------------------------------------------------------------


class GraphError(Exception):
    """An outcome Graph reports as an error: HTTP status, top-level code and optional inner code."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        inner_code: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.inner_code = inner_code
        self.headers = dict(headers or {})


class DeltaTokenExpired(GraphError):
    """B4: an expired or unknown delta token; the route adds a Location to a fresh enumeration."""

    def __init__(self, drive: Drive) -> None:
        super().__init__(
            410,
            "resyncChangesApplyDifferences",
            "Resync required. Replace any local items with the server's version (including deletes) if you're sure "
            "that the service was up to date with your local changes when you last sync'd. Upload any local changes "
            "that the server doesn't know about.",
        )
        self.drive = drive


def item_not_found(message: str = "The resource could not be found.") -> GraphError:
    return GraphError(404, "itemNotFound", message)


def invalid_request(message: str, inner_code: str | None = None) -> GraphError:
    return GraphError(400, "invalidRequest", message, inner_code=inner_code)


def name_already_exists(name: str) -> GraphError:
    return GraphError(409, "nameAlreadyExists", f"The specified item name already exists: {name!r}.")


def upload_session_not_found() -> GraphError:
    return GraphError(
        404, "itemNotFound", "The upload session was not found or has expired.", inner_code="uploadSessionNotFound"
    )


# -- small helpers -----------------------------------------------------------------------------


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def new_item_id() -> str:
    # SharePoint driveItem ids look like "01" followed by 32 base32 characters.
    return "01" + base64.b32encode(secrets.token_bytes(20)).decode("ascii")[:32]


def new_drive_id() -> str:
    return "b!" + base64.urlsafe_b64encode(secrets.token_bytes(48)).decode("ascii")


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def _unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def split_path(path: str) -> list[str]:
    """Path segments of a drive-relative path; empty segments (leading/double slashes) are ignored."""
    return [segment for segment in path.replace("\\", "/").split("/") if segment]


def validate_name(name: str, *, is_folder: bool) -> None:
    if not name or name in {".", ".."}:
        raise invalid_request("The name is empty or a relative reference.")
    if name != name.strip():
        raise invalid_request(f"The name {name!r} starts or ends with whitespace.")
    if INVALID_NAME_CHARACTERS.intersection(name):
        raise invalid_request(f"The name {name!r} contains a character that is not allowed.")
    if name.startswith("~") or name.casefold() in RESERVED_NAMES or "_vti_" in name.casefold():
        raise invalid_request(f"The name {name!r} is reserved.")
    if is_folder and name.endswith("."):
        raise invalid_request(f"The folder name {name!r} ends with a period.")


def numbered_name(name: str, number: int) -> str:
    """'report.pdf', 2 -> 'report 2.pdf': how rename conflict behaviour names the new item."""
    stem, dot, extension = name.rpartition(".")
    if not dot or not stem:
        return f"{name} {number}"
    return f"{stem} {number}.{extension}"


# -- file bodies on disk -----------------------------------------------------------------------


class BlobWriter:
    """A new file body written straight to the state's disk and hashed as it arrives."""

    def __init__(self, path: Path, *, max_size: int | None = None) -> None:
        self.path = path
        self.max_size = max_size
        self.size = 0
        self._hasher = QuickXorHash()
        self._file: IO[bytes] | None = open(path, "wb")  # noqa: SIM115 - closed by close()/discard()

    def write(self, chunk: bytes | bytearray | memoryview) -> None:
        if self._file is None:
            raise ValueError("the blob is already closed")
        if self.max_size is not None and self.size + len(chunk) > self.max_size:
            raise GraphError(
                413,
                "requestTooLarge",
                f"A simple upload is limited to {self.max_size} bytes; use an upload session.",
            )
        self._file.write(chunk)
        self._hasher.update(chunk)
        self.size += len(chunk)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def discard(self) -> None:
        self.close()
        self.path.unlink(missing_ok=True)

    @property
    def quick_xor_hash(self) -> str:
        return self._hasher.b64digest()

    def __enter__(self) -> BlobWriter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        if exc_type is not None:
            self.discard()
        else:
            self.close()


@dataclass(frozen=True)
class StoredBody:
    """A finished body on disk, ready to be attached to an item."""

    path: Path
    size: int
    quick_xor_hash: str

    @classmethod
    def from_writer(cls, writer: BlobWriter) -> StoredBody:
        writer.close()
        return cls(writer.path, writer.size, writer.quick_xor_hash)


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

    def _record(self, entry_id: str) -> int:
        self._seq += 1
        self._log_seqs.append(self._seq)
        self._log_ids.append(entry_id)
        when = self.state.now()
        # Keep times monotonic for the timestamp-token bisect even if the clock steps back.
        if self._log_times and when < self._log_times[-1]:
            when = self._log_times[-1]
        self._log_times.append(when)
        return self._seq

    def _touch(self, item: Item) -> None:
        item.seq = self._record(item.id)

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
        self._touch(item)
        return item

    def _adjust_folder_sizes(self, folder_id: str | None, delta: int) -> None:
        """A folder's size is the total of the files below it, kept current on every change."""
        while folder_id is not None and delta:
            folder = self.items[folder_id]
            folder.size += delta
            folder_id = folder.parent_id

    def _attach_body(self, item: Item, body: StoredBody, mime_type: str | None) -> None:
        old_blob = item.blob
        self.used += body.size - item.size
        self._adjust_folder_sizes(item.parent_id, body.size - item.size)
        item.blob = body.path
        item.size = body.size
        item.quick_xor_hash = body.quick_xor_hash
        item.mime_type = mime_type or mimetypes.guess_type(item.name)[0] or "application/octet-stream"
        if old_blob is not None and old_blob != body.path:
            old_blob.unlink(missing_ok=True)

    def _create_folder_unlocked(self, parent: Item, name: str, actor: Identity) -> Item:
        validate_name(name, is_folder=True)
        return self._new_item(name, parent, is_folder=True, actor=actor)

    def _resolve_conflict(self, parent: Item, name: str, conflict: str) -> tuple[str, Item | None]:
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
            final_name, existing = self._resolve_conflict(parent, name, conflict)
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
            final_name, existing = self._resolve_conflict(parent, name, conflict)
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
            self._touch(item)
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
                self._adjust_folder_sizes(item.parent_id, -item.size)
            seq = self._record(item.id)
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
        payload = _b64url(json.dumps(fields, separators=(",", ":")).encode())
        return f"{payload}.{self.state.sign('delta', payload)}"

    def decode_delta_token(self, token: str) -> DeltaCursor:
        """The cursor behind a token from this drive; anything else (or an old epoch) is 410."""
        payload, _, mac = token.partition(".")
        if not hmac.compare_digest(mac, self.state.sign("delta", payload)):
            raise DeltaTokenExpired(self)
        try:
            drive_id, epoch, since, upto, after, initial = json.loads(_unb64url(payload))
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


# -- sites and lists ---------------------------------------------------------------------------


@dataclass(eq=False)
class ListItem:
    id: str
    fields: dict[str, Any]
    created: dt.datetime
    modified: dt.datetime
    etag_guid: str = field(default_factory=lambda: str(uuid.uuid4()))
    version: int = 1

    @property
    def etag(self) -> str:
        return f'"{self.etag_guid},{self.version}"'


class SharePointList:
    """A generic list: columns and items whose ``fields`` hold the column values."""

    def __init__(self, site: Site, name: str, columns: Sequence[str], description: str = "") -> None:
        self.site = site
        self.id = str(uuid.uuid4())
        self.name = name.replace(" ", "")
        self.display_name = name
        self.description = description
        self.columns = list(columns)
        self.created = site.state.now()
        self.modified = self.created
        self.items: dict[int, ListItem] = {}
        self._next_id = 1

    @property
    def web_url(self) -> str:
        return self.site.web_url_for(f"Lists/{self.name}")

    def add_item(self, fields: Mapping[str, Any]) -> ListItem:
        with self.site.state.lock:
            now = self.site.state.now()
            item = ListItem(str(self._next_id), dict(fields), now, now)
            self.items[self._next_id] = item
            self._next_id += 1
            self.modified = now
            return item

    def item(self, item_id: str) -> ListItem:
        try:
            return self.items[int(item_id)]
        except (KeyError, ValueError):
            raise item_not_found(f"List item {item_id} not found.") from None

    def items_page(self, *, after: int, top: int) -> tuple[list[ListItem], int | None]:
        """Items with id > ``after`` in id order, and the last id when more follow."""
        with self.site.state.lock:
            ids = sorted(i for i in self.items if i > after)
            chosen = ids[:top]
            return [self.items[i] for i in chosen], (chosen[-1] if len(ids) > top else None)


class Site:
    """A SharePoint site: ``id`` is "{hostname},{siteCollectionGuid},{webGuid}" (B6)."""

    def __init__(self, state: GraphState, hostname: str, path: str, display_name: str) -> None:
        self.state = state
        self.hostname = hostname.lower()
        self.path = "/" + "/".join(split_path(path))
        self.id = f"{self.hostname},{uuid.uuid4()},{uuid.uuid4()}"
        self.display_name = display_name
        self.description = ""
        self.created = state.now()
        self.drives: dict[str, Drive] = {}
        self.lists: dict[str, SharePointList] = {}

    @property
    def name(self) -> str:
        segments = split_path(self.path)
        return segments[-1] if segments else self.display_name

    @property
    def is_root(self) -> bool:
        return self.path == "/"

    @property
    def web_url(self) -> str:
        return f"https://{self.hostname}{'' if self.is_root else self.path}"

    def web_url_for(self, relative: str) -> str:
        return f"{self.web_url}/{quote(relative)}"

    def add_library(self, name: str, *, description: str = "") -> Drive:
        """A document library. 'Documents' lives at 'Shared Documents', as on every real site."""
        with self.state.lock:
            if any(d.name.casefold() == name.casefold() for d in self.drives.values()):
                raise name_already_exists(name)
            url_name = "Shared Documents" if name == "Documents" else name
            drive = Drive(self, name, url_name, description)
            self.drives[drive.id] = drive
            self.state.drives[drive.id] = drive
            return drive

    @property
    def default_drive(self) -> Drive:
        """/sites/{id}/drive: the 'Documents' library, else the first one added."""
        with self.state.lock:
            drives = list(self.drives.values())
        for drive in drives:
            if drive.name == "Documents":
                return drive
        if not drives:
            raise item_not_found(f"The site {self.web_url} has no document library.")
        return drives[0]

    def add_list(
        self, name: str, columns: Sequence[str] = (), items: Iterable[Mapping[str, Any]] = ()
    ) -> SharePointList:
        with self.state.lock:
            sp_list = SharePointList(self, name, columns)
            self.lists[sp_list.id] = sp_list
            for fields in items:
                sp_list.add_item(fields)
            return sp_list

    def find_list(self, key: str) -> SharePointList:
        """A list by id, display name or URL name (Graph accepts the title in place of the id)."""
        with self.state.lock:
            if key.lower() in self.lists:
                return self.lists[key.lower()]
            for sp_list in self.lists.values():
                if key.casefold() in {sp_list.display_name.casefold(), sp_list.name.casefold()}:
                    return sp_list
        raise item_not_found(f"List '{key}' does not exist at site with URL '{self.web_url}'.")


# -- directory ---------------------------------------------------------------------------------

_FIRST_NAMES = (
    "Adele", "Alex", "Diego", "Grady", "Henrietta", "Isaiah", "Johanna", "Joni", "Lee", "Lidia",
    "Lynne", "Megan", "Miriam", "Nestor", "Patti", "Pradeep", "Sakura", "Zoë", "Émile", "Ngozi",
)  # fmt: skip
_LAST_NAMES = (
    "Vance", "Wilber", "Siciliani", "Archie", "Cantrell", "Langer", "Lauer", "Sherman", "Gu", "Holloway",
    "Robbins", "Bowen", "Graham", "Wilke", "Fernandez", "Gupta", "Tanaka", "Müller", "O'Brien", "Okafor",
)  # fmt: skip
_DEPARTMENTS = ("Finance", "Engineering", "Sales", "Marketing", "Operations", "Legal", "HR", "Research")
_CITIES = ("Seattle", "Dublin", "Berlin", "Tokyo", "Lagos", "São Paulo", "Bengaluru", "Paris")


class Directory:
    """Users or groups generated from their index on demand: ``add(1_000_000)`` costs nothing.

    Ids are GUIDs whose low 48 bits are the index, so a lookup by id needs no table either.
    """

    def __init__(self, kind: Literal["user", "group"], domain: str, created: dt.datetime) -> None:
        self.kind = kind
        self.domain = domain
        self.count = 0
        self._base = uuid.uuid4().int & ~((1 << 48) - 1)
        self._created = created

    def add(self, n: int) -> range:
        """Add ``n`` entries; returns their indexes."""
        start = self.count
        self.count += n
        return range(start, self.count)

    def id_of(self, index: int) -> str:
        return str(uuid.UUID(int=self._base | index))

    def index_of(self, object_id: str) -> int | None:
        try:
            value = uuid.UUID(object_id).int
        except ValueError:
            return None
        index = value & ((1 << 48) - 1)
        if value - index != self._base or index >= self.count:
            return None
        return index

    def entry(self, index: int) -> dict[str, Any]:
        return self._user(index) if self.kind == "user" else self._group(index)

    def entries(self, start: int, stop: int) -> list[dict[str, Any]]:
        return [self.entry(i) for i in range(start, min(stop, self.count))]

    def _user(self, index: int) -> dict[str, Any]:
        given = _FIRST_NAMES[index % len(_FIRST_NAMES)]
        surname = _LAST_NAMES[(index // len(_FIRST_NAMES)) % len(_LAST_NAMES)]
        alias = f"user{index:06d}"
        upn = f"{alias}@{self.domain}"
        return {
            "id": self.id_of(index),
            "businessPhones": [f"+1 425 555 {index % 10000:04d}"],
            "displayName": f"{given} {surname} {index}",
            "givenName": given,
            "jobTitle": "Analyst" if index % 3 else "Engineer",
            "mail": upn,
            "mobilePhone": None,
            "officeLocation": f"{index % 40}/{index % 1000}",
            "preferredLanguage": "en-US",
            "surname": surname,
            "userPrincipalName": upn,
            # Non-default properties, returned only when $select names them.
            "accountEnabled": index % 50 != 0,
            "department": _DEPARTMENTS[index % len(_DEPARTMENTS)],
            "city": _CITIES[index % len(_CITIES)],
            "mailNickname": alias,
            "usageLocation": "US",
            "employeeId": f"E{index:07d}",
            "createdDateTime": _iso(self._created),
        }

    def _group(self, index: int) -> dict[str, Any]:
        nickname = f"group{index:06d}"
        unified = index % 2 == 0
        return {
            "id": self.id_of(index),
            "createdDateTime": _iso(self._created),
            "description": f"{_DEPARTMENTS[index % len(_DEPARTMENTS)]} team {index}",
            "displayName": f"{_DEPARTMENTS[index % len(_DEPARTMENTS)]} {index}",
            "groupTypes": ["Unified"] if unified else [],
            "mail": f"{nickname}@{self.domain}" if unified else None,
            "mailEnabled": unified,
            "mailNickname": nickname,
            "securityEnabled": not unified,
            "visibility": "Private" if unified else None,
        }


USER_DEFAULT_PROPERTIES = (
    "businessPhones", "displayName", "givenName", "jobTitle", "mail", "mobilePhone",
    "officeLocation", "preferredLanguage", "surname", "userPrincipalName", "id",
)  # fmt: skip
GROUP_DEFAULT_PROPERTIES = (
    "id", "createdDateTime", "description", "displayName", "groupTypes", "mail", "mailEnabled",
    "mailNickname", "securityEnabled", "visibility",
)  # fmt: skip


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# -- upload sessions (B9) ------------------------------------------------------------------------


@dataclass(eq=False)
class UploadSession:
    id: str
    drive: Drive
    parent_id: str
    # Folders of the target path that did not exist yet: created at commit, as uploads by path do.
    missing_folders: tuple[str, ...]
    name: str
    conflict: str
    actor: Identity
    expires: dt.datetime
    temp_path: Path
    replace_item_id: str | None = None
    declared_size: int | None = None
    defer_commit: bool = False
    total: int | None = None
    received: int = 0
    busy: bool = False
    hasher: QuickXorHash = field(default_factory=QuickXorHash)

    @property
    def complete(self) -> bool:
        return self.total is not None and self.received == self.total

    @property
    def next_expected_ranges(self) -> list[str]:
        return [] if self.complete else [f"{self.received}-"]


@dataclass(frozen=True)
class UploadOutcome:
    """After a fragment: still open (item is None) or committed as ``item`` (created or replaced)."""

    session: UploadSession
    item: Item | None = None
    created: bool = False


class FragmentWriter:
    """Receives one Content-Range fragment into the session's file; rolls back if it falls short."""

    def __init__(self, session: UploadSession, start: int, length: int) -> None:
        self.session = session
        self.start = start
        self.length = length
        self.received = 0
        self._hash_before = session.hasher.copy()
        self._file: IO[bytes] = open(session.temp_path, "r+b")  # noqa: SIM115 - closed by finish()
        self._file.seek(start)

    def write(self, chunk: bytes | bytearray | memoryview) -> None:
        if self.received + len(chunk) > self.length:
            raise invalid_request(
                "The request body is longer than its Content-Range.", inner_code="fragmentLengthMismatch"
            )
        self._file.write(chunk)
        self.session.hasher.update(chunk)
        self.received += len(chunk)

    def close(self) -> None:
        self._file.close()

    def rollback(self) -> None:
        self._file.truncate(self.start)
        self._file.close()
        self.session.hasher = self._hash_before


# -- the state -------------------------------------------------------------------------------------


class GraphState:
    """Everything the emulated Graph knows. Create one per emulator; ``close()`` removes its files."""

    def __init__(
        self,
        *,
        hostname: str = DEFAULT_HOSTNAME,
        tenant_domain: str = DEFAULT_TENANT_DOMAIN,
        storage_dir: str | os.PathLike[str] | None = None,
        clock: Callable[[], dt.datetime] = utc_now,
        upload_session_lifetime: dt.timedelta = UPLOAD_SESSION_LIFETIME,
        download_url_lifetime: dt.timedelta = DOWNLOAD_URL_LIFETIME,
        shuffle_batch_responses: bool = True,
    ) -> None:
        self.lock = threading.RLock()
        self.now = clock
        self.hostname = hostname.lower()
        self.upload_session_lifetime = upload_session_lifetime
        self.download_url_lifetime = download_url_lifetime
        # B5: responses may come back in any order; on by default so clients match by id.
        self.shuffle_batch_responses = shuffle_batch_responses
        self._secret = secrets.token_bytes(32)
        self.sites: dict[str, Site] = {}
        self.drives: dict[str, Drive] = {}
        self.upload_sessions: dict[str, UploadSession] = {}
        self.users = Directory("user", tenant_domain, self.now())
        self.groups = Directory("group", tenant_domain, self.now())
        if storage_dir is None:
            self.storage_dir = Path(tempfile.mkdtemp(prefix="graphcert-graph-"))
            self._cleanup: weakref.finalize[Any, Any] | None = weakref.finalize(
                self, shutil.rmtree, str(self.storage_dir), ignore_errors=True
            )
        else:
            self.storage_dir = Path(storage_dir)
            self.storage_dir.mkdir(parents=True, exist_ok=True)
            self._cleanup = None
        self.blob_dir = self.storage_dir / "blobs"
        self.blob_dir.mkdir(exist_ok=True)
        self.root_site = self.add_site(self.hostname, "/", "Communication site")

    def close(self) -> None:
        """Remove the bodies on disk when the state made its own directory."""
        if self._cleanup is not None:
            self._cleanup()

    # -- signing (pre-authenticated URLs and opaque tokens) ------------------------------------

    def sign(self, purpose: str, payload: str) -> str:
        mac = hmac.new(self._secret, f"{purpose}\x1f{payload}".encode(), hashlib.sha256).digest()
        return _b64url(mac[:24])

    # -- seeding -------------------------------------------------------------------------------

    def add_site(self, hostname: str, path: str, display_name: str) -> Site:
        """A site at https://{hostname}{path}; path "/" is the host's root site."""
        with self.lock:
            site = Site(self, hostname, path, display_name)
            if self.find_site_by_path(site.hostname, site.path) is not None:
                raise name_already_exists(site.web_url)
            self.sites[site.id] = site
            return site

    def add_list(
        self, site: Site, name: str, columns: Sequence[str] = (), items: Iterable[Mapping[str, Any]] = ()
    ) -> SharePointList:
        return site.add_list(name, columns, items)

    def add_users(self, n: int) -> range:
        """Add ``n`` generated users (constant time); returns their indexes for ``users.id_of``."""
        with self.lock:
            return self.users.add(n)

    def add_groups(self, n: int) -> range:
        with self.lock:
            return self.groups.add(n)

    # -- lookups -------------------------------------------------------------------------------

    def site(self, site_id: str) -> Site:
        with self.lock:
            if site_id.lower() == "root":
                return self.root_site
            found = self.sites.get(site_id.lower())
        if found is None:
            raise item_not_found("Requested site could not be found")
        return found

    def find_site_by_path(self, hostname: str, path: str) -> Site | None:
        wanted = "/" + "/".join(split_path(path))
        with self.lock:
            for site in self.sites.values():
                if site.hostname == hostname.lower() and site.path.casefold() == wanted.casefold():
                    return site
        return None

    def site_by_path(self, hostname: str, path: str) -> Site:
        found = self.find_site_by_path(hostname, path)
        if found is None:
            raise item_not_found("Requested site could not be found")
        return found

    def drive(self, drive_id: str) -> Drive:
        with self.lock:
            found = self.drives.get(drive_id)
        if found is None:
            raise item_not_found("The drive could not be found.")
        return found

    def expire_delta_tokens(self, drive: Drive | None = None) -> None:
        """Make delta tokens of one drive (or all drives) answer 410 Gone from now on."""
        with self.lock:
            for target in [drive] if drive is not None else list(self.drives.values()):
                target.expire_delta_tokens()

    # -- bodies --------------------------------------------------------------------------------

    def new_blob(self, *, max_size: int | None = None) -> BlobWriter:
        return BlobWriter(self.blob_dir / uuid.uuid4().hex, max_size=max_size)

    def store_body(self, data: FileData) -> StoredBody:
        """Write seed data (bytes, a local file path or a binary stream) into a new blob."""
        with self.new_blob() as writer:
            if isinstance(data, bytes | bytearray | memoryview):
                writer.write(data)
            elif isinstance(data, str | os.PathLike):
                with open(data, "rb") as source:
                    _copy_stream(source, writer)
            else:
                _copy_stream(data, writer)
        return StoredBody.from_writer(writer)

    # -- pre-authenticated downloads (B7) -------------------------------------------------------

    def download_token(self, item: Item) -> str:
        expires = int((self.now() + self.download_url_lifetime).timestamp())
        payload = _b64url(json.dumps([item.drive.id, item.id, expires], separators=(",", ":")).encode())
        return f"{payload}.{self.sign('download', payload)}"

    def resolve_download(self, token: str) -> Item:
        payload, _, mac = token.partition(".")
        if not hmac.compare_digest(mac, self.sign("download", payload)):
            raise GraphError(401, "unauthenticated", "The download URL is not valid.")
        drive_id, item_id, expires = json.loads(_unb64url(payload))
        if self.now().timestamp() > expires:
            raise GraphError(401, "unauthenticated", "The download URL has expired; get a new one from Graph.")
        drive = self.drive(drive_id)
        item = drive.item(item_id)
        if item.is_folder:
            raise item_not_found()
        return item

    # -- upload sessions (B9) --------------------------------------------------------------------

    def create_upload_session(
        self,
        drive: Drive,
        *,
        parent: Item,
        missing_folders: Sequence[str],
        name: str,
        conflict: str,
        actor: Identity,
        replace_item: Item | None = None,
        declared_size: int | None = None,
        defer_commit: bool = False,
    ) -> UploadSession:
        validate_name(name, is_folder=False)
        for folder in missing_folders:
            validate_name(folder, is_folder=True)
        if conflict not in CONFLICT_BEHAVIORS:
            raise invalid_request(f"Unknown @microsoft.graph.conflictBehavior {conflict!r}.")
        if declared_size is not None and declared_size > drive.quota_total - drive.used:
            raise GraphError(507, "quotaLimitReached", "Insufficient Storage: the file exceeds the drive's quota.")
        session_id = _b64url(secrets.token_bytes(24))
        temp_path = self.blob_dir / f"{session_id}.part"
        temp_path.touch()
        session = UploadSession(
            id=session_id,
            drive=drive,
            parent_id=parent.id,
            missing_folders=tuple(missing_folders),
            name=name,
            conflict=conflict,
            actor=actor,
            expires=self.now() + self.upload_session_lifetime,
            temp_path=temp_path,
            replace_item_id=replace_item.id if replace_item is not None else None,
            declared_size=declared_size,
            defer_commit=defer_commit,
        )
        with self.lock:
            self.upload_sessions[session_id] = session
        return session

    def upload_auth(self, session: UploadSession) -> str:
        """The unguessable part of an upload URL."""
        return self.sign("upload", session.id)

    def upload_session(self, session_id: str, auth: str) -> UploadSession:
        """The live session behind an upload URL; unknown, forged or expired ones are 404 (B9)."""
        if not hmac.compare_digest(auth, self.sign("upload", session_id)):
            raise upload_session_not_found()
        with self.lock:
            session = self.upload_sessions.get(session_id)
            if session is None:
                raise upload_session_not_found()
            if self.now() >= session.expires:
                self._drop_session(session)
                raise upload_session_not_found()
            return session

    def expire_upload_sessions(self) -> None:
        """Expire every open upload session (their URLs now answer 404)."""
        with self.lock:
            for session in self.upload_sessions.values():
                session.expires = self.now()

    def cancel_upload_session(self, session: UploadSession) -> None:
        with self.lock:
            self._drop_session(session)

    def _drop_session(self, session: UploadSession) -> None:
        self.upload_sessions.pop(session.id, None)
        session.temp_path.unlink(missing_ok=True)

    def begin_fragment(self, session: UploadSession, start: int, end: int, total: int) -> FragmentWriter:
        """Check a Content-Range against the session's rules before any byte is read."""
        with self.lock:
            self._check_fragment(session, start, end, total)
            session.busy = True
            session.total = total
            try:
                return FragmentWriter(session, start, end - start + 1)
            except BaseException:
                session.busy = False
                raise

    def _check_fragment(self, session: UploadSession, start: int, end: int, total: int) -> None:
        length = end - start + 1
        if not 0 <= start <= end < total:
            raise GraphError(400, "invalidRange", f"The Content-Range bytes {start}-{end}/{total} is not valid.")
        expected_total = session.total if session.total is not None else session.declared_size
        if expected_total is not None and total != expected_total:
            raise GraphError(
                400,
                "invalidRange",
                f"The Content-Range total {total} differs from the file size {expected_total} declared before.",
                inner_code="fragmentLengthMismatch",
            )
        if session.busy or start < session.received:
            raise GraphError(
                416,
                "invalidRange",
                f"The range {start}-{end} was already received; the next expected range is {session.received}-.",
                inner_code="fragmentOverlap",
            )
        if start > session.received:
            raise GraphError(
                400,
                "invalidRange",
                f"Fragments must be sent in order: expected {session.received}-, got {start}-{end}.",
                inner_code="fragmentOutOfOrder",
            )
        if length >= MAX_FRAGMENT_BYTES:
            raise GraphError(
                400,
                "invalidRange",
                f"A fragment must be smaller than {MAX_FRAGMENT_BYTES} bytes (60 MiB); got {length}.",
                inner_code="fragmentLengthMismatch",
            )
        if end != total - 1 and length % FRAGMENT_MULTIPLE_BYTES:
            raise GraphError(
                400,
                "invalidRange",
                f"Fragment length {length} is not a multiple of {FRAGMENT_MULTIPLE_BYTES} bytes (320 KiB); "
                "only the last fragment may be shorter.",
                inner_code="fragmentLengthMismatch",
            )

    def finish_fragment(self, writer: FragmentWriter) -> UploadOutcome:
        """Accept a fully received fragment, committing the file after the last one."""
        session = writer.session
        if writer.received != writer.length:
            self.abort_fragment(writer)
            raise invalid_request(
                f"Received {writer.received} bytes but the Content-Range announced {writer.length}.",
                inner_code="fragmentLengthMismatch",
            )
        writer.close()
        with self.lock:
            session.received += writer.length
            session.busy = False
            session.expires = self.now() + self.upload_session_lifetime
            if not session.complete or session.defer_commit:
                return UploadOutcome(session)
            return self.commit_upload(session)

    def abort_fragment(self, writer: FragmentWriter) -> None:
        """Forget a fragment that failed mid-body: its bytes are ignored (B9 'Resuming')."""
        writer.rollback()
        with self.lock:
            writer.session.busy = False

    def commit_upload(self, session: UploadSession) -> UploadOutcome:
        """Turn a complete session into the file. A conflict keeps the session for a retry (B9)."""
        with self.lock:
            if not session.complete:
                raise invalid_request(
                    f"The upload is incomplete; next expected range {session.received}-.",
                    inner_code="uploadSessionIncomplete",
                )
            drive = session.drive
            assert session.total is not None
            body = StoredBody(session.temp_path, session.total, session.hasher.b64digest())
            if session.replace_item_id is not None:
                item = drive.replace_content(drive.item(session.replace_item_id), body, actor=session.actor)
                created = False
            else:
                parent = drive.ensure_parent(drive.item(session.parent_id), session.missing_folders, session.actor)
                item, created = drive.commit_file(
                    parent, session.name, body, conflict=session.conflict, actor=session.actor
                )
            self.upload_sessions.pop(session.id, None)
            return UploadOutcome(session, item, created)


def _copy_stream(source: IO[bytes], writer: BlobWriter) -> None:
    while chunk := source.read(_COPY_CHUNK_BYTES):
        writer.write(chunk)


__all__ = [
    "CONFLICT_BEHAVIORS",
    "DELTA_DEFAULT_PAGE_SIZE",
    "DIRECTORY_DEFAULT_PAGE_SIZE",
    "DIRECTORY_MAX_PAGE_SIZE",
    "DOWNLOAD_URL_LIFETIME",
    "DRIVE_DEFAULT_PAGE_SIZE",
    "DRIVE_MAX_PAGE_SIZE",
    "FRAGMENT_MULTIPLE_BYTES",
    "GROUP_DEFAULT_PROPERTIES",
    "LIST_ITEMS_DEFAULT_PAGE_SIZE",
    "MAX_BATCH_REQUESTS",
    "MAX_FRAGMENT_BYTES",
    "SIMPLE_UPLOAD_MAX_BYTES",
    "UPLOAD_SESSION_LIFETIME",
    "USER_DEFAULT_PROPERTIES",
    "BlobWriter",
    "ChildrenPage",
    "DeltaCursor",
    "DeltaPage",
    "DeltaTokenExpired",
    "Directory",
    "Drive",
    "FragmentWriter",
    "GraphError",
    "GraphState",
    "Item",
    "ListItem",
    "SharePointList",
    "Site",
    "StoredBody",
    "Tombstone",
    "UploadOutcome",
    "UploadSession",
]
