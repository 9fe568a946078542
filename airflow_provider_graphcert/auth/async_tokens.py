"""Access tokens for coroutines (Airflow's triggerer) from the same auth core as the sync side.

The assertion is minted and the token requested by :class:`TokenProvider` itself, so signing,
retries and error messages are the ones every task uses. Only the waiting changes: reading the
key file, signing and the token round trip run in a worker thread, never on the event loop. The
token lands in the process-wide :data:`DEFAULT_TOKEN_CACHE`, so every trigger of one triggerer
process shares one token per token lifetime; an asyncio lock per cache key makes concurrent
triggers wait for a single request instead of each parking a thread on the cache's lock.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field

from airflow_provider_graphcert.auth.token_cache import AccessToken
from airflow_provider_graphcert.auth.token_client import TokenProvider

# Locks belong to one event loop; tests (and a restarted runner) may run several loops in turn.
_LOCKS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[Hashable, asyncio.Lock]] = weakref.WeakKeyDictionary()


def _lock_for(key: Hashable) -> asyncio.Lock:
    per_loop = _LOCKS.setdefault(asyncio.get_running_loop(), {})
    return per_loop.setdefault(key, asyncio.Lock())


@dataclass
class AsyncTokenSource:
    """``await get_token()`` for one app; cheap when the cached token is fresh (no thread, no I/O)."""

    provider: TokenProvider
    clock: Callable[[], float] = field(default=time.time, repr=False)

    def _fresh(self) -> AccessToken | None:
        token = self.provider.cache.peek(self.provider.cache_key)
        return token if token is not None and token.is_fresh(self.clock()) else None

    async def get_token(self) -> AccessToken:
        token = self._fresh()
        if token is not None:
            return token
        async with _lock_for(self.provider.cache_key):
            token = self._fresh()
            if token is not None:
                return token
            # Key file read, RSA signing and the HTTPS round trip: all off the loop.
            return await asyncio.to_thread(self.provider.get_token)

    async def invalidate(self, stale: AccessToken | None = None) -> None:
        self.provider.invalidate(stale)
