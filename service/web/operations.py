"""The two write endpoints, both off without a token: a forced refresh, and ECR events."""

from __future__ import annotations

import asyncio
import logging
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from starlette.requests import ClientDisconnect

from ..errors import Conflict, EventRejected, PayloadTooLarge, RequestRefused
from ..snapshot.removals import parse_source
from .deps import EventsGateDep, MetricsDep, RefreshGateDep, StoreDep
from .events import parse_event

__all__ = ["router"]

log = logging.getLogger(__name__)

router = APIRouter(tags=["operations"])


@router.post(
    "/refresh",
    status_code=202,
    responses={
        400: {"description": "`confirm_removals` is not `<account id>/<region>`."},
        401: {"description": "Missing or wrong token."},
        404: {"description": "Forced refresh is off: no token is configured."},
        409: {"description": "`confirm_removals` names a source with no removal held."},
        429: {"description": "A forced refresh ran too recently; see Retry-After."},
    },
)
async def force_refresh(
    request: Request,
    store: StoreDep,
    gate: RefreshGateDep,
    confirm_removals: Annotated[
        str | None,
        Query(
            max_length=100,
            description="`<account id>/<region>`: apply the read held for that source because "
            "it would remove too many repositories (see /readyz, `removal_hold`).",
        ),
    ] = None,
) -> dict[str, str]:
    """Start a refresh now. Off unless `server.refresh_token` is set; send it as a Bearer token.

    With `confirm_removals`, first apply the removals held for that source.
    """
    if confirm_removals is not None:
        gate.check(request.headers.get("authorization"))
        source = parse_source(confirm_removals)
        if source is None:
            raise RequestRefused("confirm_removals must be <account id>/<region>")
        hold = await store.confirm_removals(source)
        if hold is None:
            raise Conflict(f"no removal is held for {source}")
        # Not rate-limited: each confirmation ends a hold, so they cannot be repeated at will,
        # and the removal must be published now.
        refresh = asyncio.ensure_future(store.refresh(rediscover=True))
        refresh.add_done_callback(lambda done: done.cancelled() or done.exception())
        return {"status": f"removal of {hold.removed} repositories of {source} applied"}
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
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise PayloadTooLarge(f"the body is larger than {limit} bytes")
            chunks.append(chunk)
    except ClientDisconnect as gone:
        # A sender that goes away (or whose chunked body the server refused) mid-body is bad
        # input, not a fault of ours: no traceback, no 500 in the metrics.
        raise RequestRefused("the client went away before the body ended") from gone
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
        metrics.event("unknown", "rejected")
        raise
    event = verdict.event
    if event is None:
        metrics.event(verdict.detail_type, "ignored")
        return {"accepted": False, "reason": verdict.reason}
    if event.source not in store.statuses:
        metrics.event(verdict.detail_type, "ignored")
        return {"accepted": False, "reason": f"{event.source} is not a source of this catalog"}
    known = await store.forget_images(event.source, event.repository)
    store.refresh_soon(gate.debounce_seconds)
    metrics.event(verdict.detail_type, "accepted")
    log.info("event: %s; refreshing within %g s", event, gate.debounce_seconds)
    return {
        "accepted": True,
        "event": str(event),
        # A repository not read yet is found by the refresh's listing.
        "repository_known": known,
        "refresh_within_seconds": gate.debounce_seconds,
    }
