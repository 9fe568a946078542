"""Read a SharePoint file by byte ranges over one streamed response, reopened only on a jump.

Sequential reads (the usual case: pandas, ``shutil.copyfileobj``, a copy to S3) share one open
``Range: bytes=<start>-`` response, so a file of any size streams through one connection with
flat memory. A seek somewhere else closes it and opens a new range there. The pre-authenticated
download URL is fetched without the Authorization header and asked for again when it has expired;
a connection dropped mid-body resumes from the next byte (docs/microsoft-rules.md §B7). A read
that went through the whole file in order is checked against Graph's size and QuickXorHash.
"""

from __future__ import annotations

import logging
from typing import Any

import requests
import urllib3

from airflow_provider_graphcert.errors import GraphRequestError, GraphTransportError
from airflow_provider_graphcert.graph.client import GraphClient
from airflow_provider_graphcert.graph.retry import RetryBudget
from airflow_provider_graphcert.quickxorhash import QuickXorHash
from airflow_provider_graphcert.sharepoint.download import FileDownloader, IntegrityError, remote_hash

log = logging.getLogger(__name__)

# Statuses a stale pre-authenticated URL answers with; a fresh URL is asked for them (§B7).
_EXPIRED_URL_STATUSES = frozenset({401, 403, 404, 410})
_URL_REFRESHES = 2
# Reading ``response.raw`` raises urllib3's own errors (requests wraps them only in iter_content).
_MID_BODY_ERRORS = (
    urllib3.exceptions.ProtocolError,
    urllib3.exceptions.ReadTimeoutError,
    urllib3.exceptions.SSLError,
    requests.exceptions.ConnectionError,
    requests.exceptions.Timeout,
)
# Bytes taken from the socket per read: a connection dropped mid-body loses at most this much of
# what had arrived (urllib3 gives nothing of a read that fails), and it bounds the skip below.
READ_CHUNK_BYTES = 1024 * 1024


class RangedReader:
    """Serves ``read(start, end)`` for one file; not thread-safe (one per open file)."""

    def __init__(self, client: GraphClient, drive_id: str, item: dict[str, Any]) -> None:
        self.client = client
        self.drive_id = drive_id
        self.item = item
        self.size = int(item.get("size", 0))
        self.name = str(item.get("name", ""))
        self._downloader = FileDownloader(client)
        self._url: str | None = None
        self._response: requests.Response | None = None
        self._position = 0  # the next byte the open response will give
        self._hasher: QuickXorHash | None = QuickXorHash()
        self._hashed = 0  # bytes fed to the hasher: always the file's first bytes, in order

    def read(self, start: int, end: int) -> bytes:
        end = min(end, self.size)
        if start >= end:
            return b""
        if self._response is None or self._position != start:
            self._open(start)
        assert self.client.retry is not None
        budget = RetryBudget(self.client.retry)
        parts: list[bytes] = []
        wanted = end - start
        while wanted:
            try:
                chunk = self._raw_read(min(wanted, READ_CHUNK_BYTES))
            except _MID_BODY_ERRORS as exc:
                self._resume_after(budget, exc)
                continue
            if not chunk:
                self._resume_after(budget, None)
                continue
            parts.append(chunk)
            self._advance(chunk)
            wanted -= len(chunk)
        return b"".join(parts)

    def close(self) -> None:
        if self._response is not None:
            self._response.close()
            self._response = None

    # -- the open response ---------------------------------------------------------------------

    def _raw_read(self, count: int) -> bytes:
        assert self._response is not None
        data: bytes = self._response.raw.read(count, decode_content=True)
        return data

    def _advance(self, chunk: bytes) -> None:
        if self._hasher is not None and self._hashed == self._position:
            self._hasher.update(chunk)
            self._hashed += len(chunk)
        self._position += len(chunk)
        if self._hashed == self.size and self._hasher is not None:
            self._check_whole_file(self._hasher)
            self._hasher = None

    def _check_whole_file(self, hasher: QuickXorHash) -> None:
        expected = remote_hash(self.item)
        digest = hasher.b64digest()
        if expected and digest != expected:
            self.close()
            raise IntegrityError(
                f"{self.name!r}: the bytes read have QuickXorHash {digest}, Graph reported {expected}; "
                "the file changed while it was read or was corrupted in transit."
            )

    def _resume_after(self, budget: RetryBudget, exc: Exception | None) -> None:
        """The body ended early or the connection dropped: continue from the next byte, within budget."""
        self.close()
        what = type(exc).__name__ if exc is not None else "an early end of the body"
        delay = budget.next_delay(None)
        if delay is None:
            raise GraphTransportError(
                f"Reading {self.name!r} kept failing at byte {self._position} ({what}) after {budget.attempts} "
                "attempts."
            ) from None
        log.warning("Reading %r stopped at byte %d (%s); resuming in %.1f s.", self.name, self._position, what, delay)
        budget.spend(delay)
        self.client.sleep(delay)
        self._open(self._position)

    def _open(self, start: int) -> None:
        self.close()
        refreshes = 0
        while True:
            if self._url is None:
                self._url = self._downloader.download_url(self.drive_id, self.item)
            response = self.client.request(
                "GET",
                self._url,
                authenticated=False,
                stream=True,
                headers={"Range": f"bytes={start}-"},
                raise_for_status=False,
            )
            if response.status_code in _EXPIRED_URL_STATUSES and refreshes < _URL_REFRESHES:
                response.close()
                refreshes += 1
                self._refresh_url()
                continue
            if response.status_code not in (200, 206):
                response.close()
                raise GraphRequestError(
                    f"Reading {self.name!r} failed with HTTP {response.status_code}.", status=response.status_code
                )
            self._response = response
            self._position = 0 if response.status_code == 200 else start
            break
        if self._position != start:
            # The server ignored Range (allowed by §B7): read up to where we wanted to be.
            self._skip_to(start)

    def _refresh_url(self) -> None:
        fresh = self._downloader.fresh_item(self.drive_id, str(self.item["id"]))
        if fresh.get("eTag") != self.item.get("eTag"):
            raise IntegrityError(f"{self.name!r} changed on SharePoint while it was being read; open it again.")
        self.item = fresh
        self._url = None

    def _skip_to(self, start: int) -> None:
        while self._position < start:
            chunk = self._raw_read(min(READ_CHUNK_BYTES, start - self._position))
            if not chunk:
                raise GraphTransportError(f"Reading {self.name!r}: the body ended at byte {self._position}.")
            self._advance(chunk)
