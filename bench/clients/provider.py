"""This provider, as a DAG uses it: the hook and the operators over an Airflow connection (env var).

``cold-core`` is the auth core and Graph client alone, without Airflow (plain Python use).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

from _child import files_under, main, peak_rss_bytes, timed


def cold_core(config: dict[str, Any]) -> dict[str, Any]:
    from airflow_provider_graphcert.graph.client import GraphClient
    from airflow_provider_graphcert.settings import ConnectionSettings

    connection = config["connection"]
    settings = ConnectionSettings.from_fields(login=connection["login"], password=None, extra=connection["extra"])
    client = GraphClient(tokens=settings.token_provider(), graph_url=settings.graph_url, verify=settings.verify)
    site = client.get_json("sites/root")
    return {"first_response_at": time.time(), "ok": bool(site.get("id"))}


def cold_hook(config: dict[str, Any]) -> dict[str, Any]:
    from airflow_provider_graphcert.hooks.graph_cert import GraphCertHook

    site = GraphCertHook(config["conn_id"]).get_conn().get_json("sites/root")
    return {"first_response_at": time.time(), "ok": bool(site.get("id"))}


def airflow_import(config: dict[str, Any]) -> dict[str, Any]:
    """The floor under any hook's cold start: importing Airflow's task SDK, nothing else."""
    import airflow.sdk  # noqa: F401

    return {"first_response_at": time.time(), "ok": True}


def task_start(config: dict[str, Any]) -> dict[str, Any]:
    """Inside a task, Airflow is already imported (the task runner is Airflow): time from there."""
    import airflow.sdk  # noqa: F401 - what the worker loaded before the task started

    started = time.time()
    from airflow_provider_graphcert.hooks.graph_cert import GraphCertHook

    site = GraphCertHook(config["conn_id"]).get_conn().get_json("sites/root")
    return {"seconds": time.time() - started, "ok": bool(site.get("id"))}


def calls(config: dict[str, Any]) -> dict[str, Any]:
    from airflow_provider_graphcert.hooks.graph_cert import GraphCertHook

    client = GraphCertHook(config["conn_id"]).get_conn()
    count = int(config["calls"])
    elapsed, _ = timed(lambda: [client.get_json("sites/root") for _ in range(count)])
    return {"seconds": elapsed, "calls": count}


def tasks(config: dict[str, Any]) -> dict[str, Any]:
    """Each task builds its operator (and so its hook and session) anew, as a worker running tasks does."""
    from airflow_provider_graphcert.operators.graph import GraphRequestOperator

    count = int(config["tasks"])

    def run_all() -> None:
        for i in range(count):
            GraphRequestOperator(
                task_id=f"task_{i}", path="/sites/root", msgraph_cert_conn_id=config["conn_id"]
            ).execute({})

    elapsed, _ = timed(run_all)
    return {"seconds": elapsed, "tasks": count}


def small(config: dict[str, Any]) -> dict[str, Any]:
    from airflow_provider_graphcert.operators.sharepoint import SharePointDownloadOperator

    target = Path(config["out_dir"])
    operator = SharePointDownloadOperator(
        task_id="download_folder",
        site_url=config["site_url"],
        library=config["library"],
        path=config["small_folder"],
        local_dir=str(target),
        msgraph_cert_conn_id=config["conn_id"],
    )
    elapsed, _ = timed(lambda: operator.execute({}))
    count, size = files_under(target)
    return {"seconds": elapsed, "files": count, "bytes": size}


def large_down(config: dict[str, Any]) -> dict[str, Any]:
    from airflow_provider_graphcert.operators.sharepoint import SharePointDownloadOperator

    target = Path(config["out_dir"])
    operator = SharePointDownloadOperator(
        task_id="download_file",
        site_url=config["site_url"],
        library=config["library"],
        path=config["large_path"],
        local_dir=str(target),
        msgraph_cert_conn_id=config["conn_id"],
    )
    imported = peak_rss_bytes()
    elapsed, _ = timed(lambda: operator.execute({}))
    _, size = files_under(target)
    return {"seconds": elapsed, "bytes": size, "peak_rss_before_transfer_bytes": imported}


def large_up(config: dict[str, Any]) -> dict[str, Any]:
    from airflow_provider_graphcert.operators.sharepoint import SharePointUploadOperator

    operator = SharePointUploadOperator(
        task_id="upload_file",
        local_path=config["upload_file"],
        site_url=config["site_url"],
        library=config["library"],
        path=f"{config['upload_folder']}/{config['client']}",
        msgraph_cert_conn_id=config["conn_id"],
    )
    elapsed, result = timed(lambda: operator.execute({}))
    return {"seconds": elapsed, "bytes": int(result["bytes"])}


def listing(config: dict[str, Any]) -> dict[str, Any]:
    from airflow_provider_graphcert.operators.graph import GraphRequestOperator

    output = Path(config["out_dir"]) / "users.jsonl"
    operator = GraphRequestOperator(
        task_id="export_users",
        path="/users",
        query={"$top": 999},
        paginate=True,
        output_path=str(output),
        msgraph_cert_conn_id=config["conn_id"],
    )
    elapsed, result = timed(lambda: operator.execute({}))
    return {"seconds": elapsed, "items": int(result["count"])}


WORKLOADS = {
    "cold-core": cold_core,
    "cold-hook": cold_hook,
    "airflow-import": airflow_import,
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
