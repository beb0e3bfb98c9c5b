"""One account's ECR calls in one region: paced, bounded, mapped to our errors, counted.

The calls go through an aiobotocore client, with botocore's adaptive retries. Each call waits
for ``aws.max_calls_per_second`` (one ``aiolimiter.AsyncLimiter`` per API, since ECR throttles
each API on its own), then for a slot of the region's semaphore, shared by every account read
there and never larger than the connection pool.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from typing import Any

from aiolimiter import AsyncLimiter

from ..errors import EcrError
from ..model import SourceId
from ..reading import ReadObserver
from .answers import check_shape
from .errors import mapped_errors, outcome_of

__all__ = ["PAGE_SIZE", "EcrClient", "per_second"]

PAGE_SIZE = 1000


def per_second(rate: float) -> AsyncLimiter:
    """At most ``rate`` acquisitions a second, evenly: a rate below one a second is one per
    ``1 / rate`` seconds, since the limiter's capacity cannot be less than one."""
    if rate >= 1:
        return AsyncLimiter(rate, time_period=1.0)
    return AsyncLimiter(1, time_period=1.0 / rate)


async def _uncancelled(call: Awaitable[dict[str, Any]]) -> dict[str, Any]:
    """``await call``, where cancelling the caller leaves the call to end on its own.

    botocore's adaptive retry mode waits in aiobotocore's ``AsyncTokenBucket``, which holds an
    ``asyncio.Condition`` around ``asyncio.wait_for(condition.wait(), ...)``. On Python 3.11 a
    caller cancelled while it waits there can release a lock it no longer holds: the bucket's
    lock is then left taken, and every later call of that client waits forever (the soak saw
    a source never read again after a refresh deadline cancelled its read). So a cancelled
    read drops its calls' answers instead of cancelling inside botocore; each call still ends
    within its timeouts and attempts.
    """
    task = asyncio.ensure_future(call)
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        # Its outcome is nobody's now: retrieved, so that a failure is not logged as unheard.
        task.add_done_callback(lambda done: done.cancelled() or done.exception())
        raise


async def _holding(slot: asyncio.Semaphore, call: Awaitable[dict[str, Any]]) -> dict[str, Any]:
    """``await call``, then give back the slot taken for it, however its caller ended."""
    try:
        return await call
    finally:
        slot.release()


class EcrClient:
    """An ECR client of one account in one region, opened by ``open_client`` on first call."""

    def __init__(
        self,
        open_client: Callable[[], Awaitable[Any]],
        slots: asyncio.Semaphore,
        source: SourceId,
        observer: ReadObserver,
        ca_bundle: str,
        max_calls_per_second: float | None = None,
    ) -> None:
        self._open_client = open_client
        self._client: Any = None
        self.slots = slots
        self.account = source.account_id
        self.region = source.region
        self._observer = observer
        self._ca_bundle = ca_bundle
        self._rate = max_calls_per_second
        self._limiters: dict[str, AsyncLimiter] = {}

    async def call(self, operation: str, **params: Any) -> dict[str, Any]:
        """The answer of ``operation`` (botocore's method name); raises EcrError."""
        if self._client is None:
            self._client = await self._open_client()
            # botocore retries inside the call and says only how many times; its public event
            # system shows each attempt's answer, so that throttles can be counted as such.
            self._client.meta.events.register("needs-retry.ecr", self._on_attempt)
        method = getattr(self._client, operation)
        # The metrics name operations as AWS does (DescribeImages), from botocore's own table.
        label = str(self._client.meta.method_to_api_mapping.get(operation, operation))
        async with AsyncExitStack() as pacing:
            if self._rate is not None:
                await pacing.enter_async_context(self._limiter(operation))
            # The slot goes back when the call ends, not when a cancelled caller stops waiting.
            await self.slots.acquire()
            try:
                with mapped_errors(self.account, self.region, operation, self._ca_bundle):
                    call = _holding(self.slots, method(**params))
                    response: dict[str, Any] = await _uncancelled(call)
            except EcrError as exc:
                # A last attempt that was throttled is counted by _on_attempt already.
                outcome = outcome_of(exc.code)
                self._count(label, None if outcome == "throttled" else outcome, exc.retries)
                raise
        self._count(label, "ok", int(response.get("ResponseMetadata", {}).get("RetryAttempts", 0)))
        check_shape(response, operation, self.account, self.region)
        return response

    async def pages(
        self, operation: str, items_key: str, **params: Any
    ) -> AsyncIterator[list[dict[str, Any]]]:
        """Each page's items in turn: a caller that summarises never holds them all.

        Paged here rather than by botocore's paginator: each page is a call of its own, to be
        paced and bounded like any other, and the paginator's final step (learning there is
        no next page) would take a slot of the budget for a call never made.
        """
        token: str | None = None
        while True:
            page = await self.call(
                operation, maxResults=PAGE_SIZE, **params, **({"nextToken": token} if token else {})
            )
            yield page.get(items_key) or []
            token = page.get("nextToken")
            if not token:
                return

    async def every(self, operation: str, items_key: str, **params: Any) -> list[dict[str, Any]]:
        """Every item of every page."""
        return [item async for page in self.pages(operation, items_key, **params) for item in page]

    def _limiter(self, operation: str) -> AsyncLimiter:
        found = self._limiters.get(operation)
        if found is None:
            assert self._rate is not None
            found = self._limiters[operation] = per_second(self._rate)
        return found

    def _count(self, label: str, outcome: str | None, retries: int) -> None:
        if retries:
            self._observer.aws_call(label, "retried", retries)
        if outcome is not None:
            self._observer.aws_call(label, outcome)

    def _on_attempt(
        self, response: tuple[Any, dict[str, Any]] | None = None, operation: Any = None, **_: Any
    ) -> None:
        """Each attempt's answer (botocore's ``needs-retry`` event): a throttle is counted."""
        if response is None or operation is None:
            return
        code = str((response[1].get("Error") or {}).get("Code") or "")
        if outcome_of(code) == "throttled":
            self._observer.aws_call(str(operation.name), "throttled")
