"""JSON batching (docs/microsoft-rules.md §B5): inner requests run through the same routes, in-process."""

from __future__ import annotations

import base64
import binascii
import json
import secrets
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any
from urllib.parse import unquote

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Router
from starlette.types import Message, Scope

from airflow_provider_graphcert.testing.emulator.graph.calls import GraphCall, RouteBase, read_json
from airflow_provider_graphcert.testing.emulator.graph.common import MAX_BATCH_REQUESTS, GraphError, invalid_request
from airflow_provider_graphcert.testing.emulator.graph.render import ODATA_JSON, error_body, json_response

# Decides whether a $batch inner request fails: (status, Retry-After seconds) or None.
InnerFaults = Callable[[str, str], "tuple[int, int | None] | None"]
THROTTLED_TEXT = "The request has been throttled"


class BatchRoutes(RouteBase):
    """POST /$batch."""

    inner_faults: InnerFaults | None
    router: Router | None

    async def batch(self, call: GraphCall) -> Response:
        self._only(call, "POST")
        payload = await read_json(call.request)
        requests = validate_batch(payload)
        outcomes: dict[str, dict[str, Any]] = {}
        for entry in batch_order(requests):
            request_id = str(entry["id"])
            failed = [d for d in entry.get("dependsOn") or [] if outcomes[str(d).lower()]["status"] >= 400]
            if failed:
                outcomes[request_id.lower()] = failed_dependency(request_id, call, failed)
                continue
            try:
                outcomes[request_id.lower()] = await self.run_inner(call, entry)
            except GraphError as exc:
                outcomes[request_id.lower()] = inner_error(request_id, call, exc)
        responses = list(outcomes.values())
        if self.state.shuffle_batch_responses:
            # B5: responses may come back in any order; clients must match them by id.
            secrets.SystemRandom().shuffle(responses)
        return json_response({"responses": responses})

    async def run_inner(self, call: GraphCall, entry: Mapping[str, Any]) -> dict[str, Any]:
        headers = {str(k).lower(): str(v) for k, v in (entry.get("headers") or {}).items()}
        body = inner_body(entry.get("body"), headers.get("content-type", ""))
        path, _, query = str(entry["url"]).lstrip("/").partition("?")
        if path.split("/")[0].lower() == "$batch":
            raise invalid_request("A batch cannot contain another $batch.")
        # B5: each inner request is throttled on its own, so a 429 can sit inside a 200 batch.
        fault = self.inner_faults(str(entry["method"]).upper(), f"/v1.0/{path}") if self.inner_faults else None
        if fault is not None:
            status, retry_after = fault
            error = inner_error(str(entry["id"]), call, GraphError(status, "activityLimitReached", THROTTLED_TEXT))
            if retry_after is not None:
                error["headers"]["Retry-After"] = str(retry_after)
            return error
        status, response_headers, content = await self.dispatch(
            call.request, str(entry["method"]), path, query, headers, body
        )
        result: dict[str, Any] = {"id": str(entry["id"]), "status": status, "headers": response_headers}
        if content:
            result["body"] = render_inner_body(content, response_headers.get("Content-Type", ""))
        return result

    async def dispatch(
        self, outer: Request, method: str, path: str, query: str, headers: Mapping[str, str], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        """Run one inner request through the same routes, in-process."""
        assert self.router is not None
        root_path = str(outer.scope.get("root_path", ""))
        header_list = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers.items() if k != "content-length"]
        for name in ("authorization", "host", "client-request-id"):
            if name not in headers and name in outer.headers:
                header_list.append((name.encode(), outer.headers[name].encode("latin-1")))
        header_list.append((b"content-length", str(len(body)).encode()))
        scope: Scope = {
            key: outer.scope[key]
            for key in ("type", "http_version", "scheme", "server", "client")
            if key in outer.scope
        }
        scope.update(
            method=method.upper(),
            path=f"{root_path}/{unquote(path)}",
            raw_path=f"{root_path}/{path}".encode("latin-1", "replace"),
            root_path=root_path,
            query_string=query.encode("latin-1", "replace"),
            headers=header_list,
        )
        return await run_asgi(self.router, scope, body)


def validate_batch(payload: Mapping[str, Any]) -> list[dict[str, Any]]:
    """B5: the whole batch is 400 when malformed; otherwise each request gets its own status."""
    requests = payload.get("requests")
    if not isinstance(requests, list) or not requests:
        raise GraphError(400, "BadRequest", "The batch needs a non-empty 'requests' array.")
    if len(requests) > MAX_BATCH_REQUESTS:
        raise GraphError(
            400, "BadRequest", f"The batch has {len(requests)} requests; the limit is {MAX_BATCH_REQUESTS}."
        )
    seen: set[str] = set()
    for entry in requests:
        if not isinstance(entry, dict) or not all(isinstance(entry.get(k), str) for k in ("id", "method", "url")):
            raise GraphError(400, "BadRequest", "Each batch request needs string 'id', 'method' and 'url'.")
        # B5: ids are not case-sensitive and must be unique.
        if entry["id"].lower() in seen:
            raise GraphError(400, "BadRequest", f"Batch request id '{entry['id']}' is not unique.")
        seen.add(entry["id"].lower())
        headers = {str(k).lower() for k in (entry.get("headers") or {})}
        if "body" in entry and "content-type" not in headers:
            raise GraphError(
                400, "BadRequest", f"Write request id : {entry['id']} does not contain Content-Type header or body."
            )
    for entry in requests:
        for dependency in entry.get("dependsOn") or []:
            if str(dependency).lower() not in seen:
                raise GraphError(400, "BadRequest", f"Request '{entry['id']}' depends on unknown id '{dependency}'.")
    return requests


def batch_order(requests: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Dependencies first, otherwise the order given; a dependsOn cycle makes the batch 400."""
    done: set[str] = set()
    pending = list(requests)
    while pending:
        ready = [r for r in pending if all(str(d).lower() in done for d in r.get("dependsOn") or [])]
        if not ready:
            raise GraphError(400, "BadRequest", "The batch's dependsOn references form a cycle.")
        for entry in ready:
            done.add(entry["id"].lower())
            yield entry
        pending = [r for r in pending if r not in ready]


def failed_dependency(request_id: str, call: GraphCall, failed: Sequence[Any]) -> dict[str, Any]:
    """B5: a request whose dependency failed is not run and answers 424."""
    message = f"Request failed because it depends on failed request(s) {', '.join(map(str, failed))}."
    return inner_error(request_id, call, GraphError(424, "FailedDependency", message))


def inner_error(request_id: str, call: GraphCall, exc: GraphError) -> dict[str, Any]:
    body = error_body(
        exc.code,
        exc.message,
        request_id=call.request_id,
        client_request_id=call.request.headers.get("client-request-id"),
        inner_code=exc.inner_code,
    )
    return {"id": request_id, "status": exc.status, "headers": {"Content-Type": ODATA_JSON}, "body": body}


def inner_body(body: Any, content_type: str) -> bytes:
    """B5: an inner body is JSON, or base64 for binary content."""
    if body is None:
        return b""
    if "json" in content_type.lower() or not isinstance(body, str):
        return json.dumps(body).encode("utf-8")
    try:
        return base64.b64decode(body, validate=True)
    except binascii.Error:
        return body.encode("utf-8")


def render_inner_body(content: bytes, content_type: str) -> Any:
    if "json" in content_type.lower():
        try:
            return json.loads(content)
        except ValueError:
            pass
    return base64.b64encode(content).decode("ascii")


async def run_asgi(app: Router, scope: Scope, body: bytes) -> tuple[int, dict[str, str], bytes]:
    sent_body = False
    status = 500
    headers: dict[str, str] = {}
    chunks: list[bytes] = []

    async def receive() -> Message:
        nonlocal sent_body
        if not sent_body:
            sent_body = True
            return {"type": "http.request", "body": body, "more_body": False}
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = int(message["status"])
            for key, value in message.get("headers", []):
                name = key.decode("latin-1").title()
                if name.lower() not in {"content-length", "date"}:
                    headers[name] = value.decode("latin-1")
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(scope, receive, send)
    return status, headers, b"".join(chunks)
