"""The routes of a fleet of partitions: each partition's root Location, partition 0's Location
of one URL per partition, and the redirects to the partition that serves a URL
(service/fleet/locations.py)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from ..catalog.locations import source_path
from ..catalog.render import RenderedBody
from ..errors import Elsewhere, NotFound
from ..model import SourceId
from ..snapshot.partitioned import PartitionBodies
from ..snapshot.store import SnapshotStore
from ..snapshot.types import Snapshot
from .deps import StoreDep
from .filters import known_parameters
from .responses import (
    YAML_MEDIA_TYPE,
    conditional_response,
    freshness_headers,
    require_complete,
    require_snapshot,
    respond,
    unavailable,
)

__all__ = ["require_first", "router", "to_owner"]

router = APIRouter(tags=["partitions"], dependencies=[known_parameters()])

_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": {YAML_MEDIA_TYPE: {}}, "description": "A Location, in YAML."},
    304: {"description": "Not modified."},
    307: {"description": "Served by another partition: see Location."},
    400: {"description": "A query parameter this URL does not take."},
    404: {"description": "Not served by this process: see the detail."},
    503: {"description": "Not available yet; see Retry-After."},
}


def require_first(snapshot: Snapshot, path: str) -> None:
    """On a partition other than 0, a redirect to partition 0's ``path``: what spans the
    fleet (the core entities, the root Locations) is served there."""
    bodies = snapshot.partition
    if bodies is not None and bodies.index != 0:
        raise Elsewhere(bodies.url_of(0, path))


def to_owner(store: SnapshotStore, snapshot: Snapshot, source: SourceId, rest: str) -> None:
    """A redirect to the partition that owns ``source``, if another one does: so that a
    source's URLs are the same whichever partition serves it (fleet/locations.py)."""
    bodies = snapshot.partition
    if bodies is not None and not bodies.fleet and source not in snapshot.sources:
        # Served from saved data before the fleet is listed: whose source this is cannot be
        # told yet, which is "try again", never "no such source".
        raise unavailable(store, "the fleet's sources are not listed yet")
    owner = None if bodies is None else bodies.owner_of(source)
    if bodies is not None and owner is not None and owner != bodies.index:
        raise Elsewhere(bodies.url_of(owner, f"/{source_path(source)}/{rest}"))


def _partition(snapshot: Snapshot) -> PartitionBodies:
    if snapshot.partition is None:
        raise NotFound("this process is not a partition of a fleet (partition.count is 1)")
    return snapshot.partition


def _respond(
    request: Request, store: SnapshotStore, snapshot: Snapshot, body: RenderedBody | None
) -> Response:
    if body is None:
        reasons = "; ".join(snapshot.incomplete) or "the fleet's sources are not listed yet"
        raise unavailable(store, f"sources not known yet: {reasons}")
    # A Location holds no source's entities: no source's staleness is its to name.
    return conditional_response(
        request, body, YAML_MEDIA_TYPE, freshness_headers(store, snapshot, sources=())
    )


def _own(bodies: PartitionBodies, index: int, name: str) -> PartitionBodies:
    """``bodies``, if ``index`` is this partition's; else a redirect to partition ``index``'s
    ``/partitions/<index>/<name>``: never another partition's part from here."""
    if index != bodies.index:
        if not 0 <= index < bodies.count:
            raise NotFound(f"the fleet has partitions 0 to {bodies.count - 1}")
        raise Elsewhere(bodies.url_of(index, f"/partitions/{index}/{name}"))
    return bodies


@router.get("/partitions/{index}/catalog-info.yaml", response_class=Response, responses=_RESPONSES)
async def partition_catalog_info(request: Request, store: StoreDep, index: int) -> Response:
    """This partition's root Location: one Location per source it reads. Partition 0's root
    Location (`/catalog-info.yaml`) names every partition's."""
    snapshot = require_snapshot(store)
    bodies = _own(_partition(snapshot), index, "catalog-info.yaml")
    return _respond(request, store, snapshot, bodies.location)


@router.get("/partitions/{index}/entities.yaml", response_class=Response, responses=_RESPONSES)
async def partition_entities(request: Request, store: StoreDep, index: int) -> Response:
    """This partition's entities (partition 0's with the core), once each of its sources has
    data; another partition's index redirects there."""
    snapshot = require_complete(store)
    _own(_partition(snapshot), index, "entities.yaml")
    return respond(request, store, snapshot, snapshot.yaml, YAML_MEDIA_TYPE)


@router.get("/partitions.yaml", response_class=Response, responses=_RESPONSES)
async def partitions_entities(request: Request, store: StoreDep) -> Response:
    """Partition 0: a Location of every partition's `/partitions/<i>/entities.yaml`, for one
    URL per partition instead of one per source."""
    snapshot = require_snapshot(store)
    bodies = _partition(snapshot)
    require_first(snapshot, "/partitions.yaml")
    return _respond(request, store, snapshot, bodies.entities_location)
