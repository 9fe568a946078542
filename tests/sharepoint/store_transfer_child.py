"""One transfer between SharePoint and S3 in a fresh process, reporting its own peak memory.

Run as ``python store_transfer_child.py <json>`` by test_sharepoint_store_memory.py, so that the
numbers are this process's alone: the emulator and the S3 server stay in the test's process.
Prints one JSON line: the job's summary, the RSS before the transfer and the peak RSS during it.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import s3fs
from airflow.sdk import ObjectStoragePath
from airflow.sdk.io import attach

from airflow_provider_graphcert.graph.client import GraphClient
from airflow_provider_graphcert.settings import ConnectionSettings
from airflow_provider_graphcert.sharepoint.service import SharePoint


def _status_bytes(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) * 1024  # reported in kB
    raise RuntimeError(f"no {field} in /proc/self/status")


def reset_peak_rss() -> int:
    """Start the peak over from the current RSS (Linux: clear_refs 5) and return that RSS.

    Without the reset, the peak of the imports would hide whatever the transfer itself uses.
    """
    Path("/proc/self/clear_refs").write_text("5")
    return _status_bytes("VmRSS")


def peak_rss_bytes() -> int:
    return _status_bytes("VmHWM")


def main(arguments: dict[str, Any]) -> dict[str, Any]:
    connection = arguments["connection"]
    settings = ConnectionSettings.from_fields(login=connection["login"], password=None, extra=connection["extra"])
    client = GraphClient(tokens=settings.token_provider(), graph_url=settings.graph_url, verify=settings.verify)
    service = SharePoint(client)
    fs = s3fs.S3FileSystem(key="testing", secret="testing", endpoint_url=arguments["s3_endpoint"])
    attach(protocol="s3", conn_id="store", fs=fs)
    store = ObjectStoragePath(f"s3://store@{arguments['s3_prefix']}")
    # Warm up every code path (token, TLS, s3fs, imports) on a small file so that the peak below is the
    # transfer's own growth, not the first use of a library.
    (store / "warm-up.txt").write_bytes(b"warm")
    service.upload(store / "warm-up.txt", url=arguments["upload_url"])
    before = reset_peak_rss()
    if arguments["direction"] == "upload":
        summary = service.upload(store / arguments["object"], url=arguments["upload_url"])
    else:
        summary = service.download(store / "landed", url=arguments["download_url"])
    client.close()
    return {"summary": summary, "rss_before": before, "peak_after": peak_rss_bytes()}


if __name__ == "__main__":
    print(json.dumps(main(json.loads(sys.argv[1]))))
