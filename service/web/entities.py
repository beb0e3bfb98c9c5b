"""The entity routes: the whole catalog (the URL Backstage reads), filtered views, one entity."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from ..catalog.render import render_body
from ..errors import NotFound
from ..snapshot.store import SnapshotStore
from .deps import StoreDep, ViewsDep
from .filters import FILTER_PARAMETERS, EntityFilters, FiltersDep, known_parameters
from .negotiation import Format, negotiate, prefers_html
from .pages import entity_page
from .responses import (
    JSON_MEDIA_TYPE,
    YAML_MEDIA_TYPE,
    require_complete,
    require_snapshot,
    respond,
)
from .views import FilteredViews, rendered_for

__all__ = ["router"]

router = APIRouter(tags=["entities"])

# The list routes take the filters; one entity takes no query parameter.
_FILTERS_ONLY = [known_parameters(*FILTER_PARAMETERS)]

ENTITY_LIST_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["items"],
    "properties": {"items": {"type": "array", "items": {"type": "object"}}},
}

_ENTITY_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "content": {
            # Multi-document YAML has no single JSON schema; each document is an entity.
            YAML_MEDIA_TYPE: {},
            JSON_MEDIA_TYPE: {"schema": ENTITY_LIST_SCHEMA},
        },
        "description": "The entities.",
    },
    304: {"description": "Not modified: the If-None-Match ETag is current."},
    400: {"description": "A filter is malformed, or a query parameter is not a filter."},
    503: {"description": "No snapshot exists yet; see Retry-After."},
}


@router.get(
    "/entities.yaml",
    response_class=Response,
    dependencies=_FILTERS_ONLY,
    responses={
        **_ENTITY_RESPONSES,
        200: {"content": {YAML_MEDIA_TYPE: {}}, "description": "Multi-document YAML."},
    },
)
async def entities_yaml(
    request: Request, store: StoreDep, filters: FiltersDep, views: ViewsDep
) -> Response:
    """Every entity as multi-document YAML: the URL Backstage's `type: url` location reads."""
    return await _entities_response(request, store, filters, views, "yaml")


@router.get(
    "/entities.json",
    response_class=Response,
    dependencies=_FILTERS_ONLY,
    responses={
        **_ENTITY_RESPONSES,
        200: {
            "content": {JSON_MEDIA_TYPE: {"schema": ENTITY_LIST_SCHEMA}},
            "description": '`{"items": [...]}`.',
        },
    },
)
async def entities_json(
    request: Request, store: StoreDep, filters: FiltersDep, views: ViewsDep
) -> Response:
    """Every entity as one JSON object, `{"items": [...]}`, for people and tools."""
    return await _entities_response(request, store, filters, views, "json")


@router.get(
    "/entities", response_class=Response, responses=_ENTITY_RESPONSES, dependencies=_FILTERS_ONLY
)
async def entities(
    request: Request, store: StoreDep, filters: FiltersDep, views: ViewsDep
) -> Response:
    """The entities in YAML or JSON, chosen by `Accept`; YAML unless JSON is preferred."""
    fmt = negotiate(request.headers.get("accept"))
    return await _entities_response(request, store, filters, views, fmt, vary="Accept")


async def _entities_response(
    request: Request,
    store: SnapshotStore,
    filters: EntityFilters,
    views: FilteredViews,
    fmt: Format,
    vary: str | None = None,
) -> Response:
    """The entities ``filters`` choose, in ``fmt``, once every source has data."""
    snapshot = require_complete(store)
    if snapshot.partition is not None:
        # One partition's part under the catalog's URL would be a 200 without the others'
        # entities, and Backstage deletes what a 200 leaves out.
        raise NotFound(
            f"this process is partition {snapshot.partition.index} of {snapshot.partition.count}"
            ": the fleet's catalog is read from /catalog-info.yaml, one partition's entities "
            f"from /partitions/{snapshot.partition.index}/entities.yaml"
        )
    rendered = await rendered_for(views, snapshot, filters, fmt)
    media_type = JSON_MEDIA_TYPE if fmt == "json" else YAML_MEDIA_TYPE
    response = respond(request, store, snapshot, rendered, media_type, vary=vary)
    # The whole catalog is the snapshot's own body; a filtered one exists for this request.
    return response if filters.empty else views.sending(response, rendered)


@router.get(
    "/entities/{kind}/{namespace}/{name}",
    response_class=Response,
    dependencies=[known_parameters()],
    responses={
        **_ENTITY_RESPONSES,
        200: {
            "content": {
                YAML_MEDIA_TYPE: {},
                JSON_MEDIA_TYPE: {"schema": {"type": "object"}},
                "text/html": {},
            },
            "description": "One entity.",
        },
        400: {"description": "A query parameter was given; this URL takes none."},
        404: {"description": "No such entity."},
    },
)
async def entity(
    request: Request,
    store: StoreDep,
    kind: str,
    namespace: str,
    name: str,
) -> Response:
    """One entity by kind, namespace and name (case-insensitive), in YAML or JSON by `Accept`;
    a page for a browser (`text/html` preferred)."""
    snapshot = require_snapshot(store)
    item = snapshot.by_ref.get(f"{kind}:{namespace}/{name}".lower())
    if item is None:
        raise NotFound("no such entity")
    if prefers_html(request.headers.get("accept")):
        return entity_page(request, store, snapshot, item)
    fmt = negotiate(request.headers.get("accept"))
    body = item.json_document if fmt == "json" else bytes(item.yaml_document)
    media_type = JSON_MEDIA_TYPE if fmt == "json" else YAML_MEDIA_TYPE
    rendered = render_body(body, with_gzip=False)
    return respond(request, store, snapshot, rendered, media_type, vary="Accept")
