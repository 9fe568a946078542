"""The one place that decides whether and how long to wait before repeating a Graph request.

Graph's rules (docs/microsoft-rules.md §B2): on 429 (and 503) wait ``Retry-After`` seconds and keep doing so while
throttling lasts; otherwise back off exponentially with jitter. The Graph SDK retries 429, 503 and
504; rclone also retries 500/502/509, which we do only for idempotent methods because a POST that
failed with 500 may have taken effect. A per-request budget bounds the total time spent waiting so
a task never hangs on a hostile or huge ``Retry-After``; a job-wide budget bounds the time all of a
job's workers spend paused by throttling together (graph/throttle.py).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from time import time

THROTTLE_STATUSES = frozenset({429, 503, 504})
IDEMPOTENT_RETRY_STATUSES = frozenset({500, 502, 509})
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
# 15 minutes of a whole job paused by throttling: past that, Graph is not coming back soon enough
# for a scheduled task, and Airflow's own retry (later) is the better wait.
DEFAULT_MAX_JOB_WAIT = 900.0


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try. ``max_total_wait`` is the budget of sleep per logical request.

    ``max_job_wait`` bounds the time one client (one job, all its workers together) spends paused by
    throttling: a job that meets endless throttling fails after that long, however many files it has.
    """

    max_attempts: int = 10
    max_total_wait: float = 600.0
    backoff_initial: float = 0.5
    backoff_max: float = 60.0
    jitter: float = 0.25
    rng: random.Random = field(default_factory=random.Random, compare=False, repr=False)
    max_job_wait: float = DEFAULT_MAX_JOB_WAIT

    def retryable_status(self, method: str, status: int, idempotent: bool | None = None) -> bool:
        """``idempotent`` overrides the method's rule for a request known to be safe (or unsafe) to repeat."""
        if status in THROTTLE_STATUSES:
            return True
        return status in IDEMPOTENT_RETRY_STATUSES and is_idempotent(method, idempotent)

    def retryable_transport_error(self, method: str, idempotent: bool | None = None) -> bool:
        return is_idempotent(method, idempotent)

    def backoff(self, attempt: int) -> float:
        """Exponential backoff for attempt 1, 2, ... with +-jitter so clients do not march in step."""
        base: float = min(self.backoff_max, self.backoff_initial * (2 ** (attempt - 1)))
        return max(0.0, base * (1 + self.rng.uniform(-self.jitter, self.jitter)))


def is_idempotent(method: str, override: bool | None = None) -> bool:
    """Whether repeating the request cannot do harm: by its method, unless the caller knows better.

    Creating an upload session or a folder whose 409 is expected is a POST that is safe to repeat;
    a PUT that may create "name 1.ext" (conflictBehavior=rename) is not.
    """
    return override if override is not None else method.upper() in IDEMPOTENT_METHODS


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (Graph sends integer seconds; HTTP allows a date)."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        # "-1", "nan", "inf" are not waits Graph asked for: back off as usual rather than retry at once.
        return seconds if 0 <= seconds < math.inf else None
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (now if now is not None else time()))


@dataclass
class RetryBudget:
    """The attempts and waiting already spent on one logical request."""

    policy: RetryPolicy
    attempts: int = 1
    waited: float = 0.0

    def next_delay(self, retry_after: float | None) -> float | None:
        """The delay before the next attempt, or None when the budget says stop."""
        if self.attempts >= self.policy.max_attempts:
            return None
        delay = retry_after if retry_after is not None else self.policy.backoff(self.attempts)
        if self.waited + delay > self.policy.max_total_wait:
            return None
        return delay

    def spend(self, delay: float) -> None:
        self.attempts += 1
        self.waited += delay
