"""A DAG scheduled on a SharePoint folder: the AssetWatcher's event trigger, against the emulator."""

from __future__ import annotations

import asyncio
from typing import Any

from trigger_kit import INBOX_URL, MemoryAssetState, delta_requests, next_event, until

from airflow_provider_graphcert.testing.emulator.graph_state import Drive
from airflow_provider_graphcert.testing.emulator.server import GraphEmulator
from airflow_provider_graphcert.triggers.sharepoint_watch import SharePointFolderWatchTrigger


def watcher(connection: str, **kwargs: Any) -> SharePointFolderWatchTrigger:
    return SharePointFolderWatchTrigger(msgraph_cert_conn_id=connection, url=INBOX_URL, poll_interval=0.05, **kwargs)


def kinds(payload: dict[str, Any]) -> list[tuple[str, str]]:
    return [(change["change"], change["path"]) for change in payload["changes"]]


def test_a_file_landing_in_the_watched_folder_is_one_event_with_what_changed(
    connection: str, documents: Drive, graph_emulator: GraphEmulator
) -> None:
    async def scenario() -> None:
        events = watcher(connection).run()
        first = asyncio.ensure_future(anext(events))
        # The baseline read and one quiet poll: files already there are not news.
        await until(lambda: delta_requests(graph_emulator) >= 2, "the watcher's first quiet poll")
        assert not first.done()
        uploaded = documents.put_file("Inbox/invoice-1.csv", b"id,amount\n1,10\n")
        documents.put_file("Elsewhere/not-watched.csv", b"x\n")
        payload = (await asyncio.wait_for(first, 60)).payload
        assert payload["count"] == 1
        (change,) = payload["changes"]
        assert change == {
            "change": "created",
            "path": "invoice-1.csv",
            "item_id": uploaded.id,
            "size": 15,
            "eTag": uploaded.etag,
            "lastModifiedDateTime": change["lastModifiedDateTime"],
        }
        assert change["lastModifiedDateTime"].endswith("Z")
        await events.aclose()

    asyncio.run(scenario())


def test_changes_between_two_polls_are_one_batch_and_the_glob_filters_them(
    connection: str, documents: Drive, graph_emulator: GraphEmulator
) -> None:
    async def scenario() -> None:
        events = watcher(connection, pattern="*.csv").run()
        first = asyncio.ensure_future(anext(events))
        await until(lambda: delta_requests(graph_emulator) >= 2, "the watcher's first quiet poll")
        documents.put_file("Inbox/a.csv", b"1\n")
        assert kinds((await asyncio.wait_for(first, 60)).payload) == [("created", "a.csv")]
        # The trigger is parked at its yield (as while the triggerer stores the event): all of
        # this lands before its next poll and must come back as one batch.
        documents.put_file("Inbox/a.csv", b"1\n2\n")
        documents.put_file("Inbox/b.csv", b"b\n")
        documents.put_file("Inbox/notes.txt", b"not a csv\n")
        documents.put_file("Inbox/2026/q1.csv", b"nested\n")
        documents.delete("Inbox/old-report.csv")
        batch = await next_event(events)
        assert kinds(batch) == [
            ("created", "2026/q1.csv"),
            ("modified", "a.csv"),
            ("created", "b.csv"),
            ("deleted", "old-report.csv"),
        ]
        await events.aclose()

    asyncio.run(scenario())


def test_an_expired_delta_link_resyncs_without_losing_or_replaying_a_change(
    connection: str, documents: Drive, graph_emulator: GraphEmulator
) -> None:
    async def scenario() -> None:
        events = watcher(connection).run()
        first = asyncio.ensure_future(anext(events))
        await until(lambda: delta_requests(graph_emulator) >= 2, "the watcher's first quiet poll")
        documents.put_file("Inbox/before-expiry.csv", b"1\n")
        assert kinds((await asyncio.wait_for(first, 60)).payload) == [("created", "before-expiry.csv")]
        graph_emulator.graph.expire_delta_tokens(documents)
        documents.put_file("Inbox/during-expiry.csv", b"2\n")
        resynced = await next_event(events)
        assert kinds(resynced) == [("created", "during-expiry.csv")]
        assert graph_emulator.faults.count() == 0  # the 410 came from the drive, not a fault rule
        await events.aclose()

    asyncio.run(scenario())


def test_a_restarted_triggerer_reports_what_changed_while_it_was_down_once(
    connection: str, documents: Drive, graph_emulator: GraphEmulator
) -> None:
    store = MemoryAssetState()

    async def first_life() -> None:
        trigger = watcher(connection)
        trigger.asset_state_store = store  # type: ignore[assignment]
        events = trigger.run()
        first = asyncio.ensure_future(anext(events))
        await until(lambda: delta_requests(graph_emulator) >= 2, "the watcher's first quiet poll")
        documents.put_file("Inbox/seen-before-restart.csv", b"1\n")
        assert kinds((await asyncio.wait_for(first, 60)).payload) == [("created", "seen-before-restart.csv")]
        # As the triggerer does, ask for the next event at once: the trigger saves what it reported
        # and goes back to polling, where the restart (a cancellation) finds it.
        polling = asyncio.ensure_future(anext(events))
        await until(lambda: _reported(store, "seen-before-restart.csv"), "the watcher to save what it reported")
        polling.cancel()
        await asyncio.gather(polling, return_exceptions=True)

    async def second_life() -> None:
        classpath, kwargs = watcher(connection).serialize()
        assert classpath.endswith("SharePointFolderWatchTrigger")
        trigger = SharePointFolderWatchTrigger(**kwargs)
        trigger.asset_state_store = store  # type: ignore[assignment]
        events = trigger.run()
        assert kinds(await next_event(events)) == [("deleted", "old-report.csv"), ("created", "while-down.csv")]
        await events.aclose()

    asyncio.run(first_life())
    documents.put_file("Inbox/while-down.csv", b"2\n")
    documents.delete("Inbox/old-report.csv")
    asyncio.run(second_life())


def test_the_watcher_waits_out_graph_throttling_and_still_reports(
    connection: str, documents: Drive, graph_emulator: GraphEmulator
) -> None:
    async def scenario() -> None:
        events = watcher(connection).run()
        first = asyncio.ensure_future(anext(events))
        await until(lambda: delta_requests(graph_emulator) >= 2, "the watcher's first quiet poll")
        graph_emulator.faults.throttle(r"/root/delta", retry_after=1, times=2)
        documents.put_file("Inbox/throttled.csv", b"1\n")
        assert kinds((await asyncio.wait_for(first, 60)).payload) == [("created", "throttled.csv")]
        assert graph_emulator.faults.count(r"/root/delta", kind="429") == 2
        retried = [r for r in graph_emulator.requests.records("graph") if "retry-attempt" in r.headers]
        assert [r.headers["retry-attempt"] for r in retried] == ["1", "2"]
        await events.aclose()

    asyncio.run(scenario())


def _reported(store: MemoryAssetState, path: str) -> bool:
    return any(path in [entry[0] for entry in known.values()] for known in store.values.values())
