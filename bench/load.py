"""Load: many concurrent clients against `ecr-catalog serve` while refreshes run.

    python -m bench.load --clients 200 --seconds 60        # `make load`

The service reads a moto server seeded with --repositories repositories and refreshes every
few seconds throughout. Clients run in this process (aiohttp), the service in its own; each
client loops over three requests: a conditional GET answered 304, a full /entities.yaml with
gzip, and a filtered /entities.json. Prints latency percentiles per kind, errors, and the
service's own event-loop lag (its /metrics), which must stay under 50 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import aiohttp
import httpx

from service.demo import DEMO_ACCOUNT, DemoRepository, seed_registry
from tests.support import spawn_service, start_moto, stop_process


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


async def load(url: str, clients: int, seconds: float) -> tuple[dict[str, list[float]], int]:
    latencies: dict[str, list[float]] = defaultdict(list)
    errors = 0
    connector = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(connector=connector) as session:
        async with session.get(f"{url}/entities.yaml") as first:
            etag = first.headers["ETag"]
        deadline = time.monotonic() + seconds
        requests = [
            ("304", "/entities.yaml", {"If-None-Match": etag, "Accept-Encoding": "gzip"}),
            ("full yaml (gzip)", "/entities.yaml", {"Accept-Encoding": "gzip"}),
            ("filtered json", "/entities.json?kind=Resource&region=us-east-1", {}),
        ]

        async def client(index: int) -> None:
            nonlocal errors, etag
            turn = index
            while time.monotonic() < deadline:
                kind, path, headers = requests[turn % len(requests)]
                turn += 1
                started = time.perf_counter()
                try:
                    async with session.get(url + path, headers=headers) as response:
                        await response.read()
                        if response.status == 200 and kind == "304":
                            etag = response.headers["ETag"]  # a refresh changed the catalog
                        elif response.status not in (200, 304):
                            errors += 1
                except aiohttp.ClientError:
                    errors += 1
                latencies[kind].append(time.perf_counter() - started)

        await asyncio.gather(*(client(i) for i in range(clients)))
    return latencies, errors


def main() -> None:
    parser = argparse.ArgumentParser(description="Load-test ecr-catalog.")
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--repositories", type=int, default=1000)
    args = parser.parse_args()
    moto = start_moto()
    processes = [moto.process]
    try:
        regions = ("us-east-1", "eu-west-1")
        seed_registry(
            moto.url,
            [
                DemoRepository(name=f"load/repo-{i:05d}", region=regions[i % 2], tags={"team": "x"})
                for i in range(args.repositories)
            ],
        )
        workdir = Path(tempfile.mkdtemp(prefix="load-"))
        report_path = workdir / "callbacks.json"
        config = {
            "aws": {
                "endpoint_url": moto.url,
                "targets": [{"regions": list(regions), "account_id": DEMO_ACCOUNT}],
            },
            "refresh": {"interval_seconds": 5},
            # Short TTLs: every refresh rebuilds and re-renders while the load runs.
            "cache": {"tags_ttl_seconds": 10, "images_ttl_seconds": 10},
        }
        spawned = spawn_service(
            workdir,
            config,
            module="bench.instrumented_serve",
            extra_env={"ECR_CATALOG_CALLBACK_REPORT": str(report_path)},
        )
        processes.append(spawned.process)
        url = spawned.url
        while httpx.get(f"{url}/readyz").status_code != 200:
            time.sleep(0.5)
        latencies, errors = asyncio.run(load(url, args.clients, args.seconds))
        metrics = httpx.get(f"{url}/metrics").text
        lag = next(
            float(line.split()[-1])
            for line in metrics.splitlines()
            if line.startswith("ecr_catalog_event_loop_lag_max_seconds")
        )
        reads = sum(
            float(line.split()[-1])
            for line in metrics.splitlines()
            if line.startswith("ecr_catalog_source_reads_total")
        )
        total = sum(len(v) for v in latencies.values())
        print(f"clients {args.clients}, {args.seconds:g} s, {args.repositories} repositories")
        print(f"requests {total} ({total / args.seconds:.0f}/s), errors {errors}")
        print(f"refreshes during the run (source reads / 2): {reads / 2:.0f}")
        for kind, values in sorted(latencies.items()):
            print(
                f"{kind:18s} n={len(values):6d}  p50 {percentile(values, 0.5) * 1000:7.1f} ms"
                f"  p99 {percentile(values, 0.99) * 1000:7.1f} ms"
            )
        print(f"timer lag, worst (includes queueing under load): {lag * 1000:.1f} ms")
    finally:
        for process in reversed(processes):
            stop_process(process)
    callbacks = json.loads(report_path.read_text())
    # Startup (the lifespan opening clients) runs before the service is ready: not serving.
    serving = [(t, what) for t, what in callbacks["slowest"] if "LifespanOn" not in what]
    longest = serving[0][0] if serving else 0.0
    print(
        f"event loop blocked, longest single callback while serving: {longest * 1000:.1f} ms "
        f"of CPU (target < 50 ms); over 50 ms: {callbacks['over_50ms']} of "
        f"{callbacks['callbacks']} callbacks; longest wall time {callbacks['max_wall_ms']} ms"
    )
    gc_pauses = {k: v for k, v in callbacks.items() if k.startswith("max_gc")}
    print(f"garbage collector, longest pause by generation (ms of CPU): {gc_pauses}")
    for elapsed, what in serving[:3]:
        print(f"  {elapsed * 1000:6.1f} ms  {what[:150]}")
    sys.exit(1 if errors or longest > 0.05 else 0)


if __name__ == "__main__":
    main()
