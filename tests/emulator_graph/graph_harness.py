"""A small local harness for the Graph routes: two real HTTP listeners on 127.0.0.1.

Imported by this folder's conftest (fixtures) and by the tests (types and helpers).

The full emulator server (TLS, Entra, faults) belongs elsewhere; these tests only need the Graph
origin (routes mounted at /v1.0, as the emulator mounts them) and the files origin on another
port. Servers start once per session; each test swaps in a fresh ``GraphState``.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests
import uvicorn
from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.types import ASGIApp, Receive, Scope, Send

from airflow_provider_graphcert.testing.emulator.graph_routes import TokenRejected, files_routes, graph_routes
from airflow_provider_graphcert.testing.emulator.graph_state import GraphState

# The app every helper call acts as unless a test names another token.
DEFAULT_TOKEN = "admin"
# Bearer tokens the harness accepts, each standing for an app with these application roles.
TOKENS: dict[str, dict[str, Any]] = {
    "sites-read": {"appid": "11111111-1111-1111-1111-111111111111", "roles": ["Sites.Read.All"]},
    "sites-write": {"appid": "22222222-2222-2222-2222-222222222222", "roles": ["Sites.ReadWrite.All"]},
    "files-read": {"appid": "33333333-3333-3333-3333-333333333333", "roles": ["Files.Read.All"]},
    "directory": {"appid": "44444444-4444-4444-4444-444444444444", "roles": ["User.Read.All", "Group.Read.All"]},
    "no-roles": {"appid": "55555555-5555-5555-5555-555555555555", "roles": []},
    "admin": {
        "appid": "66666666-6666-6666-6666-666666666666",
        "app_displayname": "etl-admin",
        "roles": ["Sites.FullControl.All", "Directory.Read.All"],
    },
}


def validate_token(bearer: str) -> dict[str, Any]:
    claims = TOKENS.get(bearer)
    if claims is None:
        raise TokenRejected(401, "InvalidAuthenticationToken", "CompactToken parsing failed with error code: 80049217")
    return claims


class Swappable:
    """An ASGI app whose inner app each test replaces, so the listeners outlive tests."""

    def __init__(self) -> None:
        self.app: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert self.app is not None, "no app installed"
        await self.app(scope, receive, send)


@dataclass
class Listener:
    app: Swappable
    server: uvicorn.Server
    thread: threading.Thread
    port: int

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def start_listener() -> Listener:
    app = Swappable()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    # date_header=False: the Graph routes set Date themselves (B1) and it must not appear twice.
    config = uvicorn.Config(app, lifespan="off", log_level="warning", access_log=False, date_header=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("test listener did not start")
        time.sleep(0.01)
    return Listener(app, server, thread, sock.getsockname()[1])


@pytest.fixture(scope="session")
def listeners() -> Iterator[tuple[Listener, Listener]]:
    graph, files = start_listener(), start_listener()
    yield graph, files
    for listener in (graph, files):
        listener.server.should_exit = True
        listener.thread.join(10)


@dataclass
class GraphHarness:
    """What a test talks to: the state to seed and inspect, and HTTP helpers for both origins."""

    state: GraphState
    graph_origin: str
    files_origin: str
    http: requests.Session = field(default_factory=requests.Session)

    @property
    def base(self) -> str:
        return f"{self.graph_origin}/v1.0"

    def url(self, path: str) -> str:
        return path if path.startswith("http") else f"{self.base}/{path.lstrip('/')}"

    def call(self, method: str, path: str, *, token: str | None = DEFAULT_TOKEN, **kwargs: Any) -> requests.Response:
        headers = dict(kwargs.pop("headers", {}) or {})
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        kwargs.setdefault("allow_redirects", False)
        # REQUESTS_CA_BUNDLE is set on these machines: always pass verify per request (docs/microsoft-rules.md §E).
        return self.http.request(method, self.url(path), headers=headers, verify=True, timeout=30, **kwargs)

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.call("GET", path, **kwargs)

    def json(self, method: str, path: str, expected: int = 200, **kwargs: Any) -> Any:
        response = self.call(method, path, **kwargs)
        assert response.status_code == expected, (response.status_code, response.text)
        return response.json()

    def unauthenticated(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        """Requests to pre-authenticated URLs, which must carry no Authorization header."""
        return self.http.request(method, url, verify=True, timeout=30, allow_redirects=False, **kwargs)

    def follow_pages(self, path: str, **kwargs: Any) -> tuple[list[dict[str, Any]], int]:
        """Every item of a collection, following @odata.nextLink verbatim; also the page count."""
        items: list[dict[str, Any]] = []
        url: str | None = path
        pages = 0
        while url:
            page = self.json("GET", url, **kwargs)
            pages += 1
            items.extend(page["value"])
            url = page.get("@odata.nextLink")
        return items, pages


@pytest.fixture
def graph(listeners: tuple[Listener, Listener], tmp_path_factory: pytest.TempPathFactory) -> Iterator[GraphHarness]:
    graph_listener, files_listener = listeners
    state = GraphState(storage_dir=tmp_path_factory.mktemp("graph-state"))
    graph_listener.app.app = Starlette(
        routes=[
            Mount(
                "/v1.0",
                routes=graph_routes(state, validate_token=validate_token, files_url=lambda: files_listener.origin),
            )
        ]
    )
    files_listener.app.app = Starlette(routes=files_routes(state))
    harness = GraphHarness(state, graph_listener.origin, files_listener.origin)
    yield harness
    harness.http.close()
    state.close()


@pytest.fixture
def library(graph: GraphHarness) -> Any:
    """A team site 'Finance' with its 'Documents' library."""
    site = graph.state.add_site("contoso.sharepoint.com", "/sites/finance", "Finance")
    return site.add_library("Documents")
