"""The routes of a fleet of partitions: each partition's root Location, and partition 0's
Location of one URL per partition (service/fleet/locations.py)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from ..catalog.render import RenderedBody
from ..errors import NotFound
from ..snapshot.partitioned import PartitionBodies
from ..snapshot.store import SnapshotStore
from ..snapshot.types import Snapshot
from .deps import StoreDep
from .responses import (
    YAML_MEDIA_TYPE,
    conditional_response,
    freshness_headers,
    require_snapshot,
    unavailable,
)

__all__ = ["require_first", "router"]

router = APIRouter(tags=["partitions"])

_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": {YAML_MEDIA_TYPE: {}}, "description": "A Location, in YAML."},
    304: {"description": "Not modified."},
    404: {"description": "Not served by this process: see the detail."},
    503: {"description": "Not available yet; see Retry-After."},
}


def require_first(snapshot: Snapshot) -> None:
    """NotFound on a partition other than 0: what spans the fleet is served by partition 0."""
    bodies = snapshot.partition
    if bodies is not None and bodies.index != 0:
        raise NotFound(
            f"this is partition {bodies.index} of {bodies.count}: the core entities and the "
            "root Location are served by partition 0"
        )


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


@router.get("/partitions/{index}/catalog-info.yaml", response_class=Response, responses=_RESPONSES)
async def partition_catalog_info(request: Request, store: StoreDep, index: int) -> Response:
    """This partition's root Location: one Location per source it reads. Partition 0's root
    Location (`/catalog-info.yaml`) names every partition's."""
    snapshot = require_snapshot(store)
    bodies = _partition(snapshot)
    if index != bodies.index:
        # Never another partition's sources: a misrouted request must not move entities.
        raise NotFound(f"this is partition {bodies.index}, not {index}")
    return _respond(request, store, snapshot, bodies.location)


@router.get("/partitions.yaml", response_class=Response, responses=_RESPONSES)
async def partitions_entities(request: Request, store: StoreDep) -> Response:
    """Partition 0: a Location of every partition's `/entities.yaml`, for one URL per
    partition instead of one per source."""
    snapshot = require_snapshot(store)
    require_first(snapshot)
    return _respond(request, store, snapshot, _partition(snapshot).entities_location)
