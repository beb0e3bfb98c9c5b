"""Backstage's revalidation answered inside uvicorn's protocol: the same answer as the app's."""

from __future__ import annotations

import socket
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


def exchange(port: int, raw: bytes, responses: int) -> list[bytes]:
    """Send ``raw`` on one connection and read ``responses`` HTTP responses back, in order."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        connection.sendall(raw)
        received = b""
        answers: list[bytes] = []
        while len(answers) < responses:
            chunk = connection.recv(65536)
            assert chunk, f"connection closed after {len(answers)} answers: {received!r}"
            received += chunk
            while b"\r\n\r\n" in received:
                head, _, rest = received.partition(b"\r\n\r\n")
                length = next(
                    (
                        int(line.split(b":", 1)[1])
                        for line in head.split(b"\r\n")
                        if line.lower().startswith(b"content-length:")
                    ),
                    0,
                )
                if len(rest) < length:
                    break
                answers.append(head + b"\r\n\r\n" + rest[:length])
                received = rest[length:]
    return answers


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

    def counted_304s() -> float:
        for line in httpx.get(f"{service.url}/metrics").text.splitlines():
            if line.startswith(
                'ecr_catalog_http_requests_total{route="/entities.yaml",status="304"}'
            ):
                return float(line.rsplit(" ", 1)[1])
        return 0.0

    before = counted_304s()
    exchange(service.port, request("/entities.yaml", f"If-None-Match: {etag}") * 3, 3)
    assert counted_304s() == before + 3
    # Oversized headers are never answered early: the request bounds answer them.
    (refused,) = exchange(
        service.port, request("/entities.yaml", f"If-None-Match: {etag}", "X-Pad: " + "a" * 5000), 1
    )
    assert refused.startswith(b"HTTP/1.1 431 ")
    # A body, or another method, goes to the app too.
    (posted,) = exchange(
        service.port,
        b"POST /entities.yaml HTTP/1.1\r\nHost: catalog\r\nIf-None-Match: "
        + etag.encode()
        + b"\r\nContent-Length: 2\r\n\r\n{}",
        1,
    )
    assert posted.startswith(b"HTTP/1.1 405 ")
