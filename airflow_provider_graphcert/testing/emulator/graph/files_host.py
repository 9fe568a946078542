"""The pre-authenticated files host: download URLs with Range (B7) and upload-session URLs (B9)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Awaitable, Callable, Iterator
from typing import IO, Any
from urllib.parse import quote

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from airflow_provider_graphcert.testing.emulator.graph.calls import drain, receive_body
from airflow_provider_graphcert.testing.emulator.graph.common import GraphError, item_not_found
from airflow_provider_graphcert.testing.emulator.graph.render import (
    _STREAM_CHUNK_BYTES,
    DOWNLOAD_PATH,
    MONITOR_PATH,
    UPLOAD_PATH,
    error_response,
    iso_millis,
    item_json,
    json_response,
    stamp,
)
from airflow_provider_graphcert.testing.emulator.graph.state import GraphState
from airflow_provider_graphcert.testing.emulator.graph.uploads import UploadOutcome, UploadSession

# -- the files origin (B7, B9) --------------------------------------------------------------------


class FilesApi:
    """Pre-authenticated download and upload-session URLs. They carry their own credential, so a
    request that also sends an Authorization header is refused with 401 (B7, B9)."""

    def __init__(self, state: GraphState) -> None:
        self.state = state

    def routes(self) -> list[BaseRoute]:
        return [
            Route(DOWNLOAD_PATH, self.endpoint(self.download), methods=["GET", "HEAD"]),
            Route(UPLOAD_PATH, self.endpoint(self.upload), methods=["GET", "PUT", "POST", "DELETE"]),
            Route(MONITOR_PATH + "/{token}", self.endpoint(self.monitor), methods=["GET"]),
        ]

    def endpoint(self, handler: Callable[[Request], Awaitable[Response]]) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            request_id = str(uuid.uuid4())
            client_request_id = request.headers.get("client-request-id")
            try:
                if "authorization" in request.headers:
                    raise GraphError(
                        401,
                        "unauthenticated",
                        "Pre-authenticated URLs must be requested without an Authorization header.",
                    )
                response = await handler(request)
            except GraphError as exc:
                response = error_response(exc, request_id, client_request_id)
                await drain(request)
            except ClientDisconnect:
                # The client gave up mid-request (its timeout, a cut connection): nobody is left to answer.
                response = Response(status_code=400)
            return stamp(response, request_id, client_request_id)

        return endpoint

    # -- download ------------------------------------------------------------------------------

    async def download(self, request: Request) -> Response:
        item = self.state.resolve_download(request.query_params.get("tempauth", ""))
        blob, size = item.blob, item.size
        if blob is None:
            raise item_not_found()
        headers = {
            "Accept-Ranges": "bytes",
            "ETag": item.etag,
            "Content-Disposition": f"attachment; filename*=UTF-8''{quote(item.name)}",
        }
        span = parse_range(request.headers.get("range"), size)
        start, end = span if span is not None else (0, size - 1)
        length = max(0, end - start + 1)
        headers["Content-Length"] = str(length)
        status = 200
        if span is not None:
            status = 206
            headers["Content-Range"] = f"bytes {start}-{end}/{size}"
        if request.method == "HEAD":
            return Response(status_code=status, headers=headers, media_type=item.mime_type)
        try:
            handle = open(blob, "rb")  # noqa: SIM115 - closed by the streaming generator
        except FileNotFoundError:
            raise item_not_found("The file changed; request a new download URL.") from None
        return StreamingResponse(
            stream_file(handle, start, length), status_code=status, headers=headers, media_type=item.mime_type
        )

    # -- long-running actions ------------------------------------------------------------------

    async def monitor(self, request: Request) -> Response:
        """The status of a copy: always finished here, naming the new item as ``resourceId``."""
        resource_id = self.state.resolve_copy_monitor(request.path_params["token"])
        return json_response(
            {"operation": "itemCopy", "percentageComplete": 100.0, "resourceId": resource_id, "status": "completed"}
        )

    # -- upload sessions -------------------------------------------------------------------------

    async def upload(self, request: Request) -> Response:
        session = self.state.upload_session(
            request.query_params.get("guid", ""), request.query_params.get("tempauth", "")
        )
        if request.method == "GET":
            return json_response(self.status_json(session))
        if request.method == "DELETE":
            self.state.cancel_upload_session(session)
            return Response(status_code=204)
        if request.method == "POST":
            # B9: with deferCommit, an empty POST to the upload URL completes the file.
            await drain(request)
            return self.outcome_response(request, self.state.commit_upload(session))
        return await self.put_fragment(request, session)

    async def put_fragment(self, request: Request, session: UploadSession) -> Response:
        start, end, total = parse_content_range(request.headers.get("content-range"))
        check_content_length(request.headers.get("content-length"), end - start + 1)
        writer = self.state.begin_fragment(session, start, end, total)
        try:
            failure = await receive_body(request, writer.write)
        except BaseException:
            self.state.abort_fragment(writer)
            raise
        if failure is not None:
            self.state.abort_fragment(writer)
            raise failure
        return self.outcome_response(request, self.state.finish_fragment(writer))

    def outcome_response(self, request: Request, outcome: UploadOutcome) -> Response:
        if outcome.item is None:
            return json_response(self.status_json(outcome.session), 202)
        files_base = str(request.base_url).rstrip("/")
        return json_response(item_json(self.state, outcome.item, files_base), 201 if outcome.created else 200)

    @staticmethod
    def status_json(session: UploadSession) -> dict[str, Any]:
        return {"expirationDateTime": iso_millis(session.expires), "nextExpectedRanges": session.next_expected_ranges}


def files_routes(state: GraphState) -> list[BaseRoute]:
    """Routes of the files origin (download and upload-session URLs), mounted at its root."""
    return FilesApi(state).routes()


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """B7: one 'bytes=' range -> (start, end); several ranges are ignored (the server may send all)."""
    if not header or not header.startswith("bytes=") or "," in header:
        return None
    first, dash, last = header[6:].strip().partition("-")
    if not dash or not (first.isdigit() or last.isdigit()):
        return None
    if not first:
        suffix = int(last)
        if suffix == 0 or size == 0:
            raise range_not_satisfiable(size)
        return max(0, size - suffix), size - 1
    start = int(first)
    if start >= size or (last.isdigit() and int(last) < start):
        raise range_not_satisfiable(size)
    return start, min(int(last), size - 1) if last.isdigit() else size - 1


def range_not_satisfiable(size: int) -> GraphError:
    return GraphError(
        416, "invalidRange", "The requested range is not satisfiable.", headers={"Content-Range": f"bytes */{size}"}
    )


def parse_content_range(header: str | None) -> tuple[int, int, int]:
    """B9: 'bytes {start}-{end}/{total}', total required."""
    match = re.fullmatch(r"\s*bytes\s+(\d+)-(\d+)/(\d+)\s*", header or "")
    if match is None:
        raise GraphError(400, "invalidRange", "A Content-Range header 'bytes {start}-{end}/{total}' is required.")
    start, end, total = (int(group) for group in match.groups())
    return start, end, total


def check_content_length(header: str | None, expected: int) -> None:
    if header is None or not header.isdigit():
        raise GraphError(411, "invalidRequest", "A Content-Length header is required.")
    if int(header) != expected:
        raise GraphError(
            400,
            "invalidRange",
            f"Content-Length {header} does not match the Content-Range length {expected}.",
            inner_code="fragmentLengthMismatch",
        )


def stream_file(handle: IO[bytes], start: int, length: int) -> Iterator[bytes]:
    """Read a body from disk a chunk at a time (Starlette runs this in a worker thread)."""
    try:
        handle.seek(start)
        remaining = length
        while remaining > 0:
            chunk = handle.read(min(_STREAM_CHUNK_BYTES, remaining))
            if not chunk:
                break
            remaining -= len(chunk)
            yield chunk
    finally:
        handle.close()
