"""The hand-written pipeline script: msal for the token, requests for the calls, one file at a time.

Written the way such scripts usually are (a requests.Session for keep-alive is the one kindness),
against the same emulator. REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE are unset by the harness: msal puts
``verify`` on its session, where those variables would override it.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import msal
import requests
from _child import main, timed

CHUNK = 10 * 1024 * 1024  # upload fragment: a multiple of 320 KiB, as Graph requires


def msal_app(config: dict[str, Any]) -> msal.ConfidentialClientApplication:
    return msal.ConfidentialClientApplication(
        config["client_id"],
        authority=f"{config['authority_host']}/{config['tenant_id']}",
        client_credential={
            "private_key": Path(config["certificate_pem"]).read_text(),
            "thumbprint": config["certificate_sha1"],
        },
        instance_discovery=False,
        verify=config["ca_bundle"],
    )


def bearer(app: msal.ConfidentialClientApplication, config: dict[str, Any]) -> dict[str, str]:
    result = app.acquire_token_for_client(scopes=[config["scope"]])
    if "access_token" not in result:
        raise RuntimeError(f"no token: {result.get('error_description')}")
    return {"Authorization": f"Bearer {result['access_token']}"}


def graph(config: dict[str, Any], path: str) -> str:
    return f"{config['graph_url']}/v1.0/{path}"


def cold(config: dict[str, Any]) -> dict[str, Any]:
    app = msal_app(config)
    response = requests.get(
        graph(config, "sites/root"), headers=bearer(app, config), verify=config["ca_bundle"], timeout=60
    )
    response.raise_for_status()
    return {"first_response_at": time.time(), "ok": bool(response.json().get("id"))}


def calls(config: dict[str, Any]) -> dict[str, Any]:
    app, session, count = msal_app(config), requests.Session(), int(config["calls"])

    def run_all() -> None:
        for _ in range(count):
            # msal's recommended pattern: ask every time, it answers from its cache.
            session.get(
                graph(config, "sites/root"), headers=bearer(app, config), verify=config["ca_bundle"]
            ).raise_for_status()

    elapsed, _ = timed(run_all)
    return {"seconds": elapsed, "calls": count}


def tasks(config: dict[str, Any]) -> dict[str, Any]:
    """Each task is a PythonOperator callable that builds its msal app and asks for a token."""
    count = int(config["tasks"])

    def task() -> None:
        app = msal_app(config)
        requests.get(
            graph(config, "sites/root"), headers=bearer(app, config), verify=config["ca_bundle"], timeout=60
        ).raise_for_status()

    def run_all() -> None:
        for _ in range(count):
            task()

    elapsed, _ = timed(run_all)
    return {"seconds": elapsed, "tasks": count}


def small(config: dict[str, Any]) -> dict[str, Any]:
    app, session, ca = msal_app(config), requests.Session(), config["ca_bundle"]
    target = Path(config["out_dir"])

    def run() -> tuple[int, int]:
        target.mkdir(parents=True, exist_ok=True)
        url: str | None = graph(config, f"drives/{config['drive_id']}/items/{config['small_folder_id']}/children")
        count = size = 0
        while url:
            page = session.get(url, headers=bearer(app, config), verify=ca)
            page.raise_for_status()
            body = page.json()
            for item in body["value"]:
                if "file" not in item:
                    continue
                content = session.get(item["@microsoft.graph.downloadUrl"], verify=ca)
                content.raise_for_status()
                (target / item["name"]).write_bytes(content.content)
                count, size = count + 1, size + len(content.content)
            url = body.get("@odata.nextLink")
        return count, size

    elapsed, (count, size) = timed(run)
    return {"seconds": elapsed, "files": count, "bytes": size}


def large_down(config: dict[str, Any]) -> dict[str, Any]:
    app, session, ca = msal_app(config), requests.Session(), config["ca_bundle"]
    target = Path(config["out_dir"]) / Path(config["large_path"]).name

    def run() -> int:
        target.parent.mkdir(parents=True, exist_ok=True)
        item = session.get(
            graph(config, f"drives/{config['drive_id']}/root:/{config['large_path']}"),
            headers=bearer(app, config),
            verify=ca,
        )
        item.raise_for_status()
        size = 0
        with session.get(item.json()["@microsoft.graph.downloadUrl"], stream=True, verify=ca) as response:
            response.raise_for_status()
            with target.open("wb") as handle:
                for chunk in response.iter_content(chunk_size=1024 * 1024):
                    handle.write(chunk)
                    size += len(chunk)
        return size

    elapsed, size = timed(run)
    return {"seconds": elapsed, "bytes": size}


def large_up(config: dict[str, Any]) -> dict[str, Any]:
    app, session, ca = msal_app(config), requests.Session(), config["ca_bundle"]
    source = Path(config["upload_file"])
    remote = f"{config['upload_folder']}/{config['client']}/{source.name}"

    def run() -> int:
        total = source.stat().st_size
        created = session.post(
            graph(config, f"drives/{config['drive_id']}/root:/{remote}:/createUploadSession"),
            headers=bearer(app, config),
            json={"item": {"@microsoft.graph.conflictBehavior": "replace"}},
            verify=ca,
        )
        created.raise_for_status()
        upload_url = created.json()["uploadUrl"]
        offset = 0
        with source.open("rb") as handle:
            while offset < total:
                chunk = handle.read(CHUNK)
                end = offset + len(chunk) - 1
                response = session.put(
                    upload_url, data=chunk, headers={"Content-Range": f"bytes {offset}-{end}/{total}"}, verify=ca
                )
                response.raise_for_status()
                offset = end + 1
        return offset

    elapsed, size = timed(run)
    return {"seconds": elapsed, "bytes": size}


def listing(config: dict[str, Any]) -> dict[str, Any]:
    app, session, ca = msal_app(config), requests.Session(), config["ca_bundle"]
    output = Path(config["out_dir"]) / "users.json"

    def run() -> int:
        output.parent.mkdir(parents=True, exist_ok=True)
        users: list[dict[str, Any]] = []
        url: str | None = graph(config, "users?$top=999")
        while url:
            page = session.get(url, headers=bearer(app, config), verify=ca)
            page.raise_for_status()
            body = page.json()
            users.extend(body["value"])
            url = body.get("@odata.nextLink")
        output.write_text(json.dumps(users))
        return len(users)

    elapsed, count = timed(run)
    return {"seconds": elapsed, "items": count}


WORKLOADS = {
    "cold": cold,
    "calls": calls,
    "tasks": tasks,
    "small": small,
    "large-down": large_down,
    "large-up": large_up,
    "listing": listing,
}

if __name__ == "__main__":
    sys.exit(main(WORKLOADS))
