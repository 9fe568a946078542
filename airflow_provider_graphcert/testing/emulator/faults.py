"""A fault switchboard: make any emulated route throttle, fail, stall, drop the connection or lie.

Kept apart from the state and the routes (as moto keeps its backends apart from its responses)
so every origin (authority, Graph, files) gets the same faults by wrapping its ASGI app in
:class:`FaultMiddleware`; rules with ``origin="batch"`` apply to requests inside a $batch.
Rules are matched against the request path; what a fault's body looks like is up to the origin
(an Entra error JSON for the authority, a Graph error JSON elsewhere), passed in as a renderer.

A *tamper* rule lets the route answer and then rewrites that answer (body, headers, status, a
Content-Length that lies) before it leaves: a hostile or broken service for robustness tests,
without weakening the state's own rules.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import email.utils
import itertools
import json
import random
import re
import threading
import uuid
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

DropMode = Literal["before_response", "mid_body"]
DROP_MODES: tuple[DropMode, ...] = ("before_response", "mid_body")
# Statuses a fault may answer with: throttling and the server errors clients must survive
# (docs/microsoft-rules.md §B2: Graph and the SDK retry 429, 500, 502, 503, 504, 509).
FAULT_STATUSES = frozenset({429, 500, 502, 503, 504, 509})
# Path of the Entra token endpoint for any tenant, for ``route=``.
TOKEN_ENDPOINT_ROUTE = r"/oauth2/v2\.0/token$"
# docs/microsoft-rules.md §B1: the message of a real Graph throttling answer.
THROTTLED_MESSAGE = "The request has been throttled"


@dataclass(frozen=True)
class FaultResponse:
    """What an origin answers when a status fault fires (body and headers, no status)."""

    body: bytes
    headers: list[tuple[str, str]] = field(default_factory=list)


FaultRenderer = Callable[[Scope, int], FaultResponse]
ConnectionDropper = Callable[[Scope], Awaitable[None]]


@dataclass(frozen=True)
class CapturedResponse:
    """A route's real answer as a tamper rule sees it; the rule returns a rewritten copy.

    ``declared_length`` announces a Content-Length whatever the body is: shorter than the body
    cuts it there, longer sends the whole body and then drops the connection, as a lying server
    would.
    """

    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes
    declared_length: int | None = None

    def header(self, name: str) -> str | None:
        wanted = name.lower()
        return next((value for key, value in self.headers if key == wanted), None)

    def with_header(self, name: str, value: str) -> CapturedResponse:
        wanted = name.lower()
        kept = tuple((key, v) for key, v in self.headers if key != wanted)
        return replace(self, headers=(*kept, (wanted, value)))

    def json(self) -> Any:
        return json.loads(self.body)

    def with_json(self, data: Any) -> CapturedResponse:
        return replace(self, body=json.dumps(data).encode("utf-8"))


ResponseEdit = Callable[[CapturedResponse], CapturedResponse]


def edit_json(change: Callable[[Any], Any]) -> ResponseEdit:
    """A tamper edit that rewrites the parsed JSON body with ``change`` (which may mutate and return it)."""

    def edit(response: CapturedResponse) -> CapturedResponse:
        return response.with_json(change(response.json()))

    return edit


def replace_body(body: bytes, *, content_type: str = "application/json") -> ResponseEdit:
    """A tamper edit that answers ``body`` (e.g. malformed JSON) with the route's status."""

    def edit(response: CapturedResponse) -> CapturedResponse:
        return replace(response, body=body).with_header("content-type", content_type)

    return edit


def set_header(name: str, value: str, *, status: int | None = None) -> ResponseEdit:
    """A tamper edit that sets one header (a foreign Location, a huge Retry-After ...), optionally the status."""

    def edit(response: CapturedResponse) -> CapturedResponse:
        edited = response.with_header(name, value)
        return replace(edited, status=status) if status is not None else edited

    return edit


def declare_length(change: Callable[[int], int]) -> ResponseEdit:
    """A tamper edit whose Content-Length lies: ``change(real length)`` is announced instead."""

    def edit(response: CapturedResponse) -> CapturedResponse:
        return replace(response, declared_length=max(0, change(len(response.body))))

    return edit


@dataclass
class FaultRule:
    """One line on the switchboard; ``fired`` counts how often it acted."""

    id: int
    route: re.Pattern[str] | None
    method: str | None
    origin: str | None
    status: int | None
    retry_after: int | None
    latency: float
    drop: DropMode | None
    drop_after_bytes: int | None
    times: int | None
    probability: float | None
    skip: int
    edit: ResponseEdit | None = None
    fired: int = 0
    seen: int = 0

    def matches(self, origin: str, method: str, path: str) -> bool:
        return (
            (self.origin is None or self.origin == origin)
            and (self.method is None or self.method == method)
            and (self.route is None or self.route.search(path) is not None)
        )

    @property
    def exhausted(self) -> bool:
        return self.times is not None and self.fired >= self.times

    @property
    def kind(self) -> str:
        if self.edit is not None:
            return "tamper"
        if self.drop is not None:
            return f"drop:{self.drop}"
        if self.status is not None:
            return str(self.status)
        return "latency"


@dataclass(frozen=True)
class InjectedFault:
    """A record of one fault that fired, for assertions in tests."""

    rule_id: int
    origin: str
    method: str
    path: str
    kind: str
    status: int | None


@dataclass(frozen=True)
class FaultDecision:
    latency: float
    rule: FaultRule | None


class FaultSwitchboard:
    """Rules that turn matching requests into faults; thread-safe, seeded for repeatable chaos."""

    def __init__(self, seed: int | None = 0) -> None:
        self._lock = threading.Lock()
        self._rules: list[FaultRule] = []
        self._injected: list[InjectedFault] = []
        self._ids = itertools.count(1)
        self._random = random.Random(seed)  # chaos, not cryptography

    def add(
        self,
        route: str | re.Pattern[str] | None = None,
        *,
        status: int | None = None,
        retry_after: int | None = None,
        latency: float = 0.0,
        drop: DropMode | None = None,
        drop_after_bytes: int | None = None,
        times: int | None = None,
        probability: float | None = None,
        skip: int = 0,
        method: str | None = None,
        origin: str | None = None,
        edit: ResponseEdit | None = None,
    ) -> FaultRule:
        """Add a rule; ``route`` is a regular expression searched in the path (None: every path).

        ``times`` limits how often it fires (None: no limit), ``probability`` makes each matching
        request fire with that chance (drawn from the seeded generator), ``skip`` lets that many
        matching requests through first. A rule with only ``latency`` delays and passes on;
        ``edit`` rewrites the route's real answer (see :meth:`tamper`).
        """
        _check_rule(status, retry_after, latency, drop, times, probability, tampers=edit is not None)
        if edit is not None and (status is not None or drop is not None):
            raise ValueError("a tamper rule rewrites the route's answer; it takes no status or drop mode")
        rule = FaultRule(
            id=next(self._ids),
            route=re.compile(route) if isinstance(route, str) else route,
            method=method.upper() if method else None,
            origin=origin,
            status=status,
            retry_after=retry_after,
            latency=latency,
            drop=drop,
            drop_after_bytes=drop_after_bytes,
            times=times,
            probability=probability,
            skip=skip,
            edit=edit,
        )
        with self._lock:
            self._rules.append(rule)
        return rule

    def tamper(
        self,
        route: str | re.Pattern[str] | None,
        edit: ResponseEdit,
        *,
        times: int | None = 1,
        origin: str | None = None,
        method: str | None = None,
    ) -> FaultRule:
        """Let the route answer, then rewrite the answer with ``edit`` before it is sent.

        For hostile-service tests: a nextLink or download URL on another host, malformed JSON, a
        huge Retry-After, a Content-Length that lies (see ``edit_json``, ``replace_body``,
        ``set_header``, ``declare_length``).
        """
        return self.add(route, edit=edit, times=times, origin=origin, method=method)

    def throttle(
        self, route: str | re.Pattern[str] | None = None, *, retry_after: int | None = 1, times: int | None = 1
    ) -> FaultRule:
        """429 Too Many Requests with Retry-After in whole seconds (docs/microsoft-rules.md §B2)."""
        return self.add(route, status=429, retry_after=retry_after, times=times)

    def fail(
        self, route: str | re.Pattern[str] | None = None, *, status: int = 503, times: int | None = 1
    ) -> FaultRule:
        return self.add(route, status=status, times=times)

    def drop_connection(
        self, route: str | re.Pattern[str] | None = None, *, mode: DropMode = "before_response", times: int | None = 1
    ) -> FaultRule:
        return self.add(route, drop=mode, times=times)

    def delay(
        self, route: str | re.Pattern[str] | None = None, *, seconds: float, times: int | None = None
    ) -> FaultRule:
        return self.add(route, latency=seconds, times=times)

    def remove(self, rule: FaultRule) -> None:
        with self._lock:
            self._rules = [item for item in self._rules if item.id != rule.id]

    def clear(self) -> None:
        """Remove every rule and forget what was injected."""
        with self._lock:
            self._rules.clear()
            self._injected.clear()

    def seed(self, seed: int) -> None:
        with self._lock:
            self._random.seed(seed)

    @property
    def rules(self) -> list[FaultRule]:
        with self._lock:
            return list(self._rules)

    @property
    def injected(self) -> list[InjectedFault]:
        with self._lock:
            return list(self._injected)

    def count(self, route: str | re.Pattern[str] | None = None, *, kind: str | None = None) -> int:
        """How many faults fired, optionally only on paths matching ``route`` or of one ``kind``."""
        pattern = re.compile(route) if isinstance(route, str) else route
        return sum(
            1
            for item in self.injected
            if (pattern is None or pattern.search(item.path)) and (kind is None or item.kind == kind)
        )

    def decide(self, origin: str, method: str, path: str) -> FaultDecision | None:
        """Which fault (if any) applies to this request; consumes counts and random draws."""
        latency = 0.0
        with self._lock:
            for rule in self._rules:
                if rule.exhausted or not rule.matches(origin, method, path):
                    continue
                rule.seen += 1
                if rule.seen <= rule.skip:
                    continue
                if rule.probability is not None and self._random.random() >= rule.probability:
                    continue
                rule.fired += 1
                latency += rule.latency
                self._injected.append(InjectedFault(rule.id, origin, method, path, rule.kind, rule.status))
                if rule.status is not None or rule.drop is not None or rule.edit is not None:
                    return FaultDecision(latency, rule)
        return FaultDecision(latency, None) if latency else None


def _check_rule(
    status: int | None,
    retry_after: int | None,
    latency: float,
    drop: DropMode | None,
    times: int | None,
    probability: float | None,
    tampers: bool = False,
) -> None:
    if status is not None and status not in FAULT_STATUSES:
        raise ValueError(f"status must be one of {sorted(FAULT_STATUSES)}, not {status}")
    if status is not None and drop is not None:
        raise ValueError("a rule either answers with a status or drops the connection, not both")
    if drop is not None and drop not in DROP_MODES:
        raise ValueError(f"drop must be one of {DROP_MODES}, not {drop!r}")
    if status is None and drop is None and latency <= 0 and not tampers:
        raise ValueError("a rule needs a status, a drop mode, an edit or some latency")
    # docs/microsoft-rules.md §B2: Graph's Retry-After is whole seconds, so the emulator only sends whole seconds.
    if retry_after is not None and (not isinstance(retry_after, int) or retry_after < 0):
        raise ValueError("retry_after is a whole number of seconds (HTTP delta-seconds)")
    if times is not None and times < 1:
        raise ValueError("times must be at least 1 (or None for no limit)")
    if probability is not None and not 0.0 <= probability <= 1.0:
        raise ValueError("probability must be between 0 and 1")


def graph_style_fault(scope: Scope, status: int) -> FaultResponse:
    """Graph's error JSON (docs/microsoft-rules.md §B1), the default body for non-authority origins."""
    request_id = str(uuid.uuid4())
    code, inner = {
        429: ("activityLimitReached", {"code": "throttledRequest"}),
        503: ("serviceNotAvailable", {}),
    }.get(status, ("generalException", {}))
    body = {
        "error": {
            "code": code,
            "message": THROTTLED_MESSAGE
            if status == 429
            else "Emulated fault: the service could not handle the request.",
            "innerError": {
                **inner,
                # B1: Graph's innerError date has no time-zone suffix.
                "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S"),
                "request-id": request_id,
                "client-request-id": _header(scope, "client-request-id") or request_id,
            },
        }
    }
    headers = [
        ("content-type", "application/json"),
        ("request-id", request_id),
        # B1: Graph echoes the caller's client-request-id and dates every answer, errors included.
        ("client-request-id", _header(scope, "client-request-id") or request_id),
        ("date", email.utils.format_datetime(dt.datetime.now(dt.UTC), usegmt=True)),
    ]
    return FaultResponse(json.dumps(body).encode(), headers)


def _header(scope: Mapping[str, Any], name: str) -> str | None:
    wanted = name.encode("latin-1")
    for key, value in scope.get("headers", []):
        if key.lower() == wanted:
            return bytes(value).decode("latin-1")
    return None


class FaultMiddleware:
    """ASGI middleware that consults a switchboard before handing a request to ``app``."""

    def __init__(
        self,
        app: ASGIApp,
        switchboard: FaultSwitchboard,
        *,
        origin: str,
        render: FaultRenderer = graph_style_fault,
        drop_connection: ConnectionDropper | None = None,
    ) -> None:
        self.app = app
        self.switchboard = switchboard
        self.origin = origin
        self.render = render
        self.drop_connection = drop_connection or _raise_to_drop

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        decision = self.switchboard.decide(self.origin, str(scope["method"]), str(scope["path"]))
        if decision is None:
            await self.app(scope, receive, send)
            return
        if decision.latency:
            await asyncio.sleep(decision.latency)
        rule = decision.rule
        if rule is None:
            await self.app(scope, receive, send)
        elif rule.drop == "before_response":
            await self.drop_connection(scope)
        elif rule.drop == "mid_body":
            await self._cut_short(scope, receive, send, rule)
        elif rule.edit is not None:
            await self._tampered(scope, receive, send, rule.edit)
        else:
            await self._answer(scope, send, rule)

    async def _answer(self, scope: Scope, send: Send, rule: FaultRule) -> None:
        assert rule.status is not None
        response = self.render(scope, rule.status)
        headers = [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in response.headers]
        if rule.retry_after is not None:
            headers.append((b"retry-after", str(rule.retry_after).encode()))
        headers.append((b"content-length", str(len(response.body)).encode()))
        await send({"type": "http.response.start", "status": rule.status, "headers": headers})
        await send({"type": "http.response.body", "body": response.body})

    async def _capture(self, scope: Scope, receive: Receive) -> tuple[Message, bytes]:
        """Run the route to completion and keep its answer (start message and whole body)."""
        messages: list[Message] = []

        async def capture(message: Message) -> None:
            messages.append(message)

        await self.app(scope, receive, capture)
        start = next(message for message in messages if message["type"] == "http.response.start")
        body = b"".join(bytes(m.get("body", b"")) for m in messages if m["type"] == "http.response.body")
        return start, body

    async def _tampered(self, scope: Scope, receive: Receive, send: Send, edit: ResponseEdit) -> None:
        """Let the route answer, rewrite the answer with ``edit``, and send that instead."""
        start, body = await self._capture(scope, receive)
        headers = tuple(
            (bytes(key).decode("latin-1").lower(), bytes(value).decode("latin-1")) for key, value in start["headers"]
        )
        edited = edit(CapturedResponse(int(start["status"]), headers, body))
        declared = edited.declared_length if edited.declared_length is not None else len(edited.body)
        raw_headers = [
            (key.encode("latin-1"), value.encode("latin-1")) for key, value in edited.headers if key != "content-length"
        ]
        raw_headers.append((b"content-length", str(declared).encode()))
        await send({"type": "http.response.start", "status": edited.status, "headers": raw_headers})
        if declared <= len(edited.body):
            await send({"type": "http.response.body", "body": edited.body[:declared]})
            return
        # Announced more than there is: send all of it, then hang up as a lying server does.
        await send({"type": "http.response.body", "body": edited.body, "more_body": True})
        await self.drop_connection(scope)

    async def _cut_short(self, scope: Scope, receive: Receive, send: Send, rule: FaultRule) -> None:
        """Let the route answer, send its headers and part of its body, then drop the connection."""
        start, body = await self._capture(scope, receive)
        cut = rule.drop_after_bytes if rule.drop_after_bytes is not None else len(body) // 2
        cut = max(0, min(cut, len(body) - 1))
        await send(start)
        if cut:
            await send({"type": "http.response.body", "body": body[:cut], "more_body": True})
        await self.drop_connection(scope)


async def _raise_to_drop(scope: Scope) -> None:
    # Without access to the transport the closest thing is an exception: servers close the
    # connection when the response has started (mid_body), or answer 500 when it has not.
    raise ConnectionAbortedError("fault injection: connection dropped")
