"""Transfer progress for long jobs, logged at most every few seconds (bytes, rate, ETA)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

DEFAULT_INTERVAL_SECONDS = 5.0


class InfoLogger(Protocol):
    """Anything with ``info``: a stdlib logger or Airflow's task logger."""

    def info(self, msg: Any, /, *args: Any) -> Any: ...


class Progress:
    def __init__(
        self,
        label: str,
        total_bytes: int | None = None,
        *,
        logger: InfoLogger,
        interval: float = DEFAULT_INTERVAL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.label = label
        self.total_bytes = total_bytes
        self.logger = logger
        self.interval = interval
        self.clock = clock
        self.started = clock()
        self.bytes = 0
        self.files = 0
        self._last_report = self.started
        self._lock = threading.Lock()

    def add_total(self, size: int) -> None:
        with self._lock:
            self.total_bytes = (self.total_bytes or 0) + size

    def advance(self, nbytes: int) -> None:
        with self._lock:
            self.bytes += nbytes
            now = self.clock()
            due = now - self._last_report >= self.interval
            if due:
                self._last_report = now
        if due:
            self.report()

    def file_done(self) -> None:
        with self._lock:
            self.files += 1

    def rate(self) -> float:
        elapsed = max(self.clock() - self.started, 1e-6)
        return self.bytes / elapsed

    def report(self, final: bool = False) -> None:
        rate = self.rate()
        parts = [f"{self.label}: {_size(self.bytes)}"]
        if self.total_bytes:
            parts[0] += f" of {_size(self.total_bytes)} ({100 * self.bytes / self.total_bytes:.0f}%)"
        parts.append(f"{self.files} files")
        parts.append(f"{_size(rate)}/s")
        if not final and self.total_bytes and rate > 0:
            parts.append(f"ETA {max(self.total_bytes - self.bytes, 0) / rate:.0f} s")
        if final:
            parts.append(f"in {self.clock() - self.started:.1f} s")
        self.logger.info(", ".join(parts))


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    return f"{n:.1f} GiB"
