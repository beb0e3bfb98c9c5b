"""Answers from the snapshot: conditional requests, encodings, negotiation, and the fast path.

Every entity response carries a strong ETag (the body's hash), answers a matching
``If-None-Match`` with 304, and carries ``Cache-Control: no-cache``, ``Age`` and the time of
the last refresh. ``answer`` decides all of that once, for the routes and for
``EntitiesFastPath`` alike, so both give the same bytes and headers.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from fastapi import Request, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from ..catalog.render import RenderedBody, join_json, join_yaml, render_body
from ..errors import Unavailable
from ..instants import iso
from ..model import SourceId
from ..snapshot.store import SnapshotStore
from ..snapshot.types import IndexedEntity, Snapshot
from .deps import store_in
from .filters import EntityFilters
from .views import FilteredViews

__all__ = [
    "HTML_MEDIA_TYPE",
    "JSON_MEDIA_TYPE",
    "YAML_MEDIA_TYPE",
    "Answer",
    "EntitiesFastPath",
    "answer",
    "negotiate",
    "prefers_html",
    "rendered_for",
    "require_complete",
    "respond",
    "require_snapshot",
    "unavailable",
]

YAML_MEDIA_TYPE = "application/yaml"
JSON_MEDIA_TYPE = "application/json"
# Every entity body may be stored, but must be revalidated: the ETag makes that a cheap 304.
CACHE_CONTROL = "no-cache"
# Longer If-None-Match headers are not worth parsing; they simply do not match.
MAX_IF_NONE_MATCH_LENGTH = 8192
MAX_ACCEPT_ENTRIES = 64

Format = Literal["yaml", "json"]


@dataclass(frozen=True)
class Answer:
    """A response decided: status, headers (Content-Type and -Length included), body."""

    status: int
    headers: dict[str, str]
    body: bytes

    def response(self) -> Response:
        """As a Starlette response, for the routes."""
        return Response(self.body, status_code=self.status, headers=self.headers)

    @functools.cached_property
    def _raw_headers(self) -> tuple[tuple[bytes, bytes], ...]:
        return tuple(
            (name.lower().encode(), value.encode("latin-1")) for name, value in self.headers.items()
        )

    async def send(self, send: Send) -> None:
        """Straight to the ASGI server, for the fast path."""
        # A fresh list each time: middleware may edit a response's headers in place.
        headers = list(self._raw_headers)
        await send({"type": "http.response.start", "status": self.status, "headers": headers})
        await send({"type": "http.response.body", "body": self.body})


def _etag_matches(if_none_match: str | None, etags: Sequence[str]) -> bool:
    # Weak comparison, as RFC 9110 prescribes for If-None-Match.
    if not if_none_match or len(if_none_match) > MAX_IF_NONE_MATCH_LENGTH:
        return False
    if if_none_match in etags:  # what Backstage sends: the one ETag it was given
        return True
    if if_none_match.strip() == "*":
        return True
    offered = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
    return any(etag in offered for etag in etags)


# Memoised: the same few instants (the snapshot's build and refresh times) on every request.
_iso = functools.lru_cache(maxsize=256)(iso)


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


def gzip_etag(rendered: RenderedBody) -> str:
    """The gzip encoding is other bytes, so it has its own strong tag."""
    return rendered.etag[:-1] + '-gzip"'


def answer(
    store: SnapshotStore,
    snapshot: Snapshot,
    rendered: RenderedBody,
    media_type: str,
    *,
    if_none_match: str | None,
    accept_encoding: str,
    vary: str | None = None,
    sources: Sequence[SourceId] | None = None,
) -> Answer:
    """The answer with ``rendered`` to a request with these headers: 304, gzip, or identity.

    ``sources`` names the sources the body holds (None: every source), for the stale-sources
    header; ``vary`` is added to Vary beside Accept-Encoding.
    """
    use_gzip = rendered.gzipped is not None and _accepts_gzip(accept_encoding)
    etags = (rendered.etag, gzip_etag(rendered))
    matched = _etag_matches(if_none_match, etags)
    refreshed = store.refreshed_at or snapshot.built_at
    age = max(0, math.floor((datetime.now(UTC) - refreshed).total_seconds()))
    # Every poll within a second gets one of a few answers: each is decided once.
    held = None if sources is None else tuple(sources)
    key = (rendered.etag, media_type, vary, held, refreshed, age, matched, use_gzip)
    decided = snapshot.answers.get(key)
    if decided is None:
        decided = _decide(
            snapshot, rendered, media_type, vary, sources, refreshed, age, matched, use_gzip
        )
        # Kept only when it holds no body of its own (a 304) or the snapshot's: a filtered
        # body or a page kept here would escape the bound on them (web/views.py).
        if matched or rendered is snapshot.yaml:
            snapshot.answers[key] = decided
    return decided


def _decide(
    snapshot: Snapshot,
    rendered: RenderedBody,
    media_type: str,
    vary: str | None,
    sources: Sequence[SourceId] | None,
    refreshed: datetime,
    age: int,
    matched: bool,
    use_gzip: bool,
) -> Answer:
    headers = {
        "Cache-Control": CACHE_CONTROL,
        "Age": str(age),
        "X-Catalog-Refreshed-At": _iso(refreshed),
        "X-Catalog-Built-At": _iso(snapshot.built_at),
    }
    stale = snapshot.stale_sources
    relevant = list(stale) if sources is None else sorted(s for s in sources if s in stale)
    if relevant:
        # Which sources are served from last good data, and since when.
        headers["X-Catalog-Stale-Sources"] = ", ".join(f"{s}={_iso(stale[s])}" for s in relevant)
    headers["ETag"] = gzip_etag(rendered) if use_gzip else rendered.etag
    varies = [v for v in (vary, "Accept-Encoding" if rendered.gzipped else None) if v]
    if varies:
        headers["Vary"] = ", ".join(varies)
    if matched:
        return Answer(304, headers, b"")
    body = rendered.body
    if use_gzip:
        assert rendered.gzipped is not None
        headers["Content-Encoding"] = "gzip"
        body = rendered.gzipped
    headers["Content-Type"] = media_type
    headers["Content-Length"] = str(len(body))
    return Answer(200, headers, body)


def respond(
    request: Request,
    store: SnapshotStore,
    snapshot: Snapshot,
    rendered: RenderedBody,
    media_type: str,
    vary: str | None = None,
    sources: Sequence[SourceId] | None = None,
) -> Response:
    """``answer`` to a routed request, as a response."""
    return answer(
        store,
        snapshot,
        rendered,
        media_type,
        if_none_match=request.headers.get("if-none-match"),
        accept_encoding=request.headers.get("accept-encoding", ""),
        vary=vary,
        sources=sources,
    ).response()


def unavailable(store: SnapshotStore, reason: str) -> Unavailable:
    """503 with Retry-After: the first read's retry interval."""
    return Unavailable(reason, math.ceil(store.refresh_settings.initial_retry_seconds))


def require_snapshot(store: SnapshotStore) -> Snapshot:
    """The current snapshot, or Unavailable before the first one."""
    snapshot = store.snapshot
    if snapshot is None:
        error = store.last_refresh.error if store.last_refresh else "first refresh still running"
        raise unavailable(store, f"no catalog snapshot yet: {error}")
    return snapshot


def require_complete(store: SnapshotStore) -> Snapshot:
    """The current snapshot if every source has data, else Unavailable."""
    # A 200 that left a source out would make Backstage delete that source's entities.
    snapshot = require_snapshot(store)
    if not snapshot.complete:
        raise unavailable(store, "catalog incomplete: " + "; ".join(snapshot.incomplete))
    return snapshot


async def rendered_for(
    views: FilteredViews, snapshot: Snapshot, filters: EntityFilters, fmt: Format
) -> RenderedBody:
    """The body of the entities ``filters`` choose: the snapshot's own without filters, else
    a filtered view (rendered once while many ask, off the loop, kept within its bound)."""
    if filters.empty:
        return snapshot.yaml if fmt == "yaml" else await snapshot.json.aget()
    return await views.get(
        snapshot,
        ("entities", fmt, filters.cache_key()),
        functools.partial(_filtered_body, snapshot.entities, filters, fmt),
    )


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


HTML_MEDIA_TYPE = "text/html; charset=utf-8"


def prefers_html(accept: str | None) -> bool:
    """Whether the client asks for HTML above YAML and JSON: a browser, never curl or Backstage.

    ``*/*`` and a missing header mean data: only an explicit ``text/html`` gets the page.
    """
    if not accept:
        return False
    html = data = 0.0
    for entry in accept.split(",")[:MAX_ACCEPT_ENTRIES]:
        media, *params = entry.split(";")
        media = media.strip().lower()
        if media in ("text/html", "application/xhtml+xml"):
            html = max(html, _quality(params))
        elif media in _DATA_MEDIA_TYPES:
            data = max(data, _quality(params))
    return html > data


_DATA_MEDIA_TYPES = frozenset(
    ("application/json", "text/json", "application/yaml", "application/x-yaml", "text/yaml")
)


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


class EntitiesFastPath:
    """Answers the one request Backstage makes every poll before FastAPI routes it, and counts
    it in the same metric as the routes (``on_response``).

    ``GET /entities.yaml`` without a query is a 304 nearly every time; routing, dependency
    injection and query validation would cost more than the answer itself. So the complete
    snapshot's body (or 304) is sent from here through the same ``answer`` as the route (a
    plain ASGI middleware, as Starlette documents them). HEAD comes here as GET
    (``headers.HeadAsGet``). Anything else (a query, no complete snapshot yet) goes on to the
    route.
    """

    path = "/entities.yaml"

    def __init__(self, app: ASGIApp, on_response: Callable[[str, int], None]) -> None:
        self.app = app
        self.on_response = on_response

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["method"] == "GET"
            and scope["path"] == self.path
            and not scope["query_string"]
        ):
            store = store_in(scope.get("state", {}))
            snapshot = store.snapshot if store is not None else None
            if store is not None and snapshot is not None and snapshot.complete:
                if_none_match = accept_encoding = None
                # The first of each, as Starlette's Headers.get gives the route.
                for name, value in scope["headers"]:
                    if name == b"if-none-match" and if_none_match is None:
                        if_none_match = value.decode("latin-1")
                    elif name == b"accept-encoding" and accept_encoding is None:
                        accept_encoding = value.decode("latin-1")
                decided = answer(
                    store,
                    snapshot,
                    snapshot.yaml,
                    YAML_MEDIA_TYPE,
                    if_none_match=if_none_match,
                    accept_encoding=accept_encoding or "",
                )
                await decided.send(send)
                self.on_response(self.path, decided.status)
                return
        await self.app(scope, receive, send)
