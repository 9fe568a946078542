"""Downloads and sync against a hostile or broken service: no silent loss, no endless work, one clear error.

Each case is an answer a real service could give (the emulator's tamper rules and fault
switchboard produce it) and the behaviour a user must get. Numbers refer to issue 11.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from reliability_kit import LIBRARY_URL, content_for, local_files, partial_files, sharepoint_for

from airflow_provider_graphcert.errors import GraphCertError
from airflow_provider_graphcert.graph.retry import RetryPolicy
from airflow_provider_graphcert.sharepoint.download import FileDownloader, IntegrityError
from airflow_provider_graphcert.sharepoint.folder_download import FolderDownloadError
from airflow_provider_graphcert.sharepoint.manifest import JOURNAL_NAME, LEGACY_MANIFEST_NAME, MANIFEST_NAME
from airflow_provider_graphcert.sharepoint.service import SharePoint
from airflow_provider_graphcert.testing.emulator.faults import CapturedResponse, edit_json
from airflow_provider_graphcert.testing.emulator.graph_routes import DOWNLOAD_PATH
from airflow_provider_graphcert.testing.emulator.graph_state import Drive
from airflow_provider_graphcert.testing.emulator.server import GraphEmulator
from airflow_provider_graphcert.testing.emulator.state import App

FOLDER_URL = f"{LIBRARY_URL}/Exports"
INBOX_URL = f"{LIBRARY_URL}/Inbox"
CHILDREN = r"/children$"
DELTA = r"/root/delta$"
REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def service(graph_emulator: GraphEmulator, app: App, pem_file: Path) -> Iterator[SharePoint]:
    sharepoint = sharepoint_for(graph_emulator, app, pem_file)
    yield sharepoint
    sharepoint.client.close()


@pytest.fixture
def landing(tmp_path: Path) -> Path:
    """Where the files land (tmp_path itself holds the test's key files)."""
    return tmp_path / "landing"


class MemoryStore:
    """Where a sync keeps its delta link between runs (an Airflow Variable in production)."""

    def __init__(self) -> None:
        self.link: str | None = None

    def load(self) -> str | None:
        return self.link

    def save(self, link: str) -> None:
        self.link = link

    def describe(self) -> str:
        return "the test's delta store"


class ListLogger:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def info(self, msg: Any, /, *args: Any) -> None:
        self.lines.append(str(msg) % args if args else str(msg))


def _without_hashes(page: Any) -> Any:
    for item in page.get("value", []):
        item.get("file", {}).pop("hashes", None)
    return page


def _edit_child(name: str, change: Callable[[dict[str, Any]], None]) -> Callable[[Any], Any]:
    def edit(page: Any) -> Any:
        for item in page.get("value", []):
            if item.get("name") == name:
                change(item)
        return page

    return edit


# -- 5: a body longer than the item's size ------------------------------------------------------


def test_a_download_url_that_sends_more_than_the_size_is_cut_at_the_size(
    graph_emulator: GraphEmulator, service: SharePoint, documents: Drive, landing: Path
) -> None:
    documents.put_file("Exports/small.csv", b"a,b\n1,2\n")
    resolved = service.resolve(url=f"{FOLDER_URL}/small.csv")

    def endless(response: CapturedResponse) -> CapturedResponse:
        return replace(response, body=response.body + b"\0" * (8 * 1024 * 1024))

    graph_emulator.faults.tamper(DOWNLOAD_PATH, endless, origin="files")
    received: list[int] = []
    with pytest.raises(IntegrityError, match="more bytes than the size Graph reported"):
        FileDownloader(service.client, on_bytes=received.append).download(
            resolved.drive_id, resolved.item, landing / "small.csv"
        )
    assert sum(received) <= 8  # not one byte past the announced size reached the disk
    assert not landing.exists() or list(landing.iterdir()) == []


# -- 7: resume only the same version -------------------------------------------------------------


def test_a_file_replaced_while_its_download_was_cut_lands_whole_never_half_old_half_new(
    graph_emulator: GraphEmulator, documents: Drive, app: App, pem_file: Path, landing: Path
) -> None:
    old = content_for("old", 3 * 1024 * 1024)
    new = content_for("new", 3 * 1024 * 1024)  # same size: only the version tells them apart
    documents.put_file("Exports/ledger.bin", old)
    graph_emulator.faults.tamper(CHILDREN, edit_json(_without_hashes), times=None)  # no hash to catch a mix
    graph_emulator.faults.add(DOWNLOAD_PATH, drop="mid_body", drop_after_bytes=1024 * 1024, times=1, origin="files")

    def someone_saves_a_new_version(seconds: float) -> None:  # runs while the client waits to resume
        documents.put_file("Exports/ledger.bin", new)

    service = sharepoint_for(graph_emulator, app, pem_file, sleep=someone_saves_a_new_version)  # type: ignore[arg-type]
    try:
        summary = service.download(landing, url=FOLDER_URL)
    finally:
        service.client.close()
    assert summary["downloaded"] == 1
    assert (landing / "ledger.bin").read_bytes() == new
    resumes = [r.headers for r in graph_emulator.requests.records("files") if "range" in r.headers]
    assert all("if-range" in headers for headers in resumes)


# -- 8: no hash to check against ----------------------------------------------------------------


def test_files_without_a_hash_are_reported_unverified_and_refused_when_hashes_are_required(
    graph_emulator: GraphEmulator,
    service: SharePoint,
    documents: Drive,
    landing: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    for name in ("a.csv", "b.csv"):
        documents.put_file(f"Exports/{name}", content_for(name, 100))
    graph_emulator.faults.tamper(CHILDREN, edit_json(_without_hashes), times=None)

    def wrong_bytes_of_the_right_length(response: CapturedResponse) -> CapturedResponse:
        return replace(response, body=bytes(reversed(response.body)))

    graph_emulator.faults.tamper(DOWNLOAD_PATH, wrong_bytes_of_the_right_length, origin="files")
    with caplog.at_level(logging.WARNING):
        summary = service.download(landing / "lenient", url=FOLDER_URL)
    assert (summary["downloaded"], summary["unverified"]) == (2, 2)
    assert summary["unverified_files"] == ["a.csv", "b.csv"]
    assert "checked by size only" in caplog.text

    with pytest.raises(FolderDownloadError, match="require_hash") as info:
        service.download(landing / "strict", url=FOLDER_URL, require_hash=True)
    assert sorted(info.value.result.failed) == ["a.csv", "b.csv"]
    assert local_files(landing / "strict") == {}


# -- 9: twins that one disk cannot hold ---------------------------------------------------------


def test_two_remote_items_with_one_name_are_refused_not_silently_merged(
    service: SharePoint, documents: Drive, landing: Path
) -> None:
    documents.put_unchecked(documents.mkdir("Exports"), "report.csv", b"first")
    documents.put_unchecked("Exports", "report.csv", b"second")
    composed, decomposed = unicodedata.normalize("NFC", "café.txt"), unicodedata.normalize("NFD", "café.txt")
    documents.put_unchecked("Exports", composed, b"composed")
    documents.put_unchecked("Exports", decomposed, b"decomposed")
    documents.put_file("Exports/fine.txt", b"fine")
    with pytest.raises(FolderDownloadError) as info:
        service.download(landing, url=FOLDER_URL)
    result = info.value.result
    assert len(result.failed) == 2
    assert "same path as 'report.csv'" in result.failed["report.csv"]
    assert "Unicode form" in " ".join(result.failed.values())
    assert len(result.downloaded) == 3  # one of each pair, and fine.txt
    assert len(local_files(landing)) == 3


# -- 10: our state never shares a name with a user's file ---------------------------------------


def test_a_remote_file_named_like_the_old_manifest_is_an_ordinary_file(
    service: SharePoint, documents: Drive, landing: Path
) -> None:
    documents.put_file(f"Exports/{LEGACY_MANIFEST_NAME}", b"the user's own notes")
    documents.put_file("Exports/data.csv", b"1,2,3")
    first = service.download(landing, url=FOLDER_URL)
    assert first["downloaded"] == 2
    again = service.download(landing, url=FOLDER_URL)
    assert (again["downloaded"], again["skipped"]) == (0, 2)
    assert (landing / LEGACY_MANIFEST_NAME).read_bytes() == b"the user's own notes"


def test_a_manifest_of_the_previous_version_is_read_and_moved(
    service: SharePoint, documents: Drive, graph_emulator: GraphEmulator, landing: Path
) -> None:
    documents.put_file("Exports/data.csv", b"1,2,3")
    service.download(landing, url=FOLDER_URL)
    (landing / MANIFEST_NAME).rename(landing / LEGACY_MANIFEST_NAME)  # as the previous version left it
    graph_emulator.requests.clear()
    again = service.download(landing, url=FOLDER_URL)
    assert (again["downloaded"], again["skipped"]) == (0, 1)
    assert graph_emulator.requests.records("files") == []
    assert not (landing / LEGACY_MANIFEST_NAME).exists() and (landing / MANIFEST_NAME).exists()


def test_a_remote_name_that_could_pose_as_our_state_is_refused(
    service: SharePoint, documents: Drive, landing: Path
) -> None:
    documents.put_unchecked(documents.mkdir("Exports"), ".graphcert-_vti_manifest.json", b'{"version": 1}')
    with pytest.raises(FolderDownloadError, match="never allows '_vti_'"):
        service.download(landing, url=FOLDER_URL)


# -- 11: killed mid-run ----------------------------------------------------------------------------

_CHILD = """
import json, sys
from airflow_provider_graphcert.graph.client import GraphClient
from airflow_provider_graphcert.settings import ConnectionSettings
from airflow_provider_graphcert.sharepoint.service import SharePoint
connection = json.loads(sys.argv[1])
settings = ConnectionSettings.from_fields(login=connection["login"], password=None, extra=connection["extra"])
client = GraphClient(tokens=settings.token_provider(), graph_url=settings.graph_url, verify=settings.verify)
SharePoint(client).download(sys.argv[2], url=sys.argv[3], max_workers=1)
"""


def _wait_until(condition: Callable[[], bool], what: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60  # a bound on a hung child, not a measurement
    while not condition():
        if process.poll() is not None or time.monotonic() > deadline:
            raise AssertionError(f"never saw {what}; child exited with {process.returncode}")
        time.sleep(0.05)


def test_after_a_sigkill_the_rerun_fetches_only_what_had_not_landed_and_cleans_temp_files(
    graph_emulator: GraphEmulator, service: SharePoint, documents: Drive, app: App, pem_file: Path, landing: Path
) -> None:
    expected = {f"file {i:02d}.bin": content_for(f"k{i}", 50_000 + i) for i in range(10)}
    for name, data in expected.items():
        documents.put_file(f"Exports/{name}", data)
    # Five downloads go through, the sixth hangs: the child is killed while writing it.
    graph_emulator.faults.add(DOWNLOAD_PATH, origin="files", latency=30.0, skip=5, times=1)
    connection = graph_emulator.connection(app, certificate_path=str(pem_file))
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, json.dumps(connection), str(landing), FOLDER_URL],
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_until(lambda: len(graph_emulator.requests.records("files")) >= 6, "the sixth download", child)
        _wait_until(lambda: bool(partial_files(landing)), "a temp file", child)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    assert (landing / JOURNAL_NAME).exists()
    graph_emulator.faults.clear()
    graph_emulator.requests.clear()

    summary = service.download(landing, url=FOLDER_URL)

    assert (summary["downloaded"], summary["skipped"]) == (5, 5)
    assert len(graph_emulator.requests.records("files")) == 5
    assert local_files(landing) == expected
    assert partial_files(landing) == []
    assert not (landing / JOURNAL_NAME).exists()  # folded into the manifest


# -- 17: long legal names ------------------------------------------------------------------------


def test_a_name_of_255_bytes_downloads(service: SharePoint, documents: Drive, landing: Path) -> None:
    name = "é" * 100 + "x" * 51 + ".txt"  # 255 bytes in UTF-8
    assert len(name.encode()) == 255
    documents.put_file(f"Exports/{name}", b"long")
    assert service.download(landing, url=FOLDER_URL)["downloaded"] == 1
    assert (landing / name).read_bytes() == b"long"


# -- 19: hostile metadata ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value", "modified_since"),
    [
        ("size", "12abc", None),
        ("size", None, None),
        ("size", -5, None),
        ("file", "yes", None),
        ("lastModifiedDateTime", "yesterday-ish", "2020-01-01T00:00:00Z"),
    ],
)
def test_hostile_item_metadata_fails_that_item_with_an_error_naming_the_field(
    graph_emulator: GraphEmulator,
    service: SharePoint,
    documents: Drive,
    landing: Path,
    field: str,
    value: Any,
    modified_since: str | None,
) -> None:
    documents.put_file("Exports/bad.csv", b"bad")
    documents.put_file("Exports/good.csv", b"good")
    graph_emulator.faults.tamper(CHILDREN, edit_json(_edit_child("bad.csv", lambda item: item.update({field: value}))))
    with pytest.raises(FolderDownloadError) as info:
        service.download(landing, url=FOLDER_URL, modified_since=modified_since)
    reason = info.value.result.failed["bad.csv"]
    assert f"{field}=" in reason and "'bad.csv'" in reason
    assert local_files(landing) == {"good.csv": b"good"}


# -- 23: one engine for download and sync --------------------------------------------------------


def test_sync_with_the_download_host_down_gives_up_as_fast_as_folder_download(
    graph_emulator: GraphEmulator, documents: Drive, app: App, pem_file: Path, landing: Path
) -> None:
    for i in range(40):
        documents.put_file(f"Inbox/f{i:02d}.csv", content_for(f"f{i}", 100))
    graph_emulator.faults.add(DOWNLOAD_PATH, origin="files", drop="before_response", times=None)
    policy = RetryPolicy(max_attempts=4, backoff_initial=0.01, backoff_max=0.02)
    service = sharepoint_for(graph_emulator, app, pem_file, retry=policy)
    try:
        with pytest.raises(FolderDownloadError):
            service.download(landing / "download", url=INBOX_URL, max_workers=1)
        by_download = len(graph_emulator.requests.records("files"))
        graph_emulator.requests.clear()
        with pytest.raises(FolderDownloadError, match="not advanced"):
            service.sync(landing / "sync", MemoryStore(), url=INBOX_URL, max_workers=1)
        by_sync = len(graph_emulator.requests.records("files"))
    finally:
        service.client.close()
    assert by_download <= 4
    assert by_sync == by_download


# -- 26: sync says what it did --------------------------------------------------------------------


def test_sync_logs_how_many_files_it_moved(service: SharePoint, documents: Drive, landing: Path) -> None:
    for name in ("a.csv", "b.csv", "c.csv"):
        documents.put_file(f"Inbox/{name}", b"x")
    service.log = logger = ListLogger()
    service.sync(landing, MemoryStore(), url=INBOX_URL)
    progress = [line for line in logger.lines if line.startswith("Sync to")]
    assert "3 files" in progress[-2]
    assert "3 downloaded, 0 unchanged, 0 deleted, 0 failed" in progress[-1]


# -- 27: a stored delta link that no longer works --------------------------------------------------


def _graph_error(status: int) -> Callable[[CapturedResponse], CapturedResponse]:
    def edit(response: CapturedResponse) -> CapturedResponse:
        body = {"error": {"code": "itemNotFound", "message": "The resource could not be found."}}
        return replace(response, status=status).with_json(body)

    return edit


def test_a_stored_delta_link_answered_with_404_starts_a_full_pass(
    graph_emulator: GraphEmulator, service: SharePoint, documents: Drive, landing: Path
) -> None:
    documents.put_file("Inbox/a.csv", b"a")
    store = MemoryStore()
    service.sync(landing, store, url=INBOX_URL)
    documents.put_file("Inbox/b.csv", b"b")
    graph_emulator.faults.tamper(DELTA, _graph_error(404))
    result = service.sync(landing, store, url=INBOX_URL)
    assert (result["full_pass"], result["downloaded"], result["unchanged"]) == (True, 1, 1)

    graph_emulator.faults.tamper(DELTA, _graph_error(404), times=2)  # and the full pass fails too
    with pytest.raises(GraphCertError, match="the test's delta store; if this keeps failing, delete it"):
        service.sync(landing, store, url=INBOX_URL)


def test_a_delta_link_to_another_host_is_never_followed_and_the_next_run_recovers(
    graph_emulator: GraphEmulator, service: SharePoint, documents: Drive, landing: Path
) -> None:
    documents.put_file("Inbox/a.csv", b"a")
    store = MemoryStore()
    foreign = "https://graph.attacker.example/v1.0/drives/x/root/delta?token=stolen"

    def foreign_delta_link(page: Any) -> Any:
        if "@odata.deltaLink" in page:
            page["@odata.deltaLink"] = foreign
        return page

    graph_emulator.faults.tamper(DELTA, edit_json(foreign_delta_link))
    service.sync(landing, store, url=INBOX_URL)
    assert store.link == foreign
    documents.put_file("Inbox/b.csv", b"b")
    result = service.sync(landing, store, url=INBOX_URL)
    assert (result["full_pass"], result["downloaded"]) == (True, 1)
    assert store.link is not None and store.link.startswith(graph_emulator.graph_url)


def test_pointing_a_sync_at_another_folder_with_the_same_state_fetches_that_folder_whole(
    service: SharePoint, documents: Drive, landing: Path
) -> None:
    documents.put_file("Inbox/a.csv", b"a")
    documents.put_file("Archive/old.csv", b"old")  # existed before the first sync, never changes
    store = MemoryStore()
    service.sync(landing, store, url=INBOX_URL)
    result = service.sync(landing, store, url=f"{LIBRARY_URL}/Archive")
    assert (result["full_pass"], result["downloaded"]) == (True, 1)
    assert (landing / "old.csv").read_bytes() == b"old"


# -- 3 (sibling): a delta feed that loops ------------------------------------------------------------


def test_a_delta_feed_whose_next_link_repeats_fails_instead_of_looping(
    graph_emulator: GraphEmulator, service: SharePoint, documents: Drive, landing: Path
) -> None:
    documents.put_file("Inbox/a.csv", b"a")
    store = MemoryStore()
    service.sync(landing, store, url=INBOX_URL)
    assert store.link is not None
    loop = store.link

    def back_to_the_start(page: Any) -> Any:
        page.pop("@odata.deltaLink", None)
        page["@odata.nextLink"] = loop
        return page

    # Bounded so that a client without the guard ends (and fails this test) instead of hanging.
    graph_emulator.faults.tamper(DELTA, edit_json(back_to_the_start), times=50)
    with pytest.raises(GraphCertError, match=r"already (sent|read)"):
        service.sync(landing, store, url=INBOX_URL)
    assert store.link == loop


# -- 28: data files follow the umask -------------------------------------------------------------


def test_downloaded_files_follow_the_umask(service: SharePoint, documents: Drive, landing: Path) -> None:
    documents.put_file("Exports/shared.csv", b"for the whole team")
    previous = os.umask(0o022)
    try:
        service.download(landing, url=FOLDER_URL)
    finally:
        os.umask(previous)
    assert (landing / "shared.csv").stat().st_mode & 0o777 == 0o644
    assert (landing / MANIFEST_NAME).stat().st_mode & 0o777 == 0o644
