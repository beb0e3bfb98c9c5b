"""Filtered views: one render per view while many ask, a bounded pool, a bound in bytes."""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import AsyncIterator, Callable, MutableMapping
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any, cast

import httpx
import pytest
from starlette.responses import Response

from service.catalog.render import RenderedBody, render_body
from service.config import Settings
from service.errors import Unavailable
from service.snapshot.types import Snapshot
from service.web.views import RENDER_WORKERS, FilteredViews

from ...records import repository, source
from ...support import FakeReader, in_process, until_true

SNAPSHOT = cast(
    Snapshot,
    SimpleNamespace(
        built_at=datetime(2026, 1, 1, tzinfo=UTC), yaml=render_body(b"x", with_gzip=False)
    ),
)


class GatedRenders:
    """Render functions that wait for ``gate``, counting calls and the most running at once."""

    def __init__(self, size: int = 100) -> None:
        self.gate = threading.Event()
        self.size = size
        self.calls = 0
        self.running = 0
        self.peak = 0
        self._lock = threading.Lock()

    def render(self, name: str) -> Callable[[], RenderedBody]:
        def run() -> RenderedBody:
            with self._lock:
                self.calls += 1
                self.running += 1
                self.peak = max(self.peak, self.running)
            self.gate.wait(timeout=30)
            with self._lock:
                self.running -= 1
            return render_body(name.encode().ljust(self.size, b"."), with_gzip=False)

        return run


async def test_one_render_however_many_ask_for_the_same_view() -> None:
    views = FilteredViews(1_000_000)
    renders = GatedRenders()
    try:
        asked = [
            asyncio.create_task(views.get(SNAPSHOT, ("v",), renders.render("v"))) for _ in range(50)
        ]
        await until_true(lambda: renders.calls == 1, "the render started")
        renders.gate.set()
        bodies = await asyncio.gather(*asked)
        assert renders.calls == 1
        assert len({id(body) for body in bodies}) == 1
        # Kept: asked again, it is not rendered again.
        await views.get(SNAPSHOT, ("v",), renders.render("v"))
        assert renders.calls == 1
    finally:
        views.close()


async def test_a_caller_that_goes_away_does_not_cancel_the_render_others_wait_for() -> None:
    views = FilteredViews(1_000_000)
    renders = GatedRenders()
    try:
        first = asyncio.create_task(views.get(SNAPSHOT, ("v",), renders.render("v")))
        second = asyncio.create_task(views.get(SNAPSHOT, ("v",), renders.render("v")))
        await until_true(lambda: renders.calls == 1, "the render started")
        first.cancel()
        renders.gate.set()
        assert (await second).body.startswith(b"v")
        assert renders.calls == 1
    finally:
        views.close()


async def test_distinct_views_render_in_a_bounded_pool() -> None:
    views = FilteredViews(1_000_000)
    renders = GatedRenders()
    try:
        asked = [
            asyncio.create_task(views.get(SNAPSHOT, (i,), renders.render(str(i))))
            for i in range(12)
        ]
        await until_true(lambda: renders.running == RENDER_WORKERS, "the pool busy")
        assert views.in_flight == 12
        renders.gate.set()
        await asyncio.gather(*asked)
        assert renders.calls == 12
        assert renders.peak == RENDER_WORKERS
        assert views.in_flight == 0
    finally:
        views.close()


async def test_kept_bodies_are_bounded_in_bytes() -> None:
    views = FilteredViews(1000)
    renders = GatedRenders(size=300)
    renders.gate.set()
    try:
        for i in range(20):
            await views.get(SNAPSHOT, (i,), renders.render(str(i)))
            assert views.kept_bytes <= 1000
        assert views.kept_bytes == 900
        # Larger than the whole bound: served, never kept, and nothing else is dropped for it.
        huge = GatedRenders(size=5000)
        huge.gate.set()
        body = await views.get(SNAPSHOT, ("huge",), huge.render("huge"))
        assert len(body.body) == 5000
        assert views.kept_bytes == 900
        await views.get(SNAPSHOT, ("huge",), huge.render("huge"))
        assert huge.calls == 2
    finally:
        views.close()


US = source(*(repository(f"team-{i}/service-{i}", tags={"owner": f"team-{i}"}) for i in range(40)))


@asynccontextmanager
async def serving(**server: object) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(
        refresh={"interval_seconds": 3600, "initial_retry_seconds": 0.05}, server=server
    )
    async with in_process(settings, FakeReader(US)) as (client, _):
        yield client


async def metric(client: httpx.AsyncClient, name: str) -> float:
    text = (await client.get("/metrics")).text
    found = re.search(rf"^{name} (\S+)$", text, re.M)
    assert found, name
    return float(found.group(1))


async def test_concurrent_identical_filtered_requests_render_once() -> None:
    async with serving() as client:
        before = await metric(client, "ecr_catalog_filtered_renders_total")
        responses = await asyncio.gather(
            *(client.get("/entities.json?kind=resource&owner=team-1") for _ in range(30))
        )
        assert {r.status_code for r in responses} == {200}
        assert len({r.content for r in responses}) == 1
        assert await metric(client, "ecr_catalog_filtered_renders_total") == before + 1


async def test_distinct_filtered_requests_keep_at_most_the_configured_bytes() -> None:
    bound = 300_000
    async with serving(filtered_cache_bytes=bound) as client:
        one = await client.get("/entities.yaml?kind=resource&kind=x0")
        # A few fill the bound; forty would hold several times it.
        assert bound // 10 < len(one.content) < bound // 2
        for i in range(1, 40):
            # Distinct filters that all choose every repository: the largest bodies there are.
            response = await client.get(f"/entities.yaml?kind=resource&kind=x{i}")
            assert response.content == one.content
            assert await metric(client, "ecr_catalog_filtered_kept_bytes") <= bound
        assert await metric(client, "ecr_catalog_filtered_kept_bytes") > 0
        posture = await client.get("/posture?owner=team-2")
        assert posture.status_code == 200
        assert await metric(client, "ecr_catalog_filtered_kept_bytes") <= bound


def _sent_response(body: RenderedBody, status: int = 200) -> Response:
    return Response(body.body if status == 200 else b"", status_code=status)


async def test_bodies_being_sent_are_bounded_in_bytes_each_counted_once() -> None:
    views = FilteredViews(0, max_sending_bytes=250)
    first, second = (
        render_body(b"a" * 200, with_gzip=False),
        render_body(b"b" * 100, with_gzip=False),
    )
    try:
        one = views.sending(_sent_response(first), first)
        # The same body again (another client of one view) costs nothing more.
        again = views.sending(_sent_response(first), first)
        assert views.sending_bytes == 200
        with pytest.raises(Unavailable) as refused:
            views.sending(_sent_response(second), second)
        assert refused.value.status == 503 and refused.value.headers["Retry-After"] == "5"
        assert "server.filtered_sending_bytes" in refused.value.detail
        # A 304 sends no body: never counted, never refused.
        assert views.sending(_sent_response(second, 304), second).background is None
        for response in (one, again):
            assert response.background is not None
            await response.background()
        assert views.sending_bytes == 0
        # Nothing else being sent: one body larger than the whole bound still goes out.
        huge = render_body(b"c" * 1000, with_gzip=False)
        views.sending(_sent_response(huge), huge)
        assert views.sending_bytes == 1000
    finally:
        views.close()


async def test_a_client_that_never_reads_holds_its_view_and_others_get_503_not_memory() -> None:
    settings = Settings(
        refresh={"interval_seconds": 3600, "initial_retry_seconds": 0.05},
        server={"filtered_sending_bytes": 1},
    )
    async with in_process(settings, FakeReader(US)) as (client, app):
        # A client whose body never drains: its send of the body never returns.
        started, drained = asyncio.Event(), asyncio.Event()

        async def stalled_send(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.body":
                started.set()
                await drained.wait()

        async def receive() -> MutableMapping[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": "/entities.yaml",
            "raw_path": b"/entities.yaml",
            "query_string": b"owner=team-1",
            "root_path": "",
            "headers": [(b"host", b"test")],
            "client": ("127.0.0.1", 1),
            "server": ("test", 80),
        }
        stalled = asyncio.create_task(app(scope, receive, stalled_send))
        await asyncio.wait_for(started.wait(), 10)
        refused = await client.get("/entities.yaml?owner=team-2")
        assert refused.status_code == 503 and refused.headers["retry-after"] == "5"
        # The whole catalog is the snapshot's own body: never refused.
        assert (await client.get("/entities.yaml")).status_code == 200
        drained.set()
        await asyncio.wait_for(stalled, 10)
        assert (await client.get("/entities.yaml?owner=team-2")).status_code == 200
