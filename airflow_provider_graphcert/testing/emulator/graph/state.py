"""The emulated Graph/SharePoint state: sites, drives, lists, directory and upload sessions together.

Plain Python objects and no HTTP (the moto split): the route modules parse requests and
render JSON; everything that decides an outcome lives here, raising ``GraphError`` with the
status and code Graph would answer with. File bodies live on disk in a directory the state owns,
never in memory, so tests can move files of any size.

One re-entrant lock guards the whole model; disk writes of bodies happen outside it and are only
attached to items (a pointer swap) under it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import os
import secrets
import shutil
import tempfile
import threading
import uuid
import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from airflow_provider_graphcert.testing.emulator.graph.blobs import BlobWriter, StoredBody, copy_stream
from airflow_provider_graphcert.testing.emulator.graph.common import (
    CONFLICT_BEHAVIORS,
    DEFAULT_HOSTNAME,
    DEFAULT_TENANT_DOMAIN,
    DOWNLOAD_URL_LIFETIME,
    FRAGMENT_MULTIPLE_BYTES,
    MAX_FRAGMENT_BYTES,
    UPLOAD_SESSION_LIFETIME,
    FileData,
    GraphError,
    Identity,
    b64url,
    invalid_request,
    item_not_found,
    name_already_exists,
    split_path,
    unb64url,
    upload_session_not_found,
    utc_now,
    validate_name,
)
from airflow_provider_graphcert.testing.emulator.graph.directory import Directory
from airflow_provider_graphcert.testing.emulator.graph.drives import Drive, Item
from airflow_provider_graphcert.testing.emulator.graph.office import stored_as_sharepoint_would
from airflow_provider_graphcert.testing.emulator.graph.sites import SharePointList, Site
from airflow_provider_graphcert.testing.emulator.graph.uploads import FragmentWriter, UploadOutcome, UploadSession

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
        return b64url(mac[:24])

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
        self,
        site: Site,
        name: str,
        columns: Sequence[str] = (),
        items: Iterable[Mapping[str, Any]] = (),
        *,
        indexed: Iterable[str] = (),
    ) -> SharePointList:
        return site.add_list(name, columns, items, indexed=indexed)

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
                    copy_stream(source, writer)
            else:
                copy_stream(data, writer)
        return StoredBody.from_writer(writer)

    # -- pre-authenticated downloads (B7) -------------------------------------------------------

    def download_token(self, item: Item) -> str:
        expires = int((self.now() + self.download_url_lifetime).timestamp())
        payload = b64url(json.dumps([item.drive.id, item.id, expires], separators=(",", ":")).encode())
        return f"{payload}.{self.sign('download', payload)}"

    def resolve_download(self, token: str) -> Item:
        payload, _, mac = token.partition(".")
        if not hmac.compare_digest(mac, self.sign("download", payload)):
            raise GraphError(401, "unauthenticated", "The download URL is not valid.")
        drive_id, item_id, expires = json.loads(unb64url(payload))
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
        session_id = b64url(secrets.token_bytes(24))
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
            received = StoredBody(session.temp_path, session.total, session.hasher.b64digest())
            name = drive.item(session.replace_item_id).name if session.replace_item_id else session.name
            body = stored_as_sharepoint_would(self, drive, name, received)
            try:
                if session.replace_item_id is not None:
                    item = drive.replace_content(drive.item(session.replace_item_id), body, actor=session.actor)
                    created = False
                else:
                    parent = drive.ensure_parent(drive.item(session.parent_id), session.missing_folders, session.actor)
                    item, created = drive.commit_file(
                        parent, session.name, body, conflict=session.conflict, actor=session.actor
                    )
            except BaseException:
                if body is not received:
                    body.path.unlink(missing_ok=True)  # the session keeps what it received, for a retry
                raise
            if body is not received:
                received.path.unlink(missing_ok=True)
            self.upload_sessions.pop(session.id, None)
            return UploadOutcome(session, item, created)

    def commit_upload_as(
        self, session: UploadSession, *, parent: Item, missing_folders: Sequence[str], name: str, conflict: str
    ) -> UploadOutcome:
        """Commit a complete session under a new name or conflict rule (the sourceUrl recovery, B9)."""
        validate_name(name, is_folder=False)
        if conflict not in CONFLICT_BEHAVIORS:
            raise invalid_request(f"Unknown @microsoft.graph.conflictBehavior {conflict!r}.")
        with self.lock:
            session.parent_id = parent.id
            session.missing_folders = tuple(missing_folders)
            session.name = name
            session.conflict = conflict
            session.replace_item_id = None
            return self.commit_upload(session)

    # -- copy jobs (long-running actions) --------------------------------------------------------

    def copy_monitor_token(self, item: Item) -> str:
        """The opaque, signed id of a finished copy: its monitor URL needs no other credential."""
        payload = b64url(json.dumps([item.drive.id, item.id], separators=(",", ":")).encode())
        return f"{payload}.{self.sign('monitor', payload)}"

    def resolve_copy_monitor(self, token: str) -> str:
        """The id of the item a copy made; a forged or unknown monitor URL is 404."""
        payload, _, mac = token.partition(".")
        if not hmac.compare_digest(mac, self.sign("monitor", payload)):
            raise item_not_found("The monitor URL is not valid.")
        _, item_id = json.loads(unb64url(payload))
        return str(item_id)
