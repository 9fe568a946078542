"""The deferrable sensor's trigger: cheap polls, the file found, restarts and expired links."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from pathlib import Path
from typing import Any

import pytest
from trigger_kit import delta_requests, listing_requests, next_event, until

from airflow_provider_graphcert.auth.selfsigned import SelfSignedCertificate
from airflow_provider_graphcert.testing.emulator.graph_state import Drive
from airflow_provider_graphcert.testing.emulator.server import GraphEmulator
from airflow_provider_graphcert.triggers.sharepoint_file import SharePointFileTrigger


def latest_link(graph_emulator: GraphEmulator, documents: Drive) -> str:
    """What the sensor takes before its last check on the worker."""
    return f"{graph_emulator.graph_url}/v1.0/drives/{documents.id}/root/delta?token={documents.delta_latest_token()}"


def file_trigger(
    connection: str, graph_emulator: GraphEmulator, documents: Drive, **kwargs: Any
) -> SharePointFileTrigger:
    rule: dict[str, Any] = {"folder": "Inbox", "pattern": "*.csv", "poll_interval": 0.05, **kwargs}
    return SharePointFileTrigger(
        msgraph_cert_conn_id=connection,
        drive_id=documents.id,
        delta_link=latest_link(graph_emulator, documents),
        **rule,
    )


def test_the_trigger_polls_one_delta_request_at_a_time_and_fires_when_the_file_lands(
    connection: str, documents: Drive, graph_emulator: GraphEmulator
) -> None:
    trigger = file_trigger(connection, graph_emulator, documents, pattern="sales-*.csv")

    async def scenario() -> dict[str, Any]:
        events = trigger.run()
        fired = asyncio.ensure_future(anext(events))
        await until(lambda: delta_requests(graph_emulator) >= 5, "five quiet polls")
        # Changes that cannot match (another folder's files, a non-matching name) cost no listing.
        documents.put_file("Elsewhere/ignored.txt", b"x\n")
        await until(lambda: delta_requests(graph_emulator) >= 8, "polls after an unrelated change")
        assert listing_requests(graph_emulator) == 0
        assert not fired.done()
        landed = documents.put_file("Inbox/sales-2026.csv", b"region,total\n")
        payload = (await asyncio.wait_for(fired, 60)).payload
        assert listing_requests(graph_emulator) == 1
        assert payload["matches"][0]["item_id"] == landed.id
        return payload

    payload = asyncio.run(scenario())
    assert payload["status"] == "success"
    assert [match["path"] for match in payload["matches"]] == ["sales-2026.csv"]
    assert payload["matches"][0]["eTag"] and payload["matches"][0]["size"] == 13


def test_a_restarted_triggerer_finds_the_file_that_landed_while_it_was_down(
    connection: str, documents: Drive, graph_emulator: GraphEmulator
) -> None:
    original = file_trigger(connection, graph_emulator, documents, file_name="expected.csv", pattern=None)
    documents.put_file("Inbox/expected.csv", b"arrived while no triggerer ran\n")
    classpath, kwargs = original.serialize()
    assert classpath == "airflow_provider_graphcert.triggers.sharepoint_file.SharePointFileTrigger"

    async def scenario() -> dict[str, Any]:
        return await next_event(SharePointFileTrigger(**kwargs).run())

    payload = asyncio.run(scenario())
    assert [match["path"] for match in payload["matches"]] == ["expected.csv"]


def test_an_expired_delta_link_falls_back_to_one_listing_and_still_finds_the_file(
    connection: str, documents: Drive, graph_emulator: GraphEmulator
) -> None:
    trigger = file_trigger(connection, graph_emulator, documents)
    documents.put_file("Inbox/landed-before-expiry.csv", b"1\n")
    graph_emulator.graph.expire_delta_tokens(documents)

    payload = asyncio.run(next_event(trigger.run()))
    assert [match["path"] for match in payload["matches"]] == ["landed-before-expiry.csv", "old-report.csv"]


def test_a_file_only_counts_when_modified_after_the_given_moment(
    connection: str, documents: Drive, graph_emulator: GraphEmulator
) -> None:
    trigger = file_trigger(connection, graph_emulator, documents, modified_after="2999-01-01T00:00:00Z")

    async def scenario() -> None:
        events = trigger.run()
        fired = asyncio.ensure_future(anext(events))
        documents.put_file("Inbox/too-old.csv", b"1\n")
        await until(lambda: listing_requests(graph_emulator) >= 1, "a listing after the change")
        await until(lambda: delta_requests(graph_emulator) >= 4, "more quiet polls")
        assert not fired.done()
        fired.cancel()
        await asyncio.gather(fired, return_exceptions=True)

    asyncio.run(scenario())


def test_a_missing_permission_ends_the_wait_with_graphs_reason(
    connection: str,
    documents: Drive,
    graph_emulator: GraphEmulator,
    rsa_cert: SelfSignedCertificate,
    pem_file: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    users_only = graph_emulator.add_app(graph_emulator.add_tenant(), rsa_cert.certificate, roles=["User.Read.All"])
    monkeypatch.setenv(
        "AIRFLOW_CONN_USERS_ONLY", json.dumps(graph_emulator.connection(users_only, certificate_path=str(pem_file)))
    )
    trigger = file_trigger("users_only", graph_emulator, documents)

    payload = asyncio.run(next_event(trigger.run()))
    assert payload["status"] == "error"
    assert "HTTP 403" in payload["message"] and "Sites.Read.All" in payload["message"]


@pytest.mark.parametrize("triggers", [8])
def test_the_event_loop_stays_responsive_while_many_triggers_poll_a_slow_throttling_graph(
    connection: str, documents: Drive, graph_emulator: GraphEmulator, triggers: int
) -> None:
    """A heartbeat coroutine ticks every 10 ms while N triggers poll a Graph that answers each
    delta request after LATENCY seconds and throttles some. A client that blocked the loop would
    freeze the heartbeat for a whole LATENCY on every one of those slow requests (4N or more); a
    non-blocking one leaves no such gap, bar a few when this shared machine deschedules us."""
    latency = 0.6
    graph_emulator.faults.delay(r"/root/delta", seconds=latency)
    graph_emulator.faults.throttle(r"/root/delta", retry_after=1, times=triggers)

    async def scenario() -> tuple[list[float], int]:
        runs = [file_trigger(connection, graph_emulator, documents).run() for _ in range(triggers)]
        waiting = [asyncio.ensure_future(anext(run)) for run in runs]
        ticks: list[float] = []

        async def heartbeat() -> None:
            while True:
                ticks.append(time.monotonic())
                await asyncio.sleep(0.01)

        beating = asyncio.ensure_future(heartbeat())
        # Every trigger throttled once and polled again at least twice: several slow rounds each.
        await until(lambda: delta_requests(graph_emulator) >= 4 * triggers, "three slow rounds of every trigger")
        documents.put_file("Inbox/finally.csv", b"1\n")
        fired = await asyncio.wait_for(asyncio.gather(*waiting), 120)
        beating.cancel()
        await asyncio.gather(beating, return_exceptions=True)
        return ticks, sum(1 for event in fired if event.payload["status"] == "success")

    ticks, succeeded = asyncio.run(scenario())
    gaps = [later - earlier for earlier, later in itertools.pairwise(ticks)]
    assert succeeded == triggers
    assert graph_emulator.faults.count(r"/root/delta", kind="429") == triggers
    slow_requests = delta_requests(graph_emulator)
    frozen = [gap for gap in gaps if gap >= 0.9 * latency]
    # Structure, not speed: a blocking client gives one frozen gap per slow request (32 or more here);
    # a loaded 2-core machine that deschedules this process (the emulator shares its GIL) gives a few.
    assert slow_requests >= 4 * triggers
    assert len(frozen) <= slow_requests // 8, f"the loop froze {len(frozen)} times for a whole server latency: {frozen}"
    assert len(ticks) > 4 * latency / 0.01 / 2
