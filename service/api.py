"""HTTP routes: thin readers of the current snapshot; no route ever calls AWS."""

from __future__ import annotations

import asyncio
import functools
import hmac
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import SecretStr
from starlette.types import ASGIApp, Receive, Scope, Send

from .config import EventsSettings, ServerSettings
from .events import EventRejected, parse_event
from .metrics import Metrics
from .model import SourceId
from .render import RenderedBody, join_json, join_yaml, render_body
from .snapshot import IndexedEntity, Snapshot, SnapshotStore, SourceView
from .validate import parse_entity_ref

__all__ = ["EntitiesFastPath", "router"]

log = logging.getLogger(__name__)

YAML_MEDIA_TYPE = "application/yaml"
JSON_MEDIA_TYPE = "application/json"
# Every entity body may be stored, but must be revalidated: the ETag makes that a cheap 304.
CACHE_CONTROL = "no-cache"
MAX_FILTER_LENGTH = 256
MAX_FILTER_VALUES = 20
# Longer If-None-Match headers are not worth parsing; they simply do not match.
MAX_IF_NONE_MATCH_LENGTH = 8192
MAX_ACCEPT_ENTRIES = 64

Format = Literal["yaml", "json"]


def get_store(request: Request) -> SnapshotStore:
    """The store the lifespan put in the request state."""
    store: SnapshotStore = request.state.store
    return store


StoreDep = Annotated[SnapshotStore, Depends(get_store)]


def get_metrics(request: Request) -> Metrics:
    """The app's metrics, from the request state."""
    metrics: Metrics = request.state.metrics
    return metrics


MetricsDep = Annotated[Metrics, Depends(get_metrics)]


class BearerToken:
    """A configured secret that callers send as ``Authorization: Bearer <token>``."""

    def __init__(self, token: SecretStr | None) -> None:
        self._token = token.get_secret_value().encode("utf-8") if token else None

    @property
    def enabled(self) -> bool:
        return self._token is not None

    def authorized(self, authorization: str | None) -> bool:
        scheme, _, offered = (authorization or "").partition(" ")
        if self._token is None or scheme.lower() != "bearer":
            return False
        # Constant time, so the comparison leaks nothing of the token.
        return hmac.compare_digest(offered.strip().encode("utf-8"), self._token)

    def check(self, request: Request) -> None:
        """404 when no token is configured (the endpoint is off), 401 without the right one."""
        if not self.enabled:
            raise HTTPException(404, "Not Found")
        if not self.authorized(request.headers.get("authorization")):
            raise HTTPException(
                401, "a valid bearer token is required", {"WWW-Authenticate": "Bearer"}
            )


class RefreshGate(BearerToken):
    """Who may force a refresh, and how often: off without a token, at most one per interval."""

    def __init__(self, server: ServerSettings, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(server.refresh_token)
        self._min_interval = server.refresh_min_interval_seconds
        self._clock = clock
        self._last: float | None = None

    def wait_seconds(self) -> float:
        """0 when a refresh may start now (and record it); else how long until one may."""
        now = self._clock()
        if self._last is not None and now - self._last < self._min_interval:
            return self._min_interval - (now - self._last)
        self._last = now
        return 0.0


def get_refresh_gate(request: Request) -> RefreshGate:
    """The forced-refresh gate, from the request state."""
    gate: RefreshGate = request.state.refresh_gate
    return gate


RefreshGateDep = Annotated[RefreshGate, Depends(get_refresh_gate)]


def _filter_param(description: str) -> Any:
    return Query(
        description=description
        + f" Repeat it (up to {MAX_FILTER_VALUES} times) to match any of several values.",
        max_length=MAX_FILTER_VALUES,
    )


@dataclass(frozen=True)
class EntityFilters:
    """The query filters, normalised for matching."""

    kind: frozenset[str]
    type: frozenset[str]
    owner: frozenset[str]
    account: frozenset[str]
    region: frozenset[str]
    name: frozenset[str]
    q: str | None

    @property
    def empty(self) -> bool:
        return not (self.kind or self.type or self.owner or self.account or self.region) and not (
            self.name or self.q
        )

    def matches(self, item: IndexedEntity) -> bool:
        return (
            (not self.kind or item.kind in self.kind)
            and (not self.type or item.type in self.type)
            and (not self.owner or item.owner in self.owner)
            and (not self.account or item.account in self.account)
            and (not self.region or item.region in self.region)
            and (not self.name or item.name in self.name)
            and (self.q is None or self.q in item.search_text)
        )

    def cache_key(self) -> tuple[Any, ...]:
        return (
            tuple(sorted(self.kind)),
            tuple(sorted(self.type)),
            tuple(sorted(self.owner)),
            tuple(sorted(self.account)),
            tuple(sorted(self.region)),
            tuple(sorted(self.name)),
            self.q,
        )


def _values(values: Sequence[str] | None, label: str) -> frozenset[str]:
    if not values:
        return frozenset()
    if any(len(value) > MAX_FILTER_LENGTH for value in values):
        raise HTTPException(400, f"{label} values are limited to {MAX_FILTER_LENGTH} characters")
    return frozenset(v.strip().lower() for v in values if v.strip())


def _owner_values(values: Sequence[str] | None) -> frozenset[str]:
    owners = set()
    for value in _values(values, "owner"):
        ref = parse_entity_ref(value, default_kind="group", default_namespace="default")
        # An owner that cannot be a ref matches nothing, rather than everything.
        owners.add(str(ref) if ref else f"invalid:{value}")
    return frozenset(owners)


def entity_filters(
    kind: Annotated[list[str] | None, _filter_param("Entity kind, e.g. Resource.")] = None,
    type: Annotated[list[str] | None, _filter_param("spec.type, e.g. ecr-repository.")] = None,
    owner: Annotated[
        list[str] | None, _filter_param("spec.owner as an entity ref; kind defaults to group.")
    ] = None,
    account: Annotated[list[str] | None, _filter_param("AWS account id.")] = None,
    region: Annotated[list[str] | None, _filter_param("AWS region.")] = None,
    name: Annotated[list[str] | None, _filter_param("metadata.name, exactly.")] = None,
    q: Annotated[
        str | None,
        Query(
            description="Case-insensitive substring of name, title or description.",
            max_length=MAX_FILTER_LENGTH,
        ),
    ] = None,
) -> EntityFilters:
    """The filters every entity-list route accepts."""
    return EntityFilters(
        kind=_values(kind, "kind"),
        type=_values(type, "type"),
        owner=_owner_values(owner),
        account=_values(account, "account"),
        region=_values(region, "region"),
        name=_values(name, "name"),
        q=q.strip().lower() or None if q is not None else None,
    )


FiltersDep = Annotated[EntityFilters, Depends(entity_filters)]


def _etag_matches(if_none_match: str | None, etags: Sequence[str]) -> bool:
    # Weak comparison, as RFC 9110 prescribes for If-None-Match.
    if not if_none_match or len(if_none_match) > MAX_IF_NONE_MATCH_LENGTH:
        return False
    if if_none_match.strip() == "*":
        return True
    offered = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
    return any(etag in offered for etag in etags)


@functools.lru_cache(maxsize=256)
def _iso(moment: datetime) -> str:
    # Memoised: the same few instants (the snapshot's build and refresh times) on every request.
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


def _snapshot_headers(
    store: SnapshotStore, snapshot: Snapshot, sources: Sequence[SourceId] | None
) -> dict[str, str]:
    refreshed = store.refreshed_at or snapshot.built_at
    age = max(0, math.floor((datetime.now(UTC) - refreshed).total_seconds()))
    headers = {
        "Cache-Control": CACHE_CONTROL,
        "Age": str(age),
        "X-Catalog-Refreshed-At": _iso(refreshed),
        "X-Catalog-Built-At": _iso(snapshot.built_at),
    }
    stale = snapshot.stale_sources()
    relevant = sorted(stale if sources is None else (s for s in sources if s in stale))
    if relevant:
        # Which sources are served from last good data, and since when.
        headers["X-Catalog-Stale-Sources"] = ", ".join(f"{s}={_iso(stale[s])}" for s in relevant)
    return headers


def _unavailable(store: SnapshotStore, reason: str) -> HTTPException:
    return HTTPException(
        status_code=503,
        detail=reason,
        headers={"Retry-After": str(math.ceil(store.refresh_settings.initial_retry_seconds))},
    )


def _require_snapshot(store: SnapshotStore) -> Snapshot:
    snapshot = store.snapshot
    if snapshot is None:
        error = store.last_refresh.error if store.last_refresh else "first refresh still running"
        raise _unavailable(store, f"no catalog snapshot yet: {error}")
    return snapshot


def _require_complete(store: SnapshotStore) -> Snapshot:
    # A 200 that left a source out would make Backstage delete that source's entities.
    snapshot = _require_snapshot(store)
    if not snapshot.complete:
        raise _unavailable(store, "catalog incomplete: " + "; ".join(snapshot.incomplete))
    return snapshot


def _quality(params: Sequence[str]) -> float:
    for param in params:
        name, _, value = param.strip().partition("=")
        if name.strip().lower() == "q":
            try:
                return float(value)
            except ValueError:
                return 0.0
    return 1.0


def _accepts_gzip(accept_encoding: str) -> bool:
    for entry in accept_encoding.split(",")[:MAX_ACCEPT_ENTRIES]:
        coding, *params = entry.split(";")
        if coding.strip().lower() in ("gzip", "x-gzip"):
            return _quality(params) > 0
    return False


def response_headers(
    store: SnapshotStore,
    snapshot: Snapshot,
    rendered: RenderedBody,
    accept_encoding: str,
    vary: str | None = None,
    sources: Sequence[SourceId] | None = None,
) -> tuple[dict[str, str], bool]:
    """The headers of an answer with ``rendered``, and whether its body is the gzip one."""
    use_gzip = rendered.gzipped is not None and _accepts_gzip(accept_encoding)
    headers = _snapshot_headers(store, snapshot, sources)
    headers["ETag"] = _gzip_etag(rendered) if use_gzip else rendered.etag
    varies = [v for v in (vary, "Accept-Encoding" if rendered.gzipped else None) if v]
    if varies:
        headers["Vary"] = ", ".join(varies)
    return headers, use_gzip


def not_modified(rendered: RenderedBody, if_none_match: str | None) -> bool:
    """Whether ``If-None-Match`` names ``rendered`` (either of its encodings)."""
    return _etag_matches(if_none_match, (rendered.etag, _gzip_etag(rendered)))


def _gzip_etag(rendered: RenderedBody) -> str:
    # The gzip encoding is other bytes, so it has its own strong tag.
    return rendered.etag[:-1] + '-gzip"'


def _respond(
    request: Request,
    store: SnapshotStore,
    snapshot: Snapshot,
    rendered: RenderedBody,
    media_type: str,
    vary: str | None = None,
    sources: Sequence[SourceId] | None = None,
) -> Response:
    headers, use_gzip = response_headers(
        store, snapshot, rendered, request.headers.get("accept-encoding", ""), vary, sources
    )
    if not_modified(rendered, request.headers.get("if-none-match")):
        return Response(status_code=304, headers=headers)
    if use_gzip:
        assert rendered.gzipped is not None
        headers["Content-Encoding"] = "gzip"
        return Response(rendered.gzipped, media_type=media_type, headers=headers)
    return Response(rendered.body, media_type=media_type, headers=headers)


@dataclass(frozen=True)
class _FastRoute:
    path: str


class EntitiesFastPath:
    """Answers the one request Backstage makes every poll before FastAPI routes it.

    ``GET /entities.yaml`` without filters is a 304 nearly every time. Routing, dependency
    injection and query validation cost more than the answer itself, so the complete snapshot's
    body (or 304) is sent straight from here, through the same ``_respond`` as the route.
    Anything else (filters, HEAD, no complete snapshot yet) goes on to the route.
    """

    path = "/entities.yaml"

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.route = _FastRoute(self.path)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["method"] == "GET"
            and scope["path"] == self.path
            and not scope["query_string"]
        ):
            store: SnapshotStore | None = scope.get("state", {}).get("store")
            snapshot = store.snapshot if store is not None else None
            if store is not None and snapshot is not None and snapshot.complete:
                # The metrics middleware labels requests by the route template.
                scope["route"] = self.route
                response = _respond(Request(scope), store, snapshot, snapshot.yaml, YAML_MEDIA_TYPE)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


async def _rendered(snapshot: Snapshot, filters: EntityFilters, fmt: Format) -> RenderedBody:
    if filters.empty:
        return snapshot.yaml if fmt == "yaml" else await snapshot.json.aget()
    key = (fmt, filters.cache_key())
    cached = snapshot.filtered_bodies.get(key)
    if cached is None:
        # In a worker thread: a JSON view of 10,000 entities inflates every document (~0.1 s),
        # which on the event loop would hold up every other request.
        cached = await asyncio.to_thread(_filtered_body, snapshot.entities, filters, fmt)
        snapshot.filtered_bodies[key] = cached
    return cached


def _filtered_body(
    entities: Sequence[IndexedEntity], filters: EntityFilters, fmt: Format
) -> RenderedBody:
    chosen = [item for item in entities if filters.matches(item)]
    body = (
        join_yaml(item.yaml_document for item in chosen)
        if fmt == "yaml"
        else join_json(item.json_document for item in chosen)
    )
    return render_body(body, with_gzip=False)


def negotiate(accept: str | None) -> Format:
    """JSON when the client prefers it; YAML otherwise (Backstage sends ``*/*``)."""
    if not accept:
        return "yaml"
    best: tuple[float, Format] = (0.0, "yaml")
    for position, entry in enumerate(accept.split(",")[:MAX_ACCEPT_ENTRIES]):
        media, *params = entry.split(";")
        quality = _quality(params)
        media = media.strip().lower()
        if media in ("application/json", "text/json"):
            fmt: Format = "json"
        elif media in ("application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml"):
            fmt = "yaml"
        else:
            continue
        # Equal qualities: the earlier entry wins, hence the tiny positional penalty.
        score = quality - position * 1e-6
        if score > best[0]:
            best = (score, fmt)
    return best[1]


router = APIRouter()

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
    400: {"description": "A filter is malformed."},
    503: {"description": "No snapshot exists yet; see Retry-After."},
}


@router.get(
    "/entities.yaml",
    response_class=Response,
    responses={
        **_ENTITY_RESPONSES,
        200: {"content": {YAML_MEDIA_TYPE: {}}, "description": "Multi-document YAML."},
    },
    tags=["entities"],
)
async def entities_yaml(request: Request, store: StoreDep, filters: FiltersDep) -> Response:
    """Every entity as multi-document YAML: the URL Backstage's `type: url` location reads."""
    snapshot = _require_complete(store)
    return _respond(
        request, store, snapshot, await _rendered(snapshot, filters, "yaml"), YAML_MEDIA_TYPE
    )


@router.get(
    "/entities.json",
    response_class=Response,
    responses={
        **_ENTITY_RESPONSES,
        200: {
            "content": {JSON_MEDIA_TYPE: {"schema": ENTITY_LIST_SCHEMA}},
            "description": '`{"items": [...]}`.',
        },
    },
    tags=["entities"],
)
async def entities_json(request: Request, store: StoreDep, filters: FiltersDep) -> Response:
    """Every entity as one JSON object, `{"items": [...]}`, for people and tools."""
    snapshot = _require_complete(store)
    return _respond(
        request, store, snapshot, await _rendered(snapshot, filters, "json"), JSON_MEDIA_TYPE
    )


@router.get("/entities", response_class=Response, responses=_ENTITY_RESPONSES, tags=["entities"])
async def entities(request: Request, store: StoreDep, filters: FiltersDep) -> Response:
    """The entities in YAML or JSON, chosen by `Accept`; YAML unless JSON is preferred."""
    snapshot = _require_complete(store)
    fmt = negotiate(request.headers.get("accept"))
    media_type = JSON_MEDIA_TYPE if fmt == "json" else YAML_MEDIA_TYPE
    return _respond(
        request, store, snapshot, await _rendered(snapshot, filters, fmt), media_type, vary="Accept"
    )


@router.get(
    "/entities/{kind}/{namespace}/{name}",
    response_class=Response,
    responses={
        **_ENTITY_RESPONSES,
        200: {
            "content": {YAML_MEDIA_TYPE: {}, JSON_MEDIA_TYPE: {"schema": {"type": "object"}}},
            "description": "One entity.",
        },
        404: {"description": "No such entity."},
    },
    tags=["entities"],
)
async def entity(
    request: Request,
    store: StoreDep,
    kind: str,
    namespace: str,
    name: str,
) -> Response:
    """One entity by kind, namespace and name (case-insensitive), in YAML or JSON by `Accept`."""
    snapshot = _require_snapshot(store)
    item = snapshot.by_ref.get(f"{kind}:{namespace}/{name}".lower())
    if item is None:
        raise HTTPException(404, "no such entity")
    fmt = negotiate(request.headers.get("accept"))
    body = item.json_document if fmt == "json" else bytes(item.yaml_document)
    media_type = JSON_MEDIA_TYPE if fmt == "json" else YAML_MEDIA_TYPE
    return _respond(
        request, store, snapshot, render_body(body, with_gzip=False), media_type, vary="Accept"
    )


_LOCATION_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": {YAML_MEDIA_TYPE: {}}, "description": "YAML."},
    304: {"description": "Not modified."},
    404: {"description": "No such source or shard."},
    503: {"description": "Not available yet; see Retry-After."},
}


def _respond_known(
    request: Request, store: SnapshotStore, snapshot: Snapshot, body: RenderedBody | None
) -> Response:
    # None while a target's sources are unknown: both bodies list every source.
    if body is None:
        raise _unavailable(store, "catalog incomplete: " + "; ".join(snapshot.incomplete))
    return _respond(request, store, snapshot, body, YAML_MEDIA_TYPE, sources=())


@router.get(
    "/catalog-info.yaml", response_class=Response, responses=_LOCATION_RESPONSES, tags=["sources"]
)
async def catalog_info(request: Request, store: StoreDep) -> Response:
    """The root Location: the catalog's own entities and one Location per source."""
    snapshot = _require_snapshot(store)
    return _respond_known(request, store, snapshot, snapshot.root_location)


@router.get(
    "/catalog/core.yaml", response_class=Response, responses=_LOCATION_RESPONSES, tags=["sources"]
)
async def core(request: Request, store: StoreDep) -> Response:
    """The Domain, System and Component, which depend on no source's data."""
    snapshot = _require_snapshot(store)
    return _respond_known(request, store, snapshot, snapshot.core)


def _source_view(store: SnapshotStore, account: str, region: str) -> tuple[Snapshot, SourceView]:
    snapshot = _require_snapshot(store)
    source = SourceId(account, region)
    view = snapshot.sources.get(source)
    if view is not None:
        return snapshot, view
    if source in snapshot.listed:
        status = store.statuses.get(source)
        reason = status.last_error if status and status.last_error else "first read still running"
        raise _unavailable(store, f"no data yet for {source}: {reason}")
    raise HTTPException(404, "no such source")


def _respond_source(
    request: Request,
    store: SnapshotStore,
    snapshot: Snapshot,
    source: SourceId,
    body: RenderedBody,
) -> Response:
    # Headers name this source alone when it is stale.
    return _respond(request, store, snapshot, body, YAML_MEDIA_TYPE, sources=(source,))


@router.get(
    "/sources/{account}/{region}/catalog-info.yaml",
    response_class=Response,
    responses=_LOCATION_RESPONSES,
    tags=["sources"],
)
async def source_catalog_info(
    request: Request, store: StoreDep, account: str, region: str
) -> Response:
    """A source's Location, whose targets are its shards (its single URL until it has data)."""
    snapshot = _require_snapshot(store)
    source = SourceId(account, region)
    pending = snapshot.pending_locations.get(source)
    if pending is not None:
        return _respond_source(request, store, snapshot, source, pending)
    _, view = _source_view(store, account, region)
    return _respond_source(request, store, snapshot, source, view.location)


@router.get(
    "/sources/{account}/{region}/entities.yaml",
    response_class=Response,
    responses=_LOCATION_RESPONSES,
    tags=["sources"],
)
async def source_entities(request: Request, store: StoreDep, account: str, region: str) -> Response:
    """Every entity of one source (its registry and repositories) in one body."""
    snapshot, view = _source_view(store, account, region)
    body = await view.entities.aget()
    return _respond_source(request, store, snapshot, view.source, body)


@router.get(
    "/sources/{account}/{region}/shards/{count}/{index}.yaml",
    response_class=Response,
    responses=_LOCATION_RESPONSES,
    tags=["sources"],
)
async def source_shard(
    request: Request, store: StoreDep, account: str, region: str, count: int, index: int
) -> Response:
    """One shard of a source: the entities whose name hashes to ``index`` of ``count``."""
    snapshot, view = _source_view(store, account, region)
    if count != view.shard_count or not 0 <= index < count:
        raise HTTPException(404, f"{view.source} has {view.shard_count} shard(s) now")
    shards = await view.shards.aget()
    return _respond_source(request, store, snapshot, view.source, shards[index])


@router.get("/healthz", tags=["health"])
async def healthz() -> dict[str, str]:
    """Liveness: the process is up and serving."""
    return {"status": "ok"}


@router.get(
    "/readyz",
    tags=["health"],
    responses={503: {"description": "No snapshot yet.", "model": None}},
)
async def readyz(store: StoreDep) -> JSONResponse:
    """Readiness: 200 once a snapshot exists, with its age, counts and each source's last read."""
    snapshot = store.snapshot
    now = datetime.now(UTC)
    # Ready once anything can be served: a source that cannot be read yet must not take the
    # healthy ones out of service (its own URLs answer 503).
    ready = snapshot is not None and (snapshot.complete or bool(snapshot.sources))
    detail: dict[str, Any] = {
        "ready": ready,
        "complete": snapshot is not None and snapshot.complete,
        "incomplete": list(snapshot.incomplete) if snapshot else [],
        "unresolved_targets": list(store.unresolved),
        "snapshot": None,
        "sources": [status.as_dict() for _, status in sorted(store.statuses.items())],
        "last_refresh": store.last_refresh.as_dict() if store.last_refresh else None,
        "refresh_pending": store.refresh_pending,
        "state": None
        if store.state is None
        else {
            "path": str(store.state.path),
            "writes_failed": store.state_writes["failed"],
            "last_write_error": store.last_state_error,
        },
    }
    if snapshot is not None:
        refreshed = store.refreshed_at or snapshot.built_at
        detail["snapshot"] = {
            "etag": snapshot.yaml.etag,
            "built_at": _iso(snapshot.built_at),
            "age_seconds": round((now - refreshed).total_seconds(), 1),
            "entities": snapshot.counts_by_kind(),
            "rejected_entities": snapshot.rejected,
            "repairs": snapshot.repairs,
        }
    return JSONResponse(detail, status_code=200 if ready else 503)


@router.get(
    "/metrics",
    response_class=Response,
    tags=["health"],
    responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format."}},
)
async def metrics(registry: MetricsDep) -> Response:
    """Prometheus metrics: requests by route and status, entities, source ages and reads."""
    return Response(generate_latest(registry.registry), media_type=CONTENT_TYPE_LATEST)


@router.post(
    "/refresh",
    status_code=202,
    tags=["operations"],
    responses={
        401: {"description": "Missing or wrong token."},
        404: {"description": "Forced refresh is off: no token is configured."},
        429: {"description": "A forced refresh ran too recently; see Retry-After."},
    },
)
async def force_refresh(request: Request, store: StoreDep, gate: RefreshGateDep) -> dict[str, str]:
    """Start a refresh now. Off unless `server.refresh_token` is set; send it as a Bearer token."""
    gate.check(request)
    wait = gate.wait_seconds()
    if wait > 0:
        raise HTTPException(
            429, "a refresh ran too recently", {"Retry-After": str(math.ceil(wait))}
        )
    # The store keeps the task (single flight), so it is not collected mid-run.
    refresh = asyncio.ensure_future(store.refresh())
    refresh.add_done_callback(lambda done: done.cancelled() or done.exception())
    return {"status": "refresh started"}


class EventsGate(BearerToken):
    """POST /events/ecr: its token, debounce and body limit."""

    def __init__(self, events: EventsSettings) -> None:
        super().__init__(events.token)
        self.debounce_seconds = events.debounce_seconds
        self.max_body_bytes = events.max_body_bytes


def get_events_gate(request: Request) -> EventsGate:
    """The events endpoint's gate, from the request state."""
    gate: EventsGate = request.state.events_gate
    return gate


EventsGateDep = Annotated[EventsGate, Depends(get_events_gate)]


async def _limited_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise HTTPException(413, f"the body is larger than {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise HTTPException(413, f"the body is larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


@router.post(
    "/events/ecr",
    status_code=202,
    tags=["operations"],
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "description": "An EventBridge ECR event, or an SNS notification "
                        "whose Message is one.",
                    }
                }
            },
        }
    },
    responses={
        400: {"description": "Not JSON, or an SNS message that is not a notification."},
        401: {"description": "Missing or wrong token."},
        404: {"description": "Events are off: no token is configured."},
        413: {"description": "The body is too large."},
        422: {"description": "Not an ECR event, or a malformed one."},
    },
)
async def ecr_event(
    request: Request, store: StoreDep, gate: EventsGateDep, metrics: MetricsDep
) -> dict[str, Any]:
    """Take an ECR push, delete or scan event (EventBridge, direct or via SNS).

    Off unless `events.token` is set; send it as a Bearer token. The repository's cached image
    data is dropped and a refresh follows within `events.debounce_seconds`, so a push shows in
    /entities.yaml in seconds instead of after the images TTL.
    """
    gate.check(request)
    body = await _limited_body(request, gate.max_body_bytes)
    try:
        verdict = parse_event(body)
    except EventRejected as exc:
        metrics.events.labels("unknown", "rejected").inc()
        raise HTTPException(exc.status, exc.reason) from exc
    event = verdict.event
    if event is None:
        metrics.events.labels(verdict.detail_type, "ignored").inc()
        return {"accepted": False, "reason": verdict.reason}
    if event.source not in store.statuses:
        metrics.events.labels(verdict.detail_type, "ignored").inc()
        return {"accepted": False, "reason": f"{event.source} is not a source of this catalog"}
    known = await store.reader.forget_images(event.source, event.repository)
    store.refresh_soon(gate.debounce_seconds)
    metrics.events.labels(verdict.detail_type, "accepted").inc()
    log.info("event: %s; refreshing within %g s", event, gate.debounce_seconds)
    return {
        "accepted": True,
        "event": str(event),
        # A repository not read yet is found by the refresh's listing.
        "repository_known": known,
        "refresh_within_seconds": gate.debounce_seconds,
    }
