"""Bounded concurrency for the per-repository work of a read, and its progress log."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from ..model import SourceId

__all__ = ["Progress", "bounded_map"]

log = logging.getLogger(__name__)

T = TypeVar("T")

# Repositories handled between two returns to the event loop: answers from the caches never
# suspend, and requests must not wait for a whole region's worth of them.
YIELD_EVERY = 32
PROGRESS_SECONDS = 10.0


class Progress:
    """Logs how far a long read has got, every PROGRESS_SECONDS, so a cold start is visible."""

    def __init__(self, source: SourceId, total: int) -> None:
        self.source = source
        self.total = total
        self.done = 0
        self.started = self.logged = time.monotonic()

    async def counted(self, work: Awaitable[T]) -> T:
        result = await work
        self.done += 1
        now = time.monotonic()
        if now - self.logged >= PROGRESS_SECONDS and self.done < self.total:
            self.logged = now
            log.info(
                "reading %s: %d of %d repositories after %.0f s",
                self.source,
                self.done,
                self.total,
                now - self.started,
            )
        return result


async def bounded_map(
    fn: Callable[[Any], Awaitable[T]], items: Sequence[Any], workers: int
) -> list[T]:
    """``[await fn(x) for x in items]``, at most ``workers`` at a time: never a bare gather."""
    results: list[T | object] = [_NOT_DONE] * len(items)
    next_index = 0

    async def worker() -> None:
        nonlocal next_index
        while next_index < len(items):
            index = next_index
            next_index += 1
            results[index] = await fn(items[index])
            if index % YIELD_EVERY == 0:
                # Answers from the caches complete without suspending: without this, one
                # worker would run through every cached repository in a single callback
                # while requests wait.
                await asyncio.sleep(0)

    try:
        async with asyncio.TaskGroup() as group:
            for _ in range(min(workers, len(items))):
                group.create_task(worker())
    except BaseExceptionGroup as failures:
        # Callers handle EcrError, not groups: the first failure speaks for the batch.
        raise failures.exceptions[0] from failures
    if any(result is _NOT_DONE for result in results):
        # A worker ended without an error (a stray cancellation): a partial result would read
        # as repositories that no longer exist, so it is a failure, never an answer.
        raise asyncio.CancelledError("a worker stopped before finishing its items")
    return results  # type: ignore[return-value]


_NOT_DONE = object()
