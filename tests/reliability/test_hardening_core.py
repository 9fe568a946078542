"""Hardening of the auth core and the Graph client, tried as a hostile service would, over real HTTPS.

Each story is a case of issue 11 (credentials that must stay home, loops that must end, throttling
that must be shared, errors that must be typed); the emulator's tamper rules produce the hostile answers.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import certifi
import pytest
from reliability_kit import LIBRARY_URL, connection_settings, content_for, sharepoint_for

from airflow_provider_graphcert import cli
from airflow_provider_graphcert.errors import (
    GraphCertError,
    GraphPagingError,
    GraphRedirectError,
    GraphThrottledError,
    GraphUrlError,
    TokenRequestError,
)
from airflow_provider_graphcert.graph.client import GraphClient
from airflow_provider_graphcert.graph.retry import RetryPolicy
from airflow_provider_graphcert.sharepoint.service import SharePoint
from airflow_provider_graphcert.testing.clock import VirtualClock
from airflow_provider_graphcert.testing.emulator.faults import (
    TOKEN_ENDPOINT_ROUTE,
    CapturedResponse,
    edit_json,
    set_header,
)
from airflow_provider_graphcert.testing.emulator.graph_state import Drive
from airflow_provider_graphcert.testing.emulator.server import GraphEmulator
from airflow_provider_graphcert.testing.emulator.state import App

AIRFLOW_BIN = Path(sys.executable).parent / "airflow"


def _client(emulator: GraphEmulator, app: App, pem: Path, **kwargs: Any) -> GraphClient:
    settings = connection_settings(emulator, app, pem)
    return GraphClient(
        tokens=settings.token_provider(),
        graph_url=settings.graph_url,
        verify=settings.verify,
        timeout=settings.timeout,
        **kwargs,
    )


def _origin_requests(emulator: GraphEmulator, origin: str) -> list[Any]:
    return list(emulator.requests.records(origin))  # type: ignore[arg-type]


# -- credentials stay home ---------------------------------------------------------------------


@pytest.mark.parametrize("scheme", ["https", "http"])
def test_a_token_endpoint_that_redirects_elsewhere_never_gets_the_assertion_resent(
    graph_emulator: GraphEmulator, app: App, pem_file: Path, scheme: str
) -> None:
    files_port = graph_emulator.files_url.rsplit(":", 1)[1]
    thief = f"{scheme}://127.0.0.1:{files_port}/collect"
    graph_emulator.faults.tamper(TOKEN_ENDPOINT_ROUTE, set_header("Location", thief, status=307), times=None)
    provider = connection_settings(graph_emulator, app, pem_file).token_provider()
    authority = graph_emulator.authority_host.split("://", 1)[1]

    with pytest.raises(TokenRequestError) as raised:
        provider.request_token()

    message = str(raised.value)
    assert f"token endpoint at {authority} answered HTTP 307" in message
    assert f"to {scheme}://127.0.0.1:{files_port}" in message
    assert "authority_host" in message
    assert _origin_requests(graph_emulator, "files") == []  # the form, assertion included, went nowhere else


def test_a_graph_redirect_to_another_host_is_followed_for_a_read_but_without_the_token(
    graph_emulator: GraphEmulator, app: App, pem_file: Path, site: object
) -> None:
    elsewhere = f"{graph_emulator.files_url}/somewhere"
    graph_emulator.faults.tamper("^/v1.0/sites/root$", set_header("Location", elsewhere, status=302), times=1)
    with _client(graph_emulator, app, pem_file) as client:
        response = client.request("GET", "sites/root", raise_for_status=False)
    followed = _origin_requests(graph_emulator, "files")
    assert response.status_code == 404 and [r.path for r in followed] == ["/somewhere"]
    assert "authorization" not in followed[0].headers


def test_a_graph_redirect_of_a_request_with_a_body_to_another_host_is_refused(
    graph_emulator: GraphEmulator, app: App, pem_file: Path, site: object, documents: Drive
) -> None:
    elsewhere = f"{graph_emulator.files_url}/collect"
    graph_emulator.faults.tamper(
        r"/createUploadSession$", set_header("Location", elsewhere, status=307), method="POST", times=None
    )
    drive_id = documents.id
    with _client(graph_emulator, app, pem_file) as client, pytest.raises(GraphRedirectError) as raised:
        client.send_json("POST", f"drives/{drive_id}/root:/big.bin:/createUploadSession", {"item": {}})
    assert "to another host" in str(raised.value)
    assert _origin_requests(graph_emulator, "files") == []  # neither the body nor the token left


@pytest.mark.parametrize("route", ["^/_api/v2.0/uploadSession$", "^/_layouts/15/download.aspx$"])
def test_pre_authenticated_transfers_never_follow_a_redirect(
    graph_emulator: GraphEmulator, app: App, pem_file: Path, documents: Drive, tmp_path: Path, route: str
) -> None:
    documents.put_file("Reports/q1.csv", b"a,b\n1,2\n")
    big = tmp_path / "big.bin"
    big.write_bytes(content_for("big", 5 * 1024 * 1024))  # over 4 MiB: an upload session
    elsewhere = f"{graph_emulator.authority_host}/collect"
    graph_emulator.faults.tamper(route, set_header("Location", elsewhere, status=307), origin="files", times=None)
    sharepoint = sharepoint_for(graph_emulator, app, pem_file)
    with pytest.raises(GraphCertError, match="HTTP 307"):
        if "upload" in route:
            sharepoint.upload(big, url=f"{LIBRARY_URL}/Inbound")
        else:
            sharepoint.download(tmp_path / "out", url=f"{LIBRARY_URL}/Reports/q1.csv")
    assert [r.path for r in _origin_requests(graph_emulator, "authority") if r.path == "/collect"] == []


def test_a_graph_redirect_loop_ends_with_a_typed_error(
    graph_emulator: GraphEmulator, app: App, pem_file: Path, site: object
) -> None:
    loop = f"{graph_emulator.graph_url}/v1.0/sites/root"
    graph_emulator.faults.tamper("^/v1.0/sites/root$", set_header("Location", loop, status=302), times=None)
    with _client(graph_emulator, app, pem_file) as client, pytest.raises(GraphRedirectError) as raised:
        client.get_json("sites/root")
    assert "redirect loop" in str(raised.value)


@pytest.mark.parametrize("bad_url", ["file:///etc/passwd", "/_layouts/15/download.aspx?tempauth=x", "ftp://h/x"])
def test_a_download_url_that_is_not_https_is_a_service_fault_not_a_disk_error(
    graph_emulator: GraphEmulator, app: App, pem_file: Path, documents: Drive, tmp_path: Path, bad_url: str
) -> None:
    documents.put_file("Reports/q1.csv", b"a,b\n1,2\n")

    def poison(response: CapturedResponse) -> CapturedResponse:
        if response.status in (301, 302, 307):
            return response.with_header("Location", bad_url)  # the /content redirect, if it is used
        try:
            body = response.json()
        except ValueError:
            return response
        if isinstance(body, dict) and body.get("name") == "q1.csv":
            body["@microsoft.graph.downloadUrl"] = bad_url
        return response.with_json(body)

    graph_emulator.faults.tamper(None, poison, method="GET", origin="graph", times=None)
    sharepoint = sharepoint_for(graph_emulator, app, pem_file)
    with pytest.raises(GraphUrlError) as raised:
        sharepoint.download(tmp_path / "out", url=f"{LIBRARY_URL}/Reports/q1.csv")
    assert "not an absolute https:// URL" in str(raised.value)
    assert "Cannot write" not in str(raised.value)
    assert "tempauth=x" not in str(raised.value)


def test_pre_authenticated_urls_never_reach_a_log_record_even_at_debug(
    graph_emulator: GraphEmulator,
    app: App,
    pem_file: Path,
    documents: Drive,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    documents.put_file("Reports/q1.csv", content_for("q1", 50_000))
    big = tmp_path / "up" / "big.bin"
    big.parent.mkdir()
    big.write_bytes(content_for("big", 5 * 1024 * 1024))  # over 4 MiB: an upload session
    sharepoint = sharepoint_for(graph_emulator, app, pem_file)
    caplog.set_level(logging.DEBUG)

    sharepoint.download(tmp_path / "down", url=f"{LIBRARY_URL}/Reports/q1.csv")
    sharepoint.upload(big, url=f"{LIBRARY_URL}/Inbound")

    text = caplog.text + "".join(str(r.args) for r in caplog.records)
    assert "tempauth=REDACTED" in text  # urllib3 did log both URLs, with their credential taken out
    assert not [line for line in text.splitlines() if "tempauth=" in line and "tempauth=REDACTED" not in line]


# -- loops end -----------------------------------------------------------------------------------


def test_a_next_link_back_to_a_page_already_read_stops_the_listing(
    graph_emulator: GraphEmulator, app: App, pem_file: Path
) -> None:
    graph_emulator.graph.add_users(2500)
    first_link: list[str] = []

    def point_back(body: Any) -> Any:
        link = body.get("@odata.nextLink")
        if link and not first_link:
            first_link.append(link)
        elif link:
            body["@odata.nextLink"] = first_link[0]  # page 2 says: read page 2 again
        return body

    graph_emulator.faults.tamper("^/v1.0/users$", edit_json(point_back), times=None)
    with _client(graph_emulator, app, pem_file) as client, pytest.raises(GraphPagingError) as raised:
        # A bound of our own, so the unfixed client ends this test (with too many users) instead of hanging it.
        users = list(itertools.islice(client.iter_items("users", params={"$top": 999}), 20_000))
        pytest.fail(f"the listing did not stop: {len(users)} users read")
    assert "points back to a page already read" in str(raised.value)


# -- throttling is shared by the job -------------------------------------------------------------


def test_endless_throttling_of_a_40_file_download_fails_within_the_jobs_wait_budget(
    graph_emulator: GraphEmulator, app: App, pem_file: Path, documents: Drive, tmp_path: Path
) -> None:
    for i in range(40):
        documents.put_file(f"Month/file {i:02d}.csv", content_for(f"file {i}", 1000 + i))
    clock = VirtualClock()
    budget = 300.0
    policy = RetryPolicy(backoff_initial=0.05, backoff_max=0.5, max_job_wait=budget)
    settings = connection_settings(graph_emulator, app, pem_file)
    client = GraphClient(
        tokens=settings.token_provider(),
        graph_url=settings.graph_url,
        verify=settings.verify,
        retry=policy,
        sleep=clock.sleep,
        clock=clock,
    )
    graph_emulator.faults.tamper(None, set_header("Retry-After", "60", status=429), origin="files", times=None)
    with pytest.raises(GraphCertError) as raised:
        SharePoint(client).download(tmp_path / "out", url=f"{LIBRARY_URL}/Month", max_workers=8)

    assert clock.now <= budget  # the job's own time, not 40 files x 10 attempts x 60 s
    message = str(raised.value)
    assert "wait budget of 300 s" in message and "HTTP 429" in message
    assert client.throttle.paused_total <= budget


def test_a_job_that_spent_its_wait_budget_fails_every_later_request_at_once(
    graph_emulator: GraphEmulator, app: App, pem_file: Path, site: object
) -> None:
    clock = VirtualClock()
    policy = RetryPolicy(max_total_wait=600, max_job_wait=100)
    client = _client(graph_emulator, app, pem_file, sleep=clock.sleep, clock=clock, retry=policy)
    graph_emulator.faults.throttle("^/v1.0/sites/root$", retry_after=30, times=1)
    assert client.get_json("sites/root")["id"]  # paused 30 s, then answered
    graph_emulator.faults.throttle("^/v1.0/sites/root$", retry_after=80, times=1)
    with pytest.raises(GraphThrottledError, match="wait budget of 100 s"):
        client.get_json("sites/root")  # 30 + 80 s would pass the job's 100 s
    sent = len(_origin_requests(graph_emulator, "graph"))
    with pytest.raises(GraphThrottledError, match="wait budget of 100 s"):
        client.get_json("sites/root")
    assert len(_origin_requests(graph_emulator, "graph")) == sent  # failed without asking Graph again
    assert clock.now == pytest.approx(30.0)


# -- the token endpoint's odd answers -------------------------------------------------------------


@pytest.mark.parametrize("retry_after", ["-1", "soon"])
def test_one_throttled_token_request_with_a_nonsense_retry_after_is_retried(
    graph_emulator: GraphEmulator, app: App, pem_file: Path, retry_after: str
) -> None:
    graph_emulator.faults.tamper(TOKEN_ENDPOINT_ROUTE, set_header("Retry-After", retry_after, status=429), times=1)
    provider = connection_settings(graph_emulator, app, pem_file).token_provider()
    assert provider.request_token().token
    assert len(_origin_requests(graph_emulator, "authority")) >= 2


# -- trust and environment ------------------------------------------------------------------------


def test_the_connections_ca_bundle_wins_over_a_wrong_requests_ca_bundle(
    graph_emulator: GraphEmulator, app: App, pem_file: Path, site: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", certifi.where())  # trusts the world, not the emulator
    with _client(graph_emulator, app, pem_file) as client:
        assert client.get_json("sites/root")["id"]


def test_without_a_ca_bundle_the_environments_bundle_is_honoured(
    graph_emulator: GraphEmulator, app: App, pem_file: Path, site: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(graph_emulator.ca_bundle))
    settings = connection_settings(graph_emulator, app, pem_file)
    with GraphClient(tokens=settings.token_provider(), graph_url=settings.graph_url) as client:
        assert client.get_json("sites/root")["id"]
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", certifi.where())
    with (
        GraphClient(tokens=settings.token_provider(), graph_url=settings.graph_url) as client,
        pytest.raises(GraphCertError, match=r"TLS verification of .* failed .*ca_bundle"),
    ):
        client.get_json("sites/root")


# -- graphcert check, wherever the connection lives ------------------------------------------------


def test_graphcert_check_reads_a_connection_stored_in_the_metadata_database(
    graph_emulator: GraphEmulator,
    app: App,
    pem_file: Path,
    migrated_airflow_home: Path,
    tmp_path: Path,
) -> None:
    home = tmp_path / "airflow-home"
    shutil.copytree(migrated_airflow_home, home)  # its own metadata database
    (home / "airflow.cfg").unlink(missing_ok=True)
    env = {**os.environ, "AIRFLOW_HOME": str(home), "AIRFLOW__CORE__LOAD_EXAMPLES": "False"}
    connection = graph_emulator.connection(app, certificate_path=str(pem_file))
    added = subprocess.run(
        [str(AIRFLOW_BIN), "connections", "add", "sharepoint_prod", "--conn-json", json.dumps(connection)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert added.returncode == 0, added.stderr

    checked = subprocess.run(
        [str(AIRFLOW_BIN.parent / "graphcert"), "check", "sharepoint_prod"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )

    assert checked.returncode == 0, checked.stderr
    assert f"OK: Authenticated as app {app.client_id}" in checked.stdout
    assert "Traceback" not in checked.stderr


@pytest.mark.parametrize(
    ("extra", "message"),
    [([1, 2], "extra is a list in JSON"), ("tenant_id=contoso", "extra is not valid JSON")],
)
def test_graphcert_check_of_an_extra_that_is_not_an_object_is_one_line_naming_extra(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], extra: object, message: str
) -> None:
    connection = {"conn_type": "msgraph_cert", "login": "11111111-2222-3333-4444-555555555555", "extra": extra}
    monkeypatch.setenv("AIRFLOW_CONN_SHAREPOINT_BROKEN", json.dumps(connection))
    assert cli.main(["check", "sharepoint_broken"]) == cli.EXIT_FAILED
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and "tenant_id is empty" not in err


# -- what the services send is checked before it is used --------------------------------------------


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("expires_in", "soon", "expires_in='soon', not a positive number of seconds"),
        ("expires_in", -5, "expires_in='-5', not a positive number of seconds"),
        ("refresh_in", "NaN", "refresh_in='NaN', not a positive number of seconds"),
        ("access_token", None, "without a usable access_token"),
        ("access_token", {"jwt": "x"}, "without a usable access_token"),
    ],
)
def test_a_token_response_with_hostile_fields_is_one_clear_error(
    graph_emulator: GraphEmulator, app: App, pem_file: Path, field: str, value: object, message: str
) -> None:
    def spoil(body: Any) -> Any:
        body[field] = value
        return body

    graph_emulator.faults.tamper(TOKEN_ENDPOINT_ROUTE, edit_json(spoil), times=None)
    provider = connection_settings(graph_emulator, app, pem_file).token_provider()
    with pytest.raises(TokenRequestError, match=message):
        provider.request_token()


@pytest.mark.parametrize("next_link", [42, "", ["https://graph/next"]])
def test_a_next_link_that_is_not_a_url_is_not_taken_for_the_end_of_the_listing(
    graph_emulator: GraphEmulator, app: App, pem_file: Path, next_link: object
) -> None:
    graph_emulator.graph.add_users(20)

    def spoil(body: Any) -> Any:
        body["@odata.nextLink"] = next_link
        return body

    graph_emulator.faults.tamper("^/v1.0/users$", edit_json(spoil), times=None)
    with _client(graph_emulator, app, pem_file) as client, pytest.raises(GraphPagingError, match="not a URL"):
        list(client.iter_items("users"))


@pytest.mark.parametrize(
    "spoil",
    [
        lambda body: {"responses": "none"},
        lambda body: {"responses": [{**r, "status": "200 OK"} for r in body["responses"]]},
        lambda body: {"responses": [{**r, "headers": ["x"]} for r in body["responses"]]},
    ],
)
def test_a_malformed_batch_reply_is_one_clear_error(
    graph_emulator: GraphEmulator, app: App, pem_file: Path, site: object, spoil: Any
) -> None:
    from airflow_provider_graphcert.graph.batch import BatchRequest, run_batch

    graph_emulator.faults.tamper(r"^/v1.0/\$batch$", edit_json(spoil), times=None)
    with _client(graph_emulator, app, pem_file) as client, pytest.raises(GraphCertError, match=r"\$batch reply"):
        run_batch(client, [BatchRequest("GET", "/sites/root")])
