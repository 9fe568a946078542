"""Download drive items: streamed, hash-checked, resumed with Range, landed atomically.

A file is written to a temp file beside its final name, hashed (QuickXorHash) as bytes arrive,
checked against Graph's size and hash, fsynced, renamed into place and given the remote modified
time. A connection dropped mid-body resumes from the last byte with ``Range`` and ``If-Range``,
never mixing two versions of a file. The pre-authenticated URL is fetched without the
Authorization header; when it has expired, a fresh one is asked for.
"""

from __future__ import annotations

import http.client
import logging
import os
import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import requests

from airflow_provider_graphcert.errors import GraphCertError, GraphRequestError, GraphTransportError
from airflow_provider_graphcert.files import FolderSync, atomic_writer
from airflow_provider_graphcert.graph.client import GraphClient
from airflow_provider_graphcert.graph.retry import RetryBudget
from airflow_provider_graphcert.quickxorhash import QuickXorHash, numpy_or_none
from airflow_provider_graphcert.sharepoint.item_fields import (
    MalformedItemError,
    file_size,
    is_file,
    item_label,
    modified_at,
    quick_xor_hash,
)

log = logging.getLogger(__name__)

# 1 MiB reads keep memory flat for any file size and syscalls few.
DOWNLOAD_CHUNK_BYTES = 1024 * 1024
# Bodies this large have their pages written back as they come rather than all by the final fsync,
# and, without numpy, are hashed in a helper thread while the next chunk arrives (with numpy the
# hash runs at memory speed without the GIL, so inline costs less than the hand-off; see
# docs/benchmarks.md: 1 GiB download).
PIPELINE_MIN_BYTES = 32 * 1024 * 1024
WRITEBACK_EVERY_BYTES = 64 * 1024 * 1024
# Chunks waiting for the hash thread (so at most this many MiB more in memory).
HASH_QUEUE_CHUNKS = 8
# Statuses a stale pre-authenticated URL answers with; a fresh URL is fetched for them.
_EXPIRED_URL_STATUSES = frozenset({401, 403, 404, 410})
# How often a file that changes while it downloads is started over before giving up.
_MAX_VERSION_RESTARTS = 2
_MID_BODY_ERRORS = (
    requests.exceptions.ChunkedEncodingError,
    requests.exceptions.ConnectionError,
    requests.exceptions.Timeout,
)


class IntegrityError(GraphCertError):
    """The bytes received do not match the size or hash Graph reported."""


@dataclass(frozen=True)
class DownloadedFile:
    path: str
    item_id: str
    size: int
    quick_xor_hash: str
    e_tag: str | None
    resumed: int = 0  # how many times the body was resumed after a dropped connection
    verified: bool = True  # False: Graph sent no hash, so only the size was checked
    relative: str = ""  # the path below the job's target, when a folder job landed it

    def as_dict(self) -> dict[str, Any]:
        return {"path": self.path, "item_id": self.item_id, "size": self.size, "quickXorHash": self.quick_xor_hash}


def remote_hash(item: dict[str, Any]) -> str | None:
    return quick_xor_hash(item)


def remote_mtime(item: dict[str, Any]) -> float | None:
    """The remote modified time to give the local file; a time we cannot read is logged and skipped."""
    try:
        moment = modified_at(item, prefer_file_system=True)
    except MalformedItemError as exc:
        log.warning("%s The local modified time is left as is.", exc)
        return None
    return moment.timestamp() if moment is not None else None


@dataclass
class _Version:
    """What is being downloaded: the item's metadata and the validator of the body being received."""

    item: dict[str, Any]
    size: int
    quick_xor_hash: str | None
    validator: str | None = None  # the download host's ETag for this body (checked on every resume)

    @classmethod
    def of(cls, item: dict[str, Any]) -> _Version:
        return cls(item, file_size(item), quick_xor_hash(item))


class FileDownloader:
    """Downloads single files; thread-safe (one per folder job, shared by its workers).

    ``require_hash``: a file for which Graph sent no QuickXorHash fails instead of landing
    verified by its size only (which is logged, and counted by the caller as unverified).
    """

    def __init__(
        self,
        client: GraphClient,
        *,
        chunk_bytes: int = DOWNLOAD_CHUNK_BYTES,
        on_bytes: Callable[[int], None] | None = None,
        require_hash: bool = False,
        folders: FolderSync | None = None,
    ) -> None:
        self.client = client
        self.chunk_bytes = chunk_bytes
        self.on_bytes = on_bytes
        self.require_hash = require_hash
        # A folder job's: folders are created once and fsynced when it ends (files.FolderSync).
        self.folders = folders

    def fresh_item(self, drive_id: str, item_id: str) -> dict[str, Any]:
        item = self.client.get_json(f"drives/{drive_id}/items/{item_id}")
        if not isinstance(item, dict) or not is_file(item):
            raise GraphCertError(f"Item {item_id} is no longer a file (Graph's fresh metadata says otherwise).")
        return item

    def download_url(self, drive_id: str, item: dict[str, Any]) -> str:
        url = item.get("@microsoft.graph.downloadUrl")
        if isinstance(url, str):
            return url
        # /content answers 302 to the pre-authenticated URL; follow it ourselves, without the token.
        response = self.client.request("GET", f"drives/{drive_id}/items/{item['id']}/content", allow_redirects=False)
        response.close()
        location = response.headers.get("Location")
        if response.status_code not in (301, 302, 303, 307) or not location:
            raise GraphRequestError(
                f"Graph did not redirect the download of item {item['id']} (HTTP {response.status_code}).",
                status=response.status_code,
            )
        return location

    def download(self, drive_id: str, item: dict[str, Any], target: Path, *, durable: bool = True) -> DownloadedFile:
        """Land ``item`` at ``target``; ``durable=False`` for a scratch copy that need not survive a crash."""
        if not is_file(item):
            raise GraphCertError(f"Item {item_label(item)} is not a file.")
        version = _Version.of(item)
        if version.quick_xor_hash is None and self.require_hash:
            raise IntegrityError(
                f"Graph sent no QuickXorHash for {item_label(item)}, and require_hash is set; the file was not "
                "written (without require_hash it would land checked by its size only)."
            )
        url = self.download_url(drive_id, item)
        assert self.client.retry is not None
        budget = RetryBudget(self.client.retry)
        url_refreshes = restarts = resumed = 0
        with atomic_writer(target, "wb", durable=durable, folders=self.folders) as handle:
            body = _Body(handle, writeback=durable)
            while True:
                headers = self._resume_headers(body.written, version)
                response = self.client.request(
                    "GET", url, authenticated=False, stream=True, headers=headers, raise_for_status=False
                )
                if response.status_code in _EXPIRED_URL_STATUSES and url_refreshes < 2:
                    response.close()
                    url_refreshes += 1
                    fresh = self.fresh_item(drive_id, str(item["id"]))
                    if body.written:  # the validator check below decides whether the rest still fits
                        version.item = fresh
                    else:
                        version = _Version.of(fresh)
                    url = self.download_url(drive_id, fresh)
                    continue
                if response.status_code == 416 and body.written and body.written == version.size:
                    # The body before announced more bytes than the file has and ended where the file
                    # does: nothing is left to fetch (RFC 9110 15.5.17). The size and hash check decide.
                    response.close()
                    break
                if response.status_code not in (200, 206):
                    response.close()
                    raise GraphRequestError(
                        f"Downloading {item_label(item)} failed with HTTP {response.status_code}.",
                        status=response.status_code,
                    )
                validator = response.headers.get("ETag")
                if body.written and (validator != version.validator or self._content_changed(drive_id, version)):
                    # The file changed since the first bytes came: old bytes + new bytes must never
                    # land, so start the file over with its new metadata (and a new URL).
                    response.close()
                    restarts += 1
                    version, url = self._start_over(drive_id, item, restarts)
                    body.reset()
                    continue
                if body.written and response.status_code == 200:
                    body.reset()  # the server ignored Range (allowed, RFC 9110 14.2): same version, start over
                if not body.written:
                    version.validator = validator
                try:
                    body.written += self._copy(response, body, limit=version.size - body.written, item=item)
                    break
                except _MID_BODY_ERRORS as exc:
                    body.written = _written_so_far(handle)
                    self._pause_before_resuming(budget, exc, body.written, item)
                    resumed += 1  # the hasher saw exactly the chunks written before the drop, so it carries on
                finally:
                    response.close()
            digest = body.hasher.b64digest()
            self._check(version, item, body.written, digest)
            mtime = remote_mtime(version.item)
            if mtime is not None:
                # Through the descriptor, before the file's fsync: the time is then as durable as the bytes.
                handle.flush()
                os.utime(handle.fileno(), (mtime, mtime))
        return DownloadedFile(
            path=str(target),
            item_id=str(item["id"]),
            size=body.written,
            quick_xor_hash=digest,
            e_tag=_text(version.item.get("eTag")),
            resumed=resumed,
            verified=version.quick_xor_hash is not None,
        )

    def _pause_before_resuming(self, budget: RetryBudget, exc: Exception, written: int, item: dict[str, Any]) -> None:
        delay = budget.next_delay(None)
        if delay is None:
            raise GraphTransportError(
                f"Downloading {item_label(item)} kept failing mid-body ({type(exc).__name__}) "
                f"after {budget.attempts} attempts; {written} bytes were received."
            ) from None
        log.warning(
            "Download of %s dropped at %d bytes (%s); resuming in %.1f s.",
            item_label(item),
            written,
            type(exc).__name__,
            delay,
        )
        budget.spend(delay)
        self.client.sleep(delay)

    def _start_over(self, drive_id: str, item: dict[str, Any], restarts: int) -> tuple[_Version, str]:
        if restarts > _MAX_VERSION_RESTARTS:
            raise IntegrityError(
                f"{item_label(item)} kept changing while it was downloaded; the file was not written. "
                "Run the task again when the file is no longer being edited."
            )
        log.warning("%s changed while it was downloading; starting it over.", item_label(item))
        version = _Version.of(self.fresh_item(drive_id, str(item["id"])))
        return version, self.download_url(drive_id, version.item)

    def _content_changed(self, drive_id: str, version: _Version) -> bool:
        """Without a validator from the download host, ask Graph whether the content changed (cTag, else eTag)."""
        if version.validator is not None:
            return False
        fresh = self.fresh_item(drive_id, str(version.item["id"]))
        tag = "cTag" if version.item.get("cTag") else "eTag"
        return fresh.get(tag) != version.item.get(tag)

    @staticmethod
    def _resume_headers(written: int, version: _Version) -> dict[str, str] | None:
        if not written:
            return None
        headers = {"Range": f"bytes={written}-"}
        # If-Range: the rest of *this* version, or the whole new one (RFC 9110 13.1.5). Only a
        # strong validator may be used; a weak one ("W/...") is compared by us on the answer.
        if version.validator and not version.validator.startswith("W/"):
            headers["If-Range"] = version.validator
        return headers

    @staticmethod
    def _check(version: _Version, item: dict[str, Any], written: int, digest: str) -> None:
        if written != version.size:
            raise IntegrityError(
                f"{item_label(item)}: received {written} bytes, Graph reported {version.size}; "
                "the file was not written."
            )
        if version.quick_xor_hash and digest != version.quick_xor_hash:
            raise IntegrityError(
                f"{item_label(item)}: QuickXorHash {digest} does not match Graph's {version.quick_xor_hash}; "
                "the file was not written."
            )
        if version.quick_xor_hash is None:
            log.warning(
                "%s landed checked by its size only: Graph sent no QuickXorHash for it (set require_hash=True "
                "to refuse such files).",
                item_label(item),
            )

    def _copy(self, response: requests.Response, body: _Body, *, limit: int, item: dict[str, Any]) -> int:
        large = _declared_length(response) >= PIPELINE_MIN_BYTES
        threaded = large and numpy_or_none() is None
        with (
            _Hashing(body.hasher, in_background=threaded) as hashing,
            _Writeback(body.handle, enabled=large and body.writeback) as writeback,
        ):
            raw = _plain_body(response)
            chunks: Iterator[bytes | memoryview]
            if raw is not None:
                chunks = _read_into_buffer(raw, min(self.chunk_bytes, limit + 1), limit)
            else:
                chunks = response.iter_content(chunk_size=self.chunk_bytes)
            copied = 0
            for chunk in chunks:
                if not chunk:
                    continue
                if copied + len(chunk) > limit:
                    # Never write past the size Graph announced: a body that keeps coming would
                    # otherwise fill the disk.
                    raise IntegrityError(
                        f"{item_label(item)}: the download sent more bytes than the size Graph reported; "
                        "stopped reading, and the file was not written."
                    )
                body.handle.write(chunk)
                # A reused buffer is overwritten by the next read: the hash thread gets its own copy.
                hashing.update(bytes(chunk) if threaded and isinstance(chunk, memoryview) else chunk)
                writeback.advance(len(chunk))
                copied += len(chunk)
                if self.on_bytes is not None:
                    self.on_bytes(len(chunk))
        if raw is not None and raw.isclosed():
            # Read to its end under urllib3's feet: hand the connection back to the pool for the next
            # file (closing the response would drop it, and every small file would pay a TLS handshake).
            response.raw.release_conn()
        return copied


def _plain_body(response: requests.Response) -> http.client.HTTPResponse | None:
    """The undecoded body stream under requests and urllib3, when the bytes on the wire are the file's.

    Bodies are read from it straight into one reused buffer: requests' ``iter_content`` copies each
    chunk two or three times through freshly allocated objects (docs/benchmarks.md: 1 GiB download),
    and for a small file its generators cost more CPU than the read itself. A compressed body, or a
    urllib3 without this attribute, keeps the general path.
    """
    if response.headers.get("Content-Encoding", "identity").lower() not in ("", "identity"):
        return None
    raw = getattr(response.raw, "_fp", None)
    return raw if isinstance(raw, http.client.HTTPResponse) else None


def _read_into_buffer(raw: http.client.HTTPResponse, chunk_bytes: int, limit: int) -> Iterator[memoryview]:
    """Views of one reused buffer, each filled by ``readinto``; at most ``limit + 1`` bytes are read.

    Network failures are raised as requests' own, so that a dropped body resumes as on the general path.
    """
    view = memoryview(bytearray(chunk_bytes))
    remaining = limit + 1  # one byte past the announced size is enough to know the body is too long
    while remaining > 0:
        try:
            count = raw.readinto(view[: min(chunk_bytes, remaining)])
        except (http.client.HTTPException, OSError) as exc:
            raise requests.exceptions.ConnectionError(f"the body stopped mid-way ({type(exc).__name__})") from None
        if not count:
            if raw.length:  # the connection ended before Content-Length: http.client says so by no bytes
                raise requests.exceptions.ConnectionError("the body stopped mid-way (connection closed)")
            return
        remaining -= count
        yield view[:count]


class _Body:
    """The temp file being written and the hash of exactly the bytes it holds."""

    def __init__(self, handle: IO[Any], *, writeback: bool = True) -> None:
        self.handle = handle
        self.hasher = QuickXorHash(accelerated=True)
        self.written = 0
        # Early writeback serves the final fsync; a scratch copy that is read back at once skips both.
        self.writeback = writeback

    def reset(self) -> None:
        self.handle.seek(0)
        self.handle.truncate()
        self.hasher = QuickXorHash(accelerated=True)
        self.written = 0


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _declared_length(response: requests.Response) -> int:
    value = response.headers.get("Content-Length", "")
    return int(value) if value.isdigit() else 0


class _Hashing:
    """Feeds chunks to the hasher, for large bodies in a helper thread while the next chunk arrives.

    Leaving the block (normally or by an error) waits until every chunk given has been hashed, so
    the hasher has seen exactly the bytes written, which is what resuming after a drop relies on.
    """

    def __init__(self, hasher: QuickXorHash, *, in_background: bool) -> None:
        self.hasher = hasher
        self._queue: queue.Queue[bytes | memoryview | None] | None = None
        if in_background:
            self._queue = queue.Queue(HASH_QUEUE_CHUNKS)
        self._thread: threading.Thread | None = None
        self._failure: BaseException | None = None

    def __enter__(self) -> _Hashing:
        if self._queue is not None:
            self._thread = threading.Thread(target=self._work, name="graphcert-hash", daemon=True)
            self._thread.start()
        return self

    def update(self, chunk: bytes | memoryview) -> None:
        if self._queue is None:
            self.hasher.update(chunk)
        else:
            self._queue.put(chunk)

    def _work(self) -> None:
        assert self._queue is not None
        while (chunk := self._queue.get()) is not None:
            if self._failure is None:
                try:
                    self.hasher.update(chunk)
                except BaseException as exc:  # reported by __exit__ in the downloading thread
                    self._failure = exc

    def __exit__(self, *exc_info: object) -> None:
        if self._queue is not None and self._thread is not None:
            self._queue.put(None)
            self._thread.join()
        if self._failure is not None:
            raise self._failure


class _Writeback:
    """Hands written pages of a large body to the kernel every WRITEBACK_EVERY_BYTES (Linux).

    The final fsync then waits for the last stretch only, instead of the whole file at the end.
    """

    def __init__(self, handle: IO[Any], *, enabled: bool) -> None:
        self.handle = handle
        self.enabled = enabled and hasattr(os, "posix_fadvise")
        self._pending = 0

    def __enter__(self) -> _Writeback:
        return self

    def advance(self, count: int) -> None:
        if not self.enabled:
            return
        self._pending += count
        if self._pending >= WRITEBACK_EVERY_BYTES:
            self._pending = 0
            self.handle.flush()
            # DONTNEED starts writeback of the dirty pages (without waiting) and drops clean ones.
            os.posix_fadvise(self.handle.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)

    def __exit__(self, *exc_info: object) -> None:
        return None


def _written_so_far(handle: IO[Any]) -> int:
    handle.flush()
    size = os.fstat(handle.fileno()).st_size
    handle.seek(size)
    return size
