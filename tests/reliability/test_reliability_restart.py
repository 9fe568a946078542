"""The service dies mid-transfer (the emulator process is SIGKILLed) and comes back.

The standalone emulator keeps its Graph content in its state dir (``--persist``), so the process
that comes back on the same ports serves the same files, ids, eTags and download URLs. A quick
restart is ridden out by the client's own retries; an outage longer than the retry budget fails
the attempt cleanly, and Airflow's retry then fetches only what is missing (the folder manifest).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Any

import pytest
from conftest import AIRFLOW_BIN, airflow_env, fresh_airflow_home
from reliability_kit import content_for, local_files, partial_files, tally

from airflow_provider_graphcert.auth.selfsigned import SelfSignedCertificate
from airflow_provider_graphcert.graph.client import GraphClient
from airflow_provider_graphcert.graph.retry import RetryPolicy
from airflow_provider_graphcert.settings import ConnectionSettings
from airflow_provider_graphcert.sharepoint.manifest import MANIFEST_NAME
from airflow_provider_graphcert.sharepoint.service import SharePoint
from airflow_provider_graphcert.testing.emulator.graph_snapshot import SNAPSHOT_NAME, save_snapshot
from airflow_provider_graphcert.testing.emulator.graph_state import GraphState

pytestmark = pytest.mark.slow

TENANT_ID = "7e11a1e0-0000-4000-8000-00000000000a"
CLIENT_ID = "7e11a1e0-0000-4000-8000-00000000000b"
FILES = 1000
FOLDER_URL = "https://contoso.sharepoint.com/sites/Finance/Shared Documents/Nightly"
STARTUP_SECONDS = 30.0


def _free_ports(count: int) -> tuple[int, ...]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return tuple(sock.getsockname()[1] for sock in sockets)
    finally:
        for sock in sockets:
            sock.close()


class StandaloneEmulator:
    """`python -m ...standalone --persist` in a process of its own that the test can kill and restart."""

    def __init__(self, state_dir: Path, certificate: Path) -> None:
        self.state_dir = state_dir
        self.ready = state_dir.parent / f"{state_dir.name}-ready.json"
        ports = _free_ports(3)
        self.command = [
            sys.executable, "-m", "airflow_provider_graphcert.testing.emulator.standalone", "--persist",
            "--state-dir", str(state_dir), "--app-certificate", str(certificate),
            "--tenant-id", TENANT_ID, "--client-id", CLIENT_ID, "--roles", "Sites.ReadWrite.All",
            "--port-authority", str(ports[0]), "--port-graph", str(ports[1]), "--port-files", str(ports[2]),
            "--ready-file", str(self.ready),
        ]  # fmt: skip
        self.process: subprocess.Popen[bytes] | None = None
        self.info: dict[str, Any] = {}
        self.starts = 0

    def start(self) -> None:
        self.ready.unlink(missing_ok=True)
        log = (self.state_dir.parent / f"{self.state_dir.name}-{self.starts}.log").open("wb")
        self.process = subprocess.Popen(self.command, stdout=log, stderr=subprocess.STDOUT)
        self.starts += 1
        deadline = time.monotonic() + STARTUP_SECONDS
        while not self.ready.exists():
            assert self.process.poll() is None, f"the emulator exited with {self.process.returncode}"
            assert time.monotonic() < deadline, "the emulator did not start in time"
            time.sleep(0.05)
        self.info = json.loads(self.ready.read_text())

    def kill(self) -> None:
        """SIGKILL: no clean shutdown, connections cut mid-body."""
        assert self.process is not None
        self.process.kill()
        self.process.wait(10)

    def __enter__(self) -> StandaloneEmulator:
        self.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)

    def connection(self, pem: Path) -> dict[str, Any]:
        extra = {
            "tenant_id": TENANT_ID,
            "certificate_path": str(pem),
            "authority_host": self.info["authority_host"],
            "graph_url": self.info["graph_url"],
            "ca_bundle": self.info["ca_bundle"],
        }
        return {"conn_type": "msgraph_cert", "login": CLIENT_ID, "extra": extra}


@pytest.fixture(scope="module")
def seeded_state(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, bytes]]:
    """A state dir holding a snapshot of the Finance site with FILES files (copied for each test)."""
    state_dir = tmp_path_factory.mktemp("seeded-state")
    graph = GraphState(storage_dir=state_dir / "graph-files")
    documents = graph.add_site("contoso.sharepoint.com", "/sites/Finance", "Finance").add_library("Documents")
    expected: dict[str, bytes] = {}
    for i in range(FILES):
        relative = f"batch {i % 8}/night {i:04d}.csv"
        expected[relative] = content_for(relative, 4000 + (i * 211) % 9000)
        documents.put_file(f"Nightly/{relative}", expected[relative])
    save_snapshot(graph, state_dir / SNAPSHOT_NAME)
    return state_dir, expected


@pytest.fixture
def emulator(
    seeded_state: tuple[Path, dict[str, bytes]], tmp_path: Path, rsa_cert: SelfSignedCertificate
) -> Iterator[StandaloneEmulator]:
    state_dir = tmp_path / "state"
    shutil.copytree(seeded_state[0], state_dir)
    certificate = tmp_path / "app.cer"
    certificate.write_bytes(rsa_cert.cert_pem())
    with StandaloneEmulator(state_dir, certificate) as running:
        yield running


def _landed(target: Path) -> dict[str, tuple[int, int]]:
    """Files under their final names: relative path -> (inode, mtime_ns)."""
    found = {}
    for path in target.rglob("*.csv"):
        if not path.name.startswith("."):
            info = path.stat()
            found[path.relative_to(target).as_posix()] = (info.st_ino, info.st_mtime_ns)
    return found


def _wait_for(condition: Any, what: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def _client(emulator: StandaloneEmulator, pem: Path, policy: RetryPolicy | None = None) -> GraphClient:
    settings = ConnectionSettings.from_fields(login=CLIENT_ID, password=None, extra=emulator.connection(pem)["extra"])
    return GraphClient(
        tokens=settings.token_provider(), graph_url=settings.graph_url, verify=settings.verify, retry=policy
    )


def test_what_was_written_before_a_kill_is_still_there_after_the_restart(
    emulator: StandaloneEmulator, pem_file: Path, tmp_path: Path
) -> None:
    upload = tmp_path / "late.csv"
    upload.write_bytes(b"written a moment before the crash\n")
    with _client(emulator, pem_file) as client:
        SharePoint(client).upload(upload, url=FOLDER_URL)
    snapshot = emulator.state_dir / SNAPSHOT_NAME
    saved_at = snapshot.stat().st_mtime_ns
    _wait_for(lambda: snapshot.stat().st_mtime_ns != saved_at, "the change to be saved", 10)  # within a second or so
    emulator.kill()
    emulator.start()
    with _client(emulator, pem_file) as client:
        summary = SharePoint(client).download(tmp_path / "back", url=f"{FOLDER_URL}/late.csv")
    assert summary["downloaded"] == 1
    assert (tmp_path / "back" / "late.csv").read_bytes() == b"written a moment before the crash\n"


def test_a_quick_restart_mid_transfer_is_ridden_out_by_retries(
    emulator: StandaloneEmulator, seeded_state: tuple[Path, dict[str, bytes]], pem_file: Path, tmp_path: Path
) -> None:
    connection = emulator.connection(pem_file)
    settings = ConnectionSettings.from_fields(login=CLIENT_ID, password=None, extra=connection["extra"])
    # A budget (per request) that outlasts a restart of a few seconds.
    policy = RetryPolicy(max_attempts=40, max_total_wait=45.0, backoff_initial=0.1, backoff_max=1.0)
    client = GraphClient(
        tokens=settings.token_provider(), graph_url=settings.graph_url, verify=settings.verify, retry=policy
    )
    target = tmp_path / "landing"
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["summary"] = SharePoint(client).download(target, url=FOLDER_URL, max_workers=8)
        except BaseException as exc:  # reported below
            outcome["error"] = exc

    job = threading.Thread(target=run)
    job.start()
    _wait_for(lambda: len(_landed(target)) >= 150, "the first files to land", 60)
    emulator.kill()
    at_kill = len(_landed(target))
    time.sleep(1.0)
    emulator.start()
    job.join(120)
    client.close()

    assert not job.is_alive() and "error" not in outcome, outcome.get("error")
    assert at_kill < FILES  # the kill really came mid-transfer
    assert outcome["summary"]["downloaded"] == FILES and outcome["summary"]["failed"] == 0
    assert local_files(target) == seeded_state[1]
    assert not partial_files(target)
    tally("faults injected")
    tally("faults survived")


def test_an_outage_longer_than_the_budget_fails_cleanly_and_the_airflow_retry_finishes_without_refetching(
    emulator: StandaloneEmulator,
    seeded_state: tuple[Path, dict[str, bytes]],
    pem_file: Path,
    tmp_path: Path,
    migrated_airflow_home: Path,
) -> None:
    home = fresh_airflow_home(migrated_airflow_home, tmp_path / "airflow-home")
    data = tmp_path / "data"
    target = data / "landing"
    env = {
        **os.environ,
        **airflow_env(home),
        "AIRFLOW_CONN_MSGRAPH_CERT_DEFAULT": json.dumps(emulator.connection(pem_file)),
        "RELIABILITY_DATA_DIR": str(data),
        "RELIABILITY_FOLDER_URL": FOLDER_URL,
    }
    with (tmp_path / "dags-test.log").open("w+") as log:
        airflow = subprocess.Popen(
            [str(AIRFLOW_BIN), "dags", "test", "reliability_restart", "2026-01-01"], env=env, stdout=log, stderr=log
        )
        try:
            _wait_for(lambda: len(_landed(target)) >= 150, "attempt 1 to land files", 120)
            emulator.kill()
            # Attempt 1 ends (its in-flight files fail after the short budget, the queued ones are not
            # started) and saves the manifest of what landed.
            _wait_for(lambda: (target / MANIFEST_NAME).exists(), "attempt 1 to give up", 60)
            after_attempt_1 = _landed(target)
            manifest_1 = json.loads((target / MANIFEST_NAME).read_text())["files"]
            emulator.start()
            airflow.wait(180)
        finally:
            if airflow.poll() is None:
                airflow.kill()
        log.seek(0)
        output = log.read()

    assert airflow.returncode == 0, output[-4000:]
    # Attempt 1 failed with our own error (the listing or the files could not reach Graph), attempt 2 won.
    states = re.findall(r"new_state=(\w+)", output)
    assert states == ["up_for_retry", "success"], output[-4000:]
    attempt_1 = output.split("new_state=up_for_retry")[0]
    assert re.search(r"airflow_provider_graphcert\.\S*(GraphTransportError|FolderDownloadError): ", attempt_1)
    assert "ConnectionError after" in attempt_1 or "not tried: Graph could not be reached" in attempt_1
    assert "DagRun Finished" in output and "state=success" in output.split("DagRun Finished")[-1]
    assert 0 < len(after_attempt_1) < FILES
    assert set(manifest_1) == set(after_attempt_1)  # every file that landed was recorded
    # Attempt 2 completed the folder, byte-exact, and left every file of attempt 1 untouched.
    assert local_files(target) == seeded_state[1]
    after_attempt_2 = _landed(target)
    assert {name: after_attempt_2[name] for name in after_attempt_1} == after_attempt_1
    assert len(json.loads((target / MANIFEST_NAME).read_text())["files"]) == FILES
    assert not partial_files(target)
    tally("faults injected")
    tally("faults survived")
