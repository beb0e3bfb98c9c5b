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
from fastapi.responses import PlainTextResponse
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException

from .. import __version__
from ..backstage import BackstageLink, connected
from ..config import Settings
from ..errors import RequestRefused
from ..fleet.reader import OwnedSources
from ..ownership import partitioning_of
from ..reading import EcrReader, ReadObserver
from ..snapshot.persist import StateDir
from ..snapshot.store import SnapshotStore
from . import entities, health, operations, pages, partitions, posture, refusals, sources
from .auth import EventsGate, RefreshGate
from .metrics import Metrics, watch_loop_lag
from .middleware import NOSNIFF, stack
from .views import FilteredViews

__all__ = ["ReaderFactory", "create_app"]

log = logging.getLogger(__name__)

# Opens the reader for the life of the app; the reader reports calls and cache lookups to the
# observer (the app's metrics).
ReaderFactory = Callable[[ReadObserver | None], AbstractAsyncContextManager[EcrReader]]


def _operation_id(route: APIRoute) -> str:
    # Stable operationIds: the function name, not FastAPI's path-and-method hash.
    return route.name


async def _internal_error(_request: Request, _exc: Exception) -> PlainTextResponse:
    """The 500 of an unhandled exception, with the header every other response has.

    Starlette's error handling answers it outside the app's middleware
    (``middleware.SecurityHeaders`` never sees it), and logs the exception itself.
    """
    name, value = NOSNIFF
    return PlainTextResponse(
        "Internal Server Error", status_code=500, headers={name.decode(): value.decode()}
    )


def _aws_reader(settings: Settings) -> ReaderFactory:
    """The default reader: an AwsEcrReader built from ``settings``."""
    from ..aws.reader import AwsEcrReader

    def open_reader(observer: ReadObserver | None) -> AbstractAsyncContextManager[EcrReader]:
        return AwsEcrReader.open(
            settings.aws,
            settings.cache,
            observer=observer,
            state_dir=settings.state_dir,
            partitions=settings.partition.count,
        )

    return open_reader


async def _open_store(
    stack: contextlib.AsyncExitStack, settings: Settings, reader: EcrReader, metrics: Metrics
) -> tuple[SnapshotStore, BackstageLink | None]:
    """The store, linked to Backstage when that is configured, with the saved state loaded."""
    state = StateDir(settings.state_dir) if settings.state_dir else None
    # A partition of a fleet reads, keeps and serves only its own sources (service/fleet).
    fleet = partitioning_of(settings.partition)
    store = SnapshotStore(
        reader if fleet is None else OwnedSources(reader, fleet),
        settings.catalog,
        settings.refresh,
        state,
        on_refresh=metrics.refreshed,
        posture=settings.posture,
    )
    backstage = await stack.enter_async_context(
        connected(
            settings, store.claims_changed, metrics.backstage_refresh, metrics.backstage_claims_read
        )
    )
    store.peer = backstage
    await store.load_state(
        lambda s: settings.aws.may_read(s) and (fleet is None or fleet.owns(s)), fleet
    )
    return store, backstage


def _lifespan(
    settings: Settings, open_reader: ReaderFactory, metrics: Metrics
) -> Callable[[FastAPI], AbstractAsyncContextManager[dict[str, Any]]]:
    """What the app holds while it runs: the reader, the store and its refresh task, the views."""

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[dict[str, Any]]:
        async with contextlib.AsyncExitStack() as stack:
            reader = await stack.enter_async_context(open_reader(metrics))
            store, backstage = await _open_store(stack, settings, reader, metrics)
            # What lives as long as the process (the modules, botocore's service models, the
            # clients) is moved out of the collector's reach, so that its full collections,
            # those of every refresh included, no longer walk it. Frozen objects are still
            # freed when their last reference goes (docs/reliability.md).
            gc.freeze()
            collector = metrics.watch(store)
            views = FilteredViews(
                settings.server.filtered_cache_bytes,
                max_sending_bytes=settings.server.filtered_sending_bytes,
                on_render=metrics.filtered_renders.inc,
            )
            stack.callback(views.close)
            metrics.filtered_kept_bytes.set_function(lambda: views.kept_bytes)
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

    return lifespan


def create_app(settings: Settings, open_reader: ReaderFactory | None = None) -> FastAPI:
    """Build the app. Nothing is opened until the lifespan starts.

    ``open_reader`` yields the ECR reader for the life of the app; by default it is an
    AwsEcrReader built from ``settings``. Tests pass fakes here.
    """
    metrics = Metrics()
    lifespan = _lifespan(settings, open_reader or _aws_reader(settings), metrics)
    app = FastAPI(
        title="ecr-catalog",
        version=__version__,
        summary="AWS ECR registries and repositories as Backstage catalog entities.",
        description=(
            "Serves the `delivery` Domain, the `container-registry` System, the ECR Component "
            "and one Resource per registry and repository. Point a Backstage "
            "`type: url` location at `/entities.yaml`."
        ),
        lifespan=lifespan,
        generate_unique_id_function=_operation_id,
        # FastAPI's /docs and /redoc load their scripts from a public CDN: a cluster without
        # internet cannot reach it, and the pages' Content-Security-Policy refuses it. The spec
        # stays at /openapi.json (and openapi/openapi.yaml).
        docs_url=None,
        redoc_url=None,
        middleware=stack(settings.server, metrics, pages.content_security_policy()),
    )
    for module in (pages, entities, sources, partitions, posture, health, operations):
        app.include_router(module.router)
    app.add_exception_handler(RequestRefused, refusals.refused)
    app.add_exception_handler(StarletteHTTPException, refusals.http_refused)
    app.add_exception_handler(Exception, _internal_error)
    return app
