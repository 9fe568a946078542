"""Graph error bodies -> typed exceptions with Microsoft's identifiers and a hint (docs/microsoft-rules.md §B1)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import requests

from airflow_provider_graphcert.errors import (
    GraphAccessDeniedError,
    GraphConflictError,
    GraphNotFoundError,
    GraphRequestError,
    GraphThrottledError,
)

# Which application permission a path family usually needs (least privilege first).
_PERMISSION_HINTS: tuple[tuple[str, str, str], ...] = (
    ("/sites", "Sites.Read.All (or Sites.Selected with a grant on the site)", "Sites.ReadWrite.All"),
    ("/drives", "Sites.Read.All or Files.Read.All (or Sites.Selected)", "Sites.ReadWrite.All or Files.ReadWrite.All"),
    ("/users", "User.Read.All", "User.ReadWrite.All"),
    ("/groups", "Group.Read.All or GroupMember.Read.All", "Group.ReadWrite.All"),
    ("/auditLogs", "AuditLog.Read.All", "AuditLog.Read.All"),
    ("/applications", "Application.Read.All", "Application.ReadWrite.All"),
)


def innermost_code(error: dict[str, Any]) -> str | None:
    """Walk innerError chains; the deepest code is the most specific one (docs/microsoft-rules.md §B1)."""
    code = None
    inner = error.get("innerError") or error.get("innererror")
    depth = 0
    while isinstance(inner, dict) and depth < 10:
        if isinstance(inner.get("code"), str):
            code = inner["code"]
        inner = inner.get("innerError") or inner.get("innererror")
        depth += 1
    return code


def _permission_hint(method: str, path: str, roles: list[str] | None) -> str:
    for prefix, read, write in _PERMISSION_HINTS:
        if f"{prefix}" in path:
            needed = read if method.upper() in {"GET", "HEAD"} else write
            granted = f" The token grants: {', '.join(roles)}." if roles else " The token grants no roles."
            return (
                f"The app probably lacks the application permission {needed}: add it to the app "
                f"registration and grant admin consent.{granted if roles is not None else ''}"
            )
    return "Check the app's application permissions and admin consent."


def graph_error(
    response: requests.Response, *, method: str, client_request_id: str | None, roles: list[str] | None = None
) -> GraphRequestError:
    status = response.status_code
    body: Any
    try:
        body = response.json()
    except ValueError:
        body = None
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        error = {}
    code = error.get("code") if isinstance(error.get("code"), str) else None
    inner_code = innermost_code(error)
    graph_message = error.get("message") if isinstance(error.get("message"), str) else None
    raw_inner = error.get("innerError")
    inner: dict[str, Any] = raw_inner if isinstance(raw_inner, dict) else {}
    request_id = response.headers.get("request-id") or inner.get("request-id")
    date = inner.get("date") or response.headers.get("Date")
    path = urlsplit(response.url or "").path
    summary = f"Graph {method.upper()} {path} failed with HTTP {status}"
    if code:
        summary += f" {code}" + (f"/{inner_code}" if inner_code and inner_code != code else "")
    parts = [summary + (f": {graph_message.rstrip('.')}." if graph_message else ".")]
    cls: type[GraphRequestError] = GraphRequestError
    if status == 403:
        cls = GraphAccessDeniedError
        parts.append(_permission_hint(method, path, roles))
    elif status == 404:
        cls = GraphNotFoundError
        parts.append("Check the site, library and path; the app only sees what its permissions allow.")
    elif status == 409:
        cls = GraphConflictError
    elif status in (429, 503, 504):
        cls = GraphThrottledError
        parts.append("Graph kept throttling past the retry budget; run with fewer parallel transfers or later.")
    elif status == 401:
        parts.append("The access token was refused even after a fresh one was fetched; check the app and tenant.")
    parts.append(f"[request-id={request_id}, client-request-id={client_request_id}, date={date}]")
    return cls(
        " ".join(parts),
        status=status,
        code=code,
        inner_code=inner_code,
        graph_message=graph_message,
        request_id=request_id,
        client_request_id=client_request_id,
        date=date,
        method=method.upper(),
        url=path,
    )


# From this size on, a body is parsed by pydantic-core (it parses the bytes directly, without
# requests' decode to text first): a 999-user page takes about 15% less CPU, and the 100,000-user
# export's peak RSS fell from 148 to 138 MB (docs/benchmarks.md). Smaller answers, the most common ones,
# keep the standard parser, so a plain-Python client does not pay for importing pydantic-core.
_FAST_PARSE_BYTES = 64 * 1024


def json_body(response: requests.Response | Any) -> Any:
    """The JSON of a Graph answer (a requests or an httpx response), or one error that says it was not JSON."""
    if len(response.content) >= _FAST_PARSE_BYTES:
        from pydantic_core import from_json

        try:
            return from_json(response.content)
        except ValueError:
            pass  # what it refuses (a BOM, a lone surrogate escape, ...) gets the standard parser's answer
    try:
        return response.json()
    except ValueError:
        raise GraphRequestError(
            f"Graph answered HTTP {response.status_code} with a body that is not JSON "
            f"[request-id={response.headers.get('request-id')}].",
            status=response.status_code,
            request_id=response.headers.get("request-id"),
        ) from None
