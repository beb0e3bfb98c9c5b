"""Health, readiness and metrics: what the platform probes and Prometheus scrapes."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from ..instants import iso
from .deps import BackstageDep, MetricsDep, StoreDep

__all__ = ["router"]

router = APIRouter(tags=["health"])

# The most rejections and repairs /readyz lists (the counts are always whole).
LISTED = 100


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """Liveness: the process is up and serving."""
    return {"status": "ok"}


@router.get(
    "/readyz",
    responses={503: {"description": "No snapshot yet.", "model": None}},
)
async def readyz(store: StoreDep, backstage: BackstageDep) -> JSONResponse:
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
        "discovery": store.discovery.as_dict() if store.discovery else None,
        "backstage": backstage.as_dict() if backstage else None,
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
            "built_at": iso(snapshot.built_at),
            "age_seconds": round((now - refreshed).total_seconds(), 1),
            "entities": snapshot.counts_by_kind(),
            "rejected_entities": len(snapshot.rejections),
            "repairs": len(snapshot.repairs),
            # What was left out and what was repaired, with the repository and the rule; the
            # operator page shows them all.
            "rejected": [
                {"ref": r.ref, "origin": r.origin, "problems": list(r.problems)}
                for r in snapshot.rejections[:LISTED]
            ],
            "repaired": list(snapshot.repairs[:LISTED]),
        }
    if snapshot is not None and snapshot.partition is not None:
        # In a fleet: which partition this is, and how many sources the whole fleet has.
        part = snapshot.partition
        detail["partition"] = {"index": part.index, "count": part.count, "fleet": len(part.fleet)}
    return JSONResponse(detail, status_code=200 if ready else 503)


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format."}},
)
async def metrics(registry: MetricsDep) -> Response:
    """Prometheus metrics: requests by route and status, entities, source ages and reads."""
    return Response(generate_latest(registry.registry), media_type=CONTENT_TYPE_LATEST)
