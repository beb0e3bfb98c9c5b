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
from ..config import Settings
from ..errors import RequestRefused
from ..reading import EcrReader, ReadObserver
from ..snapshot.persist import StateDir
from ..snapshot.store import SnapshotStore
from . import entities, health, operations, sources
from .auth import EventsGate, RefreshGate
from .limits import RequestSizeLimit
from .metrics import HttpMetricsMiddleware, Metrics, watch_loop_lag
from .responses import EntitiesFastPath

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
        async with reader_factory(metrics) as reader:
            state = StateDir(settings.state_dir) if settings.state_dir else None
            store = SnapshotStore(
                reader, settings.catalog, settings.refresh, state, on_refresh=metrics.refreshed
            )
            await store.load_state(settings.aws.may_read)
            collector = metrics.watch(store)
            # Everything alive now (modules, botocore's service models, the clients) lives as
            # long as the process: out of the collector's reach, full collections stay short.
            gc.freeze()
            tasks = [
                asyncio.create_task(store.run_forever(), name="ecr-catalog-refresh"),
                asyncio.create_task(watch_loop_lag(metrics), name="ecr-catalog-loop-lag"),
            ]
            try:
                yield {
                    "store": store,
                    "metrics": metrics,
                    "refresh_gate": RefreshGate(settings.server),
                    "events_gate": EventsGate(settings.events),
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
    for module in (entities, sources, health, operations):
        app.include_router(module.router)
    app.add_exception_handler(RequestRefused, _refused)

    async def routed(scope: Scope, receive: Receive, send: Send) -> None:
        await FastAPI.__call__(app, scope, receive, send)

    app.front = RequestSizeLimit(
        HttpMetricsMiddleware(EntitiesFastPath(routed), metrics=metrics),
        max_url_length=settings.server.max_url_length,
        max_header_bytes=settings.server.max_header_bytes,
    )
    return app


class _CatalogApp(FastAPI):
    """FastAPI with the request bounds, the metrics and the fast path in front of its stack.

    The three are plain ASGI and need none of FastAPI's own middleware stack (error handling,
    body limits), which would otherwise run before them on every poll; every other request goes
    through them and then through FastAPI as usual.
    """

    front: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self.front is not None:
            await self.front(scope, receive, send)
        else:
            await super().__call__(scope, receive, send)
