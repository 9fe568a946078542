"""The async Graph client keeps the sync client's rules: one token per process, paging, throttling,
a refused foreign host and a revoked token renewed once."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_graphcert.auth.async_tokens import AsyncTokenSource
from airflow_provider_graphcert.errors import GraphCertError
from airflow_provider_graphcert.graph.async_client import ASYNC_USER_AGENT, AsyncGraphClient
from airflow_provider_graphcert.graph.retry import RetryPolicy
from airflow_provider_graphcert.settings import ConnectionSettings
from airflow_provider_graphcert.testing.emulator.faults import edit_json
from airflow_provider_graphcert.testing.emulator.graph_state import Drive
from airflow_provider_graphcert.testing.emulator.server import GraphEmulator
from airflow_provider_graphcert.testing.emulator.state import App


def async_client(
    emulator: GraphEmulator, app: App, pem_file: Path, waits: list[float] | None = None
) -> AsyncGraphClient:
    connection = emulator.connection(app, certificate_path=str(pem_file))
    settings = ConnectionSettings.from_fields(login=connection["login"], password=None, extra=connection["extra"])

    async def recorded_sleep(seconds: float) -> None:
        if waits is not None:
            waits.append(seconds)
        await asyncio.sleep(0)

    return AsyncGraphClient(
        tokens=AsyncTokenSource(settings.token_provider()),
        graph_url=settings.graph_url,
        verify=settings.verify,
        retry=RetryPolicy(backoff_initial=0.01),
        sleep=recorded_sleep,
    )


def test_twenty_coroutines_polling_at_once_share_one_token(
    graph_emulator: GraphEmulator, sp_app: App, pem_file: Path, documents: Drive
) -> None:
    async def scenario() -> list[Any]:
        async with async_client(graph_emulator, sp_app, pem_file) as client:
            return await asyncio.gather(*(client.get_json(f"drives/{documents.id}/root") for _ in range(20)))

    roots = asyncio.run(scenario())
    assert {root["id"] for root in roots} == {documents.root.id}
    assert graph_emulator.state.token_requests.count(sp_app, succeeded=True) == 1
    graph_calls = graph_emulator.requests.records("graph")
    assert graph_calls and {call.headers["user-agent"] for call in graph_calls} == {ASYNC_USER_AGENT}


def test_pages_follow_next_links_and_throttling_waits_the_servers_retry_after(
    graph_emulator: GraphEmulator, sp_app: App, pem_file: Path, documents: Drive
) -> None:
    for number in range(7):
        documents.put_file(f"Inbox/file-{number}.csv", b"x\n")
    graph_emulator.faults.throttle(r"/children", retry_after=7, times=1)
    waits: list[float] = []

    async def scenario() -> list[str]:
        async with async_client(graph_emulator, sp_app, pem_file, waits) as client:
            address = f"drives/{documents.id}/root:/Inbox:/children"
            return [item["name"] async for item in client.iter_items(address, params={"$top": "3"})]

    names = asyncio.run(scenario())
    assert sorted(names) == sorted(["old-report.csv", *(f"file-{n}.csv" for n in range(7))])
    assert waits == [7.0]


def test_a_next_link_to_another_host_is_refused_before_the_token_goes_there(
    graph_emulator: GraphEmulator, sp_app: App, pem_file: Path, documents: Drive
) -> None:
    def redirect_elsewhere(page: dict[str, Any]) -> dict[str, Any]:
        page["@odata.nextLink"] = "https://attacker.example/v1.0/steal"
        return page

    graph_emulator.faults.tamper(r"/children", edit_json(redirect_elsewhere))

    async def scenario() -> None:
        async with async_client(graph_emulator, sp_app, pem_file) as client:
            async for _ in client.pages(f"drives/{documents.id}/root/children"):
                pass

    with pytest.raises(GraphCertError, match=r"Refusing to send the Graph token to https://attacker\.example"):
        asyncio.run(scenario())


def test_a_revoked_token_is_replaced_once_and_the_call_goes_through(
    graph_emulator: GraphEmulator, sp_app: App, pem_file: Path, documents: Drive
) -> None:
    async def scenario() -> None:
        async with async_client(graph_emulator, sp_app, pem_file) as client:
            await client.get_json(f"drives/{documents.id}/root")
            graph_emulator.revoke_tokens(sp_app)
            await client.get_json(f"drives/{documents.id}/root")

    asyncio.run(scenario())
    assert graph_emulator.state.token_requests.count(sp_app, succeeded=True) == 2


def test_a_dropped_connection_on_a_read_is_retried_with_backoff(
    graph_emulator: GraphEmulator, sp_app: App, pem_file: Path, documents: Drive
) -> None:
    graph_emulator.faults.drop_connection(r"/root$", times=2)
    waits: list[float] = []

    async def scenario() -> Any:
        async with async_client(graph_emulator, sp_app, pem_file, waits) as client:
            return await client.get_json(f"drives/{documents.id}/root")

    assert asyncio.run(scenario())["id"] == documents.root.id
    assert graph_emulator.faults.count(r"/root$") == 2
    assert len(waits) == 2 and all(0 < wait < 1 for wait in waits)  # RetryPolicy(backoff_initial=0.01)
