"""Run triggers the way the triggerer does: on an event loop, one event at a time."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

from airflow.triggers.base import TriggerEvent

from airflow_provider_graphcert.testing.emulator.server import GraphEmulator

CONN_ID = "sharepoint_triggers"
SITE_URL = "https://contoso.sharepoint.com/sites/Finance"
INBOX_URL = f"{SITE_URL}/Shared Documents/Inbox"

# Bounds on waits (not expectations): a failing test ends with a clear message instead of hanging.
EVENT_BOUND_SECONDS = 60.0


def delta_requests(emulator: GraphEmulator) -> int:
    return sum(1 for record in emulator.requests.records("graph") if record.path.endswith("/root/delta"))


def listing_requests(emulator: GraphEmulator) -> int:
    return sum(1 for record in emulator.requests.records("graph") if record.path.endswith("/children"))


async def until(condition: Callable[[], bool], what: str, bound: float = EVENT_BOUND_SECONDS) -> None:
    """Wait (yielding to the loop) until ``condition`` holds; fail naming ``what`` past the bound."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + bound
    while not condition():
        if loop.time() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        await asyncio.sleep(0.02)


async def next_event(events: AsyncIterator[TriggerEvent]) -> dict[str, Any]:
    event = await asyncio.wait_for(anext(events), EVENT_BOUND_SECONDS)
    payload = event.payload
    assert isinstance(payload, dict)
    return payload


class MemoryAssetState:
    """Stands in for Airflow's asset state store (its ``aget``/``aset`` surface), kept in a dict."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}

    async def aget(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)

    async def aset(self, key: str, value: Any) -> None:
        self.values[key] = value
