"""Hostile or broken answers from the service: nothing lands outside the target, nothing hangs,
and the bearer token never goes to another host.

The emulator's own rules stay strict; hostile items come in through ``Drive.put_unchecked`` (a
test-only door) and hostile answers through tamper rules on the fault switchboard.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from reliability_kit import LIBRARY_URL, content_for, local_files, partial_files, sharepoint_for, tally

from airflow_provider_graphcert.errors import GraphCertError, GraphThrottledError
from airflow_provider_graphcert.graph.retry import RetryPolicy
from airflow_provider_graphcert.sharepoint.folder_download import FolderDownloadError
from airflow_provider_graphcert.sharepoint.service import SharePoint
from airflow_provider_graphcert.testing.emulator.faults import (
    CapturedResponse,
    declare_length,
    edit_json,
    replace_body,
    set_header,
)
from airflow_provider_graphcert.testing.emulator.graph_routes import DOWNLOAD_PATH
from airflow_provider_graphcert.testing.emulator.graph_state import Drive
from airflow_provider_graphcert.testing.emulator.server import GraphEmulator
from airflow_provider_graphcert.testing.emulator.state import App

FOLDER_URL = f"{LIBRARY_URL}/Exports"
CHILDREN = r"/children$"
ITEM = r"/items/[^/:]+$"
# A hostile service must not make a job wait long: every case here ends within this.
PROMPT_SECONDS = 15.0


@pytest.fixture
def service(graph_emulator: GraphEmulator, app: App, pem_file: Path) -> Iterator[SharePoint]:
    # A 20 s waiting budget per request: a huge Retry-After must end the wait, not stretch it.
    policy = RetryPolicy(max_total_wait=20.0, backoff_initial=0.05, backoff_max=0.5)
    sharepoint = sharepoint_for(graph_emulator, app, pem_file, retry=policy)
    yield sharepoint
    sharepoint.client.close()
    # Whatever happened, the bearer token went to the Graph host only.
    for origin in ("authority", "files"):
        leaked = [r.path for r in graph_emulator.requests.records(origin) if "authorization" in r.headers]
        assert not leaked, f"Authorization sent to the {origin} host: {leaked}"


@pytest.fixture
def exports(documents: Drive) -> dict[str, bytes]:
    files = {f"good {i}.csv": content_for(f"good {i}", 1000 + i) for i in range(5)}
    files["big.bin"] = content_for("big", 2 * 1024 * 1024 + 17)
    for name, data in files.items():
        documents.put_file(f"Exports/{name}", data)
    return files


def _everything_outside(root: Path, target: Path) -> set[str]:
    """Every file below ``root`` that is not below ``target`` (to prove nothing escaped)."""
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file() and target not in p.parents}


HOSTILE_NAMES = {
    "..": "outside its folder",
    ".": "outside its folder",
    "../../escaped.txt": "path separator",
    "/etc/cron.d/evil": "path separator",
    "\\windows\\evil.txt": "path separator",
    "bell\x07.txt": "control characters",
    "new\nline.txt": "control characters",
    "x" * 300 + ".txt": "over 255",
}


def test_hostile_item_names_never_write_outside_the_target(
    graph_emulator: GraphEmulator, service: SharePoint, documents: Drive, exports: dict[str, bytes], tmp_path: Path
) -> None:
    for name in HOSTILE_NAMES:
        documents.put_unchecked("Exports", name, b"hostile payload")
    documents.put_file("Exports/sub/data.csv", b"genuine")
    documents.put_unchecked("Exports", "sub/data.csv", b"hostile impostor")  # a name posing as that path
    posing = documents.put_unchecked("Exports", "sub/../../up", None)  # a folder whose name poses as a path
    documents.put_unchecked(posing, "inside.txt", b"below a hostile folder")
    documents.put_unchecked("Exports", "GOOD 0.CSV", b"same name as good 0.csv but for case")
    for reserved in ("CON", "nul.txt", "LPT1.log"):
        documents.put_unchecked("Exports", reserved, f"reserved {reserved}".encode())
    target = tmp_path / "landing"
    before = _everything_outside(tmp_path, target)

    with pytest.raises(FolderDownloadError) as info:
        service.download(target, url=FOLDER_URL)

    failed = info.value.result.failed
    for name, reason in HOSTILE_NAMES.items():
        assert reason in failed[name], (name, failed.get(name))
    assert "sub/../../up/" in failed  # the folder is refused with everything below it
    assert "differs only in case" in failed["GOOD 0.CSV"]
    message = str(info.value)
    assert f"{len(failed)} of" in message and "control characters" in message
    landed = local_files(target)
    for name, data in exports.items():
        assert landed[name] == data
    assert landed["sub/data.csv"] == b"genuine"
    if os.name != "nt":  # ordinary names on POSIX; refused as reserved on Windows
        assert {"CON", "nul.txt", "LPT1.log"} <= landed.keys()
    assert not [name for name in landed if "hostile" in landed[name].decode(errors="replace")]
    assert _everything_outside(tmp_path, target) == before
    assert not partial_files(target)
    tally("faults injected", len(HOSTILE_NAMES) + 5)
    tally("faults survived", len(HOSTILE_NAMES) + 5)


def test_a_next_link_to_another_host_is_not_followed(
    graph_emulator: GraphEmulator, service: SharePoint, exports: dict[str, bytes], tmp_path: Path
) -> None:
    foreign = f"{graph_emulator.files_url}/v1.0/drives/x/items/y/children?$skiptoken=steal"

    def add_foreign_next_link(page: dict[str, Any]) -> dict[str, Any]:
        page["@odata.nextLink"] = foreign
        return page

    graph_emulator.faults.tamper(CHILDREN, edit_json(add_foreign_next_link), origin="graph")
    started = time.monotonic()
    with pytest.raises(GraphCertError, match=re.escape("Refusing to send the Graph token to https://127.0.0.1")):
        service.download(tmp_path / "landing", url=FOLDER_URL)
    assert time.monotonic() - started < PROMPT_SECONDS
    assert not [r for r in graph_emulator.requests.records("files") if r.path.endswith("/children")]
    # What the genuine page listed may have landed, whole; nothing else did.
    landed = local_files(tmp_path / "landing")
    assert all(exports[name] == data for name, data in landed.items())
    tally("faults injected")
    tally("faults survived")


def test_download_urls_on_another_host_get_no_token_and_land_nothing(
    graph_emulator: GraphEmulator, service: SharePoint, exports: dict[str, bytes], tmp_path: Path
) -> None:
    foreign = f"{graph_emulator.authority_host}/steal"

    def point_elsewhere(data: dict[str, Any]) -> dict[str, Any]:
        for item in data.get("value", [data]):
            if "@microsoft.graph.downloadUrl" in item:
                item["@microsoft.graph.downloadUrl"] = f"{foreign}?item={item['id']}"
        return data

    # The listing and every fresh look at an item point downloads at another host.
    graph_emulator.faults.tamper(CHILDREN, edit_json(point_elsewhere), origin="graph")
    graph_emulator.faults.tamper(ITEM, edit_json(point_elsewhere), origin="graph", times=None)
    started = time.monotonic()
    with pytest.raises(FolderDownloadError) as info:
        service.download(tmp_path / "landing", url=FOLDER_URL)
    assert time.monotonic() - started < PROMPT_SECONDS
    assert len(info.value.result.failed) == len(exports)
    assert all("HTTP 404" in reason for reason in info.value.result.failed.values())
    stolen = [r for r in graph_emulator.requests.records("authority") if r.path == "/steal"]
    assert stolen and not [r for r in stolen if "authorization" in r.headers]
    assert not local_files(tmp_path / "landing") and not partial_files(tmp_path / "landing")
    tally("faults injected", 2)
    tally("faults survived", 2)


def test_a_redirect_to_another_host_drops_the_token(
    graph_emulator: GraphEmulator, service: SharePoint, exports: dict[str, bytes]
) -> None:
    graph_emulator.faults.tamper(
        r"/root:/Exports:$", set_header("location", f"{graph_emulator.files_url}/elsewhere", status=302)
    )
    with pytest.raises(GraphCertError, match="does not exist"):
        service.resolve(url=FOLDER_URL)
    followed = [r for r in graph_emulator.requests.records("files") if r.path == "/elsewhere"]
    assert len(followed) == 1 and "authorization" not in followed[0].headers
    tally("faults injected")
    tally("faults survived")


@pytest.mark.parametrize(
    ("origin", "route"),
    [pytest.param("graph", CHILDREN, id="Graph listing"), pytest.param("files", DOWNLOAD_PATH, id="download host")],
)
def test_a_huge_retry_after_ends_the_wait_instead_of_hanging(
    graph_emulator: GraphEmulator,
    service: SharePoint,
    exports: dict[str, bytes],
    tmp_path: Path,
    origin: str,
    route: str,
) -> None:
    graph_emulator.faults.add(route, status=429, retry_after=86_400, origin=origin, times=None)
    started = time.monotonic()
    with pytest.raises(GraphCertError) as info:
        service.download(tmp_path / "landing", url=FOLDER_URL)
    assert time.monotonic() - started < PROMPT_SECONDS
    assert "429" in str(info.value)
    assert not local_files(tmp_path / "landing") and not partial_files(tmp_path / "landing")
    tally("faults injected")
    tally("faults survived")


def test_a_retry_after_date_far_ahead_is_bounded_and_garbage_is_backed_off(
    graph_emulator: GraphEmulator, service: SharePoint, exports: dict[str, bytes], tmp_path: Path
) -> None:
    graph_emulator.faults.tamper(CHILDREN, set_header("retry-after", "soon-ish", status=503), times=2)
    summary = service.download(tmp_path / "first", url=FOLDER_URL)
    assert summary["downloaded"] == len(exports)

    far = set_header("retry-after", "Fri, 31 Dec 9999 23:59:59 GMT", status=503)
    graph_emulator.faults.tamper(CHILDREN, far, times=None)
    started = time.monotonic()
    with pytest.raises(GraphThrottledError, match="retry budget"):
        service.download(tmp_path / "second", url=FOLDER_URL)
    assert time.monotonic() - started < PROMPT_SECONDS
    tally("faults injected", 3)
    tally("faults survived", 3)


def _truncate(response: CapturedResponse) -> CapturedResponse:
    return replace_body(response.body[: len(response.body) // 2])(response)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        pytest.param(replace_body(b'{"value": [{"id": "01A'), "not JSON", id="truncated JSON"),
        pytest.param(
            replace_body(b"<html>Service Unavailable</html>", content_type="text/html"), "not JSON", id="HTML"
        ),
        pytest.param(edit_json(lambda page: {"value": "everything"}), "malformed page", id="value not a list"),
        pytest.param(edit_json(lambda page: {"value": [1, 2, 3]}), "malformed page", id="items not objects"),
        pytest.param(
            edit_json(lambda page: {"value": [{"name": "x.csv", "file": {}}]}), "without a name or id", id="no id"
        ),
    ],
)
def test_malformed_json_is_a_clear_error_and_nothing_lands(
    graph_emulator: GraphEmulator,
    service: SharePoint,
    exports: dict[str, bytes],
    tmp_path: Path,
    edit: Any,
    message: str,
) -> None:
    graph_emulator.faults.tamper(CHILDREN, edit, origin="graph")
    with pytest.raises(GraphCertError, match=message) as info:
        service.download(tmp_path / "landing", url=FOLDER_URL)
    assert (info.value.__cause__ is None and info.value.__suppress_context__) or info.value.__context__ is None
    assert not local_files(tmp_path / "landing")
    tally("faults injected")
    tally("faults survived")


def test_a_content_length_that_lies_never_leaves_a_short_file(
    graph_emulator: GraphEmulator, service: SharePoint, documents: Drive, exports: dict[str, bytes], tmp_path: Path
) -> None:
    # Announces more than it sends, once: the cut body is resumed with Range and lands whole.
    graph_emulator.faults.tamper(DOWNLOAD_PATH, declare_length(lambda n: n + 4096), origin="files")
    summary = service.download(tmp_path / "resumed", url=f"{FOLDER_URL}/big.bin")
    assert summary["downloaded"] == 1
    assert (tmp_path / "resumed" / "big.bin").read_bytes() == exports["big.bin"]

    # Announces less than the file every time: the short body fails the size check, nothing lands.
    graph_emulator.faults.tamper(DOWNLOAD_PATH, declare_length(lambda n: n // 3), origin="files", times=None)
    with pytest.raises(GraphCertError, match="the file was not written"):
        service.download(tmp_path / "short", url=f"{FOLDER_URL}/big.bin")
    assert not local_files(tmp_path / "short") and not partial_files(tmp_path / "short")

    # Announces more every time, but the body ends where the file does: one Range request finds
    # nothing left (416), and the whole file lands, checked by its size and hash, without looping.
    graph_emulator.faults.clear()
    graph_emulator.faults.tamper(DOWNLOAD_PATH, declare_length(lambda n: n + 1), origin="files", times=None)
    started = time.monotonic()
    assert service.download(tmp_path / "always", url=f"{FOLDER_URL}/big.bin")["downloaded"] == 1
    assert time.monotonic() - started < PROMPT_SECONDS
    assert (tmp_path / "always" / "big.bin").read_bytes() == exports["big.bin"]
    assert graph_emulator.faults.count(DOWNLOAD_PATH) <= 2
    # And a lying length on a Graph listing is read as a cut connection and retried.
    graph_emulator.faults.clear()
    graph_emulator.faults.tamper(CHILDREN, declare_length(lambda n: n + 100), origin="graph")
    assert service.download(tmp_path / "listing", url=FOLDER_URL)["downloaded"] == len(exports)
    tally("faults injected", 4)
    tally("faults survived", 4)


class _MemoryDeltaStore:
    def __init__(self) -> None:
        self.link: str | None = None

    def load(self) -> str | None:
        return self.link

    def save(self, link: str) -> None:
        self.link = link


def test_a_sync_never_lets_a_name_pose_as_a_path(service: SharePoint, documents: Drive, tmp_path: Path) -> None:
    documents.put_file("Exports/sub/data.csv", b"genuine")
    documents.put_unchecked("Exports", "sub/data.csv", b"hostile impostor")
    documents.put_unchecked("Exports", "..", b"hostile parent")
    store = _MemoryDeltaStore()
    with pytest.raises(GraphCertError, match="path separator") as info:
        service.sync(tmp_path / "mirror", store, url=FOLDER_URL)
    assert "outside its folder" in str(info.value)
    assert local_files(tmp_path / "mirror") == {"sub/data.csv": b"genuine"}
    assert store.link is None  # not advanced: the next run reports the refusal again
    tally("faults injected", 2)
    tally("faults survived", 2)
