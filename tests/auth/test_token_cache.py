"""Many threads of one worker share one token; only one request goes out per refresh."""

from __future__ import annotations

import threading
from collections.abc import Hashable
from concurrent.futures import ThreadPoolExecutor
from types import TracebackType

from airflow_provider_graphcert.auth.token_cache import AccessToken, TokenCache


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def test_refresh_before_expiry_and_honour_refresh_in() -> None:
    long = AccessToken.from_lifetime("t", expires_in=3599, now=0)
    assert long.refresh_at == 3599 - 300
    hinted = AccessToken.from_lifetime("t", expires_in=86399, refresh_in=43199, now=0)
    assert hinted.refresh_at == 43199
    short = AccessToken.from_lifetime("t", expires_in=4, now=0)
    assert short.refresh_at == 2


class ArrivalCountingLock:
    """The cache's per-key lock, counting the threads that reach it (an event, not a timer)."""

    def __init__(self, arrivals: threading.Semaphore) -> None:
        self._lock = threading.Lock()
        self._arrivals = arrivals

    def __enter__(self) -> None:
        self._arrivals.release()
        self._lock.acquire()

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self._lock.release()


class ObservedTokenCache(TokenCache):
    def __init__(self, clock: Clock) -> None:
        super().__init__(clock)
        self.arrivals = threading.Semaphore(0)
        self._observed_lock = ArrivalCountingLock(self.arrivals)

    def _key_lock(self, key: Hashable) -> ArrivalCountingLock:  # type: ignore[override]
        return self._observed_lock


def test_concurrent_callers_cause_a_single_fetch() -> None:
    clock = Clock()
    cache = ObservedTokenCache(clock)
    callers = 16
    fetches = 0

    def fetch() -> AccessToken:
        nonlocal fetches
        fetches += 1
        # Hold the first fetch until every caller has missed the cache and reached the key's lock,
        # so the others really wait on this fetch (a timer would let a missed race pass).
        for _ in range(callers):
            assert cache.arrivals.acquire(timeout=30), "a caller never reached the key's lock"
        return AccessToken.from_lifetime(f"token-{fetches}", expires_in=3599, now=clock())

    with ThreadPoolExecutor(callers) as pool:
        tokens = {f.result().token for f in [pool.submit(cache.get, "k", fetch) for _ in range(callers)]}
    assert fetches == 1
    assert tokens == {"token-1"}


def test_expiry_triggers_a_new_fetch_and_keys_are_separate() -> None:
    clock = Clock()
    cache = TokenCache(clock)
    counter = iter(range(100))

    def fetch() -> AccessToken:
        return AccessToken.from_lifetime(f"t{next(counter)}", expires_in=3600, now=clock())

    assert cache.get("a", fetch).token == "t0"
    assert cache.get("a", fetch).token == "t0"
    assert cache.get("b", fetch).token == "t1"
    clock.now += 3600 - 299
    assert cache.get("a", fetch).token == "t2"


def test_invalidate_with_a_stale_token_only_drops_that_token() -> None:
    clock = Clock()
    cache = TokenCache(clock)
    counter = iter(range(100))

    def fetch() -> AccessToken:
        return AccessToken.from_lifetime(f"t{next(counter)}", expires_in=3600, now=clock())

    stale = cache.get("a", fetch)
    cache.invalidate("a", stale)
    fresh = cache.get("a", fetch)
    assert fresh.token == "t1"
    cache.invalidate("a", stale)  # a late report about the old token must not drop the new one
    assert cache.get("a", fetch).token == "t1"
    cache.invalidate("a")
    assert cache.get("a", fetch).token == "t2"


def test_token_never_appears_in_repr() -> None:
    token = AccessToken.from_lifetime("eyJ-super-secret-token", expires_in=60, now=0)
    assert "super-secret" not in repr(token)
