"""apache-airflow-providers-microsoft-azure's Graph hook (KiotaRequestAdapterHook), certificate auth.

Runs in its own venv (bench/.venvs/azure). The connection (``AIRFLOW_CONN_MSGRAPH_BENCH``, built by
the harness) needs the extras ``authority``, ``allowed_hosts`` (the bare host), ``base_url`` with the
port, ``verify`` (the CA file) and ``certificate_path`` to reach a local authority and Graph.
Its MSGraphAsyncOperator always defers to the triggerer, so a task calls the hook itself, as here.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from io import BytesIO
from pathlib import Path
from typing import Any

from _child import main, timed

CONN_ID = "msgraph_bench"
CHUNK = 10 * 1024 * 1024  # upload fragment: a multiple of 320 KiB, as Graph requires


def hook() -> Any:
    from airflow.providers.microsoft.azure.hooks.msgraph import KiotaRequestAdapterHook

    return KiotaRequestAdapterHook(conn_id=CONN_ID)


def cold(config: dict[str, Any]) -> dict[str, Any]:
    site = asyncio.run(hook().run(url="sites/root"))
    return {"first_response_at": time.time(), "ok": bool(site.get("id"))}


def task_start(config: dict[str, Any]) -> dict[str, Any]:
    """Inside a task, Airflow is already imported (the task runner is Airflow): time from there."""
    import airflow.sdk  # noqa: F401 - what the worker loaded before the task started

    started = time.time()
    site = asyncio.run(hook().run(url="sites/root"))
    return {"seconds": time.time() - started, "ok": bool(site.get("id"))}


def calls(config: dict[str, Any]) -> dict[str, Any]:
    count = int(config["calls"])

    async def run_all() -> None:
        graph = hook()
        for _ in range(count):
            await graph.run(url="sites/root")

    elapsed, _ = timed(lambda: asyncio.run(run_all()))
    return {"seconds": elapsed, "calls": count}


def tasks(config: dict[str, Any]) -> dict[str, Any]:
    """Each task is a @task callable that runs the hook in its own event loop."""
    count = int(config["tasks"])
    failures: list[str] = []

    def task() -> None:
        try:
            asyncio.run(hook().run(url="sites/root"))
        except Exception as exc:  # a failed task is counted, the worker goes on
            failures.append(f"{type(exc).__name__}: {exc}"[:200])

    def run_all() -> None:
        for _ in range(count):
            task()

    elapsed, _ = timed(run_all)
    return {"seconds": elapsed, "tasks": count, "failed": len(failures), "first_failure": failures[:1]}


def small(config: dict[str, Any]) -> dict[str, Any]:
    target = Path(config["out_dir"])

    async def run() -> tuple[int, int]:
        target.mkdir(parents=True, exist_ok=True)
        graph = hook()
        pages = await graph.paginated_run(
            url=f"drives/{config['drive_id']}/items/{config['small_folder_id']}/children",
            query_parameters={"$top": 1000},
        )
        count = size = 0
        for page in pages:
            for item in page["value"]:
                if "file" not in item:
                    continue
                content = await graph.run(
                    url=f"drives/{config['drive_id']}/items/{item['id']}/content", response_type="bytes"
                )
                (target / item["name"]).write_bytes(content)
                count, size = count + 1, size + len(content)
        return count, size

    elapsed, (count, size) = timed(lambda: asyncio.run(run()))
    return {"seconds": elapsed, "files": count, "bytes": size}


def large_down(config: dict[str, Any]) -> dict[str, Any]:
    target = Path(config["out_dir"]) / Path(config["large_path"]).name

    async def run() -> int:
        target.parent.mkdir(parents=True, exist_ok=True)
        content = await hook().run(
            url=f"drives/{config['drive_id']}/items/{config['large_item_id']}/content", response_type="bytes"
        )
        target.write_bytes(content)
        return len(content)

    elapsed, size = timed(lambda: asyncio.run(run()))
    return {"seconds": elapsed, "bytes": size}


def large_up(config: dict[str, Any]) -> dict[str, Any]:
    source = Path(config["upload_file"])
    remote = f"{config['upload_folder']}/{config['client']}/{source.name}"

    async def run() -> int:
        graph = hook()
        total = source.stat().st_size
        session = await graph.run(
            url=f"drives/{config['drive_id']}/root:/{remote}:/createUploadSession",
            method="POST",
            data={"item": {"@microsoft.graph.conflictBehavior": "replace"}},
        )
        offset = 0
        with source.open("rb") as handle:
            while offset < total:
                chunk = handle.read(CHUNK)
                end = offset + len(chunk) - 1
                await graph.run(
                    url=session["uploadUrl"],
                    method="PUT",
                    data=BytesIO(chunk),
                    headers={
                        "Content-Range": f"bytes {offset}-{end}/{total}",
                        "Content-Type": "application/octet-stream",
                    },
                )
                offset = end + 1
        return offset

    elapsed, size = timed(lambda: asyncio.run(run()))
    return {"seconds": elapsed, "bytes": size}


def listing(config: dict[str, Any]) -> dict[str, Any]:
    output = Path(config["out_dir"]) / "users.json"

    async def run() -> int:
        output.parent.mkdir(parents=True, exist_ok=True)
        pages = await hook().paginated_run(url="users", query_parameters={"$top": 999})
        users = [user for page in pages for user in page["value"]]
        output.write_text(json.dumps(users))
        return len(users)

    elapsed, count = timed(lambda: asyncio.run(run()))
    return {"seconds": elapsed, "items": count}


WORKLOADS = {
    "cold": cold,
    "task-start": task_start,
    "calls": calls,
    "tasks": tasks,
    "small": small,
    "large-down": large_down,
    "large-up": large_up,
    "listing": listing,
}

if __name__ == "__main__":
    sys.exit(main(WORKLOADS))
