"""The app factory and its lifespan, which owns the ECR reader and the refresh task."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from .. import __version__
from ..backstage import connected
from ..config import Settings
from ..errors import RequestRefused
from ..reading import EcrReader, ReadObserver
from ..snapshot.persist import StateDir
from ..snapshot.store import SnapshotStore
from . import entities, health, operations, pages, posture, sources
from .auth import EventsGate, RefreshGate
from .headers import HeadAsGet, SecurityHeaders
from .limits import RequestSizeLimit
from .metrics import HttpMetricsMiddleware, Metrics, watch_loop_lag
from .responses import EntitiesFastPath
from .views import FilteredViews

__all__ = ["ReaderFactory", "create_app"]

log = logging.getLogger(__name__)

# Opens the reader for the life of the app; the reader reports calls and cache lookups to the
# observer (the app's metrics).
ReaderFactory = Callable[[ReadObserver | None], AbstractAsyncContextManager[EcrReader]]


def _operation_id(route: APIRoute) -> str:
    # Stable operationIds: the function name, not FastAPI's path-and-method hash.
    return route.name


async def _refused(_request: Request, exc: Exception) -> JSONResponse:
    """The one mapping of the error tree to HTTP (see service/errors.py)."""
    assert isinstance(exc, RequestRefused)
    return JSONResponse({"detail": exc.detail}, status_code=exc.status, headers=exc.headers)


async def _freeze_long_lived(store: SnapshotStore) -> None:
    """``gc.freeze()`` what lives as long as the process: at start-up, and after the first
    refresh.

    At start-up that is the modules, botocore's service models and the clients; after the
    first refresh, also the first snapshot and its records, which a quiet refresh keeps.
    Frozen, the collector no longer walks them, so its full collections stay short: those
    of the first read because the imports are out of them, and those of every later refresh
    because the first read is too (RELIABILITY.md, "Load", has the pauses with and without).
    Frozen objects are still freed when their last reference goes.
    """
    gc.freeze()
    await store.first_refresh_done.wait()
    gc.freeze()


def create_app(settings: Settings, open_reader: ReaderFactory | None = None) -> FastAPI:
    """Build the app. Nothing is opened until the lifespan starts.

    ``open_reader`` yields the ECR reader for the life of the app; by default it is an
    AwsEcrReader built from ``settings``. Tests pass fakes here.
    """
    if open_reader is None:
        from ..aws.reader import AwsEcrReader

        def open_reader(observer: ReadObserver | None) -> AbstractAsyncContextManager[EcrReader]:
            return AwsEcrReader.open(
                settings.aws, settings.cache, observer=observer, state_dir=settings.state_dir
            )

    reader_factory: ReaderFactory = open_reader
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[dict[str, Any]]:
        async with contextlib.AsyncExitStack() as stack:
            reader = await stack.enter_async_context(reader_factory(metrics))
            state = StateDir(settings.state_dir) if settings.state_dir else None
            store = SnapshotStore(
                reader,
                settings.catalog,
                settings.refresh,
                state,
                on_refresh=metrics.refreshed,
                posture=settings.posture,
            )
            backstage = await stack.enter_async_context(
                connected(
                    settings,
                    store.claims_changed,
                    metrics.backstage_refresh,
                    metrics.backstage_claims_read,
                )
            )
            store.peer = backstage
            await store.load_state(settings.aws.may_read)
            collector = metrics.watch(store)
            views = FilteredViews(
                settings.server.filtered_cache_bytes, on_render=metrics.filtered_renders.inc
            )
            stack.callback(views.close)
            metrics.filtered_kept_bytes.set_function(lambda: views.kept_bytes)
            tasks = [
                asyncio.create_task(store.run_forever(), name="ecr-catalog-refresh"),
                asyncio.create_task(watch_loop_lag(metrics), name="ecr-catalog-loop-lag"),
                asyncio.create_task(_freeze_long_lived(store), name="ecr-catalog-gc-freeze"),
            ]
            try:
                yield {
                    "store": store,
                    "metrics": metrics,
                    "refresh_gate": RefreshGate(settings.server),
                    "events_gate": EventsGate(settings.events),
                    "backstage": backstage,
                    "settings": settings,
                    "views": views,
                }
            finally:
                await store.close()
                for task in tasks:
                    task.cancel()
                for task in tasks:
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
                metrics.registry.unregister(collector)

    app = _CatalogApp(
        title="ecr-catalog",
        version=__version__,
        summary="AWS ECR registries and repositories as Backstage catalog entities.",
        description=(
            "Serves the `delivery` Domain, the `container-registry` System, the ECR Component "
            "and one Resource per registry and repository (ADR-0132). Point a Backstage "
            "`type: url` location at `/entities.yaml`."
        ),
        lifespan=lifespan,
        generate_unique_id_function=_operation_id,
    )
    for module in (pages, entities, sources, posture, health, operations):
        app.include_router(module.router)
    app.add_exception_handler(RequestRefused, _refused)

    async def routed(scope: Scope, receive: Receive, send: Send) -> None:
        await FastAPI.__call__(app, scope, receive, send)

    counted = HttpMetricsMiddleware(routed, metrics=metrics)
    bounded = RequestSizeLimit(
        # The poll's fast path counts its own responses, in the same metric.
        EntitiesFastPath(counted, on_response=counted.count),
        max_url_length=settings.server.max_url_length,
        max_header_bytes=settings.server.max_header_bytes,
    )
    # Outermost, so that every answer (the refusals and the fast path's included) has them.
    app.front = SecurityHeaders(HeadAsGet(bounded), pages.content_security_policy())
    return app


class _CatalogApp(FastAPI):
    """FastAPI with the security headers, HEAD, the request bounds, the metrics and the fast
    path in front of its stack.

    They are plain ASGI and need none of FastAPI's own middleware stack (error handling,
    body limits), which would otherwise run before them on every poll; every other request goes
    through them and then through FastAPI as usual.
    """

    front: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self.front is not None:
            await self.front(scope, receive, send)
        else:
            await super().__call__(scope, receive, send)
