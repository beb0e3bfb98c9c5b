"""Backstage's poll answered inside uvicorn's protocol: the same answers as the app's."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from service.demo import DemoRepository, seed_registry

from .support import (
    MotoServer,
    ServiceProcess,
    moto_service_config,
    spawn_service,
    stop_process,
    wait_healthy_sources,
)


@pytest.fixture
def service(moto: MotoServer, tmp_path: Path) -> Iterator[ServiceProcess]:
    seed_registry(
        moto.url, [DemoRepository(name=f"team/app-{i}", region="us-east-1") for i in (1, 2)]
    )
    config = moto_service_config(moto.url, ["us-east-1"], server={"max_header_bytes": 4096})
    started = spawn_service(tmp_path, config)
    try:
        wait_healthy_sources(started.url)
        yield started
    finally:
        stop_process(started.process)


def exchange(port: int, raw: bytes, responses: int, wait: float = 0) -> list[bytes]:
    """Send ``raw`` on one connection and read ``responses`` HTTP responses back, in order.

    ``wait``: seconds between sending and reading, for the server's buffers to fill.
    """
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        connection.sendall(raw)
        time.sleep(wait)
        received = b""
        answers: list[bytes] = []
        while len(answers) < responses:
            chunk = connection.recv(65536)
            assert chunk, f"connection closed after {len(answers)} answers: {received!r}"
            received += chunk
            while b"\r\n\r\n" in received:
                head, _, rest = received.partition(b"\r\n\r\n")
                length = body_length(head, rest)
                if length is None:
                    break
                answers.append(head + b"\r\n\r\n" + rest[:length])
                received = rest[length:]
    return answers


def body_length(head: bytes, rest: bytes) -> int | None:
    """How many bytes of ``rest`` are the body of the answer ``head``; None until all arrived.

    The app's 431 and 414 come chunked: their body must not be read as a next answer.
    """
    lines = head.lower().split(b"\r\n")
    if b"transfer-encoding: chunked" in lines:
        position = 0
        while (end := rest.find(b"\r\n", position)) >= 0:
            size = int(rest[position:end].split(b";")[0], 16)
            position = end + 2 + size + 2
            if position > len(rest):
                return None
            if size == 0:
                return position
        return None
    length = next(
        (int(line.split(b":", 1)[1]) for line in lines if line.startswith(b"content-length:")), 0
    )
    return length if len(rest) >= length else None


def request(path: str, *headers: str, close: bool = False) -> bytes:
    lines = [f"GET {path} HTTP/1.1", "Host: catalog", *headers]
    if close:
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def header_lines(
    answer: bytes, leave_out: tuple[bytes, ...] = (b"date", b"age", b"connection")
) -> list[bytes]:
    head = answer.split(b"\r\n\r\n", 1)[0].split(b"\r\n")
    return [line for line in head if line.split(b":", 1)[0].lower() not in leave_out]


@pytest.mark.parametrize("encoding", [None, "gzip"])
def test_the_protocols_304_is_the_apps_304(service: ServiceProcess, encoding: str | None) -> None:
    extra = (f"Accept-Encoding: {encoding}",) if encoding else ()
    etag = httpx.get(
        f"{service.url}/entities.yaml", headers={"Accept-Encoding": encoding or "identity"}
    ).headers["etag"]
    # Connection: close is never answered early, so the second answer is the app's own.
    early, apps = exchange(
        service.port,
        request("/entities.yaml", f"If-None-Match: {etag}", *extra)
        + request("/entities.yaml", f"If-None-Match: {etag}", *extra, close=True),
        2,
    )
    assert early.startswith(b"HTTP/1.1 304 Not Modified\r\n")
    # The same headers, in the same order, but the date and age, which tick with the clock
    # (and the app's connection: close).
    assert header_lines(early) == header_lines(apps)
    assert b"age: " in early and b"date: " in early
    assert f"etag: {etag}".encode() in header_lines(early)
    assert [line for line in header_lines(early, ()) if line.startswith(b"connection")] == []


@pytest.mark.parametrize("encoding", ["identity", "gzip"])
def test_the_protocols_full_answer_is_the_apps(service: ServiceProcess, encoding: str) -> None:
    early, apps = exchange(
        service.port,
        request("/entities.yaml", f"Accept-Encoding: {encoding}")
        + request("/entities.yaml", f"Accept-Encoding: {encoding}", close=True),
        2,
    )
    assert early.startswith(b"HTTP/1.1 200 OK\r\n")
    assert header_lines(early) == header_lines(apps)
    assert early.split(b"\r\n\r\n", 1)[1] == apps.split(b"\r\n\r\n", 1)[1]
    assert (b"content-encoding: gzip" in header_lines(early)) == (encoding == "gzip")


def test_a_client_that_does_not_read_gets_every_answer_in_order(service: ServiceProcess) -> None:
    # Polls sent without reading the answers: once the connection's buffers fill, uvicorn
    # answers the rest after its transport drains, interleaved with early answers.
    etag = httpx.get(f"{service.url}/entities.yaml").headers["etag"]
    polls = [
        request("/entities.yaml", f"If-None-Match: {etag}")
        if index % 3 == 0
        else request("/entities.yaml", "Accept-Encoding: identity")
        for index in range(1500)
    ]
    answers = exchange(service.port, b"".join(polls), len(polls), wait=1)
    statuses = [answer.split(b"\r\n", 1)[0] for answer in answers]
    assert statuses == [
        b"HTTP/1.1 304 Not Modified" if index % 3 == 0 else b"HTTP/1.1 200 OK"
        for index in range(1500)
    ]
    assert all(b"team/app-2" in answer for answer in answers[1::3])


def test_pipelined_requests_are_answered_in_order_early_or_not(service: ServiceProcess) -> None:
    etag = httpx.get(f"{service.url}/entities.yaml").headers["etag"]
    answers = exchange(
        service.port,
        request("/entities.yaml", f"If-None-Match: {etag}")
        + request("/entities.yaml?kind=domain")
        + request("/entities.yaml", f"If-None-Match: {etag}")
        + request("/entities.yaml", 'If-None-Match: "some-other-tag"')
        + request("/healthz"),
        5,
    )
    statuses = [answer.split(b"\r\n", 1)[0] for answer in answers]
    assert statuses == [
        b"HTTP/1.1 304 Not Modified",
        b"HTTP/1.1 200 OK",
        b"HTTP/1.1 304 Not Modified",
        b"HTTP/1.1 200 OK",
        b"HTTP/1.1 200 OK",
    ]
    assert b"kind: Domain" in answers[1] and b"team/app-1" not in answers[1]
    assert b"team/app-1" in answers[3]
    assert answers[4].endswith(b'{"status":"ok"}')


def test_early_answers_are_counted_and_bounds_still_hold(service: ServiceProcess) -> None:
    etag = httpx.get(f"{service.url}/entities.yaml").headers["etag"]

    def counted(status: str) -> float:
        for line in httpx.get(f"{service.url}/metrics").text.splitlines():
            if line.startswith(
                f'ecr_catalog_http_requests_total{{route="/entities.yaml",status="{status}"}}'
            ):
                return float(line.rsplit(" ", 1)[1])
        return 0.0

    before = counted("304"), counted("200")
    exchange(
        service.port,
        request("/entities.yaml", f"If-None-Match: {etag}") * 3 + request("/entities.yaml") * 2,
        5,
    )
    assert (counted("304"), counted("200")) == (before[0] + 3, before[1] + 2)
    # Oversized headers are never answered early: the request bounds answer them.
    (refused,) = exchange(
        service.port, request("/entities.yaml", f"If-None-Match: {etag}", "X-Pad: " + "a" * 5000), 1
    )
    assert refused.startswith(b"HTTP/1.1 431 ")
    assert refused.endswith(b"0\r\n\r\n") and b"request header fields too large" in refused
    # A body, or another method, goes to the app too.
    (posted,) = exchange(
        service.port,
        b"POST /entities.yaml HTTP/1.1\r\nHost: catalog\r\nIf-None-Match: "
        + etag.encode()
        + b"\r\nContent-Length: 2\r\n\r\n{}",
        1,
    )
    assert posted.startswith(b"HTTP/1.1 405 ")
