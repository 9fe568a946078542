"""A business-file mover under a misbehaving service: every file byte-exact, or a clear failure.

Faults come from the emulator's seeded switchboard over real HTTPS: 10 % of requests throttled
with Retry-After, 5 % answered 503, 2 % cut mid-body, 1 % answered after the client's timeout.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from functools import cached_property
from pathlib import Path
from typing import Any

import pytest
from conftest import ConnectionFactory
from reliability_kit import (
    LIBRARY_URL,
    ChaosMix,
    RecordingSleep,
    content_for,
    fault_counts,
    local_files,
    note,
    partial_files,
    quick_xor,
    sharepoint_for,
    tally,
    unleash_chaos,
)

from airflow_provider_graphcert.auth.selfsigned import create_self_signed
from airflow_provider_graphcert.errors import GraphCertError, TokenRequestError
from airflow_provider_graphcert.graph.client import GraphClient
from airflow_provider_graphcert.graph.retry import RetryPolicy
from airflow_provider_graphcert.hooks.graph_cert import GraphCertHook
from airflow_provider_graphcert.operators.sharepoint import SharePointDownloadOperator, SharePointUploadOperator
from airflow_provider_graphcert.testing.emulator.faults import TOKEN_ENDPOINT_ROUTE
from airflow_provider_graphcert.testing.emulator.graph_state import Drive
from airflow_provider_graphcert.testing.emulator.server import GraphEmulator
from airflow_provider_graphcert.testing.emulator.state import App, Tenant

CHAOS_SEED = 20260127
# The client's per-request timeout; the slow faults answer a second after it gave up.
CLIENT_TIMEOUT_SECONDS = 2.5
MIX = ChaosMix(slow_seconds=CLIENT_TIMEOUT_SECONDS + 1.0)
# The configured budget: per logical request at most this much waiting, and the whole job bounded.
CHAOS_RETRY = RetryPolicy(max_attempts=12, max_total_wait=60.0, backoff_initial=0.05, backoff_max=0.5)
JOB_BUDGET_SECONDS = 150.0


def _seed_tree(drive: Drive, root: str, count: int) -> dict[str, bytes]:
    """``count`` files in ten folders (two levels), mostly small, every 100th one a few MiB."""
    files: dict[str, bytes] = {}
    for i in range(count):
        folder = f"region {i % 10}/month {i % 3}" if i % 4 else f"region {i % 10}"
        relative = f"{folder}/file {i:04d} #{i % 7}.csv"
        size = 2 * 1024 * 1024 + i if i % 100 == 7 else (i * 613) % 24_000
        data = content_for(relative, size)
        drive.put_file(f"{root}/{relative}", data)
        files[relative] = data
    return files


class FinalNameWatcher:
    """Samples the target while a job runs: a file under its final name must never be partial."""

    def __init__(self, root: Path, expected: dict[str, bytes]) -> None:
        self.root = root
        self.sizes = {name: len(data) for name, data in expected.items()}
        self.samples = 0
        self.partial: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="final-name-watcher", daemon=True)

    def __enter__(self) -> FinalNameWatcher:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        deadline = time.monotonic() + JOB_BUDGET_SECONDS
        while not self._stop.wait(0.25) and time.monotonic() < deadline:
            for path in list(self.root.rglob("*")):
                relative = path.relative_to(self.root).as_posix()
                if relative in self.sizes:
                    try:
                        size = path.stat().st_size
                    except FileNotFoundError:
                        continue
                    if size != self.sizes[relative]:
                        self.partial.append(relative)
            self.samples += 1


def _instrumented(operator_class: type[Any], sleep: RecordingSleep) -> type[Any]:
    """The operator as a DAG author would customise it: the chaos retry budget, and a sleep we can read."""

    class RecordingSleepHook(GraphCertHook):
        def get_conn(self) -> GraphClient:
            client = super().get_conn()
            client.sleep = sleep
            return client

    class Budgeted(operator_class):  # type: ignore[misc,valid-type]
        @cached_property
        def hook(self) -> GraphCertHook:
            return RecordingSleepHook(self.msgraph_cert_conn_id, retry_policy=CHAOS_RETRY)

    return Budgeted


def _assert_waits_within_budget(sleep: RecordingSleep, counts: dict[str, int], elapsed: float) -> None:
    # Every wait was asked for by a fault: Retry-After as sent, else a capped backoff.
    assert sleep.longest <= max(MIX.retry_after, CHAOS_RETRY.backoff_max * (1 + CHAOS_RETRY.jitter))
    others = sum(n for kind, n in counts.items() if kind != "429")
    ceiling = counts.get("429", 0) * MIX.retry_after + others * CHAOS_RETRY.backoff_max * (1 + CHAOS_RETRY.jitter)
    assert sleep.total <= ceiling
    assert elapsed < JOB_BUDGET_SECONDS


@pytest.mark.slow
def test_a_1000_file_folder_download_survives_seeded_chaos_byte_exact(
    graph_emulator: GraphEmulator,
    app: App,
    documents: Drive,
    pem_file: Path,
    tmp_path: Path,
    airflow_connection: ConnectionFactory,
) -> None:
    expected = _seed_tree(documents, "Exports", 1000)
    job = "1,000-file download"
    sleep = RecordingSleep()
    airflow_connection(app, certificate_path=str(pem_file), timeout=CLIENT_TIMEOUT_SECONDS)
    target = tmp_path / "landing"
    task = _instrumented(SharePointDownloadOperator, sleep)(
        task_id="pull", url=f"{LIBRARY_URL}/Exports", local_dir=str(target), max_workers=16
    )
    graph_emulator.faults.seed(CHAOS_SEED)
    unleash_chaos(graph_emulator.faults, MIX)
    started = time.monotonic()
    with FinalNameWatcher(target, expected) as watcher:
        summary = task.execute({})
    elapsed = time.monotonic() - started
    counts = fault_counts(graph_emulator.faults)
    graph_emulator.faults.clear()

    assert (summary["downloaded"], summary["failed"]) == (1000, 0)
    landed = local_files(target)
    assert landed.keys() == expected.keys()
    mismatched = [name for name, data in expected.items() if landed[name] != data]
    assert not mismatched
    # Byte-exact by Graph's own hash too, as the client checked on every file.
    for name in list(expected)[::50]:
        assert quick_xor(landed[name]) == documents.resolve(f"Exports/{name}").quick_xor_hash
    assert not partial_files(target)
    assert watcher.samples > 0 and not watcher.partial
    # Every kind of fault really happened, in about the shares asked for (of ~1,250 requests; which
    # request meets which fault depends on thread timing, so the floors sit well below the means).
    assert counts.get("429", 0) >= 80 and counts.get("503", 0) >= 35
    assert counts.get("drop:mid_body", 0) >= 10 and counts.get("latency", 0) >= 3
    _assert_waits_within_budget(sleep, counts, elapsed)
    tally("faults injected", sum(counts.values()))
    tally("faults survived", sum(counts.values()))
    requests_seen = {origin: len(graph_emulator.requests.records(origin)) for origin in ("graph", "files")}
    note(f"{job}: {requests_seen} requests, faults {counts}, waited {sleep.total:.1f} s in {elapsed:.1f} s")


def _write_local_tree(root: Path, count: int) -> dict[str, bytes]:
    """``count`` local files in nested folders; every 60th one is large enough for an upload session."""
    files: dict[str, bytes] = {}
    for i in range(count):
        relative = f"batch {i % 6}/part {i % 4}/out {i:03d}.bin" if i % 5 else f"batch {i % 6}/out {i:03d}.bin"
        size = 4 * 1024 * 1024 + 1000 + i if i % 60 == 11 else (i * 877) % 20_000
        data = content_for(relative, size)
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        files[relative] = data
    return files


@pytest.mark.slow
def test_a_300_file_upload_survives_seeded_chaos_byte_exact(
    graph_emulator: GraphEmulator,
    app: App,
    documents: Drive,
    pem_file: Path,
    tmp_path: Path,
    airflow_connection: ConnectionFactory,
) -> None:
    expected = _write_local_tree(tmp_path / "outbox", 300)
    job = "300-file upload"
    sleep = RecordingSleep()
    airflow_connection(app, certificate_path=str(pem_file), timeout=CLIENT_TIMEOUT_SECONDS)
    # Small fragments (640 KiB) so the large files take several fragments each, any of which may fail.
    task = _instrumented(SharePointUploadOperator, sleep)(
        task_id="push",
        local_path=str(tmp_path / "outbox"),
        url=f"{LIBRARY_URL}/Inbound",
        chunk_size=2 * 327_680,
        max_workers=16,
    )
    graph_emulator.faults.seed(CHAOS_SEED + 1)
    unleash_chaos(graph_emulator.faults, MIX)
    started = time.monotonic()
    summary = task.execute({})
    elapsed = time.monotonic() - started
    counts = fault_counts(graph_emulator.faults)
    graph_emulator.faults.clear()

    assert summary["uploaded"] == 300
    assert len(graph_emulator.requests.records("files")) >= 5 * 7  # the large files went in fragments
    for relative, data in expected.items():
        item = documents.resolve(f"Inbound/{relative}")
        assert item.blob is not None and item.blob.read_bytes() == data, relative
        assert item.quick_xor_hash == quick_xor(data)
    # Nothing else appeared: no half-committed sessions, no "name 1.bin" from a repeated create.
    remote = [documents.path_of(i) for i in documents.items.values() if not i.is_folder]
    assert sorted(remote) == sorted(f"/Inbound/{relative}" for relative in expected)
    assert counts.get("429", 0) >= 20 and counts.get("503", 0) >= 8 and counts.get("drop:mid_body", 0) >= 2
    _assert_waits_within_budget(sleep, counts, elapsed)
    tally("faults injected", sum(counts.values()))
    tally("faults survived", sum(counts.values()))
    requests_seen = {origin: len(graph_emulator.requests.records(origin)) for origin in ("graph", "files")}
    note(f"{job}: {requests_seen} requests, faults {counts}, waited {sleep.total:.1f} s in {elapsed:.1f} s")


def test_tokens_that_die_every_few_seconds_never_fail_a_long_job(
    graph_emulator: GraphEmulator, app: App, documents: Drive, pem_file: Path, tmp_path: Path
) -> None:
    # An upload: every one of its Graph requests carries the bearer token.
    expected = _write_local_tree(tmp_path / "outbox", 300)
    graph_emulator.token_lifetime = 3  # Entra hands out 3-second tokens ...
    graph_emulator.faults.delay(None, seconds=0.08, times=None)  # ... to a job that takes many seconds ...
    graph_emulator.faults.add(TOKEN_ENDPOINT_ROUTE, status=503, times=2, origin="authority")  # ... and stutters.
    stop = threading.Event()
    revocations = 0

    def revoke_now_and_then() -> None:
        nonlocal revocations
        # Tokens also die before their time (a credential rotated, a session revoked).
        while not stop.wait(1.3) and revocations < 30:
            graph_emulator.revoke_tokens(app)
            revocations += 1

    revoker = threading.Thread(target=revoke_now_and_then, daemon=True)
    service = sharepoint_for(graph_emulator, app, pem_file)
    started = time.monotonic()
    revoker.start()
    try:
        summary = service.upload(tmp_path / "outbox", url=f"{LIBRARY_URL}/Inbound", max_workers=4)
    finally:
        stop.set()
        revoker.join(5)
    elapsed = time.monotonic() - started

    assert summary["uploaded"] == 300
    for relative, data in expected.items():
        blob = documents.resolve(f"Inbound/{relative}").blob
        assert blob is not None and blob.read_bytes() == data
    renewals = graph_emulator.state.token_requests.count(app, succeeded=True)
    used = {r.headers["authorization"] for r in graph_emulator.requests.records("graph")}
    assert elapsed > 5 and revocations >= 3
    # Renewed on schedule and after the revocations: many tokens over the job, none failed it.
    assert renewals >= elapsed / 3 and len(used) == renewals
    assert graph_emulator.faults.count(TOKEN_ENDPOINT_ROUTE, kind="503") == 2
    tally("faults injected", 2 + revocations)
    tally("faults survived", 2 + revocations)


# Our assertions live 300 s from "now" (nbf = now); the emulator tolerates 300 s of skew (docs/microsoft-rules.md §A4).
@pytest.mark.parametrize(
    ("entra_ahead_by", "works"),
    [
        pytest.param(500, True, id="worker 500 s behind Entra"),
        pytest.param(-240, True, id="worker 240 s ahead of Entra"),
        pytest.param(700, False, id="worker 700 s behind Entra"),
        pytest.param(-420, False, id="worker 420 s ahead of Entra"),
    ],
)
def test_clock_skew_within_tolerance_works_and_beyond_it_is_explained(
    graph_emulator: GraphEmulator,
    tenant: Tenant,
    documents: Drive,
    tmp_path: Path,
    airflow_connection: ConnectionFactory,
    entra_ahead_by: float,
    works: bool,
) -> None:
    # A certificate valid since yesterday, so that only the assertion's times are in question.
    cert = create_self_signed("CN=skew", not_before=datetime.now(UTC) - timedelta(days=1))
    pem = tmp_path / "skew.pem"
    pem.write_bytes(cert.key_pem() + cert.cert_pem())
    app = graph_emulator.add_app(tenant, cert.certificate, roles=["Sites.Read.All"])
    graph_emulator.clock_offset = entra_ahead_by
    hook = GraphCertHook(airflow_connection(app, certificate_path=str(pem)))
    if works:
        site = hook.get_conn().get_json("sites/contoso.sharepoint.com:/sites/Finance")
        assert site["displayName"] == "Finance"
        return
    with pytest.raises(TokenRequestError) as info:
        hook.get_access_token()
    message = str(info.value)
    assert info.value.aadsts == 700024
    assert "not within its valid time range" in message and "Check this worker's clock (NTP)" in message
    tally("bad inputs tried")


def test_a_lost_reply_to_a_fail_upload_is_not_mistaken_for_a_conflict(
    graph_emulator: GraphEmulator, app: App, documents: Drive, pem_file: Path, tmp_path: Path
) -> None:
    local = tmp_path / "daily.csv"
    local.write_bytes(b"id,amount\n1,10\n")
    # The PUT lands, its reply is cut: the repeat meets the file our first attempt created.
    graph_emulator.faults.drop_connection(r"daily\.csv:/content$", mode="mid_body", times=1)
    summary = sharepoint_for(graph_emulator, app, pem_file).upload(
        local, url=f"{LIBRARY_URL}/Inbox", conflict_behavior="fail"
    )
    assert summary["uploaded"] == 1
    assert [i.name for i in documents.items.values() if not i.is_folder] == ["daily.csv"]
    # A real conflict (someone else's bytes) is still one.
    local.write_bytes(b"id,amount\n2,20\n")
    graph_emulator.faults.drop_connection(r"daily\.csv:/content$", mode="before_response", times=1)
    with pytest.raises(GraphCertError, match="already exists and conflict_behavior is 'fail'"):
        sharepoint_for(graph_emulator, app, pem_file).upload(
            local, url=f"{LIBRARY_URL}/Inbox", conflict_behavior="fail"
        )
    tally("faults injected", 2)
    tally("faults survived", 2)


def test_a_lost_reply_to_a_rename_upload_is_not_repeated_into_a_duplicate(
    graph_emulator: GraphEmulator, app: App, documents: Drive, pem_file: Path, tmp_path: Path
) -> None:
    documents.put_file("Inbox/daily.csv", b"yesterday\n")
    local = tmp_path / "daily.csv"
    local.write_bytes(b"today\n")
    graph_emulator.faults.drop_connection(r"daily\.csv:/content$", mode="mid_body", times=1)
    with pytest.raises(GraphCertError, match="may have landed under a new name"):
        sharepoint_for(graph_emulator, app, pem_file).upload(
            local, url=f"{LIBRARY_URL}/Inbox", conflict_behavior="rename"
        )
    names = sorted(i.name for i in documents.items.values() if not i.is_folder)
    assert names == ["daily 1.csv", "daily.csv"]  # one new copy, never two
    tally("faults injected")
    tally("faults survived")
