"""Throttling shared by every worker of a job: one Retry-After pauses them all, one budget bounds the waiting.

Graph throttles an app per tenant, not per connection: when one request hears "429, Retry-After: 60",
the requests on the other worker threads will hear the same, so they wait with it instead of each
sending its own request into the throttle and each waiting its own minute (Microsoft: "Best
practices to handle throttling", https://learn.microsoft.com/graph/throttling). The time the job
spends paused is counted once, however many threads wait, and ends the job when it passes the
budget, so 40 throttled files cost one budget, not 40. rclone's shared pacer does the same for its
OneDrive backend (https://github.com/rclone/rclone/blob/master/backend/onedrive/onedrive.go, shouldRetry).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from airflow_provider_graphcert.errors import GraphThrottledError


@dataclass(frozen=True)
class ThrottleCause:
    """What asked the job to wait, for the message when the budget runs out (no URLs' queries)."""

    status: int
    method: str
    path: str
    request_id: str | None = None

    def describe(self) -> str:
        request_id = f", request-id {self.request_id}" if self.request_id else ""
        return f"HTTP {self.status} on {self.method} {self.path}{request_id}"


class JobThrottle:
    """A pause every thread honours before sending, and the job's total paused time.

    ``pause`` is called by the thread that was told to wait; ``wait`` by every thread before each
    request. Only one thread sleeps through a pause (the others queue behind it and find the
    pause over), so an injected ``sleep``/``clock`` pair sees the job's time, not N threads' time.
    """

    def __init__(
        self,
        budget: float | Callable[[], float],
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._budget = budget
        self._sleep = sleep
        self._clock = clock
        self._state = threading.Lock()
        self._sleeper = threading.Lock()
        self._paused_until = 0.0
        self._paused_total = 0.0
        self._last_cause: ThrottleCause | None = None
        self._exhausted: GraphThrottledError | None = None

    @property
    def budget(self) -> float:
        """Seconds the job may spend paused in total (read when needed, so a policy set later counts)."""
        return self._budget() if callable(self._budget) else self._budget

    @property
    def paused_total(self) -> float:
        """Seconds the job has been told to pause so far (overlapping pauses counted once)."""
        with self._state:
            return self._paused_total

    def pause(self, seconds: float, cause: ThrottleCause) -> None:
        """Pause every worker for ``seconds`` from now; raise when that would pass the job's budget."""
        with self._state:
            if self._exhausted is not None:
                raise self._exhausted
            now = self._clock()
            until = now + max(0.0, seconds)
            added = max(0.0, until - max(self._paused_until, now))
            self._last_cause = cause
            if self._paused_total + added > self.budget:
                self._exhausted = self._budget_error(asked=seconds)
                raise self._exhausted
            self._paused_total += added
            self._paused_until = max(self._paused_until, until)

    def wait(self) -> None:
        """Return when no pause is in force (at once, usually); raise once the budget is spent."""
        if self.remaining() <= 0:
            return
        with self._sleeper:
            while (remaining := self.remaining()) > 0:
                self._sleep(remaining)

    def remaining(self) -> float:
        """Seconds left of the pause in force (0 or less: none); raises once the budget is spent.

        For a caller that waits its own way (an asyncio loop awaits this long instead of ``wait``).
        """
        with self._state:
            if self._exhausted is not None:
                raise self._exhausted
            return self._paused_until - self._clock()

    def _budget_error(self, *, asked: float) -> GraphThrottledError:
        cause = self._last_cause
        assert cause is not None
        return GraphThrottledError(
            f"Graph kept throttling this job: it already waited {self._paused_total:.0f} s in total "
            f"for throttling and was asked to wait {asked:.0f} s more ({cause.describe()}), past the "
            f"job's wait budget of {self.budget:.0f} s. Run the job later, with fewer parallel "
            "transfers, or with a larger wait budget (RetryPolicy.max_job_wait).",
            status=cause.status,
            request_id=cause.request_id,
            method=cause.method,
            url=cause.path,
        )
