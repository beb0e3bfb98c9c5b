"""Request bounds enforced before routing: target length and header size."""

from __future__ import annotations

import itertools
from collections.abc import Iterable

from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["RequestSizeLimit", "header_bytes"]


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
            headers = header_bytes(scope["headers"])
            if target > self.max_url_length:
                await _refuse(send, 414, b"URI too long")
                return
            if headers > self.max_header_bytes:
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
