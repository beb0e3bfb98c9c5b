"""GET /posture: each repository's posture, and a summary per owner, filterable like /entities."""

from __future__ import annotations

import functools
import json
from collections import Counter
from collections.abc import Sequence
from typing import Any

from fastapi import APIRouter, Request, Response

from ..catalog.posture import FAIL, PASS, UNKNOWN
from ..catalog.render import RenderedBody, render_body
from ..snapshot.types import IndexedEntity
from .deps import StoreDep, ViewsDep
from .filters import FILTER_PARAMETERS, EntityFilters, FiltersDep, known_parameters
from .responses import JSON_MEDIA_TYPE, require_snapshot, respond

__all__ = ["posture_report", "router"]

router = APIRouter(tags=["posture"])


def posture_report(items: Sequence[IndexedEntity]) -> dict[str, Any]:
    """The posture of every repository among ``items``, by repository, owner and check."""
    repositories = [item for item in items if item.posture is not None]
    owners: dict[str, dict[str, Any]] = {}
    checks: dict[str, Counter[str]] = {}
    for item in repositories:
        owner = owners.setdefault(
            item.owner or "",
            {"owner": item.owner, "repositories": 0, PASS: 0, FAIL: 0, UNKNOWN: 0, "failures": {}},
        )
        owner["repositories"] += 1
        owner[item.posture or UNKNOWN] += 1
        for check in item.posture_failures:
            owner["failures"][check] = owner["failures"].get(check, 0) + 1
            checks.setdefault(check, Counter())[FAIL] += 1
        for check in item.posture_unknown:
            checks.setdefault(check, Counter())[UNKNOWN] += 1
    for owner in owners.values():
        owner["failures"] = dict(sorted(owner["failures"].items()))
    return {
        "summary": {
            "repositories": len(repositories),
            **Counter(item.posture for item in repositories),
        },
        "checks": {check: dict(sorted(counts.items())) for check, counts in sorted(checks.items())},
        "owners": [owners[key] for key in sorted(owners)],
        "repositories": [
            {
                "ref": item.ref,
                "owner": item.owner,
                "account": item.account,
                "region": item.region,
                "posture": item.posture,
                "failures": list(item.posture_failures),
                "unknown": list(item.posture_unknown),
                # Why each of those did not pass (catalog.posture).
                "reasons": dict(item.verdicts.reasons) if item.verdicts else {},
            }
            for item in repositories
        ],
    }


def _report_body(items: Sequence[IndexedEntity], filters: EntityFilters) -> RenderedBody:
    chosen = [item for item in items if filters.matches(item)]
    document = json.dumps(posture_report(chosen), sort_keys=True, separators=(",", ":"))
    return render_body(document.encode("utf-8"), with_gzip=False)


@router.get(
    "/posture",
    response_class=Response,
    dependencies=[known_parameters(*FILTER_PARAMETERS)],
    responses={
        200: {
            "content": {JSON_MEDIA_TYPE: {"schema": {"type": "object"}}},
            "description": "`summary`, `checks`, `owners` and `repositories`.",
        },
        304: {"description": "Not modified: the If-None-Match ETag is current."},
        400: {"description": "A filter is malformed, or a query parameter is not a filter."},
        503: {"description": "No snapshot exists yet; see Retry-After."},
    },
)
async def posture(
    request: Request, store: StoreDep, filters: FiltersDep, views: ViewsDep
) -> Response:
    """Each repository's posture (pass, fail or unknown, and the checks behind it), summed per
    owner and per check; the same filters as `/entities`."""
    snapshot = require_snapshot(store)
    rendered = await views.get(
        snapshot,
        ("posture", filters.cache_key()),
        functools.partial(_report_body, snapshot.entities, filters),
    )
    return views.sending(respond(request, store, snapshot, rendered, JSON_MEDIA_TYPE), rendered)
