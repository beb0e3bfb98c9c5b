"""The two write endpoints, both off without a token: a forced refresh, and ECR events."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from fastapi import APIRouter, Request

from ..errors import EventRejected, PayloadTooLarge
from .deps import EventsGateDep, MetricsDep, RefreshGateDep, StoreDep
from .events import parse_event

__all__ = ["router"]

log = logging.getLogger(__name__)

router = APIRouter(tags=["operations"])


@router.post(
    "/refresh",
    status_code=202,
    responses={
        401: {"description": "Missing or wrong token."},
        404: {"description": "Forced refresh is off: no token is configured."},
        429: {"description": "A forced refresh ran too recently; see Retry-After."},
    },
)
async def force_refresh(request: Request, store: StoreDep, gate: RefreshGateDep) -> dict[str, str]:
    """Start a refresh now. Off unless `server.refresh_token` is set; send it as a Bearer token."""
    gate.admit(request.headers.get("authorization"))
    # The store keeps the task (single flight), so it is not collected mid-run.
    # A forced refresh also lists the organisation's accounts again.
    refresh = asyncio.ensure_future(store.refresh(rediscover=True))
    refresh.add_done_callback(lambda done: done.cancelled() or done.exception())
    return {"status": "refresh started"}


async def _limited_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"the body is larger than {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"the body is larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


@router.post(
    "/events/ecr",
    status_code=202,
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
    gate.check(request.headers.get("authorization"))
    body = await _limited_body(request, gate.max_body_bytes)
    try:
        verdict = parse_event(body)
    except EventRejected:
        metrics.events.labels("unknown", "rejected").inc()
        raise
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
