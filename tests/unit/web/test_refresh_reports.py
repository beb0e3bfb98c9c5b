"""How a refresh is reported: the log line's level and words, and the refreshes metric."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import pytest

from service.snapshot.status import RefreshOutcome
from service.web.metrics import Metrics

STARTED = datetime(2026, 12, 2, 3, 0, tzinfo=UTC)


def outcome(**fields):  # type: ignore[no-untyped-def]
    base = {"started_at": STARTED, "duration_seconds": 0.2, "failed_sources": (), "published": True}
    return RefreshOutcome(**(base | fields))


def results(metrics: Metrics) -> dict[str, float]:
    return {
        sample.labels["result"]: sample.value
        for family in metrics.refreshes.collect()
        for sample in family.samples
        if sample.name.endswith("_total")
    }


def test_a_refresh_that_could_name_no_source_is_a_failure_logged_with_its_cause(
    caplog: pytest.LogCaptureFixture,
) -> None:
    metrics = Metrics()
    cause = (
        "cannot tell which account to read with ambient credentials in us-east-1: "
        "GetCallerIdentity in unknown/us-east-1 failed: NoCredentials: Unable to locate credentials"
    )
    with caplog.at_level(logging.INFO, logger="service.web.metrics"):
        metrics.refreshed(outcome(sources=0, unresolved=(cause,)))
    (record,) = caplog.records
    assert record.levelno == logging.WARNING
    assert record.getMessage().startswith("refresh failed: no source could be read (")
    assert cause in record.getMessage() and "aws.targets" in record.getMessage()
    assert results(metrics) == {"failed": 1.0}
    assert metrics.recent_refreshes[0]["result"] == "failed"


def test_every_source_failing_is_a_failure_and_some_failing_is_partial(
    caplog: pytest.LogCaptureFixture,
) -> None:
    metrics = Metrics()
    with caplog.at_level(logging.INFO, logger="service.web.metrics"):
        metrics.refreshed(outcome(sources=2, failed_sources=("a/us-east-1", "a/eu-west-1")))
        metrics.refreshed(outcome(sources=2, failed_sources=("a/us-east-1",)))
        metrics.refreshed(outcome(sources=2))
    assert [r.levelno for r in caplog.records] == [logging.WARNING, logging.INFO, logging.INFO]
    assert caplog.records[1].getMessage().startswith("refresh partial: 2 sources (1 failed)")
    assert results(metrics) == {"failed": 1.0, "partial": 1.0, "ok": 1.0}
