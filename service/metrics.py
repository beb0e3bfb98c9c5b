"""Prometheus metrics: HTTP requests by route and status, and the store's state at scrape time.

Each app has its own CollectorRegistry, so several apps in one process (the tests) never clash.
The snapshot store knows nothing of Prometheus: a collector reads it when scraped.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from datetime import UTC, datetime

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .snapshot import SnapshotStore

__all__ = [
    "HttpMetricsMiddleware",
    "Metrics",
    "StoreCollector",
    "watch_loop_lag",
]

NAMESPACE = "ecr_catalog"


class Metrics:
    """The app's registry and its request counter."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.http_requests = Counter(
            "http_requests",
            "HTTP responses by route template and status code (304s included).",
            ["route", "status"],
            namespace=NAMESPACE,
            registry=self.registry,
        )
        self.loop_lag = Histogram(
            "event_loop_lag_seconds",
            "How late the event loop woke a 100 ms timer: time it spent blocked.",
            buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0),
            namespace=NAMESPACE,
            registry=self.registry,
        )
        self.loop_lag_max = Gauge(
            "event_loop_lag_max_seconds",
            "The largest event-loop lag seen since the process started.",
            namespace=NAMESPACE,
            registry=self.registry,
        )

    def watch(self, store: SnapshotStore) -> StoreCollector:
        """Expose the store's state on this registry."""
        collector = StoreCollector(store)
        self.registry.register(collector)
        return collector


class StoreCollector(Collector):
    """Entities by kind, snapshot and source ages, and refresh outcomes, read at scrape time."""

    def __init__(self, store: SnapshotStore) -> None:
        self.store = store

    def collect(self) -> Iterator[Metric]:
        now = datetime.now(UTC)
        store = self.store
        entities = GaugeMetricFamily(
            f"{NAMESPACE}_entities", "Entities in the served snapshot, by kind.", labels=["kind"]
        )
        snapshot = store.snapshot
        for kind, count in (snapshot.counts_by_kind() if snapshot else {}).items():
            entities.add_metric([kind], count)
        yield entities
        yield GaugeMetricFamily(
            f"{NAMESPACE}_snapshot_present",
            "1 once a snapshot is served.",
            value=int(bool(snapshot)),
        )
        age = GaugeMetricFamily(
            f"{NAMESPACE}_source_data_age_seconds",
            "Seconds since each source's last successful read.",
            labels=["account", "region"],
        )
        outcomes = CounterMetricFamily(
            f"{NAMESPACE}_source_reads",
            "Reads of each source by outcome.",
            labels=["account", "region", "outcome"],
        )
        for source, status in sorted(store.statuses.items()):
            labels = [source.account_id, source.region]
            if status.last_success_at is not None:
                age.add_metric(labels, (now - status.last_success_at).total_seconds())
            outcomes.add_metric([*labels, "success"], status.successes)
            outcomes.add_metric([*labels, "failure"], status.failures)
        yield age
        yield outcomes


class HttpMetricsMiddleware:
    """Counts every HTTP response by its route template, so paths cannot explode the labels."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500

        async def record_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, record_status)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            self.metrics.http_requests.labels(template, str(status)).inc()


async def watch_loop_lag(metrics: Metrics, period: float = 0.1) -> None:
    """Sleep ``period`` again and again; any extra delay is time the loop was blocked."""
    worst = 0.0
    while True:
        started = time.perf_counter()
        await asyncio.sleep(period)
        lag = max(0.0, time.perf_counter() - started - period)
        metrics.loop_lag.observe(lag)
        if lag > worst:
            worst = lag
            metrics.loop_lag_max.set(worst)
