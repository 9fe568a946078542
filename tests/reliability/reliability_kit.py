"""Helpers for the reliability suite: SharePoint jobs against the emulator, chaos, and what landed."""

from __future__ import annotations

import hashlib
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from airflow_provider_graphcert.graph.client import GraphClient
from airflow_provider_graphcert.graph.retry import RetryPolicy
from airflow_provider_graphcert.quickxorhash import QuickXorHash
from airflow_provider_graphcert.settings import ConnectionSettings
from airflow_provider_graphcert.sharepoint.service import SharePoint
from airflow_provider_graphcert.testing.emulator.faults import FaultRule, FaultSwitchboard
from airflow_provider_graphcert.testing.emulator.server import GraphEmulator
from airflow_provider_graphcert.testing.emulator.state import App

SITE_URL = "https://contoso.sharepoint.com/sites/Finance"
LIBRARY_URL = f"{SITE_URL}/Shared Documents"
# What the suite counted; the reliability conftest prints it at the end (docs/reliability.md quotes it).
TALLY: dict[str, int] = {"faults injected": 0, "faults survived": 0, "bad inputs tried": 0, "secrets found": 0}


NOTES: list[str] = []


def tally(name: str, count: int = 1) -> None:
    TALLY[name] = TALLY.get(name, 0) + count


def note(text: str) -> None:
    """A line for the end-of-run summary (what a chaos run really met)."""
    NOTES.append(text)


# Short backoff keeps the suite quick; Retry-After is honoured as sent whatever these say.
QUICK_RETRY = RetryPolicy(backoff_initial=0.05, backoff_max=0.5)


def content_for(path: str, size: int) -> bytes:
    """Deterministic bytes that differ per path."""
    seed = hashlib.sha256(path.encode()).digest()
    block = seed * (1 + 4096 // len(seed))
    return (block * (size // len(block) + 1))[:size]


def quick_xor(data: bytes) -> str:
    hasher = QuickXorHash()
    hasher.update(data)
    return hasher.b64digest()


def local_files(root: Path) -> dict[str, bytes]:
    """Every file below ``root`` by relative path, without the job's own state files."""
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in root.rglob("*")
        if p.is_file() and not p.name.startswith(".graphcert-")
    }


def partial_files(root: Path) -> list[Path]:
    """Temp files of unfinished writes (atomic_writer names them .<name>.<random>.part)."""
    return [p for p in root.rglob("*.part")]


@dataclass
class RecordingSleep:
    """The client's sleep, really sleeping, with a record of every wait (thread-safe)."""

    waits: list[float] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, seconds: float) -> None:
        with self._lock:
            self.waits.append(seconds)
        time.sleep(seconds)

    @property
    def total(self) -> float:
        with self._lock:
            return sum(self.waits)

    @property
    def longest(self) -> float:
        with self._lock:
            return max(self.waits, default=0.0)


def connection_settings(emulator: GraphEmulator, app: App, pem_file: Path, **extra: object) -> ConnectionSettings:
    connection = emulator.connection(app, certificate_path=str(pem_file), **extra)
    return ConnectionSettings.from_fields(login=connection["login"], password=None, extra=connection["extra"])


def sharepoint_for(
    emulator: GraphEmulator,
    app: App,
    pem_file: Path,
    *,
    retry: RetryPolicy = QUICK_RETRY,
    sleep: RecordingSleep | None = None,
    **extra: object,
) -> SharePoint:
    """A SharePoint service the plain-Python way, as the hook builds it (connection -> settings -> client)."""
    settings = connection_settings(emulator, app, pem_file, **extra)
    client = GraphClient(
        tokens=settings.token_provider(),
        graph_url=settings.graph_url,
        verify=settings.verify,
        timeout=settings.timeout,
        retry=retry,
        sleep=sleep or time.sleep,
    )
    return SharePoint(client)


@dataclass(frozen=True)
class ChaosMix:
    """Shares of all requests that meet each fault (the issue's mix by default)."""

    throttled: float = 0.10  # 429 with Retry-After
    unavailable: float = 0.05  # 503
    dropped_mid_body: float = 0.02  # headers and half a body, then the connection is cut
    slow: float = 0.01  # answers later than the client's timeout
    retry_after: int = 1
    slow_seconds: float = 3.5


def unleash_chaos(
    faults: FaultSwitchboard, mix: ChaosMix = ChaosMix(), *, origins: tuple[str, ...] = ("graph", "files")
) -> list[FaultRule]:
    """Add the mix to every request of ``origins``; the switchboard's seeded generator decides which.

    A request meets at most one of throttling, 503 and a drop, so each rule's probability is
    conditional on the earlier ones not firing; that keeps the shares of *all* requests as given.
    """
    rules: list[FaultRule] = []
    throttle_p = mix.throttled
    unavailable_p = mix.unavailable / (1 - mix.throttled)
    drop_p = mix.dropped_mid_body / (1 - mix.throttled - mix.unavailable)
    for origin in origins:
        rules.append(faults.add(None, origin=origin, latency=mix.slow_seconds, probability=mix.slow))
        rules.append(faults.add(None, origin=origin, status=429, retry_after=mix.retry_after, probability=throttle_p))
        rules.append(faults.add(None, origin=origin, status=503, probability=unavailable_p))
        rules.append(faults.add(None, origin=origin, drop="mid_body", probability=drop_p))
    return rules


def fault_counts(faults: FaultSwitchboard) -> dict[str, int]:
    counts: dict[str, int] = {}
    for fault in faults.injected:
        counts[fault.kind] = counts.get(fault.kind, 0) + 1
    return counts
