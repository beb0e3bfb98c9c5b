"""`make bench` (``--only partitions``): a fleet of partitions against one process, side by side.

An organisation of the fake ECR (by default 200 member accounts in 5 regions, 100,000
repositories over 1,000 sources) is read cold, first by one process, then by a fleet of
``count`` partitions on loopback (each on its own address, one port, as a StatefulSet's pods
have their own names). For each: the wall-clock time until every process is complete, each
process's peak RSS, and the calls the fake ECR answered (ECR apart from STS and
Organizations, which every partition makes for itself).
"""

from __future__ import annotations

import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from tests.faults.fake_ecr import REGION_NAMES
from tests.support import free_port, spawn_service, start_fake_ecr, stop_process

__all__ = ["partitions", "rows"]

MANAGEMENT = "123456789012"


def _peak_rss(process: subprocess.Popen[bytes]) -> int:
    for line in Path(f"/proc/{process.pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM")


def _complete(url: str) -> bool:
    try:
        return bool(httpx.get(f"{url}/readyz", timeout=30).json().get("complete"))
    except httpx.HTTPError:
        return False


def _wait_all(urls: list[str], started: float, timeout: float) -> list[float]:
    """Seconds from ``started`` until each URL's /readyz says complete (polled once a second:
    a fleet's /readyz lists its sources)."""
    done: dict[str, float] = {}
    deadline = time.monotonic() + timeout
    while len(done) < len(urls):
        if time.monotonic() > deadline:
            raise RuntimeError(f"not complete within {timeout:g} s: {set(urls) - set(done)}")
        for url in urls:
            if url not in done and _complete(url):
                done[url] = time.monotonic() - started
        time.sleep(1.0)
    return [done[url] for url in urls]


def _config(fake_url: str, regions: list[str], state: Path, **sections: Any) -> dict[str, Any]:
    return {
        "aws": {
            "endpoint_url": fake_url,
            "organization": {
                "role_name": "ecr-catalog-reader",
                "regions": regions,
                "exclude_accounts": [MANAGEMENT],
            },
        },
        # The cold read alone: no second refresh while the others finish, and no source left
        # behind by the deadline (a thousand sources share each region's calls in flight).
        "refresh": {"interval_seconds": 3600, "deadline_seconds": 3600},
        "state_dir": str(state),
        **sections,
    }


def _calls(fake_url: str) -> dict[str, int]:
    calls: dict[str, int] = httpx.get(f"{fake_url}/__stats__").json()["calls"]
    httpx.delete(f"{fake_url}/__stats__")
    return calls


def _run(fake_url: str, configs: list[tuple[dict[str, Any], str | None, int]]) -> dict[str, Any]:
    """Start every process at once, wait until each is complete; times, peaks, calls."""
    _calls(fake_url)
    workdir = Path(tempfile.mkdtemp(prefix="bench-partitions-"))
    spawned = []
    started = time.monotonic()
    try:
        for index, (config, host, port) in enumerate(configs):
            spawned.append(spawn_service(workdir / str(index), config, host=host, port=port))
        seconds = _wait_all([s.url for s in spawned], started, timeout=3600)
        peaks = [_peak_rss(s.process) for s in spawned]
    finally:
        for process in spawned:
            stop_process(process.process)
    calls = _calls(fake_url)
    ecr = sum(n for op, n in calls.items() if ":" not in op)
    return {"seconds": seconds, "rss": peaks, "calls": calls, "ecr_calls": ecr}


def partitions(
    accounts: int = 200, regions: int = 5, per_account: int = 500, count: int = 4
) -> dict[str, Any]:
    """``accounts`` x ``regions`` sources holding ``accounts * per_account`` repositories, read
    cold by one process and by ``count`` partitions."""
    names = REGION_NAMES[:regions]
    fake, url = start_fake_ecr(
        *("--accounts", str(accounts), "--regions", str(regions)),
        *("--repositories", str(per_account), "--latency-ms", "25", "--rate", "100"),
    )
    tmp = Path(tempfile.mkdtemp(prefix="bench-partitions-state-"))
    try:
        single = _run(url, [(_config(url, names, tmp / "single"), None, 0)])
        port = free_port()
        template = f"http://127.0.0.1{{index}}:{port}"
        fleet = _run(
            url,
            [
                (
                    _config(
                        url,
                        names,
                        tmp / f"partition-{index}",
                        partition={"count": count, "index": index, "url_template": template},
                    ),
                    f"127.0.0.1{index}",
                    port,
                )
                for index in range(count)
            ],
        )
    finally:
        stop_process(fake)
    return {
        "sources": accounts * regions,
        "repositories": accounts * per_account,
        "count": count,
        "single": single,
        "fleet": fleet,
    }


def rows(r: dict[str, Any]) -> list[tuple[str, str]]:
    """The table's rows for ``partitions``' figures."""
    single, fleet = r["single"], r["fleet"]
    label = f"partitions {r['count']} vs 1, {r['repositories']:,} repos / {r['sources']:,} sources"
    one_rss = single["rss"][0]
    rss = ", ".join(f"{p / 1e6:.0f}" for p in fleet["rss"])
    worst = max(fleet["rss"]) / one_rss
    ecr = fleet["ecr_calls"] / single["ecr_calls"] - 1
    every = sum(fleet["calls"].values()) / sum(single["calls"].values()) - 1
    extra = {
        op: fleet["calls"].get(op, 0) - single["calls"].get(op, 0)
        for op in sorted(set(fleet["calls"]) | set(single["calls"]))
        if ":" in op
    }
    return [
        (
            f"{label}: wall-clock",
            f"one process {single['seconds'][0]:.1f} s; the fleet "
            f"{max(fleet['seconds']):.1f} s (each: "
            + ", ".join(f"{s:.1f}" for s in fleet["seconds"])
            + " s; 2 cores)",
        ),
        (
            f"{label}: peak RSS",
            f"one process {one_rss / 1e6:.0f} MB; partitions {rss} MB: the largest "
            f"{worst:.2f}x one process's (target <= 0.33x)",
        ),
        (
            f"{label}: AWS calls",
            f"ECR {fleet['ecr_calls']:,} vs {single['ecr_calls']:,} ({100 * ecr:+.2f}%); all "
            f"{sum(fleet['calls'].values()):,} vs {sum(single['calls'].values()):,} "
            f"({100 * every:+.2f}%, target within 2%); more STS/Organizations/account: {extra}",
        ),
    ]
