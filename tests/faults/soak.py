"""Soak: the service against proxy + moto while faults cycle, clients poll and repositories churn.

    python -m tests.faults.soak --seconds 600        # `make soak`
    python -m tests.faults.soak --seconds 45         # the short version CI runs

Every response is checked. The invariants (each breach is a violation):

* no 200 leaves out an entity that a 200 received before its request was sent had served,
  unless it was deleted in moto first (a request already in flight may be answered from the
  snapshot before, which is no breach);
* no 5xx once the service has served its first snapshot;
* the service process never dies;
* once the faults stop, the served catalog equals what moto holds within two refresh
  intervals after the first clean refresh (deletions and additions both arrive);
* memory does not grow across cycles (peak RSS of the last cycles within 15% or 25 MB of the
  first cycle's).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

from service.demo import DEMO_ACCOUNT, DemoRepository, seed_registry

from ..support import (
    MotoServer,
    spawn_service,
    start_moto,
    start_proxy,
    stop_process,
    wait_until,
)

REGIONS = ("us-east-1", "eu-west-1")
FAULTS: list[tuple[str, dict[str, Any]]] = [
    ("latency", {"latency_ms": 300}),
    ("throttle", {"throttle_rate": 5, "throttle_burst": 5}),
    ("http_500", {"error_rate": 0.5, "error_status": 500}),
    ("http_503", {"error_rate": 0.5, "error_status": 503}),
    ("reset", {"reset_rate": 0.3}),
    # A hung call holds its whole refresh, so a short cycle sees few calls: the rate is high
    # enough that one of them hangs (at 0.2 a 36 s soak once went by without any), and the hang
    # short enough not to run through the next cycle (at 6 s, access_denied once saw no call).
    ("hang", {"hang_rate": 0.5, "hang_seconds": 2}),
    ("access_denied", {"deny_regions": ["eu-west-1"]}),
    ("garbage", {"garbage_rate": 0.3}),
    ("truncated", {"truncate_rate": 0.3}),
    ("refuse", {"refuse": True}),
]


@dataclass
class Report:
    cycles: int = 0
    refreshes: int = 0
    responses: Counter[str] = field(default_factory=Counter)
    violations: list[str] = field(default_factory=list)
    latencies: dict[str, list[float]] = field(default_factory=dict)
    rss_by_cycle: list[int] = field(default_factory=list)
    injected: dict[str, int] = field(default_factory=dict)
    convergence_seconds: float | None = None
    created: int = 0
    deleted: int = 0

    def table(self) -> str:
        def pct(values: list[float], q: float) -> str:
            if not values:
                return "-"
            ordered = sorted(values)
            return f"{ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000:.1f} ms"

        rows = [
            ("fault cycles", str(self.cycles)),
            ("refreshes", str(self.refreshes)),
            ("repositories created / deleted", f"{self.created} / {self.deleted}"),
            *((f"faults injected: {k}", str(v)) for k, v in sorted(self.injected.items())),
            ("responses checked", str(sum(self.responses.values()))),
            *((f"  status {k}", str(v)) for k, v in sorted(self.responses.items())),
            ("violations", str(len(self.violations))),
            *(
                (f"latency {kind} p50 / p99", f"{pct(v, 0.5)} / {pct(v, 0.99)}")
                for kind, v in sorted(self.latencies.items())
            ),
            ("peak RSS", f"{max(self.rss_by_cycle, default=0) / 1e6:.1f} MB"),
            (
                "RSS first / last cycle",
                f"{self.rss_by_cycle[0] / 1e6:.1f} / {self.rss_by_cycle[-1] / 1e6:.1f} MB"
                if self.rss_by_cycle
                else "-",
            ),
            (
                "converged after faults stopped",
                f"{self.convergence_seconds:.1f} s" if self.convergence_seconds else "never",
            ),
        ]
        width = max(len(k) for k, _ in rows)
        return "\n".join(f"{k.ljust(width)}  {v}" for k, v in rows)


def _alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "zombie" not in status


def _rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


class Soak:
    def __init__(self, seconds: float, clients: int, repositories: int, interval: float) -> None:
        self.seconds = seconds
        self.clients = clients
        self.repositories = repositories
        self.interval = interval
        self.report = Report()
        # Each name served, and when a 200 holding it was first received.
        self.first_served_at: dict[str, float] = {}
        self.deleted_at: dict[str, float] = {}
        self.in_moto: dict[str, tuple[str, str]] = {}
        self.first_snapshot = False
        self.stop = asyncio.Event()
        self.rng = random.Random(20260109)

    @staticmethod
    def entity_name(region: str, repo: str) -> str:
        """The ref of a repository's entity."""
        return f"resource:default/{repo.replace('/', '--')}.{region}.{DEMO_ACCOUNT}"

    def check(
        self, status: int, names: set[str] | None, sent_at: float, received_at: float, url: str
    ) -> None:
        self.report.responses[str(status)] += 1
        if status >= 500 and self.first_snapshot:
            self.report.violations.append(f"{status} from {url} after the first snapshot")
        if names is None:
            return
        self.first_snapshot = True
        missing = {
            n
            for n, first_served in self.first_served_at.items()
            if n not in names
            and first_served < sent_at
            and not (n in self.deleted_at and self.deleted_at[n] <= received_at)
        }
        if missing:
            self.report.violations.append(f"200 from {url} left out {sorted(missing)[:5]}")
        for name in names:
            self.first_served_at.setdefault(name, received_at)

    async def client(self, http: httpx.AsyncClient, index: int) -> None:
        etags: dict[str, str] = {}
        while not self.stop.is_set():
            path = "/entities.yaml" if index % 2 == 0 else "/entities.json"
            conditional = index % 4 < 2 and path in etags
            headers = {"If-None-Match": etags[path]} if conditional else {}
            started = time.perf_counter()
            sent_at = time.monotonic()
            try:
                response = await http.get(path, headers=headers)
            except httpx.HTTPError as exc:
                self.report.violations.append(f"request to {path} failed: {exc!r}")
                await asyncio.sleep(0.5)
                continue
            elapsed = time.perf_counter() - started
            kind = "304" if response.status_code == 304 else path
            self.report.latencies.setdefault(kind, []).append(elapsed)
            names = None
            if response.status_code == 200:
                etags[path] = response.headers["etag"]
                if path.endswith(".json"):
                    items = json.loads(response.content)["items"]
                else:
                    items = [d for d in yaml.load_all(response.content, Loader=_Loader) if d]
                # Every entity counts: a 200 that left out the System or a registry would
                # orphan it as surely as a repository.
                names = {_ref(i) for i in items}
            self.check(response.status_code, names, sent_at, time.monotonic(), path)
            await asyncio.sleep(0.05)

    async def mutate(self, moto: MotoServer) -> None:
        counter = 0
        while not self.stop.is_set():
            await asyncio.sleep(0.7)
            region = self.rng.choice(REGIONS)
            if self.rng.random() < 0.5 and len(self.in_moto) > self.repositories // 2:
                name = self.rng.choice(sorted(self.in_moto))
                region, repo = self.in_moto.pop(name)
                self.deleted_at[name] = time.monotonic()
                await asyncio.to_thread(
                    moto.ecr(region).delete_repository, repositoryName=repo, force=True
                )
                self.report.deleted += 1
            else:
                counter += 1
                repo = f"churn/repo-{counter:05d}"
                await asyncio.to_thread(moto.ecr(region).create_repository, repositoryName=repo)
                self.in_moto[self.entity_name(region, repo)] = (region, repo)
                self.deleted_at.pop(self.entity_name(region, repo), None)
                self.report.created += 1


class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    pass


def _ref(entity: dict[str, Any]) -> str:
    metadata = entity["metadata"]
    return f"{entity['kind']}:{metadata.get('namespace', 'default')}/{metadata['name']}".lower()


async def _served_names(http: httpx.AsyncClient) -> set[str]:
    """The refs of the repository entities served."""
    items = (await http.get("/entities.json")).json()["items"]
    return {_ref(i) for i in items if i["spec"].get("type") == "ecr-repository"}


# What the proxy counts each fault as (latency is not counted).
INJECTED_AS = {"refuse": "refused", "latency": None}


async def _until_injected(proxy: Any, fault: str, cap_seconds: float) -> None:
    """Keep a fault on until the proxy has injected it once (up to ``cap_seconds`` more).

    A fault that only some calls get (a hang, 1 in 2) could otherwise go by unseen in a short
    cycle: reads are few while the catalog is cached, and a slow read before it (resets and
    their backoff) can take the whole cycle.
    """
    counted = INJECTED_AS.get(fault, fault)
    if counted is None:
        return
    deadline = time.monotonic() + cap_seconds
    while time.monotonic() < deadline:
        stats = await asyncio.to_thread(proxy.stats)
        if stats["injected"].get(counted, 0) > 0:
            return
        await asyncio.sleep(0.2)


async def _run(soak: Soak, moto: MotoServer, service_url: str, proxy: Any, pid: int) -> None:
    limits = httpx.Limits(max_connections=soak.clients + 4)
    async with httpx.AsyncClient(base_url=service_url, timeout=30, limits=limits) as http:
        tasks = [asyncio.create_task(soak.client(http, i)) for i in range(soak.clients)]
        tasks.append(asyncio.create_task(soak.mutate(moto)))
        cycle_seconds = soak.seconds / (len(FAULTS) * 1.5)
        deadline = time.monotonic() + soak.seconds
        index = 0
        # Every fault at least once, however long the waits for injections made the cycles.
        while index < len(FAULTS) or time.monotonic() < deadline:
            name, faults = FAULTS[index % len(FAULTS)]
            proxy.set(**faults, seed=index)
            await asyncio.sleep(cycle_seconds)
            await _until_injected(proxy, name, cap_seconds=4 * cycle_seconds)
            proxy.clear()
            await asyncio.sleep(cycle_seconds / 2)
            soak.report.cycles += 1
            soak.report.rss_by_cycle.append(_rss(pid))
            index += 1
            if not _alive(pid):
                soak.report.violations.append("the service process died")
                break
        soak.stop.set()
        await asyncio.gather(*tasks)
        # Faults are off: the catalog must converge to moto's content.
        proxy.clear()
        stopped = time.monotonic()
        expected = set(soak.in_moto)
        first_clean: float | None = None
        while time.monotonic() - stopped < 60:
            readiness = (await http.get("/readyz")).json()
            started = readiness["last_refresh"]["started_at"] if readiness["last_refresh"] else None
            healthy = all(s["healthy"] for s in readiness["sources"])
            if first_clean is None and healthy and started:
                first_clean = time.monotonic()
            if await _served_names(http) == expected:
                soak.report.convergence_seconds = time.monotonic() - stopped
                break
            await asyncio.sleep(0.2)
        if soak.report.convergence_seconds is None:
            served = await _served_names(http)
            soak.report.violations.append(
                "the catalog never matched moto after the faults: "
                f"missing {sorted(expected - served)[:5]}, extra {sorted(served - expected)[:5]}, "
                f"readiness {(await http.get('/readyz')).text[:1500]}"
            )
        elif first_clean is not None and time.monotonic() - first_clean > 2 * soak.interval + 1:
            soak.report.violations.append(
                f"converged {time.monotonic() - first_clean:.1f} s after the first clean refresh"
            )
        metrics = (await http.get("/metrics")).text
        soak.report.refreshes = int(
            sum(
                float(line.rsplit(" ", 1)[1])
                for line in metrics.splitlines()
                if line.startswith("ecr_catalog_source_reads_total")
            )
            / len(REGIONS)
        )
    soak.report.injected = dict(proxy.stats()["injected"])
    first, rest = soak.report.rss_by_cycle[:1], soak.report.rss_by_cycle[-3:]
    if first and rest:
        growth = max(rest) - first[0]
        if growth > max(0.15 * first[0], 25e6):
            soak.report.violations.append(f"RSS grew by {growth / 1e6:.1f} MB across cycles")


def run_soak(
    seconds: float = 45, clients: int = 8, repositories: int = 40, interval: float = 1.0
) -> Report:
    """Run the whole soak and return its report."""
    soak = Soak(seconds, clients, repositories, interval)
    moto = start_moto()
    proxy = start_proxy(moto.url)
    processes = [moto.process, proxy.process]
    try:
        initial = [
            DemoRepository(name=f"stable/repo-{i:03d}", region=REGIONS[i % 2], images=(("v1",),))
            for i in range(repositories)
        ]
        seed_registry(moto.url, initial)
        for repo in initial:
            soak.in_moto[soak.entity_name(repo.region, repo.name)] = (repo.region, repo.name)
        config = {
            "aws": {
                "endpoint_url": proxy.url,
                "total_max_attempts": 3,
                "connect_timeout_seconds": 1,
                "read_timeout_seconds": 2,
                "targets": [{"regions": list(REGIONS), "account_id": DEMO_ACCOUNT}],
            },
            "refresh": {"interval_seconds": interval, "deadline_seconds": 8},
            # Images of new repositories must show without waiting out a long TTL.
            "cache": {"images_ttl_seconds": 5, "tags_ttl_seconds": 5},
        }
        spawned = spawn_service(Path(tempfile.mkdtemp(prefix="soak-")), config)
        service, url = spawned.process, spawned.url
        processes.append(service)
        wait_until(lambda: httpx.get(f"{url}/readyz").status_code == 200, "the soak's service", 60)
        asyncio.run(_run(soak, moto, url, proxy, service.pid))
        if service.poll() is not None:
            soak.report.violations.append(f"the service exited with {service.returncode}")
        return soak.report
    finally:
        for process in reversed(processes):
            if process.poll() is None:
                stop_process(process)


def main() -> None:
    parser = argparse.ArgumentParser(description="Soak ecr-catalog under cycling faults.")
    parser.add_argument("--seconds", type=float, default=600)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--repositories", type=int, default=60)
    args = parser.parse_args()
    report = run_soak(args.seconds, args.clients, args.repositories)
    print(report.table())
    for violation in report.violations[:20]:
        print("VIOLATION:", violation)
    sys.exit(1 if report.violations else 0)


if __name__ == "__main__":
    main()
