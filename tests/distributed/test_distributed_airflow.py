"""The provider on Airflow's distributed engine: CeleryExecutor with two workers, a triggerer,
PostgreSQL and Redis, every component its own process; runs started through the REST API."""

from __future__ import annotations

import os
import time

import pytest
from distributed_kit import TOKEN_LIFETIME_SECONDS, Deployment, World

from airflow_provider_graphcert.graph.async_client import ASYNC_USER_AGENT
from airflow_provider_graphcert.testing.emulator.server import GraphEmulator

pytestmark = [pytest.mark.slow, pytest.mark.distributed]


def token_requests_by_side(emulator: GraphEmulator) -> dict[str, int]:
    """Token requests the emulator received, by caller: the triggerer's async side or a task's."""
    counts = {"triggerer": 0, "tasks": 0}
    for record in emulator.requests.records("authority"):
        if record.method == "POST" and record.path.endswith("/oauth2/v2.0/token"):
            side = "triggerer" if record.headers.get("user-agent") == ASYNC_USER_AGENT else "tasks"
            counts[side] += 1
    return counts


def finished_runs(deployment: Deployment, dag_id: str) -> list[str]:
    """Every run of the DAG so far, each waited for, oldest first."""
    runs = deployment.api("GET", f"/api/v2/dags/{dag_id}/dagRuns?order_by=start_date")["dag_runs"]
    ids = [str(run["dag_run_id"]) for run in runs]
    for run_id in ids:
        deployment.wait_for_run(dag_id, run_id)
    return ids


def watcher_polls(emulator: GraphEmulator) -> int:
    return sum(
        1
        for record in emulator.requests.records("graph")
        if record.path.endswith("/root/delta") and record.headers.get("user-agent") == ASYNC_USER_AGENT
    )


def test_a_folder_sync_started_through_the_rest_api_without_a_logical_date_lands_the_files(world: World) -> None:
    deployment = world.deployment
    run_id = deployment.trigger("sharepoint_folder_to_local")
    deployment.wait_for_run("sharepoint_folder_to_local", run_id)
    assert deployment.api("GET", f"/api/v2/dags/sharepoint_folder_to_local/dagRuns/{run_id}")["logical_date"] is None
    landed = sorted(
        p.relative_to(world.data_dir / "reports").as_posix()
        for p in (world.data_dir / "reports").rglob("*")
        if p.is_file() and not p.name.startswith(".")
    )
    paths = [world.documents.path_of(item) for item in list(world.documents.items.values()) if not item.is_folder]
    remote = sorted(
        p.removeprefix("/Reports/") for p in paths if p.startswith("/Reports/") and p.endswith((".csv", ".txt"))
    )
    assert landed == remote and len(landed) > 10
    # The example is @daily and DAGs are unpaused at creation, so the scheduler may start its own run
    # beside ours: the files are pulled once in all, by whichever run came first.
    runs = finished_runs(deployment, "sharepoint_folder_to_local")
    pulled = {run: deployment.xcom("sharepoint_folder_to_local", run, "pull_reports")["downloaded"] for run in runs}
    assert sum(pulled.values()) == len(remote)

    # Nothing changed since: the next run succeeds but announces no asset event.
    again = deployment.trigger("sharepoint_folder_to_local")
    deployment.wait_for_run("sharepoint_folder_to_local", again)
    assert deployment.xcom("sharepoint_folder_to_local", again, "pull_reports")["downloaded"] == 0
    events = deployment.api("GET", "/api/v2/assets/events?source_dag_id=sharepoint_folder_to_local")["asset_events"]
    assert sorted((e["source_run_id"], e["extra"]["downloaded"]) for e in events) == sorted(
        (run, count) for run, count in pulled.items() if count
    )


def test_the_deferrable_sensor_waits_in_the_triggerer_and_resumes_when_the_file_is_uploaded(world: World) -> None:
    deployment = world.deployment
    run_id = deployment.trigger("deferred_wait")
    deployment.wait_for(
        lambda: deployment.task_state("deferred_wait", run_id, "wait_for_approval") == "deferred",
        "the sensor to defer (its worker slot freed)",
    )
    # Deferred: the task is not running on any worker; the triggerer polls for it.
    polls_before = watcher_polls(world.emulator)
    deployment.wait_for(lambda: watcher_polls(world.emulator) >= polls_before + 3, "the triggerer to poll")
    assert deployment.task_state("deferred_wait", run_id, "wait_for_approval") == "deferred"
    world.documents.put_file("Inbox/approved-2026-03.csv", b"id,approved\n1,yes\n")
    deployment.wait_for_run("deferred_wait", run_id)
    assert deployment.xcom("deferred_wait", run_id, "hand_on") == ["approved-2026-03.csv"]


def test_an_upload_to_the_watched_folder_runs_the_dag_once_per_change_batch(world: World) -> None:
    deployment = world.deployment
    emulator = world.emulator
    # The watcher has read its baseline and polls (test order does not matter: it started with the DAG).
    deployment.wait_for(lambda: watcher_polls(emulator) >= 3, "the asset watcher to poll")
    runs_before = len(deployment.runs("on_sharepoint_upload"))
    world.documents.put_file("Inbox/invoice-0001.csv", b"id,amount\n1,100\n")
    first = deployment.wait_for(
        lambda: (runs := deployment.runs("on_sharepoint_upload"))[runs_before:] and runs[runs_before:],
        "a run of on_sharepoint_upload after the upload",
    )[0]
    deployment.wait_for_run("on_sharepoint_upload", first["dag_run_id"])
    pulled = deployment.xcom("on_sharepoint_upload", first["dag_run_id"], "pull_changed_files")
    assert pulled == {"pulled": ["invoice-0001.csv"], "deleted": [], "events": 1}
    assert (world.data_dir / "uploads" / "invoice-0001.csv").read_bytes() == b"id,amount\n1,100\n"

    world.documents.put_file("Inbox/invoice-0002.csv", b"id,amount\n2,200\n")
    world.documents.put_file("Inbox/invoice-0003.csv", b"id,amount\n3,300\n")
    second = deployment.wait_for(
        lambda: (runs := deployment.runs("on_sharepoint_upload"))[runs_before + 1 :] and runs[runs_before + 1 :],
        "a second run after the next uploads",
    )[0]
    deployment.wait_for_run("on_sharepoint_upload", second["dag_run_id"])
    pulled = deployment.xcom("on_sharepoint_upload", second["dag_run_id"], "pull_changed_files")
    assert set(pulled["pulled"]) <= {"invoice-0002.csv", "invoice-0003.csv"}
    # Quiet again: several more polls bring no further run (nothing replayed).
    polls = watcher_polls(emulator)
    deployment.wait_for(lambda: watcher_polls(emulator) >= polls + 4, "four quiet polls")
    runs = deployment.runs("on_sharepoint_upload")[runs_before:]
    reported = sorted(
        p
        for run in runs
        for p in deployment.xcom("on_sharepoint_upload", run["dag_run_id"], "pull_changed_files")["pulled"]
    )
    assert reported == ["invoice-0001.csv", "invoice-0002.csv", "invoice-0003.csv"]
    assert all(run["state"] == "success" for run in runs)


def test_a_triggerer_restart_loses_no_upload_and_replays_none(world: World) -> None:
    """Stop the triggerer while a sensor waits and the watcher watches, upload, start a new one."""
    deployment = world.deployment
    emulator = world.emulator
    run_id = deployment.trigger("deferred_wait", {"pattern": "restart-*.csv"})
    deployment.wait_for(
        lambda: deployment.task_state("deferred_wait", run_id, "wait_for_approval") == "deferred",
        "the sensor to defer",
    )
    runs_before = len(deployment.runs("on_sharepoint_upload"))
    stopped = deployment.stop_component("triggerer")
    world.documents.put_file("Inbox/restart-1.csv", b"landed while no triggerer ran\n")
    deployment.start("triggerer-2", list(stopped.process.args))
    world.triggerer_starts += 1
    deployment.wait_for_run("deferred_wait", run_id)
    assert deployment.xcom("deferred_wait", run_id, "hand_on") == ["restart-1.csv"]
    new_run = deployment.wait_for(
        lambda: (runs := deployment.runs("on_sharepoint_upload"))[runs_before:] and runs[runs_before:],
        "the watcher to report the upload made while it was down",
    )[0]
    deployment.wait_for_run("on_sharepoint_upload", new_run["dag_run_id"])
    pulled = deployment.xcom("on_sharepoint_upload", new_run["dag_run_id"], "pull_changed_files")
    assert pulled["pulled"] == ["restart-1.csv"]
    polls = watcher_polls(emulator)
    deployment.wait_for(lambda: watcher_polls(emulator) >= polls + 4, "four quiet polls after the restart")
    assert len(deployment.runs("on_sharepoint_upload")) == runs_before + 1


def test_tokens_are_requested_once_per_process_per_token_lifetime(world: World) -> None:
    """The triggerer (every trigger in it) shares one token per lifetime; each task process gets one."""
    deployment = world.deployment
    # GRAPHCERT_LONG_WATCH_SECONDS=N keeps the watcher and a deferred sensor running N s longer
    # first: the long-watch figure in docs/executors.md (not part of the default run).
    long_watch = float(os.environ.get("GRAPHCERT_LONG_WATCH_SECONDS", "0"))
    if long_watch:
        waiting = deployment.trigger("deferred_wait", {"pattern": "never-*.csv"})
        end = time.monotonic() + long_watch
        deployment.wait_for(lambda: time.monotonic() >= end, f"a {long_watch:.0f} s watch", bound=long_watch + 60)
        assert deployment.task_state("deferred_wait", waiting, "wait_for_approval") == "deferred"
    counts = token_requests_by_side(world.emulator)
    graph_tasks = 0
    for dag_id, task_ids in {
        "sharepoint_folder_to_local": {"pull_reports"},
        "deferred_wait": {"wait_for_approval"},
        "on_sharepoint_upload": {"pull_changed_files"},
    }.items():
        for run in deployment.runs(dag_id):
            tis = deployment.api("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run['dag_run_id']}/taskInstances")
            graph_tasks += sum(
                1
                for ti in tis["task_instances"]
                if ti["task_id"] in task_ids and ti["state"] in ("success", "deferred")
            )
    watched = time.monotonic() - world.started + 60  # the triggerer started before `started`
    renewals = int(watched // (TOKEN_LIFETIME_SECONDS / 2))
    print(f"token requests: {counts}; Graph-calling task instances: {graph_tasks}; watched ~{watched:.0f} s")
    assert world.triggerer_starts <= counts["triggerer"] <= world.triggerer_starts * (1 + renewals)
    # A deferred sensor runs twice on a worker (before and after deferral); only the first calls Graph.
    assert counts["tasks"] == graph_tasks
