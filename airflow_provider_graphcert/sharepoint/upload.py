"""Upload files to a drive by Graph's rules (docs/microsoft-rules.md §B8, §B9).

The bytes come from a local file or an object in any fsspec store (``upload_sources.py``), read
one fragment at a time, so memory stays flat whatever the size. Small files go in one PUT;
larger ones through an upload session in fragments that are a multiple of 320 KiB and under
60 MiB, sent without the Authorization header, each retried, resumed from ``nextExpectedRanges``
after a failure, and the stored size and QuickXorHash compared with the source's
(``upload_verify.py``: SharePoint's rewrite of Office documents is the one exception).
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Literal

from airflow_provider_graphcert.errors import (
    ConfigurationError,
    GraphCertError,
    GraphConflictError,
    GraphRequestError,
    GraphTransportError,
)
from airflow_provider_graphcert.graph.client import GraphClient
from airflow_provider_graphcert.quickxorhash import BytesLike, QuickXorHash
from airflow_provider_graphcert.sharepoint.download import remote_hash
from airflow_provider_graphcert.sharepoint.locations import encode_path
from airflow_provider_graphcert.sharepoint.upload_sources import LocalFile, UploadFile
from airflow_provider_graphcert.sharepoint.upload_verify import (
    DEFAULT_VERIFY,
    StoredCopy,
    Verdict,
    VerifyMode,
    check_verify_mode,
    verify_upload,
)

if TYPE_CHECKING:
    import requests

log = logging.getLogger(__name__)

ConflictBehavior = Literal["fail", "replace", "rename"]
CONFLICT_BEHAVIORS: tuple[str, ...] = ("fail", "replace", "rename")

# rclone's maxSinglePartSize: the conservative simple-upload limit that works everywhere (reference B8).
SIMPLE_UPLOAD_MAX_BYTES = 4 * 1024 * 1024
# Fragments must be a multiple of 320 KiB and below 60 MiB (reference B9).
FRAGMENT_MULTIPLE_BYTES = 320 * 1024
FRAGMENT_MAX_BYTES = 60 * 1024 * 1024
DEFAULT_FRAGMENT_BYTES = 32 * FRAGMENT_MULTIPLE_BYTES  # 10 MiB, inside the recommended 5-10 MiB
# A fragment of a local file is read and sent this much at a time through one reused buffer: a
# whole fragment in memory beside Airflow and numpy would pass 150 MB (docs/benchmarks.md).
LOCAL_READ_BLOCK_BYTES = 1024 * 1024
# A session that disappears (404) mid-upload is started again this many times.
SESSION_RESTARTS = 2
# Rounds in a row in which the session does not ask for anything beyond what it asked before (a
# service that keeps answering nextExpectedRanges ["0-"]): past this, the upload fails instead of
# sending the same fragments forever. A lost reply costs one such round, so this is generous.
MAX_STALLED_ROUNDS = 5


def check_fragment_size(size: int) -> int:
    if size <= 0 or size % FRAGMENT_MULTIPLE_BYTES or size >= FRAGMENT_MAX_BYTES:
        raise ConfigurationError(
            f"chunk_size {size} must be a multiple of 327,680 bytes (320 KiB) and below 60 MiB, "
            f"e.g. {DEFAULT_FRAGMENT_BYTES} (10 MiB).",
            field="chunk_size",
        )
    return size


def check_max_workers(value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigurationError(f"max_workers {value!r} must be a whole number of at least 1.", field="max_workers")
    return value


def check_conflict_behavior(value: str) -> ConflictBehavior:
    if value not in CONFLICT_BEHAVIORS:
        raise ConfigurationError(
            f"conflict_behavior '{value}' must be one of fail, replace, rename.", field="conflict_behavior"
        )
    return value  # type: ignore[return-value]


class UploadSourceError(GraphCertError):
    """Reading the file being uploaded failed or gave other bytes than announced (the source, not Graph)."""


@dataclass(frozen=True)
class UploadedFile:
    local_path: str  # the source's label: a local path or a store URL
    remote_path: str
    item_id: str
    size: int
    quick_xor_hash: str
    verified: Verdict = "hash"
    stored: StoredCopy | None = None  # what SharePoint keeps, when it rewrote the file

    def as_dict(self) -> dict[str, Any]:
        summary: dict[str, Any] = {
            "local_path": self.local_path,
            "remote_path": self.remote_path,
            "item_id": self.item_id,
            "size": self.size,
            "verified": self.verified,
        }
        if self.stored is not None:
            summary["stored_size"] = self.stored.size
            summary["stored_quick_xor_hash"] = self.stored.quick_xor_hash
        return summary


def _next_offset(ranges: Any, total: int) -> int:
    """The first byte Graph still wants, from ``nextExpectedRanges`` like ["26-"] or ["0-99", ...]."""
    if not isinstance(ranges, list) or not ranges:
        return total
    starts = []
    for entry in ranges:
        start = str(entry).split("-", 1)[0]
        if start.isdigit():
            starts.append(int(start))
    return min(starts) if starts else total


class FileUploader:
    def __init__(
        self,
        client: GraphClient,
        *,
        fragment_bytes: int = DEFAULT_FRAGMENT_BYTES,
        simple_max_bytes: int = SIMPLE_UPLOAD_MAX_BYTES,
        on_bytes: Callable[[int], None] | None = None,
        verify: VerifyMode = DEFAULT_VERIFY,
    ) -> None:
        self.client = client
        self.fragment_bytes = check_fragment_size(fragment_bytes)
        self.verify = check_verify_mode(verify)
        self.simple_max_bytes = simple_max_bytes
        self.on_bytes = on_bytes

    def upload(
        self, drive_id: str, remote_path: str, source: Path | UploadFile, *, conflict: ConflictBehavior = "replace"
    ) -> UploadedFile:
        local = LocalFile(source) if isinstance(source, Path) else source
        size = local.size()
        address = f"drives/{drive_id}/root:/{encode_path(remote_path)}:"
        try:
            if size <= self.simple_max_bytes:
                item, digest = self._simple(address, local, size, conflict)
            else:
                item, digest = self._session(address, local, size, conflict)
        except GraphConflictError as exc:
            if conflict != "fail":
                raise
            raise GraphConflictError(
                f"'{remote_path}' already exists and conflict_behavior is 'fail'; use 'replace' or 'rename'. "
                f"[request-id={exc.request_id}]",
                status=exc.status,
                code=exc.code,
                request_id=exc.request_id,
            ) from None
        stored = StoredCopy.from_reply(item, remote_path)
        verdict = verify_upload(stored, remote_path, size, digest, self.verify)
        if verdict == "rewritten_by_sharepoint":
            log.info(
                "SharePoint rewrote the Office document %s on upload (as it does in document libraries): it keeps "
                "%s bytes with QuickXorHash %s for the %d bytes sent; accepted (verify='office_aware').",
                remote_path,
                stored.size,
                stored.quick_xor_hash,
                size,
            )
        rewritten = stored if verdict == "rewritten_by_sharepoint" else None
        return UploadedFile(local.label, remote_path, stored.item_id, size, digest, verdict, rewritten)

    def _simple(
        self, address: str, local: UploadFile, size: int, conflict: ConflictBehavior
    ) -> tuple[dict[str, Any], str]:
        with _opened(local) as handle:
            data = _read_exactly(local, handle, 0, size)
        hasher = QuickXorHash()
        hasher.update(data)
        digest = hasher.b64digest()
        try:
            response = self.client.request(
                "PUT",
                f"{address}/content",
                params={"@microsoft.graph.conflictBehavior": conflict},
                data=data,
                headers={"Content-Type": "application/octet-stream"},
                # Repeating a 'rename' PUT whose reply was lost would leave a second "name 1.ext".
                idempotent=False if conflict == "rename" else None,
            )
        except GraphConflictError as exc:
            landed = self._own_earlier_attempt(address, exc, conflict, digest, len(data))
            if landed is None:
                raise
            return landed, digest
        except GraphTransportError as exc:
            if conflict != "rename":
                raise
            raise GraphTransportError(
                f"{exc} The reply to a conflict_behavior='rename' upload was lost, so it may have landed under a "
                "new name ('name 1.ext'); it is not repeated, which could add a second copy. Check the folder, or "
                "use 'replace'."
            ) from None
        if self.on_bytes is not None:
            self.on_bytes(len(data))
        return _json_or_none(response), digest

    def _own_earlier_attempt(
        self, address: str, exc: GraphConflictError, conflict: ConflictBehavior, digest: str, size: int
    ) -> dict[str, Any] | None:
        """The item a 'fail' PUT created before its reply was lost, met again by the repeated PUT.

        Only when the request was repeated and the existing file is byte-for-byte ours: then the
        upload did succeed; anything else is a real conflict.
        """
        if conflict != "fail" or exc.attempts < 2:
            return None
        item: dict[str, Any] = self.client.get_json(address)
        if remote_hash(item) == digest and item.get("size") == size:
            return item
        return None

    def _session(
        self, address: str, local: UploadFile, size: int, conflict: ConflictBehavior
    ) -> tuple[dict[str, Any], str]:
        for restart in range(SESSION_RESTARTS + 1):
            # A session whose creation reply was lost just expires unused: safe to ask again.
            session = self.client.send_json(
                "POST",
                f"{address}/createUploadSession",
                {"item": {"@microsoft.graph.conflictBehavior": conflict}},
                idempotent=True,
            )
            upload_url = session.get("uploadUrl") if isinstance(session, dict) else None
            if not isinstance(upload_url, str) or not upload_url:
                raise GraphCertError(
                    f"Graph's reply to createUploadSession for {local.name} has no uploadUrl; nothing was uploaded. "
                    "Run the task again."
                )
            try:
                return self._send_fragments(upload_url, local, size)
            except _SessionGone:
                log.warning("Upload session for %s vanished; starting a new one (%d).", local.name, restart + 1)
                continue
            except BaseException:
                self._cancel(upload_url)
                raise
        raise GraphCertError(
            f"Upload of {local.label} failed: the upload session was lost {SESSION_RESTARTS + 1} times."
        )

    def _send_fragments(self, upload_url: str, local: UploadFile, size: int) -> tuple[dict[str, Any], str]:
        # numpy when installed: the hash keeps up with the socket (docs/benchmarks.md: 1 GiB upload).
        hasher = QuickXorHash(accelerated=True)
        hashed = 0  # bytes fed to the hasher, always a prefix of the file
        offset = 0
        stall = _StallGuard(local.name, size)
        with _opened(local) as handle:
            reader = _SourceReader(local, handle, size)
            while True:
                length = min(self.fragment_bytes, size - offset)
                end = offset + length - 1
                body = _FragmentBody(reader, offset, length, hasher if hashed == offset else None)
                response = self.client.request(
                    "PUT",
                    upload_url,
                    authenticated=False,
                    data=body,  # the blocks as they are read, each sent before the next is read
                    headers={"Content-Range": f"bytes {offset}-{end}/{size}", "Content-Length": str(length)},
                    raise_for_status=False,
                )
                if response.status_code in (200, 201, 202):
                    # The hash counts a fragment only once Graph has accepted it, in order.
                    if body.hashed is not None:
                        hasher, hashed = body.hashed, hashed + length
                    if self.on_bytes is not None:
                        self.on_bytes(length)
                    if response.status_code != 202:
                        digest = self._finish_hash(hasher, hashed, reader)
                        return _json_or_none(response), digest
                    offset = stall.next_round(_ranges_of(response))
                    continue
                if response.status_code == 416:
                    # Graph already has this range (a retry after a lost reply): ask where to go on.
                    offset = stall.next_round(self._status_ranges(upload_url))
                    continue
                if response.status_code == 404:
                    raise _SessionGone()
                if response.status_code == 409:
                    raise GraphConflictError(
                        f"{local.name} conflicts with an existing item at commit.", status=409, code="nameAlreadyExists"
                    )
                raise GraphRequestError(
                    f"Upload fragment {offset}-{end} of {local.name} failed with HTTP {response.status_code}: "
                    f"{response.text[:300]}",
                    status=response.status_code,
                )

    def _finish_hash(self, hasher: QuickXorHash, hashed: int, reader: _SourceReader) -> str:
        # If Graph made us skip ahead (416), hash the rest from the file so the digest is complete.
        local = reader.local
        try:
            for block in reader.blocks(hashed, reader.size - hashed):
                hasher.update(block)
        except UploadSourceError:
            # Graph has committed the file by now: say so, instead of "nothing was committed".
            raise UploadSourceError(
                f"SharePoint committed the upload of {local.label}, but it cannot be verified: re-reading the source "
                "to hash it failed or found it changed. Upload it again once the source is stable "
                "(conflict_behavior 'replace' overwrites the stored copy)."
            ) from None
        return str(hasher.b64digest())

    def _status_ranges(self, upload_url: str) -> Any:
        response = self.client.request("GET", upload_url, authenticated=False, raise_for_status=False)
        if response.status_code == 404:
            raise _SessionGone()
        return _ranges_of(response)

    def _cancel(self, upload_url: str) -> None:
        try:
            self.client.request("DELETE", upload_url, authenticated=False, raise_for_status=False).close()
        except GraphCertError:
            log.debug("Could not cancel an upload session; it expires on its own.")


@contextlib.contextmanager
def _opened(local: UploadFile) -> Iterator[IO[bytes]]:
    try:
        handle = local.open()
    except OSError as exc:
        raise _read_failed(local, 0, exc) from None
    with handle:
        yield handle


def _read_exactly(local: UploadFile, handle: IO[bytes], offset: int, length: int) -> bytes:
    """``length`` bytes of the source from ``offset``, or one clear error (never a short fragment sent).

    Raised inside an upload session, the error cancels the session (``_session``): nothing is committed.
    """
    try:
        handle.seek(offset)
        chunk = handle.read(length)
    except OSError as exc:  # the disk, the store's network, or an object replaced meanwhile
        raise _read_failed(local, offset, exc) from None
    _check_length(local, offset, len(chunk), length)
    return chunk


def _read_into(local: UploadFile, handle: IO[bytes], offset: int, target: memoryview) -> memoryview:
    """``target`` filled with the source's bytes from ``offset``, or one clear error, as ``_read_exactly``.

    ``readinto`` where the stream has it (local files, fsspec files): no new object per fragment.
    """
    wanted = len(target)
    got = 0
    try:
        handle.seek(offset)
        readinto = getattr(handle, "readinto", None)
        while got < wanted:
            if readinto is not None:
                count = readinto(target[got:])
            else:
                block = handle.read(wanted - got)
                count = len(block)
                target[got : got + count] = block
            if not count:
                break  # the end of the source: fewer bytes than announced
            got += count
    except OSError as exc:  # the disk, the store's network, or an object replaced meanwhile
        raise _read_failed(local, offset, exc) from None
    _check_length(local, offset, got, wanted)
    return target


def _read_failed(local: UploadFile, offset: int, exc: OSError) -> UploadSourceError:
    return UploadSourceError(
        f"Reading {local.label} at offset {offset:,} failed ({type(exc).__name__}: {exc}); the upload was abandoned "
        "and SharePoint committed nothing. Check that the file or object exists and is not replaced while it is "
        "uploaded, then run the task again."
    )


def _check_length(local: UploadFile, offset: int, got: int, wanted: int) -> None:
    if got != wanted:
        raise UploadSourceError(
            f"{local.label} changed while it was being uploaded: reading {wanted:,} bytes at offset {offset:,} "
            f"gave {got:,}. Nothing was committed in SharePoint; run the task again once the file is complete."
        )


class _SourceReader:
    """Reads ranges of the source being uploaded, in the blocks that suit it.

    A local file is read into one reused buffer, ``LOCAL_READ_BLOCK_BYTES`` at a time: no new
    object, page faults or copy per fragment. A store answers each read with one ranged request,
    so a range of it is read whole, as one object (a copy into a buffer would only add one).
    """

    def __init__(self, local: UploadFile, handle: IO[bytes], size: int) -> None:
        self.local, self.handle, self.size = local, handle, size
        self.buffer = memoryview(bytearray(min(LOCAL_READ_BLOCK_BYTES, size))) if isinstance(local, LocalFile) else None

    def blocks(self, offset: int, length: int) -> Iterator[BytesLike]:
        """The bytes ``offset`` to ``offset + length``, in order; a block is only valid until the next."""
        done = 0
        while done < length:
            if self.buffer is None:
                block: BytesLike = _read_exactly(self.local, self.handle, offset + done, length - done)
            else:
                wanted = min(len(self.buffer), length - done)
                block = _read_into(self.local, self.handle, offset + done, self.buffer[:wanted])
            yield block
            done += len(block)


class _FragmentBody:
    """One fragment's bytes for a PUT, read from the source block by block as they are sent.

    Each block is sent (``sendall`` returns) before the next is read over it. Iterable again for
    the client's retries, each pass re-reading the source; ``hashed`` is ``hasher`` advanced by
    the last complete pass (None without a hasher). A read that fails or comes up short raises
    ``UploadSourceError`` out of the send: the fragment is cut off, so Graph cannot take it whole.
    """

    def __init__(self, reader: _SourceReader, offset: int, length: int, hasher: QuickXorHash | None) -> None:
        self.reader, self.offset, self.length = reader, offset, length
        self.hasher = hasher
        self.hashed: QuickXorHash | None = None

    def __len__(self) -> int:
        return self.length

    def __iter__(self) -> Iterator[BytesLike]:
        self.hashed = None
        advancing = self.hasher.copy() if self.hasher is not None else None
        for block in self.reader.blocks(self.offset, self.length):
            if advancing is not None:
                advancing.update(block)
            yield block
        self.hashed = advancing


class _StallGuard:
    """Where the session wants the next fragment, failing once it stops moving forward."""

    def __init__(self, name: str, size: int) -> None:
        self.name = name
        self.size = size
        self.furthest = 0  # the furthest offset the session has asked for so far
        self.stalled = 0

    def next_round(self, ranges: Any) -> int:
        offset = _next_offset(ranges, self.size)
        if offset >= self.size:
            # Not finished (no item came back) yet nothing more wanted: sending on would loop.
            raise GraphCertError(
                f"Upload of {self.name} stopped: the upload session asked for no further bytes "
                f"(nextExpectedRanges {_shown(ranges)}) but did not complete the file. Nothing was committed; "
                "run the task again."
            )
        if offset > self.furthest:
            self.furthest, self.stalled = offset, 0
            return offset
        self.stalled += 1
        if self.stalled > MAX_STALLED_ROUNDS:
            raise GraphCertError(
                f"Upload of {self.name} made no progress: after {self.stalled} rounds the upload session still "
                f"asks for bytes from offset {offset:,} of {self.size:,} (nextExpectedRanges {_shown(ranges)}), so "
                "it is not keeping what is sent. The session was cancelled and nothing was committed; run the task "
                "again later, and if this persists check the service's health."
            )
        return offset


def _json_or_none(response: requests.Response) -> Any:
    """The reply's JSON, or None when it is not JSON (the caller then reports what it expected)."""
    try:
        return response.json()
    except ValueError:
        return None


def _ranges_of(response: requests.Response) -> Any:
    body = _json_or_none(response)
    return body.get("nextExpectedRanges") if isinstance(body, dict) else None


def _shown(ranges: Any) -> str:
    # What the service sent, bounded: a hostile reply must not flood the task log.
    text = repr(ranges)
    return text if len(text) <= 80 else text[:77] + "..."


class _SessionGone(Exception):
    """The upload session no longer exists (expired or cancelled): start over."""


class FolderMaker:
    """Creates remote folders once each (thread-safe), treating 'already exists' as success."""

    def __init__(self, client: GraphClient, drive_id: str) -> None:
        self.client = client
        self.drive_id = drive_id
        self._known: set[str] = {""}
        self._lock = threading.Lock()

    def ensure(self, path: str) -> None:
        parts = [p for p in path.split("/") if p]
        for depth in range(1, len(parts) + 1):
            current = "/".join(parts[:depth])
            with self._lock:
                if current in self._known:
                    continue
            parent = "/".join(parts[: depth - 1])
            address = (
                f"drives/{self.drive_id}/root:/{encode_path(parent)}:/children"
                if parent
                else (f"drives/{self.drive_id}/root/children")
            )
            # A 409 means an earlier run, another worker or our own lost-reply attempt created it.
            with contextlib.suppress(GraphConflictError):
                self.client.send_json(
                    "POST",
                    address,
                    {"name": parts[depth - 1], "folder": {}, "@microsoft.graph.conflictBehavior": "fail"},
                    idempotent=True,
                )
            with self._lock:
                self._known.add(current)
