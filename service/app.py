"""The app factory and its lifespan, which owns the ECR clients and the refresh task."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute

from . import __version__
from .api import router
from .config import Settings
from .ecr import AwsEcrReader, EcrReader
from .metrics import HttpMetricsMiddleware, Metrics
from .persist import StateDir
from .snapshot import SnapshotStore

__all__ = ["ReaderFactory", "create_app"]

log = logging.getLogger(__name__)

ReaderFactory = Callable[[], AbstractAsyncContextManager[EcrReader]]


def _operation_id(route: APIRoute) -> str:
    # Stable operationIds: the function name, not FastAPI's path-and-method hash.
    return route.name


def create_app(settings: Settings, open_reader: ReaderFactory | None = None) -> FastAPI:
    """Build the app. Nothing is opened until the lifespan starts.

    ``open_reader`` yields the ECR reader for the life of the app; by default it is an
    AwsEcrReader built from ``settings``. Tests pass fakes here.
    """
    reader_factory: ReaderFactory = open_reader or (lambda: AwsEcrReader.open(settings))

    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[dict[str, Any]]:
        async with reader_factory() as reader:
            state = StateDir(settings.state_dir) if settings.state_dir else None
            store = SnapshotStore(reader, settings.catalog, settings.refresh, state)
            await store.load_state()
            collector = metrics.watch(store)
            refresher = asyncio.create_task(store.run_forever(), name="ecr-catalog-refresh")
            try:
                yield {"store": store, "metrics": metrics}
            finally:
                refresher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await refresher
                metrics.registry.unregister(collector)

    app = FastAPI(
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
    app.include_router(router)
    app.add_middleware(HttpMetricsMiddleware, metrics=metrics)
    return app
