"""The parts of uvicorn the emulator's server builds on, checked on the installed release.

pyproject.toml pins uvicorn to the range where these hold; a release that changes them fails
here first, with the name of what changed, instead of as hanging or slow emulator tests.
"""

from __future__ import annotations

import asyncio
import inspect

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from airflow_provider_graphcert.testing.emulator.server import GraphEmulator


def test_uvicorn_server_still_has_the_hooks_the_emulator_overrides() -> None:
    for name in ("startup", "main_loop", "shutdown", "on_tick"):
        assert inspect.iscoroutinefunction(getattr(uvicorn.Server, name)), name
    assert list(inspect.signature(uvicorn.Server.on_tick).parameters) == ["self", "counter"]
    assert "sockets" in inspect.signature(uvicorn.Server.shutdown).parameters
    server = uvicorn.Server(uvicorn.Config(app=None))
    assert isinstance(server.server_state.tasks, set)


def test_uvicorn_h11_protocol_is_an_asyncio_protocol_with_its_connection_hooks() -> None:
    assert issubclass(H11Protocol, asyncio.Protocol)
    for name in ("connection_made", "connection_lost"):
        assert name in H11Protocol.__dict__, name


def test_an_emulator_stops_while_a_keep_alive_connection_is_still_open() -> None:
    import requests

    emulator = GraphEmulator()
    emulator.start()
    session = requests.Session()
    response = session.get(f"{emulator.authority_host}/common/discovery/instance", verify=emulator.ca_bundle)
    assert response.status_code in {200, 400}
    emulator.stop()
    assert not emulator.running
    session.close()
