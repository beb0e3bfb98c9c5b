"""Prometheus metrics: HTTP requests, AWS calls, cache lookups, refreshes, and the store's state.

Each app has its own CollectorRegistry, so several apps in one process (the tests) never clash.
The snapshot store knows nothing of Prometheus: a collector reads it when scraped.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter as Tally
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..snapshot.status import RefreshOutcome
from ..snapshot.store import SnapshotStore

__all__ = [
    "HttpMetricsMiddleware",
    "Metrics",
    "StoreCollector",
    "watch_loop_lag",
]

NAMESPACE = "ecr_catalog"
REFRESH_BUCKETS = (0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300)

log = logging.getLogger(__name__)


class Metrics:
    """The app's registry; also the reader's ReadObserver and the store's refresh reporter."""

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
        self.aws_calls = Counter(
            "aws_calls",
            "ECR API attempts by operation and outcome: ok, throttled, retried (another "
            "attempt follows), or the AWS error code.",
            ["operation", "outcome"],
            namespace=NAMESPACE,
            registry=self.registry,
        )
        self.cache_lookups = Counter(
            "cache_lookups",
            "Cache lookups by query kind and result (hit or miss).",
            ["kind", "result"],
            namespace=NAMESPACE,
            registry=self.registry,
        )
        self.refresh_duration = Histogram(
            "refresh_duration_seconds",
            "How long each refresh took, reading every source and publishing.",
            buckets=REFRESH_BUCKETS,
            namespace=NAMESPACE,
            registry=self.registry,
        )
        self.refreshes = Counter(
            "refreshes",
            "Refreshes by result: published (all sources read), partial (some failed and kept "
            "their last good data), refused (the snapshot failed validation).",
            ["result"],
            namespace=NAMESPACE,
            registry=self.registry,
        )
        self.events = Counter(
            "events",
            "POST /events/ecr bodies by ECR detail-type and outcome (accepted, ignored, rejected).",
            ["detail_type", "outcome"],
            namespace=NAMESPACE,
            registry=self.registry,
        )
        self._lookup_children: dict[tuple[str, bool], Any] = {}
        # Outcomes of AWS calls since the last refresh summary.
        self._calls_since_summary: Tally[str] = Tally()

    def aws_call(self, operation: str, outcome: str, times: int = 1) -> None:
        self.aws_calls.labels(operation, outcome).inc(times)
        self._calls_since_summary[outcome] += times

    def cache_lookup(self, kind: str, hit: bool, times: int = 1) -> None:
        # Called for every repository of every refresh: the labelled child is looked up once.
        child = self._lookup_children.get((kind, hit))
        if child is None:
            child = self._lookup_children[(kind, hit)] = self.cache_lookups.labels(
                kind, "hit" if hit else "miss"
            )
        child.inc(times)

    def refreshed(self, outcome: RefreshOutcome) -> None:
        """Observe one refresh and log its one-line summary."""
        result = (
            "refused" if not outcome.published else "partial" if outcome.failed_sources else "ok"
        )
        self.refresh_duration.observe(outcome.duration_seconds)
        self.refreshes.labels(result).inc()
        calls, self._calls_since_summary = self._calls_since_summary, Tally()
        attempts = sum(n for outcome_, n in calls.items() if outcome_ != "retried")
        changes = outcome.changes
        summary = {
            "result": result,
            "sources": outcome.sources,
            "failed_sources": len(outcome.failed_sources),
            "repositories": outcome.repositories,
            "calls": attempts,
            "throttles": calls["throttled"],
            "retries": calls["retried"],
            "duration_seconds": round(outcome.duration_seconds, 3),
            "added": changes.added if changes else 0,
            "removed": changes.removed if changes else 0,
            "changed": changes.changed if changes else 0,
        }
        log.info(
            "refresh %s: %d sources (%d failed), %d repositories, %d AWS calls (%d throttled, "
            "%d retried) in %.1f s; entities +%d -%d ~%d",
            result,
            summary["sources"],
            summary["failed_sources"],
            summary["repositories"],
            summary["calls"],
            summary["throttles"],
            summary["retries"],
            outcome.duration_seconds,
            summary["added"],
            summary["removed"],
            summary["changed"],
            extra={"refresh": summary},
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
        writes = CounterMetricFamily(
            f"{NAMESPACE}_state_writes",
            "Saves of a source's data to state_dir, by outcome (ok, failed).",
            labels=["outcome"],
        )
        for outcome in ("ok", "failed"):
            writes.add_metric([outcome], store.state_writes[outcome])
        yield writes
        discovery = store.discovery
        if discovery is not None:
            discoveries = CounterMetricFamily(
                f"{NAMESPACE}_discoveries",
                "Discoveries of the organisation's accounts, by outcome (ok, failed).",
                labels=["outcome"],
            )
            discoveries.add_metric(["ok"], discovery.discoveries)
            discoveries.add_metric(["failed"], discovery.failures)
            yield discoveries
            yield GaugeMetricFamily(
                f"{NAMESPACE}_organization_accounts",
                "Accounts of the organisation read (the roster), leaving ones included.",
                value=discovery.accounts,
            )


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
