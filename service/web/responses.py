"""Answers from the snapshot: freshness, conditional requests and encodings.

Every entity response carries a strong ETag (the body's hash), answers a matching
``If-None-Match`` with 304, is gzipped when the client accepts it and the body is held
compressed, and carries ``Cache-Control: no-cache``, ``Age`` and the time of the last refresh.
Every route decides all of that here, so the same snapshot gives the same bytes and headers on
every replica.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from datetime import UTC, datetime

from fastapi import Request, Response

from ..catalog.render import RenderedBody
from ..errors import Unavailable
from ..instants import iso
from ..model import SourceId
from ..snapshot.store import SnapshotStore
from ..snapshot.types import Snapshot
from .negotiation import accepts_gzip, etag_matches

__all__ = [
    "HTML_MEDIA_TYPE",
    "JSON_MEDIA_TYPE",
    "YAML_MEDIA_TYPE",
    "conditional_response",
    "freshness_headers",
    "gzip_etag",
    "require_complete",
    "require_snapshot",
    "respond",
    "unavailable",
]

YAML_MEDIA_TYPE = "application/yaml"
JSON_MEDIA_TYPE = "application/json"
HTML_MEDIA_TYPE = "text/html; charset=utf-8"
# Every entity body may be stored, but must be revalidated: the ETag makes that a cheap 304.
CACHE_CONTROL = "no-cache"


# Memoised: the same few instants (the snapshot's build and refresh times) on every request.
_iso = functools.lru_cache(maxsize=256)(iso)


def gzip_etag(rendered: RenderedBody) -> str:
    """The gzip encoding is other bytes, so it has its own strong tag."""
    return rendered.etag[:-1] + '-gzip"'


def freshness_headers(
    store: SnapshotStore, snapshot: Snapshot, sources: Sequence[SourceId] | None = None
) -> dict[str, str]:
    """``Cache-Control``, ``Age``, the times of the last refresh and build, and which of
    ``sources`` (None: every source) are served from last good data, and since when."""
    refreshed = store.refreshed_at or snapshot.built_at
    age = max(0, math.floor((datetime.now(UTC) - refreshed).total_seconds()))
    headers = {
        "Cache-Control": CACHE_CONTROL,
        "Age": str(age),
        "X-Catalog-Refreshed-At": _iso(refreshed),
        "X-Catalog-Built-At": _iso(snapshot.built_at),
    }
    stale = snapshot.stale_sources
    relevant = list(stale) if sources is None else sorted(s for s in sources if s in stale)
    if relevant:
        headers["X-Catalog-Stale-Sources"] = ", ".join(f"{s}={_iso(stale[s])}" for s in relevant)
    return headers


def conditional_response(
    request: Request,
    rendered: RenderedBody,
    media_type: str,
    headers: dict[str, str],
    vary: str | None = None,
) -> Response:
    """``rendered`` with ``headers`` as the request's headers ask: 304 when ``If-None-Match``
    names its ETag, gzip when accepted and held, identity otherwise.

    ``vary`` is added to Vary beside Accept-Encoding.
    """
    use_gzip = rendered.gzipped is not None and accepts_gzip(request.headers.get("accept-encoding"))
    matched = etag_matches(
        request.headers.get("if-none-match"), (rendered.etag, gzip_etag(rendered))
    )
    headers["ETag"] = gzip_etag(rendered) if use_gzip else rendered.etag
    varies = [v for v in (vary, "Accept-Encoding" if rendered.gzipped else None) if v]
    if varies:
        headers["Vary"] = ", ".join(varies)
    if matched:
        return Response(b"", status_code=304, headers=headers)
    body = rendered.body
    if use_gzip:
        assert rendered.gzipped is not None
        headers["Content-Encoding"] = "gzip"
        body = rendered.gzipped
    headers["Content-Type"] = media_type
    headers["Content-Length"] = str(len(body))
    return Response(body, status_code=200, headers=headers)


def respond(
    request: Request,
    store: SnapshotStore,
    snapshot: Snapshot,
    rendered: RenderedBody,
    media_type: str,
    vary: str | None = None,
) -> Response:
    """A body of ``snapshot`` that holds every source: its freshness, conditionally."""
    return conditional_response(
        request, rendered, media_type, freshness_headers(store, snapshot), vary
    )


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
