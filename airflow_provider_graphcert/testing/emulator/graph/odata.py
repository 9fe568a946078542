"""OData query options as Graph reads them, next links (B3) and signed skiptokens."""

from __future__ import annotations

import base64
import json
import re
import secrets
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote, unquote

from starlette.requests import Request

from airflow_provider_graphcert.testing.emulator.graph.common import GraphError, invalid_request, not_implemented
from airflow_provider_graphcert.testing.emulator.graph.state import GraphState

# -- query options -------------------------------------------------------------------------------

# OData's system query options (without '$'). One a resource does not support answers 501.
SYSTEM_QUERY_OPTIONS = frozenset(
    {"select", "expand", "filter", "orderby", "top", "skip", "skiptoken", "count", "search", "format",
     "compute", "apply", "levels", "deltatoken", "index", "schemaversion", "id"}
)  # fmt: skip


def check_options(options: Mapping[str, str], supported: set[str] | frozenset[str], resource: str) -> None:
    """Nothing is silently ignored: a system query option this resource lacks here answers 501."""
    for name in options:
        if name in SYSTEM_QUERY_OPTIONS and name not in supported:
            raise not_implemented(f"the ${name} query option on {resource}")


def query_options(request: Request) -> dict[str, str]:
    """Query options by lower-case name without '$': Graph accepts '$top' and 'top' alike."""
    options: dict[str, str] = {}
    for key, value in request.query_params.multi_items():
        options[key.lower().removeprefix("$")] = value
    return options


def parse_top(options: Mapping[str, str], default: int, maximum: int, *, strict: bool = False) -> int:
    """$top; ``strict`` answers 400 past the maximum (directory), otherwise it is capped (B3)."""
    raw = options.get("top")
    if raw is None:
        return default
    try:
        top = int(raw)
    except ValueError:
        raise invalid_request(f"Invalid $top value {raw!r}.") from None
    if top < 1 or (strict and top > maximum):
        raise GraphError(
            400,
            "Request_UnsupportedQuery" if strict else "invalidRequest",
            f"Invalid page size specified: '{raw}'. Must be between 1 and {maximum} inclusive.",
        )
    return min(top, maximum)


def parse_select(options: Mapping[str, str]) -> list[str] | None:
    raw = options.get("select")
    if not raw:
        return None
    return [name.strip() for name in raw.split(",") if name.strip()]


def split_top_level(text: str, separator: str) -> list[str]:
    """Split on ``separator`` outside parentheses: 'fields(select=a,b),x' -> ['fields(select=a,b)', 'x']."""
    parts: list[str] = []
    depth = 0
    current = ""
    for char in text:
        depth += char == "("
        depth -= char == ")"
        if char == separator and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    return [part.strip() for part in parts if part.strip()]


def parse_expand(options: Mapping[str, str]) -> dict[str, list[str] | None]:
    """B11: expand=fields, expand=fields(select=A,B) or $expand=fields($select=A,B)."""
    expand: dict[str, list[str] | None] = {}
    for part in split_top_level(options.get("expand", ""), ","):
        name, _, rest = part.partition("(")
        select: list[str] | None = None
        for option in split_top_level(rest.rstrip(")"), ";"):
            key, _, value = option.partition("=")
            if key.strip().lower().removeprefix("$") == "select":
                select = [column.strip() for column in value.split(",") if column.strip()]
        expand[name.strip()] = select
    return expand


def context_url(request: Request, fragment: str) -> str:
    """@odata.context: '{service root}/$metadata#{fragment}', e.g. '#users' or '#users/$entity'."""
    root = str(request.scope.get("root_path", ""))
    return f"{request.url.scheme}://{request.url.netloc}{root}/$metadata#{fragment}"


def raw_path(request: Request) -> str:
    """The path as the client encoded it: nextLinks must keep its percent-encoding."""
    raw = request.scope.get("raw_path")
    if isinstance(raw, bytes) and raw:
        return raw.decode("latin-1").partition("?")[0]
    return quote(request.url.path)


def link_with(request: Request, replace: Mapping[str, str], drop: Sequence[str] = ()) -> str:
    """B3: an absolute link to this resource keeping every original query option except the replaced ones."""
    url = request.url
    removed = {name.lower().removeprefix("$") for name in [*replace, *drop]}
    kept = [
        part
        for part in url.query.split("&")
        if part and unquote(part.partition("=")[0]).lower().removeprefix("$") not in removed
    ]
    kept += [f"{quote(name, safe='$')}={quote(value, safe='')}" for name, value in replace.items()]
    query = "&".join(kept)
    return f"{url.scheme}://{url.netloc}{raw_path(request)}" + (f"?{query}" if query else "")


def function_link(
    request: Request, replace: Mapping[str, str], drop: Sequence[str] = (), *, keep_arguments: bool = False
) -> str:
    """A next/delta link for a function call: '…/delta(token='x')' becomes '…/delta?token=y'."""
    link = link_with(request, replace, drop)
    if keep_arguments:
        return link
    base, question, query = link.partition("?")
    base = re.sub(r"\([^/]*\)$", "", base)
    return base + question + query


def collection_context(request: Request, entity_type: str) -> str:
    return context_url(request, f"Collection(microsoft.graph.{entity_type})")


# -- paging tokens -------------------------------------------------------------------------------


def encode_skiptoken(state: GraphState, kind: str, position: Any) -> str:
    payload = base64.urlsafe_b64encode(json.dumps([kind, position]).encode()).decode().rstrip("=")
    return f"{payload}.{state.sign('skiptoken', payload)}"


def decode_skiptoken(state: GraphState, kind: str, token: str | None) -> Any:
    if token is None:
        return None
    payload, _, mac = token.partition(".")
    if not secrets.compare_digest(mac, state.sign("skiptoken", payload)):
        raise invalid_request("Invalid $skiptoken.")
    token_kind, position = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    if token_kind != kind:
        raise invalid_request("The $skiptoken belongs to another collection.")
    return position
