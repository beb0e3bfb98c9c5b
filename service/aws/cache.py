"""A single-flight async TTL cache over cachetools, for the answers of ECR queries.

``@cached`` on an ``async def`` would cache the coroutine object, not its result, and a plain
TTLCache lets concurrent callers of a missing key all fetch it. Here a missing key is fetched
once: later callers await the same future. The clock and the jitter source are injected.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

from cachetools import TLRUCache

__all__ = ["AsyncTTLCache", "LoadAbandoned"]

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class LoadAbandoned(Exception):
    """The shared load was cancelled; its waiters get this rather than a CancelledError,
    which they would take for their own cancellation."""


class AsyncTTLCache(Generic[K, V]):
    """Results of async loads, each kept for ``ttl * (1 - jitter * random())`` seconds."""

    def __init__(
        self,
        ttl: float,
        *,
        maxsize: int,
        jitter: float = 0.0,
        timer: Callable[[], float] = time.monotonic,
        rng: Callable[[], float] = random.random,
        on_lookup: Callable[[bool], None] = lambda _hit: None,
    ) -> None:
        self._on_lookup = on_lookup
        self.ttl = ttl
        self._jitter = jitter
        self._rng = rng
        self._values: TLRUCache[K, V] = TLRUCache(maxsize=maxsize, ttu=self._expiry, timer=timer)
        self._loading: dict[K, asyncio.Future[V]] = {}
        self.hits = 0
        self.misses = 0

    def _expiry(self, _key: K, _value: V, now: float) -> float:
        return now + self.ttl * (1.0 - self._jitter * self._rng())

    async def get_or_load(self, key: K, load: Callable[[], Awaitable[V]]) -> V:
        """The cached value for ``key``, or the result of one ``load()`` shared by all callers.

        A failed load is not cached: every waiter sees the exception and the next call retries.
        """
        if self.ttl > 0:
            try:
                value = self._values[key]
            except KeyError:
                pass
            else:
                self.hits += 1
                self._on_lookup(True)
                return value
        pending = self._loading.get(key)
        if pending is not None:
            self.hits += 1
            self._on_lookup(True)
            return await asyncio.shield(pending)
        self.misses += 1
        self._on_lookup(False)
        future: asyncio.Future[V] = asyncio.get_running_loop().create_future()
        self._loading[key] = future
        try:
            value = await load()
        except asyncio.CancelledError:
            future.set_exception(LoadAbandoned(f"the load of {key!r} was cancelled"))
            future.exception()
            raise
        except Exception as exc:
            future.set_exception(exc)
            # Consumed here so that a load nobody else awaited does not warn at garbage collection.
            future.exception()
            raise
        else:
            future.set_result(value)
            if self.ttl > 0:
                self._values[key] = value
            return value
        finally:
            del self._loading[key]

    def peek(self, key: K) -> V | None:
        """The cached value, or None; counts nothing (callers count with ``counted_hit``)."""
        if self.ttl <= 0:
            return None
        return self._values.get(key)

    def counted_hit(self) -> None:
        """Count a hit that ``peek`` served."""
        self.hits += 1
        self._on_lookup(True)

    def discard(self, key: K) -> None:
        """Forget ``key`` so that the next lookup loads it again."""
        self._values.pop(key, None)

    def keys(self) -> list[K]:
        """The keys currently cached (expired entries excluded)."""
        self._values.expire()
        return list(self._values.keys())

    def __len__(self) -> int:
        return len(self._values)
