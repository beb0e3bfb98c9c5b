"""The operator page (``GET /``) and the entity pages, server-rendered from the snapshot.

Jinja2 templates (``templates/``), no JavaScript build: the pages read without JavaScript, and
one small script only applies a filter as soon as it is chosen. They read the snapshot and the
store's statuses, never AWS, and carry ETags like the other routes. Times are shown as instants,
not ages, so that a page stays byte-for-byte the same, and revalidates with a 304, until
something it shows changes.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import hashlib
import json
import math
from collections.abc import Iterable
from typing import Annotated, Any
from urllib.parse import quote, urlencode

import jinja2
import markupsafe
from fastapi import APIRouter, Query, Request, Response

from .. import __version__
from ..catalog.render import render_body
from ..config import Settings
from ..instants import iso
from ..names import parse_entity_ref
from ..snapshot.store import SnapshotStore
from ..snapshot.types import IndexedEntity, Snapshot
from ..text import escape_invisible
from .deps import BackstageDep, MetricsDep, StoreDep
from .filters import FILTER_PARAMETERS, EntityFilters, FiltersDep, known_parameters
from .posture import posture_report
from .refs import backstage_url, ref_links
from .responses import HTML_MEDIA_TYPE, respond

__all__ = ["content_security_policy", "entity_page", "render_page", "router"]

router = APIRouter(tags=["operator"])

PAGE_SIZE = 50
# The most entities left out, and repositories repaired, the page lists.
LISTED = 500


def _shown_safely(value: Any) -> Any:
    """Every ``{{ }}`` value, with its control and bidirectional characters as visible escapes
    (service.text): a name or a tag cannot reorder or hide what the page shows."""
    if not isinstance(value, str):
        return value
    shown = escape_invisible(value)
    if shown == value:
        return value
    # The escape holds no markup: what was already safe HTML (a macro's output) stays safe.
    return markupsafe.Markup(shown) if isinstance(value, markupsafe.Markup) else shown


@functools.cache
def _templates() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("service.web", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        finalize=_shown_safely,
    )


@functools.cache
def _assets() -> dict[str, markupsafe.Markup]:
    """The pages' style sheet and script, inlined: ``content_security_policy`` has their hashes."""
    loader = _templates().loader
    assert loader is not None
    return {
        name: markupsafe.Markup(loader.get_source(_templates(), f"operator.{name}")[0])
        for name in ("css", "js")
    }


def _csp_hash(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


def content_security_policy() -> str:
    """Every page's Content-Security-Policy: nothing but our inline style and script, no frames.

    Hashes, not a nonce: a nonce would make every page's bytes differ, and so its ETag.
    """
    assets = _assets()
    return "; ".join(
        (
            "default-src 'none'",
            f"style-src {_csp_hash(assets['css'])}",
            f"script-src {_csp_hash(assets['js'])}",
            "form-action 'self'",
            "base-uri 'none'",
            "frame-ancestors 'none'",
        )
    )


def render_page(template: str, **context: Any) -> bytes:
    """A template of templates/ as page bytes, with the version and the inlined assets."""
    page = _templates().get_template(template)
    return page.render(version=__version__, assets=_assets(), **context).encode()


def _href(item: IndexedEntity) -> str:
    kind, _, rest = item.ref.partition(":")
    namespace, _, name = rest.partition("/")
    return "/entities/" + "/".join(quote(part, safe="") for part in (kind, namespace, name))


def _page_answer(
    request: Request, store: SnapshotStore, snapshot: Snapshot | None, body: bytes
) -> Response:
    if snapshot is None:
        # Nothing to take an ETag from yet: the page says why.
        return Response(body, media_type=HTML_MEDIA_TYPE, headers={"Cache-Control": "no-cache"})
    return respond(
        request, store, snapshot, render_body(body, with_gzip=False), HTML_MEDIA_TYPE, "Accept"
    )


def _choices(values: Iterable[str | None]) -> list[str]:
    return sorted({value for value in values if value})


@router.get(
    "/",
    response_class=Response,
    responses={
        200: {"content": {"text/html": {}}, "description": "The operator page."},
        400: {"description": "A filter is malformed, or a query parameter is unknown."},
    },
    dependencies=[known_parameters(*FILTER_PARAMETERS, "page")],
)
async def operator_page(
    request: Request,
    store: StoreDep,
    metrics: MetricsDep,
    backstage: BackstageDep,
    filters: FiltersDep,
    page: Annotated[int, Query(ge=1, le=100_000, description="Page of the entity list.")] = 1,
) -> Response:
    """The operator page: sources, refreshes, what was left out or repaired, posture by owner,
    and an entity browser with the filters of `/entities`."""
    snapshot = store.snapshot
    # What the loop changes is copied here; the rest (every entity) is read in a worker
    # thread, so a page over a large catalog holds up no poll.
    state = {
        "etag": snapshot.yaml.etag if snapshot else None,
        "built_at": iso(snapshot.built_at) if snapshot else None,
        "complete": bool(snapshot and snapshot.complete),
        "incomplete": list(snapshot.incomplete) if snapshot else ["no snapshot yet"],
        "unresolved": list(store.unresolved),
        "sources": [status.as_dict() for _, status in sorted(store.statuses.items())],
        "backstage": backstage.as_dict() if backstage else None,
        "refreshes": [r | {"started_at": iso(r["started_at"])} for r in metrics.recent_refreshes],
    }
    params = [(key, value) for key, value in request.query_params.multi_items() if key != "page"]
    body = await asyncio.to_thread(_index_page, snapshot, state, filters, page, params)
    return _page_answer(request, store, snapshot, body)


def _index_page(
    snapshot: Snapshot | None,
    state: dict[str, Any],
    filters: EntityFilters,
    page: int,
    params: list[tuple[str, str]],
) -> bytes:
    items = snapshot.entities if snapshot else ()
    chosen = [item for item in items if filters.matches(item)]
    pages = max(1, math.ceil(len(chosen) / PAGE_SIZE))
    page = min(page, pages)
    shown = chosen[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]

    def page_link(number: int) -> str:
        return "/?" + urlencode([*params, ("page", str(number))]) + "#entities"

    return render_page(
        "index.html",
        **state,
        counts=snapshot.counts_by_kind() if snapshot else {},
        healthy=sum(1 for status in state["sources"] if status["healthy"]),
        rejections=snapshot.rejections[:LISTED] if snapshot else (),
        rejected=len(snapshot.rejections) if snapshot else 0,
        repairs=_repairs_by_origin(snapshot.repairs if snapshot else ())[:LISTED],
        owners=posture_report(items)["owners"],
        chosen=filters,
        filtered=not filters.empty,
        owner_choices=_choices(item.owner for item in items),
        account_choices=_choices(item.account for item in items),
        region_choices=_choices(item.region for item in items),
        rows=[_row(item) for item in shown],
        total=len(chosen),
        page=page,
        pages=pages,
        page_link=page_link,
    )


def _repairs_by_origin(repairs: Iterable[str]) -> list[tuple[str, list[str]]]:
    """``<repository ARN>: <what>`` lines, grouped by ARN in order of first appearance."""
    grouped: dict[str, list[str]] = {}
    for repair in repairs:
        origin, _, what = repair.partition(": ")
        grouped.setdefault(origin, []).append(what or origin)
    return list(grouped.items())


def _row(item: IndexedEntity) -> dict[str, Any]:
    return {
        "ref": item.ref,
        "href": _href(item),
        "name": item.name,
        "kind": item.kind,
        "owner": item.owner,
        "account": item.account,
        "region": item.region,
        "posture": item.posture,
    }


def _posture(item: IndexedEntity) -> dict[str, Any] | None:
    """The verdict of every configured check, as the build judged it (catalog.posture)."""
    verdicts = item.verdicts
    if verdicts is None:
        return None
    checks = [(check, verdict, verdicts.reason(check)) for check, verdict in verdicts.verdicts]
    return {"overall": verdicts.overall, "checks": checks}


def entity_page(
    request: Request, store: SnapshotStore, snapshot: Snapshot, item: IndexedEntity
) -> Response:
    """One entity as a page: its facts, its refs as links, posture, links (the console,
    Backstage) and YAML."""
    settings: Settings = request.state.settings
    entity = json.loads(item.json_document)
    metadata = entity.get("metadata", {})
    links = [
        {"url": link["url"], "title": link.get("title") or link["url"]}
        for link in metadata.get("links", [])
    ]
    base_url = settings.backstage.base_url
    ref = parse_entity_ref(item.ref, default_kind=None, default_namespace="default")
    if base_url and ref is not None:
        links.append({"url": backstage_url(base_url, ref), "title": "In Backstage"})
    body = render_page(
        "entity.html",
        etag=snapshot.yaml.etag,
        built_at=iso(snapshot.built_at),
        ref=item.ref,
        title=metadata.get("title") or metadata.get("name"),
        entity=_Lenient(entity),
        posture=_posture(item),
        links=links,
        refs=ref_links(entity, snapshot.by_ref, base_url),
        yaml=bytes(item.yaml_document).decode("utf-8"),
    )
    return _page_answer(request, store, snapshot, body)


class _Lenient(dict[str, Any]):
    """An entity whose missing fields read as empty in a template (StrictUndefined elsewhere)."""

    def __init__(self, value: dict[str, Any]) -> None:
        super().__init__({k: _Lenient(v) if isinstance(v, dict) else v for k, v in value.items()})

    def __getattr__(self, key: str) -> Any:
        return self.get(key, _Lenient({}) if key in ("spec", "metadata") else None)

    def __missing__(self, key: str) -> Any:
        return None
