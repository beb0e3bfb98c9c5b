"""The many-URL mode's routes: the root Location, the core, and each source's own URLs."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from ..catalog.render import RenderedBody
from ..errors import NotFound
from ..model import SourceId
from ..snapshot.store import SnapshotStore
from ..snapshot.types import Snapshot, SourceView
from .deps import StoreDep
from .filters import known_parameters
from .partitions import require_first, to_owner
from .responses import (
    YAML_MEDIA_TYPE,
    conditional_response,
    freshness_headers,
    require_snapshot,
    unavailable,
)

__all__ = ["router"]

# None of these URLs takes a query parameter.
router = APIRouter(tags=["sources"], dependencies=[known_parameters()])

_LOCATION_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": {YAML_MEDIA_TYPE: {}}, "description": "YAML."},
    304: {"description": "Not modified."},
    400: {"description": "A query parameter was given; this URL takes none."},
    404: {"description": "No such source or shard."},
    503: {"description": "Not available yet; see Retry-After."},
}


def _respond_known(
    request: Request, store: SnapshotStore, snapshot: Snapshot, body: RenderedBody | None
) -> Response:
    # None while a target's sources are unknown: both bodies list every source.
    if body is None:
        raise unavailable(store, "catalog incomplete: " + "; ".join(snapshot.incomplete))
    # Neither body holds a source's entities: no source's staleness is theirs to name.
    return conditional_response(
        request, body, YAML_MEDIA_TYPE, freshness_headers(store, snapshot, sources=())
    )


@router.get("/catalog-info.yaml", response_class=Response, responses=_LOCATION_RESPONSES)
async def catalog_info(request: Request, store: StoreDep) -> Response:
    """The root Location: the catalog's own entities and one Location per source."""
    snapshot = require_snapshot(store)
    # In a fleet: partition 0's, the core and every partition's root Location.
    require_first(snapshot, "/catalog-info.yaml")
    return _respond_known(request, store, snapshot, snapshot.root_location)


@router.get("/catalog/core.yaml", response_class=Response, responses=_LOCATION_RESPONSES)
async def core(request: Request, store: StoreDep) -> Response:
    """The Domain, System and Component, which depend on no source's data."""
    snapshot = require_snapshot(store)
    require_first(snapshot, "/catalog/core.yaml")
    return _respond_known(request, store, snapshot, snapshot.core)


def _source_view(
    store: SnapshotStore, account: str, region: str, rest: str
) -> tuple[Snapshot, SourceView]:
    snapshot = require_snapshot(store)
    source = SourceId(account, region)
    # In a fleet, another partition's source is served by it.
    to_owner(store, snapshot, source, rest)
    view = snapshot.sources.get(source)
    if view is not None:
        return snapshot, view
    withheld = snapshot.withheld.get(source)
    if withheld is not None:
        raise unavailable(store, withheld)
    if source in snapshot.listed:
        status = store.statuses.get(source)
        reason = status.last_error if status and status.last_error else "first read still running"
        raise unavailable(store, f"no data yet for {source}: {reason}")
    raise NotFound("no such source")


def _respond_source(
    request: Request,
    store: SnapshotStore,
    snapshot: Snapshot,
    source: SourceId,
    body: RenderedBody,
) -> Response:
    # Headers name this source alone when it is stale.
    return conditional_response(
        request, body, YAML_MEDIA_TYPE, freshness_headers(store, snapshot, sources=(source,))
    )


@router.get(
    "/sources/{account}/{region}/catalog-info.yaml",
    response_class=Response,
    responses=_LOCATION_RESPONSES,
)
async def source_catalog_info(
    request: Request, store: StoreDep, account: str, region: str
) -> Response:
    """A source's Location, whose targets are its shards (its single URL until it has data)."""
    snapshot = require_snapshot(store)
    source = SourceId(account, region)
    pending = snapshot.pending_locations.get(source)
    if pending is not None:
        return _respond_source(request, store, snapshot, source, pending)
    _, view = _source_view(store, account, region, "catalog-info.yaml")
    return _respond_source(request, store, snapshot, source, view.location)


@router.get(
    "/sources/{account}/{region}/entities.yaml",
    response_class=Response,
    responses=_LOCATION_RESPONSES,
)
async def source_entities(request: Request, store: StoreDep, account: str, region: str) -> Response:
    """Every entity of one source (its registry and repositories) in one body."""
    snapshot, view = _source_view(store, account, region, "entities.yaml")
    body = await view.entities.aget()
    return _respond_source(request, store, snapshot, view.source, body)


@router.get(
    "/sources/{account}/{region}/shards/{count}/{index}.yaml",
    response_class=Response,
    responses=_LOCATION_RESPONSES,
)
async def source_shard(
    request: Request, store: StoreDep, account: str, region: str, count: int, index: int
) -> Response:
    """One shard of a source: the entities whose name hashes to ``index`` of ``count``."""
    snapshot, view = _source_view(store, account, region, f"shards/{count}/{index}.yaml")
    if count != view.shard_count or not 0 <= index < count:
        raise NotFound(f"{view.source} has {view.shard_count} shard(s) now")
    shards = await view.shards.aget()
    return _respond_source(request, store, snapshot, view.source, shards[index])
