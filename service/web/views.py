"""Filtered views: each rendered once while many ask for it, in a small pool, and kept by bytes.

A filtered body (``/entities.yaml?owner=...``, ``/posture?...``) is as large as the part of the
catalog it selects, and any client can ask for as many distinct ones as it likes. So four
things are bounded here: the bodies kept for reuse (by their bytes, across every snapshot), the
bodies being sent (by their bytes: a client that never reads holds its body in the server's
transport until it goes away), the renders running at once (a pool of its own, not the loop's
default executor, which grows with the node's cores), and the renders of one view (one, however
many wait for it).
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Hashable, Sequence
from concurrent.futures import ThreadPoolExecutor

from cachetools import LRUCache
from starlette.background import BackgroundTask
from starlette.responses import Response

from ..catalog.render import RenderedBody, join_json, join_yaml, render_body
from ..errors import Unavailable
from ..snapshot.types import IndexedEntity, Snapshot
from .filters import EntityFilters
from .negotiation import Format

__all__ = ["RENDER_WORKERS", "FilteredViews", "rendered_for"]

# The renders are CPU-bound Python and hold the GIL: more threads would only hold more bodies
# half-built at once. Two let a small view pass a large one.
RENDER_WORKERS = 2
# What a client refused for the bytes being sent is told to wait: a few polls' worth of sending.
SENDING_RETRY_SECONDS = 5

_Key = tuple[Hashable, ...]


def _size(body: RenderedBody) -> int:
    return len(body.body) + len(body.gzipped or b"")


class FilteredViews:
    """The filtered bodies of every snapshot, by snapshot, view and filters."""

    def __init__(
        self,
        max_bytes: int,
        *,
        max_sending_bytes: int = 0,
        workers: int = RENDER_WORKERS,
        on_render: Callable[[], None] | None = None,
    ) -> None:
        self._kept: LRUCache[_Key, RenderedBody] = LRUCache(maxsize=max_bytes, getsizeof=_size)
        # Each body being sent (by identity: many responses may share one) and how many.
        self._sending: dict[int, tuple[RenderedBody, int]] = {}
        self._sending_bytes = 0
        self._max_sending_bytes = max_sending_bytes
        self._rendering: dict[_Key, asyncio.Future[RenderedBody]] = {}
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ecr-catalog-view")
        self._on_render = on_render

    @property
    def kept_bytes(self) -> int:
        """The bytes of the bodies kept now; never more than ``max_bytes``."""
        return int(self._kept.currsize)

    @property
    def sending_bytes(self) -> int:
        """The bytes of the filtered bodies being sent now, each counted once."""
        return self._sending_bytes

    def sending(self, response: Response, body: RenderedBody) -> Response:
        """``response`` (which sends ``body``), counted against the bound of bodies being sent
        until it has been sent; Unavailable (503) when no room is left for it.

        A body already being sent costs nothing more, and one body is always let through, so
        that a view larger than the bound is still served, one at a time.
        """
        if response.status_code == 304:
            return response
        held = self._sending.get(id(body))
        if held is None:
            size = _size(body)
            if self._sending and self._sending_bytes + size > self._max_sending_bytes:
                raise Unavailable(
                    f"filtered views of {self._sending_bytes} bytes are being sent, the most "
                    "server.filtered_sending_bytes allows; retry, or ask for a smaller view",
                    SENDING_RETRY_SECONDS,
                )
            self._sending_bytes += size
            held = (body, 0)
        self._sending[id(body)] = (body, held[1] + 1)
        # Starlette runs it once the body is sent, or once the client has gone away.
        response.background = BackgroundTask(self._sent, body)
        return response

    def _sent(self, body: RenderedBody) -> None:
        _, count = self._sending[id(body)]
        if count > 1:
            self._sending[id(body)] = (body, count - 1)
        else:
            del self._sending[id(body)]
            self._sending_bytes -= _size(body)

    @property
    def in_flight(self) -> int:
        """Views being rendered or waiting for a worker."""
        return len(self._rendering)

    async def get(
        self, snapshot: Snapshot, view: _Key, render: Callable[[], RenderedBody]
    ) -> RenderedBody:
        """The body of ``view`` of ``snapshot``: kept, being rendered, or ``render()`` now."""
        # The build time tells snapshots apart and the ETag their content, without holding
        # the snapshot itself.
        key = (snapshot.built_at, snapshot.yaml.etag, *view)
        kept = self._kept.get(key)
        if kept is not None:
            return kept
        pending = self._rendering.get(key)
        if pending is None:
            pending = asyncio.get_running_loop().run_in_executor(self._pool, render)
            self._rendering[key] = pending
            pending.add_done_callback(functools.partial(self._rendered, key))
            if self._on_render is not None:
                self._on_render()
        # Shielded: a client that goes away must not cancel the render others wait for.
        return await asyncio.shield(pending)

    def _rendered(self, key: _Key, done: asyncio.Future[RenderedBody]) -> None:
        del self._rendering[key]
        if done.cancelled() or done.exception() is not None:
            return
        body = done.result()
        # A body larger than the whole bound is served to those who asked, never kept.
        if _size(body) <= self._kept.maxsize:
            self._kept[key] = body

    def close(self) -> None:
        """Stop the pool; renders not started are dropped."""
        self._pool.shutdown(wait=False, cancel_futures=True)


async def rendered_for(
    views: FilteredViews, snapshot: Snapshot, filters: EntityFilters, fmt: Format
) -> RenderedBody:
    """The body of the entities ``filters`` choose: the snapshot's own without filters, else
    a filtered view (rendered once while many ask, off the loop, kept within its bound)."""
    if filters.empty:
        return snapshot.yaml if fmt == "yaml" else await snapshot.json.aget()
    return await views.get(
        snapshot,
        ("entities", fmt, filters.cache_key()),
        functools.partial(_filtered_body, snapshot.entities, filters, fmt),
    )


def _filtered_body(
    entities: Sequence[IndexedEntity], filters: EntityFilters, fmt: Format
) -> RenderedBody:
    chosen = [item for item in entities if filters.matches(item)]
    body = (
        join_yaml(item.yaml_document for item in chosen)
        if fmt == "yaml"
        else join_json(item.json_document for item in chosen)
    )
    return render_body(body, with_gzip=False)
