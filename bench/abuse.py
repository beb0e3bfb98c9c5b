"""Abuse against `ecr-catalog serve --demo`, as issue 23 tried it, with RSS before and after.

    python -m bench.abuse        # or `python -m bench.run --only abuse`

Request heads that never end (4 and 16 MiB of ``X:b`` lines), 500 idle connections with 300
half-sent heads and a slow client (``/healthz`` checked while they are held), 512 distinct
filtered requests, and 1,000 events of distinct detail-types (the size of ``/metrics``).
Loopback only.
"""

from __future__ import annotations

import json
import socket
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx

from tests.support import command_env, start_announcing, stop_process, wait_until

MIB = 1024 * 1024
TOKEN = "bench-events-token"


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for {pid}")


def _connect(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=10)


def head_flood(port: int, size: int) -> dict[str, Any]:
    """One head of ``size`` bytes of header lines, never ended: what was sent, what came back."""
    lines = b"X:b\r\n" * 10_000
    sent = 0
    with _connect(port) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: catalog\r\n")
        try:
            while sent < size:
                sock.sendall(lines)
                sent += len(lines)
        except OSError:
            pass
        try:
            answer = sock.recv(64).split(b"\r\n")[0].decode()
        except (ConnectionResetError, TimeoutError) as exc:
            answer = type(exc).__name__
    return {"sent_mb": sent / MIB, "answer": answer or "closed"}


def held_connections(url: str, port: int, idle: int, half: int) -> dict[str, Any]:
    """``idle`` silent connections, ``half`` unfinished heads and one client sending a byte
    every 0.25 s; /healthz asked while they are all open."""
    statuses = []
    with ExitStack() as held:
        for _ in range(idle):
            held.enter_context(_connect(port))
        for _ in range(half):
            sock = held.enter_context(_connect(port))
            sock.sendall(b"GET /entities.yaml HTTP/1.1\r\nHost: catalog\r\nX-Filler: ")
        slow = held.enter_context(_connect(port))
        slow.sendall(b"GET /entities.yaml HTTP/1.1\r\n")
        for _ in range(20):
            slow.sendall(b"X")
            time.sleep(0.25)
            statuses.append(httpx.get(f"{url}/healthz", timeout=10).status_code)
    return {"healthz": sorted(set(statuses))}


def abuse() -> dict[str, Any]:
    log = Path(tempfile.mkdtemp(prefix="bench-abuse-")) / "serve.log"
    process, port = start_announcing(
        [sys.executable, "-m", "service.cli", "serve", "--demo", "--port", "0"],
        log,
        "ecr-catalog serve --demo",
        env=command_env() | {"ECR_CATALOG_EVENTS__TOKEN": TOKEN},
    )
    url = f"http://127.0.0.1:{port}"
    pid = process.pid
    figures: dict[str, Any] = {}

    def measured(name: str, run: Any) -> None:
        before = rss_mb(pid)
        result = run()
        figures[name] = {**result, "rss_before_mb": before, "rss_after_mb": rss_mb(pid)}

    try:
        wait_until(lambda: httpx.get(f"{url}/readyz").status_code == 200, "the demo ready", 90)
        measured("head 4 MiB", lambda: head_flood(port, 4 * MIB))
        measured("head 16 MiB", lambda: head_flood(port, 16 * MIB))
        measured("500 idle, 300 half-sent, 1 slow", lambda: held_connections(url, port, 500, 300))

        def filters() -> dict[str, Any]:
            with httpx.Client() as client:
                for i in range(512):
                    client.get(f"{url}/entities.yaml?kind=resource&kind=x{i}")
            return {}

        measured("512 distinct filters", filters)

        def events() -> dict[str, Any]:
            before = len(httpx.get(f"{url}/metrics").content)
            event = {"source": "aws.ecr", "account": "123456789012", "region": "us-east-1"}
            with httpx.Client(headers={"Authorization": f"Bearer {TOKEN}"}) as client:
                for i in range(1000):
                    detail_type = f"Evil {i} \x1b[31m" + "y" * 200
                    body = event | {"detail-type": detail_type, "detail": {}}
                    client.post(f"{url}/events/ecr", json=body)
            after = httpx.get(f"{url}/metrics").content
            return {
                "metrics_before_kb": before / 1024,
                "metrics_after_kb": len(after) / 1024,
                "control_bytes": sum(1 for b in after if b < 0x20 and b != 0x0A),
            }

        measured("1,000 distinct detail-types", events)
    finally:
        stop_process(process)
    return figures


def rows(figures: dict[str, Any]) -> list[tuple[str, str]]:
    out = []
    for name, f in figures.items():
        rest = ", ".join(
            f"{k} {v:.1f}" if isinstance(v, float) else f"{k} {v}"
            for k, v in f.items()
            if not k.startswith("rss_")
        )
        rss = f"RSS {f['rss_before_mb']:.0f} -> {f['rss_after_mb']:.0f} MB"
        out.append((f"abuse: {name}", rss + (f"; {rest}" if rest else "")))
    return out


if __name__ == "__main__":
    result = abuse()
    width = max(len(k) for k, _ in rows(result))
    print("\n".join(f"{k.ljust(width)}  {v}" for k, v in rows(result)))
    print(json.dumps(result))
