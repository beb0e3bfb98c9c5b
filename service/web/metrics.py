"""Prometheus metrics: HTTP requests, AWS calls, cache lookups, refreshes, and the store's state.

Each app has its own CollectorRegistry, so several apps in one process (the tests) never clash.
The snapshot store knows nothing of Prometheus: a collector reads it when scraped.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter as Tally
from collections import deque
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from ..snapshot.status import RefreshOutcome
from ..snapshot.store import SnapshotStore
from .events import IMAGE_ACTION, IMAGE_SCAN

__all__ = [
    "Metrics",
    "StoreCollector",
    "watch_loop_lag",
]

NAMESPACE = "ecr_catalog"
RECENT_REFRESHES = 10
REFRESH_BUCKETS = (0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300)
# The detail_type label's values besides "other": the events acted on, and "unknown" for a
# body that is not an event at all.
EVENT_DETAIL_TYPES = frozenset((IMAGE_ACTION, IMAGE_SCAN, "unknown"))

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
            "Refreshes by result: ok (every source read), partial (some failed and kept "
            "their last good data), failed (no source could be read, or even named: "
            "credentials, STS), refused (the snapshot failed validation).",
            ["result"],
            namespace=NAMESPACE,
            registry=self.registry,
        )
        self.events = Counter(
            "events",
            "POST /events/ecr bodies by ECR detail-type (the image events; any other is "
            '"other", an unreadable body "unknown") and outcome (accepted, ignored, rejected).',
            ["detail_type", "outcome"],
            namespace=NAMESPACE,
            registry=self.registry,
        )
        self.filtered_renders = Counter(
            "filtered_renders",
            "Filtered views rendered (entities and posture with filters): each once while "
            "many ask for it, again when it is no longer kept.",
            namespace=NAMESPACE,
            registry=self.registry,
        )
        self.filtered_kept_bytes = Gauge(
            "filtered_kept_bytes",
            "Bytes of the filtered bodies kept for reuse (at most server.filtered_cache_bytes).",
            namespace=NAMESPACE,
            registry=self.registry,
        )
        self.backstage_refreshes = Counter(
            "backstage_refresh",
            "Refresh requests sent to Backstage after a change, by outcome: ok, not_found (an "
            "entity Backstage does not have), unauthorized, failed (after one retry).",
            ["outcome"],
            namespace=NAMESPACE,
            registry=self.registry,
        )
        self.backstage_claims_reads = Counter(
            "backstage_claims_reads",
            "Reads of the Backstage entities that claim repositories, by outcome: ok, failed "
            "(the last claims are kept).",
            ["outcome"],
            namespace=NAMESPACE,
            registry=self.registry,
        )
        self._lookup_children: dict[tuple[str, bool], Any] = {}
        # The summaries of the last refreshes, newest first, for the operator page.
        self.recent_refreshes: deque[dict[str, Any]] = deque(maxlen=RECENT_REFRESHES)
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

    def event(self, detail_type: str, outcome: str) -> None:
        """One POST /events/ecr body; a detail-type outside the fixed set counts as ``other``,
        since the label comes from a request body (one label per distinct value otherwise)."""
        label = detail_type if detail_type in EVENT_DETAIL_TYPES else "other"
        self.events.labels(label, outcome).inc()

    def backstage_refresh(self, outcome: str) -> None:
        self.backstage_refreshes.labels(outcome).inc()

    def backstage_claims_read(self, outcome: str) -> None:
        self.backstage_claims_reads.labels(outcome).inc()

    def refreshed(self, outcome: RefreshOutcome) -> None:
        """Observe one refresh and log its one-line summary."""
        if not outcome.published:
            result = "refused"
        elif outcome.read_nothing:
            result = "failed"
        else:
            result = "partial" if outcome.failed_sources else "ok"
        self.refresh_duration.observe(outcome.duration_seconds)
        self.refreshes.labels(result).inc()
        calls, self._calls_since_summary = self._calls_since_summary, Tally()
        attempts = sum(n for outcome_, n in calls.items() if outcome_ != "retried")
        changes = outcome.changes
        summary = {
            "started_at": outcome.started_at,
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
        logged = {"refresh": {k: v for k, v in summary.items() if k != "started_at"}}
        self.recent_refreshes.appendleft(summary | {"error": outcome.error})
        if result == "failed":
            reasons = [*outcome.unresolved, *outcome.failed_sources]
            shown = "; ".join(reasons[:5]) + (
                f"; {len(reasons) - 5} more" if len(reasons) > 5 else ""
            )
            log.warning(
                "refresh failed: no source could be read (%s); check the AWS credentials "
                "(AWS_PROFILE or AWS_* variables, IRSA or Pod Identity), aws.targets and the "
                "STS endpoint (aws.endpoint_urls.sts); /readyz has each source's last error",
                shown,
                extra=logged,
            )
            return
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
            extra=logged,
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
        failures = GaugeMetricFamily(
            f"{NAMESPACE}_posture_failures",
            "Repositories that fail each posture check, by check and owner (docs/posture.md).",
            labels=["check", "owner"],
        )
        for (check, owner), count in (snapshot.posture_failures if snapshot else {}).items():
            failures.add_metric([check, owner], count)
        yield failures
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
        # Per source like the two above (the sources read: a bounded, configured set); 0 when
        # nothing is held, so that the alert on it always evaluates.
        held = GaugeMetricFamily(
            f"{NAMESPACE}_source_removals_held",
            "Repositories a held read of each source would remove (0: none held); its last "
            "good data is served until confirmed (docs/removals.md).",
            labels=["account", "region"],
        )
        for source, status in sorted(store.statuses.items()):
            labels = [source.account_id, source.region]
            if status.last_success_at is not None:
                age.add_metric(labels, (now - status.last_success_at).total_seconds())
            outcomes.add_metric([*labels, "success"], status.successes)
            outcomes.add_metric([*labels, "failure"], status.failures)
            held.add_metric(labels, status.held.removed if status.held else 0)
        yield age
        yield outcomes
        yield held
        writes = CounterMetricFamily(
            f"{NAMESPACE}_state_writes",
            "Saves of a source's data to state_dir, by outcome (ok, failed).",
            labels=["outcome"],
        )
        for outcome in ("ok", "failed"):
            writes.add_metric([outcome], store.state_writes[outcome])
        yield writes
        discovery = store.discovery
        # Always there (zero without aws.organization), so that alerts on it always evaluate.
        discoveries = CounterMetricFamily(
            f"{NAMESPACE}_discoveries",
            "Discoveries of the organisation's accounts, by outcome (ok, failed).",
            labels=["outcome"],
        )
        discoveries.add_metric(["ok"], discovery.discoveries if discovery else 0)
        discoveries.add_metric(["failed"], discovery.failures if discovery else 0)
        yield discoveries
        if discovery is not None:
            yield GaugeMetricFamily(
                f"{NAMESPACE}_organization_accounts",
                "Accounts of the organisation read (the roster), leaving ones included.",
                value=discovery.accounts,
            )


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
