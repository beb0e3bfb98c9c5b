"""Backstage's poll of an unchanged catalog, answered inside uvicorn's HTTP protocol.

Nearly every request Backstage makes is ``GET /entities.yaml`` with the ``If-None-Match`` of
the body it has, and nearly every answer is a 304. Through ASGI each one costs uvicorn a
scope, a task, a request-response cycle and two ``send`` calls before and after our fast path
(``api.EntitiesFastPath``): one process reached ~9,000-11,600 such answers a second, p99
6-13 ms at 50 connections. The least a Python process can do (``bench/bare_304.py``) is ~70,000
a second, p99 under 5 ms. So this subclass of uvicorn's httptools protocol answers that one
request as soon as its headers are parsed, with the same headers the route sends
(``api.response_headers``), and counts it in the same metric. Anything else, and anything
unusual about this request (a query, a body, pipelining behind an unfinished request, HTTP/1.0,
``Connection: close``, an upgrade, oversized headers, no complete snapshot, a non-matching
tag), goes through uvicorn and the app as before.

It relies on uvicorn's ``HttpToolsProtocol`` parser callbacks (pyproject pins the minor
version); ``tests/test_revalidate.py`` checks the answers against the app's own, header for
header but for Date and Age (which tick with the clock), over loopback.
"""

from __future__ import annotations

import weakref
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from .api import EntitiesFastPath, not_modified, response_headers
from .config import ServerSettings
from .limits import header_bytes

__all__ = ["revalidating_protocol"]

_STATUS_LINE = b"HTTP/1.1 304 Not Modified\r\n"
# Distinct (If-None-Match, Accept-Encoding) pairs whose answers are kept per generation.
ANSWERS_KEPT = 64


class _Answers:
    """The 304s of one generation: one snapshot, one refresh, one second of uvicorn's Date.

    Every header of the answer depends on those (Age and Date tick with the second) and on the
    request's If-None-Match and Accept-Encoding, which Backstage sends the same every poll.
    """

    def __init__(self, snapshot: object, refreshed_at: object, default_headers: object) -> None:
        # A weak reference: a quiet service must not keep an old snapshot alive through this.
        self.snapshot = weakref.ref(snapshot)
        self.refreshed_at = refreshed_at
        self.default_headers = default_headers
        self.by_request: dict[tuple[bytes | None, bytes | None], bytes | None] = {}
        self.counter: Any = None

    def are_of(self, snapshot: object, refreshed_at: object, default_headers: object) -> bool:
        return (
            self.snapshot() is snapshot
            and self.refreshed_at is refreshed_at
            and self.default_headers is default_headers
        )


def revalidating_protocol(server: ServerSettings) -> type[HttpToolsProtocol]:
    """uvicorn's httptools protocol, answering matching revalidations of /entities.yaml."""
    path = EntitiesFastPath.path.encode()

    class RevalidatingProtocol(HttpToolsProtocol):
        _answered = False
        # The current generation's answers, shared by every connection.
        answers: _Answers | None = None

        def on_headers_complete(self) -> None:
            answer = self._not_modified()
            if answer is None:
                super().on_headers_complete()
                return
            self._answered = True
            self.transport.write(answer)

        def on_body(self, body: bytes) -> None:
            if not self._answered:
                super().on_body(body)

        def on_message_complete(self) -> None:
            if not self._answered:
                super().on_message_complete()
                return
            self._answered = False
            # What uvicorn does once a response is complete: count it, arm the keep-alive
            # timeout, start a pipelined request if one is waiting.
            self.on_response_complete()

        def _not_modified(self) -> bytes | None:
            parser: Any = self.parser
            if (
                self.url != path
                or parser.get_method() != b"GET"
                or parser.get_http_version() != "1.1"
                or not parser.should_keep_alive()
                or parser.should_upgrade()
                or (self.cycle is not None and not self.cycle.response_complete)
            ):
                return None
            if len(self.url) > server.max_url_length or (
                header_bytes(self.headers) > server.max_header_bytes
            ):
                return None
            if_none_match = accept_encoding = None
            for name, value in self.headers:
                if name == b"if-none-match":
                    if_none_match = value
                elif name == b"accept-encoding":
                    accept_encoding = value
                elif name in (b"content-length", b"transfer-encoding"):
                    return None
            store = self.app_state.get("store")
            metrics = self.app_state.get("metrics")
            if store is None or metrics is None:
                return None
            snapshot = store.snapshot
            if snapshot is None or not snapshot.complete:
                return None
            answers = RevalidatingProtocol.answers
            generation = (snapshot, store.refreshed_at, self.default_headers())
            if answers is None or not answers.are_of(*generation):
                answers = RevalidatingProtocol.answers = _Answers(*generation)
            key = (if_none_match, accept_encoding)
            if key in answers.by_request:
                answer = answers.by_request[key]
            else:
                answer = self._answer(store, snapshot, if_none_match, accept_encoding)
                if len(answers.by_request) < ANSWERS_KEPT:
                    answers.by_request[key] = answer
            if answer is not None:
                if answers.counter is None:
                    answers.counter = metrics.http_requests.labels(EntitiesFastPath.path, "304")
                answers.counter.inc()
            return answer

        def _answer(
            self,
            store: Any,
            snapshot: Any,
            if_none_match: bytes | None,
            accept_encoding: bytes | None,
        ) -> bytes | None:
            if if_none_match is None or not not_modified(
                snapshot.yaml, if_none_match.decode("latin-1")
            ):
                return None
            headers, _ = response_headers(
                store, snapshot, snapshot.yaml, (accept_encoding or b"").decode("latin-1")
            )
            lines = [_STATUS_LINE]
            lines += [name + b": " + value + b"\r\n" for name, value in self.default_headers()]
            lines += [
                f"{name.lower()}: {value}\r\n".encode("latin-1") for name, value in headers.items()
            ]
            lines.append(b"\r\n")
            return b"".join(lines)

        def default_headers(self) -> list[tuple[bytes, bytes]]:
            headers: list[tuple[bytes, bytes]] = self.server_state.default_headers
            return headers

    return RevalidatingProtocol
