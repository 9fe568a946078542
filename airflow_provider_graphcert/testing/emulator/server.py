"""``GraphEmulator``: the emulated Entra ID + Graph service on loopback HTTPS, in a background thread.

Three listening sockets stand for the real service's three hosts (the authority, Graph, and
the pre-authenticated download/upload host) so tests can prove that a bearer token never
leaves for the wrong host. One uvicorn server serves all three; the ASGI app picks the origin
by the local port of the connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

import uvicorn
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from uvicorn.protocols.http.h11_impl import H11Protocol

from airflow_provider_graphcert.testing.emulator.entra.routes import EntraRoutes
from airflow_provider_graphcert.testing.emulator.entra.signing import SigningKey
from airflow_provider_graphcert.testing.emulator.entra.state import (
    DEFAULT_CLOCK_SKEW_TOLERANCE_SECONDS,
    DEFAULT_TOKEN_LIFETIME_SECONDS,
    PUBLIC_GRAPH_RESOURCE,
    AccessTokenError,
    AccessTokenExpiredError,
    App,
    CertificatesInput,
    EmulatorState,
    Tenant,
)
from airflow_provider_graphcert.testing.emulator.faults import (
    ASGIApp,
    FaultMiddleware,
    FaultRenderer,
    FaultSwitchboard,
    Receive,
    Scope,
    Send,
    graph_style_fault,
)
from airflow_provider_graphcert.testing.emulator.graph.calls import TokenRejected
from airflow_provider_graphcert.testing.emulator.graph.files_host import files_routes
from airflow_provider_graphcert.testing.emulator.graph.routes import graph_routes, service_root_routes
from airflow_provider_graphcert.testing.emulator.graph.snapshots import (
    SNAPSHOT_NAME,
    ChangeMarker,
    change_marker,
    load_snapshot,
    save_snapshot,
)
from airflow_provider_graphcert.testing.emulator.graph.state import GraphState
from airflow_provider_graphcert.testing.emulator.tls import TLSMaterial, tls_material

LOOPBACK = "127.0.0.1"
CONN_TYPE = "msgraph_cert"
Origin = Literal["authority", "graph", "files"]
ORIGINS: tuple[Origin, ...] = ("authority", "graph", "files")
STARTUP_TIMEOUT_SECONDS = 10.0
SHUTDOWN_TIMEOUT_SECONDS = 5.0
# How long a dropped connection may take to finish its TLS close before it is aborted.
DROP_GRACE_SECONDS = 1.0

# -- connection tracking (for dropped-connection faults and a quick shutdown) ----------------------


@dataclass
class _TrackedConnection:
    transport: asyncio.Transport
    lost: asyncio.Event


class ConnectionRegistry:
    """Open connections by (local, peer) address, which the ASGI scope also carries."""

    def __init__(self) -> None:
        self._connections: dict[tuple[Any, Any], _TrackedConnection] = {}

    def opened(self, local: Any, peer: Any, transport: asyncio.Transport) -> None:
        self._connections[(tuple(local or ()), tuple(peer or ()))] = _TrackedConnection(transport, asyncio.Event())

    def closed(self, local: Any, peer: Any) -> None:
        tracked = self._connections.pop((tuple(local or ()), tuple(peer or ())), None)
        if tracked is not None:
            tracked.lost.set()

    async def drop(self, scope: Scope) -> None:
        """Close the request's connection without (more of) a response, as a failing server would."""
        key = (tuple(scope.get("server") or ()), tuple(scope.get("client") or ()))
        tracked = self._connections.get(key)
        if tracked is None:
            raise ConnectionAbortedError("fault injection: connection dropped")
        # close() flushes what was already sent (a half body) before the TLS close; abort() if
        # the peer never answers the close, so the route task does not hang.
        tracked.transport.close()
        try:
            await asyncio.wait_for(tracked.lost.wait(), DROP_GRACE_SECONDS)
        except TimeoutError:
            tracked.transport.abort()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(tracked.lost.wait(), DROP_GRACE_SECONDS)

    def abort_all(self) -> None:
        for tracked in list(self._connections.values()):
            tracked.transport.abort()


def _tracking_protocol(registry: ConnectionRegistry) -> type[H11Protocol]:
    """uvicorn's h11 protocol (its documented ``http=`` class option), reporting its transports to
    ``registry``. Only asyncio's Protocol hooks and transport info are used, no uvicorn internals."""

    class TrackedH11Protocol(H11Protocol):
        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            self._tracked_transport = transport
            super().connection_made(transport)
            registry.opened(transport.get_extra_info("sockname"), transport.get_extra_info("peername"), transport)

        def connection_lost(self, exc: Exception | None) -> None:
            transport = self._tracked_transport
            registry.closed(transport.get_extra_info("sockname"), transport.get_extra_info("peername"))
            super().connection_lost(exc)

    return TrackedH11Protocol


class _EmulatorServer(uvicorn.Server):
    """uvicorn.Server that stops at once when asked, instead of polling and draining.

    uvicorn's own stop path polls every 0.1 s and then sleeps 0.1 s before draining, which tripled
    the emulator tests' run time. So ``main_loop`` and ``shutdown`` are overridden; they rely on
    ``on_tick``, ``servers`` and ``server_state.tasks``, which is why pyproject.toml pins uvicorn to
    the range ``tests/emulator/test_emulator_server_contract.py`` checks.
    """

    def __init__(self, config: uvicorn.Config, registry: ConnectionRegistry) -> None:
        super().__init__(config)
        self._registry = registry
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        await super().startup(sockets=sockets)

    async def main_loop(self) -> None:
        assert self._wake is not None
        # on_tick(0) refreshes the Date header; wake early when stop() is called.
        while not await self.on_tick(0):
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), 1.0)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        for server in self.servers:
            server.close()
        # Tests are over when the emulator stops: cut keep-alive and in-flight connections.
        self._registry.abort_all()
        tasks = set(self.server_state.tasks)
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=1.0)
            for task in pending:
                task.cancel()
        for server in self.servers:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(server.wait_closed(), 1.0)

    def request_stop(self) -> None:
        self.should_exit = True
        if self._loop is not None and self._wake is not None and not self._loop.is_closed():
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._wake.set)

    def force_stop(self) -> None:
        self.force_exit = True


@dataclass(frozen=True)
class ReceivedRequest:
    """A request as it reached one origin (before faults), e.g. to prove where a token was sent."""

    origin: Origin
    method: str
    path: str
    query: str
    headers: dict[str, str]


class RequestLog:
    """Every request each origin received, in order; thread-safe."""

    def __init__(self) -> None:
        self._records: list[ReceivedRequest] = []
        self._lock = threading.Lock()

    def append(self, record: ReceivedRequest) -> None:
        with self._lock:
            self._records.append(record)

    def records(self, origin: Origin | None = None) -> list[ReceivedRequest]:
        with self._lock:
            return [record for record in self._records if origin is None or record.origin == origin]

    def __len__(self) -> int:
        with self._lock:
            return len(self._records)

    def clear(self) -> None:
        with self._lock:
            self._records.clear()


class _RecordingMiddleware:
    def __init__(self, app: ASGIApp, log: RequestLog, origin: Origin) -> None:
        self.app, self.log, self.origin = app, log, origin

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = {bytes(k).decode("latin-1").lower(): bytes(v).decode("latin-1") for k, v in scope["headers"]}
            query = bytes(scope.get("query_string", b"")).decode("latin-1")
            self.log.append(ReceivedRequest(self.origin, str(scope["method"]), str(scope["path"]), query, headers))
        await self.app(scope, receive, send)


class _OriginDispatcher:
    """Send each request to the app of the origin (listening port) it arrived on."""

    def __init__(self, apps_by_port: dict[int, ASGIApp]) -> None:
        self._apps = apps_by_port

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        server = scope.get("server") or (None, 0)
        app = self._apps.get(int(server[1] or 0))
        if app is None:
            await PlainTextResponse("Unknown origin", status_code=421)(scope, receive, send)
            return
        await app(scope, receive, send)


def _listen(port: int) -> socket.socket:
    # proto=IPPROTO_TCP matters: asyncio only sets TCP_NODELAY on accepted sockets whose proto is
    # TCP, and without it every keep-alive response waits ~40 ms for a delayed ACK (Nagle).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    # A fixed port (standalone) must be reusable right after the previous run stopped.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((LOOPBACK, port))
    except OSError:
        sock.close()
        raise
    return sock


# -- the emulator ----------------------------------------------------------------------------------


class GraphEmulator:
    """Emulated Entra ID and Microsoft Graph on 127.0.0.1 over HTTPS with a private test CA.

    Use as a context manager::

        with GraphEmulator() as emu:
            tenant = emu.add_tenant()
            app = emu.add_app(tenant, certificate=cert, roles=["Sites.Read.All"])
            conn = emu.connection(app, certificate_path=str(pem_path))
    """

    def __init__(
        self,
        *,
        token_lifetime: int = DEFAULT_TOKEN_LIFETIME_SECONDS,
        clock_skew_tolerance: float = DEFAULT_CLOCK_SKEW_TOLERANCE_SECONDS,
        clock_offset: float = 0.0,
        state_dir: Path | str | None = None,
        ports: tuple[int, int, int] = (0, 0, 0),
        fault_seed: int = 0,
        persist_graph: bool = False,
    ) -> None:
        """``persist_graph`` keeps Graph content in ``state_dir`` across restarts (graph/snapshots.py)."""
        if persist_graph and state_dir is None:
            raise ValueError("persist_graph needs a state_dir to keep the Graph content in")
        self._settings = (token_lifetime, clock_skew_tolerance, clock_offset)
        # Absolute, so the ca_bundle written into connections works from any working directory.
        self._state_dir = Path(state_dir).resolve() if state_dir is not None else None
        self._persist_graph = persist_graph
        self._graph_restored = False
        self._saved_marker: ChangeMarker | None = None
        self._requested_ports = ports
        self.faults = FaultSwitchboard(fault_seed)
        self.requests = RequestLog()
        self._state: EmulatorState | None = None
        self._graph: GraphState | None = None
        self._tls: TLSMaterial | None = None
        self._ports: dict[Origin, int] = {}
        self._apps: dict[Origin, Starlette] = {}
        self._server: _EmulatorServer | None = None
        self._thread: threading.Thread | None = None
        self._sockets: list[socket.socket] = []
        self._registry = ConnectionRegistry()
        self._root: ASGIApp | None = None

    # -- lifecycle -----------------------------------------------------------------------------

    def __enter__(self) -> GraphEmulator:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("the emulator is already running")
        self._tls = tls_material(self._state_dir)
        try:
            self._sockets = [_listen(port) for port in self._requested_ports]
            self._ports = {origin: sock.getsockname()[1] for origin, sock in zip(ORIGINS, self._sockets, strict=True)}
            self._state = self._new_state()
            # File bodies live on disk (in the state dir when given) so large files cost no memory.
            storage = self._state_dir / "graph-files" if self._state_dir else None
            self._graph = GraphState(storage_dir=storage)
            if self._persist_graph:
                self._graph_restored = load_snapshot(self._graph, self._snapshot_path)
                self._saved_marker = change_marker(self._graph) if self._graph_restored else None
            self._build_apps()
            self._serve()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        if self._server is not None:
            self._server.request_stop()
        if self._thread is not None:
            self._thread.join(SHUTDOWN_TIMEOUT_SECONDS)
            if self._thread.is_alive() and self._server is not None:
                self._server.force_stop()
                self._thread.join(SHUTDOWN_TIMEOUT_SECONDS)
        for sock in self._sockets:
            sock.close()
        self._sockets = []
        self._thread = None
        self._server = None
        if self._graph is not None:
            if self._persist_graph:
                self.save_graph()
            self._graph.close()

    # -- persistence (graph/snapshots.py) ------------------------------------------------------------

    @property
    def _snapshot_path(self) -> Path:
        assert self._state_dir is not None
        return self._state_dir / SNAPSHOT_NAME

    @property
    def graph_restored(self) -> bool:
        """Whether start() found Graph content from an earlier run (then do not seed again)."""
        return self._graph_restored

    def save_graph(self) -> None:
        """Write the Graph content to the state dir now (``persist_graph`` only)."""
        if not self._persist_graph:
            raise RuntimeError("this emulator was not started with persist_graph=True")
        self._saved_marker = change_marker(self.graph)
        save_snapshot(self.graph, self._snapshot_path)

    def save_graph_if_changed(self) -> bool:
        """Save when the content changed since the last save; returns whether it saved."""
        if change_marker(self.graph) == self._saved_marker:
            return False
        self.save_graph()
        return True

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _new_state(self) -> EmulatorState:
        lifetime, tolerance, offset = self._settings
        signing_key = SigningKey.load_or_create(self._state_dir) if self._state_dir else None
        return EmulatorState(
            graph_resources=(self.graph_resource, PUBLIC_GRAPH_RESOURCE),
            token_lifetime=lifetime,
            clock_skew_tolerance=tolerance,
            clock_offset=offset,
            signing_key=signing_key,
        )

    def _build_apps(self) -> None:
        entra = EntraRoutes(self.state, authority_host=self.authority_host, graph_url=self.graph_url)
        graph = graph_routes(
            self.graph,
            validate_token=self._validate_bearer,
            files_url=lambda: self.files_url,
            inner_faults=self._batch_inner_fault,
        )
        self._apps = {
            "authority": entra.app(),
            "graph": Starlette(routes=service_root_routes(graph)),
            "files": Starlette(routes=files_routes(self.graph)),
        }
        # Faults look like the origin's own errors: Entra's JSON on the authority, Graph's elsewhere.
        renderers: dict[Origin, FaultRenderer] = {"authority": entra.fault_response}
        wrapped: dict[int, ASGIApp] = {}
        for origin, app in self._apps.items():
            faulty = FaultMiddleware(
                app,
                self.faults,
                origin=origin,
                render=renderers.get(origin, graph_style_fault),
                drop_connection=self._registry.drop,
            )
            wrapped[self._ports[origin]] = _RecordingMiddleware(faulty, self.requests, origin)
        self._root = _OriginDispatcher(wrapped)

    def _serve(self) -> None:
        assert self._tls is not None and self._root is not None
        root: ASGIApp = self._root
        config = uvicorn.Config(
            root,
            ssl_certfile=str(self._tls.server_certificate),
            ssl_keyfile=str(self._tls.server_key),
            http=_tracking_protocol(self._registry),
            ws="none",
            lifespan="off",
            loop="asyncio",
            log_config=None,
            log_level="warning",
            access_log=False,
            server_header=False,
            # Graph routes stamp their own Date header; uvicorn's would duplicate it.
            date_header=False,
        )
        server = _EmulatorServer(config, self._registry)
        thread = threading.Thread(
            target=server.run, kwargs={"sockets": self._sockets}, name="graphcert-emulator", daemon=True
        )
        self._server, self._thread = server, thread
        thread.start()
        self._wait_until_started(server, thread)

    @staticmethod
    def _wait_until_started(server: _EmulatorServer, thread: threading.Thread) -> None:
        deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
        while not server.started:
            if not thread.is_alive():
                raise RuntimeError("the emulator's server thread stopped during startup (see the log)")
            if time.monotonic() > deadline:
                raise RuntimeError(f"the emulator did not start within {STARTUP_TIMEOUT_SECONDS} s")
            time.sleep(0.002)

    # -- origins -------------------------------------------------------------------------------

    def _batch_inner_fault(self, method: str, path: str) -> tuple[int, int | None] | None:
        """Rules with ``origin="batch"`` apply to the requests inside a $batch, one by one."""
        decision = self.faults.decide("batch", method, path)
        if decision is None or decision.rule is None or decision.rule.status is None:
            return None
        return decision.rule.status, decision.rule.retry_after

    def _validate_bearer(self, token: str) -> dict[str, Any]:
        """Graph's check of a bearer token, with Graph's error codes (docs/microsoft-rules.md §B1)."""
        try:
            return self.state.validate_access_token(token)
        except AccessTokenExpiredError as exc:
            raise TokenRejected(
                401,
                "InvalidAuthenticationToken",
                str(exc),
                www_authenticate='Bearer error="invalid_token", '
                'error_description="The access token has expired", error_codes="expired_token"',
            ) from None
        except AccessTokenError as exc:
            raise TokenRejected(401, "InvalidAuthenticationToken", str(exc)) from None

    def _origin(self, origin: Origin) -> str:
        if origin not in self._ports:
            raise RuntimeError("the emulator has not been started; use `with GraphEmulator() as emu:`")
        return f"https://{LOOPBACK}:{self._ports[origin]}"

    @property
    def authority_host(self) -> str:
        return self._origin("authority")

    @property
    def graph_url(self) -> str:
        return self._origin("graph")

    @property
    def files_url(self) -> str:
        return self._origin("files")

    @property
    def graph_resource(self) -> str:
        """The resource tokens are issued for: request ``f"{graph_resource}/.default"``."""
        return self.graph_url

    @property
    def ca_bundle(self) -> str:
        if self._tls is None:
            raise RuntimeError("the emulator has not been started; use `with GraphEmulator() as emu:`")
        return str(self._tls.ca_bundle)

    @property
    def state(self) -> EmulatorState:
        if self._state is None:
            raise RuntimeError("the emulator has not been started; use `with GraphEmulator() as emu:`")
        return self._state

    @property
    def graph(self) -> GraphState:
        """Sites, drives, files, lists, users and groups of the emulated Graph (seed it here)."""
        if self._graph is None:
            raise RuntimeError("the emulator has not been started; use `with GraphEmulator() as emu:`")
        return self._graph

    def token_endpoint(self, tenant: Tenant | str) -> str:
        tenant_id = tenant.tenant_id if isinstance(tenant, Tenant) else tenant
        return f"{self.authority_host}/{tenant_id}/oauth2/v2.0/token"

    # -- token policy (delegates to the state) -----------------------------------------------------

    @property
    def token_lifetime(self) -> int:
        return self.state.token_lifetime

    @token_lifetime.setter
    def token_lifetime(self, seconds: int) -> None:
        self.state.token_lifetime = seconds

    @property
    def clock_skew_tolerance(self) -> float:
        return self.state.clock_skew_tolerance

    @clock_skew_tolerance.setter
    def clock_skew_tolerance(self, seconds: float) -> None:
        self.state.clock_skew_tolerance = seconds

    @property
    def clock_offset(self) -> float:
        return self.state.clock_offset

    @clock_offset.setter
    def clock_offset(self, seconds: float) -> None:
        self.state.clock_offset = seconds

    def revoke_tokens(self, app: App | None = None) -> None:
        self.state.revoke_tokens(app)

    # -- directory -----------------------------------------------------------------------------

    def add_tenant(self, tenant_id: str | None = None, domains: list[str] | None = None) -> Tenant:
        return self.state.add_tenant(tenant_id, domains)

    def add_app(
        self,
        tenant: Tenant | str,
        certificate: CertificatesInput | None = None,
        *,
        roles: Sequence[str] = ("Sites.Read.All",),
        subject_name_issuer: bool = False,
        display_name: str | None = None,
        client_id: str | None = None,
    ) -> App:
        return self.state.add_app(
            tenant,
            certificate,
            roles=roles,
            subject_name_issuer=subject_name_issuer,
            display_name=display_name,
            client_id=client_id,
        )

    def connection(self, app: App, **extra: Any) -> dict[str, Any]:
        """An Airflow connection (JSON form) for ``app``; ``extra`` adds e.g. certificate_path."""
        return {
            "conn_type": CONN_TYPE,
            "login": app.client_id,
            "extra": {
                "tenant_id": app.tenant_id,
                "authority_host": self.authority_host,
                "graph_url": self.graph_url,
                "ca_bundle": self.ca_bundle,
                **extra,
            },
        }

    def connection_json(self, app: App, **extra: Any) -> str:
        return json.dumps(self.connection(app, **extra))
