"""The one place that turns the lifespan's state into typed dependencies for the routes.

They are ``async def`` because FastAPI runs a plain ``def`` dependency in a worker thread, and
these only read the request's state: a thread hop for each would cost more than the poll's
whole answer.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request

from ..backstage import BackstageLink
from ..snapshot.store import SnapshotStore
from .auth import EventsGate, RefreshGate
from .metrics import Metrics
from .views import FilteredViews

__all__ = [
    "BackstageDep",
    "EventsGateDep",
    "MetricsDep",
    "RefreshGateDep",
    "StoreDep",
    "ViewsDep",
    "store_in",
]


def store_in(state: dict[str, Any]) -> SnapshotStore | None:
    """The store in a lifespan state (an ASGI scope's ``state``), if the lifespan has run."""
    store: SnapshotStore | None = state.get("store")
    return store


async def get_store(request: Request) -> SnapshotStore:
    """The store the lifespan put in the request state."""
    store: SnapshotStore = request.state.store
    return store


async def get_metrics(request: Request) -> Metrics:
    """The app's metrics, from the request state."""
    metrics: Metrics = request.state.metrics
    return metrics


async def get_refresh_gate(request: Request) -> RefreshGate:
    """The forced-refresh gate, from the request state."""
    gate: RefreshGate = request.state.refresh_gate
    return gate


async def get_events_gate(request: Request) -> EventsGate:
    """The events endpoint's gate, from the request state."""
    gate: EventsGate = request.state.events_gate
    return gate


async def get_backstage(request: Request) -> BackstageLink | None:
    """The link to Backstage, or None while ``backstage.base_url`` is unset."""
    link: BackstageLink | None = request.state.backstage
    return link


async def get_views(request: Request) -> FilteredViews:
    """The filtered views, kept across snapshots, from the request state."""
    views: FilteredViews = request.state.views
    return views


StoreDep = Annotated[SnapshotStore, Depends(get_store)]
ViewsDep = Annotated[FilteredViews, Depends(get_views)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]
RefreshGateDep = Annotated[RefreshGate, Depends(get_refresh_gate)]
EventsGateDep = Annotated[EventsGate, Depends(get_events_gate)]
BackstageDep = Annotated[BackstageLink | None, Depends(get_backstage)]
