"""What every response shares, whatever answers it: HEAD on every GET route, security headers.

Both are plain ASGI middleware in front of the whole app (``_CatalogApp.front``), so the
poll's fast path, the routes and the early refusals (414, 431) answer alike, and a route added
later needs nothing of its own.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["HeadAsGet", "SecurityHeaders"]

NOSNIFF = (b"x-content-type-options", b"nosniff")


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
