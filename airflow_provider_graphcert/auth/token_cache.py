"""A process-wide, thread-safe cache of access tokens with one request in flight per key."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field

# Refresh this long before expiry unless Entra ID says otherwise (``refresh_in``).
DEFAULT_REFRESH_MARGIN_SECONDS = 300


@dataclass(frozen=True)
class AccessToken:
    token: str = field(repr=False)
    expires_at: float
    refresh_at: float
    scope: str = ""

    @classmethod
    def from_lifetime(
        cls, token: str, *, expires_in: float, refresh_in: float | None = None, now: float, scope: str = ""
    ) -> AccessToken:
        if refresh_in is None or refresh_in <= 0 or refresh_in >= expires_in:
            # Short-lived tokens (a few seconds in tests, minutes in some tenants) would be
            # refreshed constantly with a fixed margin; never refresh before half the lifetime.
            refresh_in = max(expires_in - DEFAULT_REFRESH_MARGIN_SECONDS, expires_in / 2)
        return cls(token=token, expires_at=now + expires_in, refresh_at=now + refresh_in, scope=scope)

    def is_fresh(self, now: float) -> bool:
        return now < self.refresh_at


class TokenCache:
    """Tokens keyed by (authority, tenant, client, scope, credential).

    Many threads asking for the same key at once cause a single token request: the first takes
    the key's lock and fetches; the others wait on the lock and then find the fresh token.
    """

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._tokens: dict[Hashable, AccessToken] = {}
        self._key_locks: dict[Hashable, threading.Lock] = {}
        self._lock = threading.Lock()

    def _key_lock(self, key: Hashable) -> threading.Lock:
        with self._lock:
            return self._key_locks.setdefault(key, threading.Lock())

    def peek(self, key: Hashable) -> AccessToken | None:
        with self._lock:
            return self._tokens.get(key)

    def get(self, key: Hashable, fetch: Callable[[], AccessToken]) -> AccessToken:
        token = self.peek(key)
        if token is not None and token.is_fresh(self._clock()):
            return token
        with self._key_lock(key):
            token = self.peek(key)
            if token is not None and token.is_fresh(self._clock()):
                return token
            token = fetch()
            with self._lock:
                self._tokens[key] = token
            return token

    def invalidate(self, key: Hashable, stale: AccessToken | None = None) -> None:
        """Drop the cached token; with ``stale``, only if it is still that one.

        After a 401 many threads may report the same stale token; only the first drop matters,
        the rest must not throw away the token another thread just fetched.
        """
        with self._lock:
            current = self._tokens.get(key)
            if current is not None and (stale is None or current.token == stale.token):
                del self._tokens[key]

    def clear(self) -> None:
        with self._lock:
            self._tokens.clear()


DEFAULT_TOKEN_CACHE = TokenCache()
