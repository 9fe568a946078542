"""SharePointFileSensor(deferrable=True): check once, free the worker slot, resume with the matches."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from airflow.sdk.bases.operator import TRIGGER_FAIL_REPR, TriggerFailureReason
from airflow.sdk.exceptions import AirflowSkipException, TaskDeferred
from trigger_kit import INBOX_URL, next_event

from airflow_provider_graphcert.errors import GraphCertError
from airflow_provider_graphcert.sensors.sharepoint import SharePointFileSensor
from airflow_provider_graphcert.testing.emulator.graph_state import Drive
from airflow_provider_graphcert.triggers.sharepoint_file import SharePointFileTrigger

NO_CONTEXT: Any = {}


def sensor(connection: str, **kwargs: Any) -> SharePointFileSensor:
    arguments: dict[str, Any] = {"url": INBOX_URL, "pattern": "*.xlsx", "timeout": 600, "poke_interval": 0.05}
    return SharePointFileSensor(
        task_id="wait_for_workbook", msgraph_cert_conn_id=connection, deferrable=True, **{**arguments, **kwargs}
    )


def defer(task: SharePointFileSensor) -> TaskDeferred:
    with pytest.raises(TaskDeferred) as deferred:
        task.execute(NO_CONTEXT)
    return deferred.value


def run_in_triggerer(deferred: TaskDeferred) -> dict[str, Any]:
    """What the triggerer does with it: rebuild the trigger from serialize() and wait for its event."""
    classpath, kwargs = deferred.trigger.serialize()
    assert classpath == "airflow_provider_graphcert.triggers.sharepoint_file.SharePointFileTrigger"
    return asyncio.run(next_event(SharePointFileTrigger(**kwargs).run()))


def test_a_file_already_there_completes_the_sensor_without_deferring(connection: str, documents: Drive) -> None:
    documents.put_file("Inbox/budget.xlsx", b"PK workbook")
    matches = sensor(connection).execute(NO_CONTEXT)
    assert [match["path"] for match in matches] == ["budget.xlsx"]


def test_the_sensor_defers_with_its_timeout_and_resumes_with_the_uploaded_file(
    connection: str, documents: Drive
) -> None:
    task = sensor(connection)
    deferred = defer(task)
    assert deferred.method_name == "execute_complete"
    assert deferred.timeout == timedelta(seconds=600)
    documents.put_file("Inbox/forecast.xlsx", b"PK forecast")
    payload = run_in_triggerer(deferred)
    matches = task.resume_execution(deferred.method_name, {"event": payload}, NO_CONTEXT)
    assert [match["path"] for match in matches] == ["forecast.xlsx"]
    assert matches[0]["item_id"] and matches[0]["eTag"]


def test_a_sensor_on_a_file_url_that_does_not_exist_yet_waits_for_that_name(connection: str, documents: Drive) -> None:
    task = sensor(connection, url=f"{INBOX_URL}/2026/close.xlsx", pattern=None)
    deferred = defer(task)
    documents.put_file("Inbox/2026/other.xlsx", b"not this one")
    documents.put_file("Inbox/2026/close.xlsx", b"this one")
    payload = run_in_triggerer(deferred)
    assert [match["path"] for match in payload["matches"]] == ["close.xlsx"]


def test_a_timed_out_wait_with_soft_fail_skips_the_task(connection: str, documents: Drive) -> None:
    task = sensor(connection, soft_fail=True)
    defer(task)
    with pytest.raises(AirflowSkipException):
        task.resume_execution(TRIGGER_FAIL_REPR, {"error": TriggerFailureReason.TRIGGER_TIMEOUT}, NO_CONTEXT)


def test_an_error_event_fails_the_task_with_the_triggers_reason(connection: str, documents: Drive) -> None:
    task = sensor(connection)
    with pytest.raises(GraphCertError, match=r"Graph GET .* failed with HTTP 403"):
        task.resume_execution(
            "execute_complete",
            {"event": {"status": "error", "message": "Graph GET /v1.0/drives/x/root/delta failed with HTTP 403."}},
            NO_CONTEXT,
        )
