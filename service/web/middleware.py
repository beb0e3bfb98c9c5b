"""The app's middleware, in order: security headers, HEAD as GET, request bounds, HTTP metrics.

All four are plain ASGI middleware, registered the standard way (``stack`` gives the list for
FastAPI's ``middleware=``), so they run inside Starlette's error handling and outside its
exception handlers and routing. Every response the app gives passes through them, the early
refusals (414, 431) included, and a route added later needs nothing of its own.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from typing import Any

from starlette.middleware import Middleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..config.sections import ServerSettings
from .metrics import Metrics

__all__ = [
    "HeadAsGet",
    "HttpMetricsMiddleware",
    "RequestSizeLimit",
    "SecurityHeaders",
    "header_bytes",
    "stack",
]

NOSNIFF = (b"x-content-type-options", b"nosniff")


def stack(server: ServerSettings, metrics: Metrics, html_policy: str) -> list[Middleware]:
    """The middleware of the app, outermost first."""
    return [
        # Outermost, so that every answer the others give (the refusals included) has them.
        Middleware(SecurityHeaders, html_policy=html_policy),
        # Before the bounds and the metrics, so that a HEAD is bounded and counted as its GET.
        Middleware(HeadAsGet),
        # Refusals come before the metrics: a refused head names no route to count it under.
        Middleware(
            RequestSizeLimit,
            max_url_length=server.max_url_length,
            max_header_bytes=server.max_header_bytes,
        ),
        Middleware(HttpMetricsMiddleware, metrics=metrics),
    ]


class SecurityHeaders:
    """``X-Content-Type-Options: nosniff`` on every response; the page policy on HTML ones.

    ``html_policy`` is the pages' Content-Security-Policy (``pages.content_security_policy``):
    it allows only their own inline style and script, by hash, and no framing.
    """

    def __init__(self, app: ASGIApp, html_policy: str) -> None:
        self.app = app
        self.html_headers = ((b"content-security-policy", html_policy.encode("latin-1")),)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [*message.get("headers", ()), NOSNIFF]
                if any(
                    name.lower() == b"content-type" and value.startswith(b"text/html")
                    for name, value in headers
                ):
                    headers.extend(self.html_headers)
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_headers)


class HeadAsGet:
    """Answers ``HEAD`` as the same request's ``GET`` would, headers and all, with no body.

    Monitoring tools probe with HEAD (RFC 9110, 9.3.2). Starlette's own routes add HEAD to
    every GET, FastAPI's do not; adding it per route would also put a second operation, with
    the same operationId, in the OpenAPI document. ``Content-Length`` stays the GET's, as the
    RFC allows. A HEAD to a route without GET gets the GET's 405 (with its ``Allow``).
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return

        async def without_body(message: Message) -> None:
            if message["type"] == "http.response.body":
                # The server drops it too (uvicorn does for HEAD); not sending it is certain.
                message = {**message, "body": b""}
            await send(message)

        # A copy: the server's own scope (its access log included) still says HEAD.
        await self.app({**scope, "method": "GET"}, receive, without_body)


def header_bytes(headers: Iterable[tuple[bytes, bytes]]) -> int:
    """The size of a header block, as ``server.max_header_bytes`` bounds it."""
    headers = list(headers)
    # ": " and CRLF: 4 bytes a header. map(len, ...) runs in C: this is on every request.
    return sum(map(len, itertools.chain.from_iterable(headers))) + 4 * len(headers)


class RequestSizeLimit:
    """Refuses overlong request targets (414) and header blocks (431) before routing.

    The parser (h11, see ``web.server``) bounds how much of an unfinished head it holds, and
    refuses more with a bare 400; these say which bound a finished head broke, by its setting.
    """

    def __init__(self, app: ASGIApp, max_url_length: int, max_header_bytes: int) -> None:
        self.app = app
        self.max_url_length = max_url_length
        self.max_header_bytes = max_header_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            target = len(scope.get("raw_path") or b"") + len(scope.get("query_string") or b"")
            if target > self.max_url_length:
                await _refuse(send, 414, b"URI too long")
                return
            if header_bytes(scope["headers"]) > self.max_header_bytes:
                await _refuse(send, 431, b"request header fields too large")
                return
        await self.app(scope, receive, send)


async def _refuse(send: Send, status: int, detail: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"connection", b"close")],
        }
    )
    await send({"type": "http.response.body", "body": b'{"detail":"' + detail + b'"}'})


class HttpMetricsMiddleware:
    """Counts every HTTP response by its route template, so paths cannot explode the labels."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics
        # Each (route, status) child, looked up once: labels() locks and builds its key.
        self._counters: dict[tuple[str, int], Any] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500

        async def record_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, record_status)
        finally:
            # The router sets the matched route in the scope it was given: this one.
            route = scope.get("route")
            self._count(getattr(route, "path", None) or "unmatched", status)

    def _count(self, template: str, status: int) -> None:
        counter = self._counters.get((template, status))
        if counter is None:
            counter = self._counters[(template, status)] = self.metrics.http_requests.labels(
                template, str(status)
            )
        counter.inc()
