"""Download drive items: streamed, hash-checked, resumed with Range, landed atomically.

A file is written to a temp file beside its final name, hashed (QuickXorHash) as bytes arrive,
checked against Graph's size and hash, fsynced, renamed into place and given the remote modified
time. A connection dropped mid-body resumes from the last byte with ``Range`` (reference B7). The
pre-authenticated URL is fetched without the Authorization header; when it has expired, a fresh
one is asked for.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Any

import requests

from airflow_provider_graphcert.errors import GraphCertError, GraphRequestError, GraphTransportError
from airflow_provider_graphcert.files import atomic_writer
from airflow_provider_graphcert.graph.client import GraphClient
from airflow_provider_graphcert.graph.retry import RetryBudget
from airflow_provider_graphcert.quickxorhash import QuickXorHash

log = logging.getLogger(__name__)

# 1 MiB reads keep memory flat for any file size and syscalls few.
DOWNLOAD_CHUNK_BYTES = 1024 * 1024
# Bodies this large are hashed in a helper thread while the next chunk arrives, and their pages are
# written back as they come rather than all by the final fsync (docs/benchmarks.md: 1 GiB download).
PIPELINE_MIN_BYTES = 32 * 1024 * 1024
WRITEBACK_EVERY_BYTES = 64 * 1024 * 1024
# Chunks waiting for the hash thread (so at most this many MiB more in memory).
HASH_QUEUE_CHUNKS = 8
# Statuses a stale pre-authenticated URL answers with; a fresh URL is fetched for them.
_EXPIRED_URL_STATUSES = frozenset({401, 403, 404, 410})
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

    def as_dict(self) -> dict[str, Any]:
        return {"path": self.path, "item_id": self.item_id, "size": self.size, "quickXorHash": self.quick_xor_hash}


def remote_hash(item: dict[str, Any]) -> str | None:
    hashes = (item.get("file") or {}).get("hashes") or {}
    value = hashes.get("quickXorHash")
    return str(value) if value else None


def remote_mtime(item: dict[str, Any]) -> float | None:
    stamp = (item.get("fileSystemInfo") or {}).get("lastModifiedDateTime") or item.get("lastModifiedDateTime")
    if not stamp:
        return None
    try:
        return datetime.fromisoformat(str(stamp).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


class FileDownloader:
    """Downloads single files; thread-safe (one per folder job, shared by its workers)."""

    def __init__(
        self,
        client: GraphClient,
        *,
        chunk_bytes: int = DOWNLOAD_CHUNK_BYTES,
        on_bytes: Callable[[int], None] | None = None,
    ) -> None:
        self.client = client
        self.chunk_bytes = chunk_bytes
        self.on_bytes = on_bytes

    def fresh_item(self, drive_id: str, item_id: str) -> dict[str, Any]:
        item: dict[str, Any] = self.client.get_json(f"drives/{drive_id}/items/{item_id}")
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

    def download(self, drive_id: str, item: dict[str, Any], target: Path) -> DownloadedFile:
        if "file" not in item:
            raise GraphCertError(f"Item {item.get('name')!r} is not a file.")
        expected_size = int(item.get("size", -1))
        expected_hash = remote_hash(item)
        url = self.download_url(drive_id, item)
        assert self.client.retry is not None
        budget = RetryBudget(self.client.retry)
        url_refreshes = 0
        resumed = 0
        with atomic_writer(target, "wb") as handle:
            hasher = QuickXorHash()
            written = 0
            while True:
                headers = {"Range": f"bytes={written}-"} if written else None
                response = self.client.request(
                    "GET", url, authenticated=False, stream=True, headers=headers, raise_for_status=False
                )
                if response.status_code in _EXPIRED_URL_STATUSES and url_refreshes < 2:
                    response.close()
                    url_refreshes += 1
                    item = self.fresh_item(drive_id, str(item["id"]))
                    url = self.download_url(drive_id, item)
                    continue
                if response.status_code not in (200, 206):
                    response.close()
                    raise GraphRequestError(
                        f"Downloading {item.get('name')!r} failed with HTTP {response.status_code}.",
                        status=response.status_code,
                    )
                if written and response.status_code == 200:
                    # The server ignored Range (allowed, reference B7): start over.
                    handle.seek(0)
                    handle.truncate()
                    hasher, written = QuickXorHash(), 0
                try:
                    written += self._copy(response, handle, hasher)
                    break
                except _MID_BODY_ERRORS as exc:
                    written = _written_so_far(handle)
                    delay = budget.next_delay(None)
                    if delay is None:
                        raise GraphTransportError(
                            f"Downloading {item.get('name')!r} kept failing mid-body ({type(exc).__name__}) "
                            f"after {budget.attempts} attempts; {written} bytes were received."
                        ) from None
                    log.warning(
                        "Download of %r dropped at %d bytes (%s); resuming in %.1f s.",
                        item.get("name"),
                        written,
                        type(exc).__name__,
                        delay,
                    )
                    budget.spend(delay)
                    self.client.sleep(delay)
                    # The hasher saw exactly the chunks written before the drop, so it carries on.
                    resumed += 1
                finally:
                    response.close()
            digest = hasher.b64digest()
            if expected_size >= 0 and written != expected_size:
                raise IntegrityError(
                    f"{item.get('name')!r}: received {written} bytes, Graph reported {expected_size}; "
                    "the file was not written."
                )
            if expected_hash and digest != expected_hash:
                raise IntegrityError(
                    f"{item.get('name')!r}: QuickXorHash {digest} does not match Graph's {expected_hash}; "
                    "the file was not written."
                )
        mtime = remote_mtime(item)
        if mtime is not None:
            os.utime(target, (mtime, mtime))
        return DownloadedFile(
            path=str(target),
            item_id=str(item["id"]),
            size=written,
            quick_xor_hash=digest,
            e_tag=item.get("eTag"),
            resumed=resumed,
        )

    def _copy(self, response: requests.Response, handle: IO[Any], hasher: QuickXorHash) -> int:
        large = _declared_length(response) >= PIPELINE_MIN_BYTES
        copied = 0
        with _Hashing(hasher, in_background=large) as hashing, _Writeback(handle, enabled=large) as writeback:
            for chunk in response.iter_content(chunk_size=self.chunk_bytes):
                if not chunk:
                    continue
                handle.write(chunk)
                hashing.update(chunk)
                writeback.advance(len(chunk))
                copied += len(chunk)
                if self.on_bytes is not None:
                    self.on_bytes(len(chunk))
        return copied


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
        self._queue: queue.Queue[bytes | None] | None = queue.Queue(HASH_QUEUE_CHUNKS) if in_background else None
        self._thread: threading.Thread | None = None
        self._failure: BaseException | None = None

    def __enter__(self) -> _Hashing:
        if self._queue is not None:
            self._thread = threading.Thread(target=self._work, name="graphcert-hash", daemon=True)
            self._thread.start()
        return self

    def update(self, chunk: bytes) -> None:
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
