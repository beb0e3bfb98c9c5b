"""Backstage's poll of the catalog, answered inside uvicorn's HTTP protocol.

Nearly every request Backstage makes is ``GET /entities.yaml`` with the ``If-None-Match`` of
the body it has, and nearly every answer is a 304. Through ASGI each one costs uvicorn a
scope, a task, a request-response cycle and two ``send`` calls before and after our fast path
(``api.EntitiesFastPath``): one process reached ~9,000-11,600 such answers a second, p99
6-13 ms at 50 connections. The least a Python process can do (``bench/bare_304.py``) is ~70,000
a second, p99 under 5 ms. So this subclass of uvicorn's httptools protocol answers that request
as soon as its headers are parsed, with the same headers the route sends
(``api.response_headers``), and counts it in the same metric: the 304 when the tag matches,
else the whole body (gzip or not), whose head and body go out in one vectored write. Anything
else, and anything unusual about this request (a query, a body, pipelining behind an
unfinished request, a connection still draining an earlier answer, HTTP/1.0,
``Connection: close``, an upgrade, oversized headers, no complete snapshot), goes through
uvicorn and the app as before.

It relies on uvicorn's ``HttpToolsProtocol`` parser callbacks (pyproject pins the minor
version); ``tests/test_revalidate.py`` checks the answers against the app's own, header for
header but for Date and Age (which tick with the clock), over loopback.
"""

from __future__ import annotations

import weakref
from typing import Any, Literal, NamedTuple

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from .api import YAML_MEDIA_TYPE, EntitiesFastPath, not_modified, response_headers
from .config import ServerSettings
from .limits import header_bytes
from .render import RenderedBody

__all__ = ["revalidating_protocol"]

_STATUS_LINES = {"200": b"HTTP/1.1 200 OK\r\n", "304": b"HTTP/1.1 304 Not Modified\r\n"}
# Distinct (If-None-Match, Accept-Encoding) pairs whose answers are kept per generation.
ANSWERS_KEPT = 64


class _Answer(NamedTuple):
    head: bytes
    # Which of the snapshot's bodies follows the head ("none": a 304). By name, not by
    # reference, for the reason the snapshot is only referenced weakly (see _Answers).
    body: Literal["gzip", "identity", "none"]

    @property
    def status(self) -> str:
        return "304" if self.body == "none" else "200"

    def body_of(self, rendered: RenderedBody) -> bytes:
        if self.body == "none":
            return b""
        body = rendered.gzipped if self.body == "gzip" else rendered.body
        assert body is not None
        return body


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
        self.by_request: dict[tuple[bytes | None, bytes | None], _Answer] = {}
        self.counters: dict[str, Any] = {}

    def are_of(self, snapshot: object, refreshed_at: object, default_headers: object) -> bool:
        return (
            self.snapshot() is snapshot
            and self.refreshed_at is refreshed_at
            and self.default_headers is default_headers
        )


def revalidating_protocol(server: ServerSettings) -> type[HttpToolsProtocol]:
    """uvicorn's httptools protocol, answering plain polls of /entities.yaml itself."""
    path = EntitiesFastPath.path.encode()

    class RevalidatingProtocol(HttpToolsProtocol):
        _answered = False
        # The current generation's answers, shared by every connection.
        answers: _Answers | None = None

        def on_headers_complete(self) -> None:
            answer = self._early_answer()
            if answer is None:
                super().on_headers_complete()
                return
            self._answered = True
            head, body = answer
            if body:
                # One vectored write of the snapshot's own bytes: no copy into one buffer.
                self.transport.writelines((head, body))
            else:
                self.transport.write(head)

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

        def _early_answer(self) -> tuple[bytes, bytes] | None:
            """The head and body of the answer, if this request is answered here."""
            parser: Any = self.parser
            if (
                self.url != path
                or parser.get_method() != b"GET"
                or parser.get_http_version() != "1.1"
                or not parser.should_keep_alive()
                or parser.should_upgrade()
                or (self.cycle is not None and not self.cycle.response_complete)
                # A client that sends polls but does not read the answers: uvicorn waits for
                # the transport to drain before it writes more, so only it may answer then.
                or self.flow.write_paused
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
            counter = answers.counters.get(answer.status)
            if counter is None:
                counter = answers.counters[answer.status] = metrics.http_requests.labels(
                    EntitiesFastPath.path, answer.status
                )
            counter.inc()
            return answer.head, answer.body_of(snapshot.yaml)

        def _answer(
            self,
            store: Any,
            snapshot: Any,
            if_none_match: bytes | None,
            accept_encoding: bytes | None,
        ) -> _Answer:
            rendered = snapshot.yaml
            headers, use_gzip = response_headers(
                store, snapshot, rendered, (accept_encoding or b"").decode("latin-1")
            )
            if if_none_match is not None and not_modified(
                rendered, if_none_match.decode("latin-1")
            ):
                answer = _Answer(b"", "none")
            else:
                answer = _Answer(b"", "gzip" if use_gzip else "identity")
                if use_gzip:
                    headers["Content-Encoding"] = "gzip"
                # In the order Starlette's Response adds them after the route's own.
                headers["Content-Length"] = str(len(answer.body_of(rendered)))
                headers["Content-Type"] = YAML_MEDIA_TYPE
            lines = [_STATUS_LINES[answer.status]]
            lines += [name + b": " + value + b"\r\n" for name, value in self.default_headers()]
            lines += [
                f"{name.lower()}: {value}\r\n".encode("latin-1") for name, value in headers.items()
            ]
            lines.append(b"\r\n")
            return answer._replace(head=b"".join(lines))

        def default_headers(self) -> list[tuple[bytes, bytes]]:
            headers: list[tuple[bytes, bytes]] = self.server_state.default_headers
            return headers

    return RevalidatingProtocol
