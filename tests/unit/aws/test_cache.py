"""The single-flight TTL cache."""

from __future__ import annotations

import asyncio

import pytest

from service.aws.cache import AsyncTTLCache, LoadAbandoned


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_concurrent_callers_of_a_missing_key_share_one_load() -> None:
    cache: AsyncTTLCache[str, int] = AsyncTTLCache(60, maxsize=10)
    loads = 0
    release = asyncio.Event()

    async def load() -> int:
        nonlocal loads
        loads += 1
        await release.wait()
        return 42

    waiters = [asyncio.create_task(cache.get_or_load("k", load)) for _ in range(5)]
    await asyncio.sleep(0)
    release.set()
    assert await asyncio.gather(*waiters) == [42] * 5
    assert loads == 1
    assert (cache.misses, cache.hits) == (1, 4)


async def test_entries_expire_after_their_ttl() -> None:
    clock = Clock()
    cache: AsyncTTLCache[str, float] = AsyncTTLCache(10, maxsize=10, timer=clock)

    async def load() -> float:
        return clock.now

    assert await cache.get_or_load("k", load) == 0.0
    clock.now = 9.9
    assert await cache.get_or_load("k", load) == 0.0
    clock.now = 10.0
    assert await cache.get_or_load("k", load) == 10.0


async def test_jitter_shortens_lifetimes_within_bounds() -> None:
    clock = Clock()
    cache: AsyncTTLCache[str, float] = AsyncTTLCache(
        100, maxsize=10, jitter=0.2, timer=clock, rng=lambda: 1.0
    )

    async def load() -> float:
        return clock.now

    await cache.get_or_load("k", load)
    clock.now = 79.9
    assert await cache.get_or_load("k", load) == 0.0
    clock.now = 80.0
    assert await cache.get_or_load("k", load) == 80.0


async def test_failures_are_not_cached() -> None:
    cache: AsyncTTLCache[str, int] = AsyncTTLCache(60, maxsize=10)
    attempts = 0

    async def flaky() -> int:
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            raise RuntimeError("boom")
        return 7

    with pytest.raises(RuntimeError):
        await cache.get_or_load("k", flaky)
    assert await cache.get_or_load("k", flaky) == 7


async def test_discard_forces_a_reload_and_zero_ttl_never_caches() -> None:
    cache: AsyncTTLCache[str, int] = AsyncTTLCache(60, maxsize=10)
    counter = iter(range(100))

    async def load() -> int:
        return next(counter)

    assert await cache.get_or_load("k", load) == 0
    cache.discard("k")
    assert await cache.get_or_load("k", load) == 1
    uncached: AsyncTTLCache[str, int] = AsyncTTLCache(0, maxsize=10)
    assert await uncached.get_or_load("k", load) == 2
    assert await uncached.get_or_load("k", load) == 3
    assert len(uncached) == 0


async def test_waiters_of_a_cancelled_load_get_an_error_not_a_cancellation() -> None:
    cache: AsyncTTLCache[str, int] = AsyncTTLCache(60, maxsize=10)
    started = asyncio.Event()

    async def slow() -> int:
        started.set()
        await asyncio.sleep(60)
        return 1

    owner = asyncio.create_task(cache.get_or_load("k", slow))
    await started.wait()
    waiter = asyncio.create_task(cache.get_or_load("k", slow))
    await asyncio.sleep(0)
    owner.cancel()
    with pytest.raises(LoadAbandoned):
        await waiter
    assert owner.cancelled()
    assert not waiter.cancelled()
