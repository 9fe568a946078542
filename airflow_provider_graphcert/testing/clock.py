"""A clock for tests of code that takes ``sleep`` and ``clock`` callables (GraphClient, JobThrottle).

Time moves only when the code under test sleeps on it, so a test of a 60 s ``Retry-After`` takes no
wall time and sees the waits the client chose, exactly. Shared safely by worker threads.
"""

from __future__ import annotations

import threading


class VirtualClock:
    """``clock()`` reads the virtual time; ``clock.sleep(s)`` records ``s`` in ``waits`` and advances it."""

    def __init__(self, start: float = 0.0) -> None:
        self.now = start
        self.waits: list[float] = []
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self.now

    @property
    def sleeps(self) -> int:
        return len(self.waits)

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.waits.append(seconds)
            self.now += max(0.0, seconds)
