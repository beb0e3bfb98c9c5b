"""/metrics scraped and parsed while refreshes run against moto behind a throttling proxy,
and the one-line refresh summary, as text and as JSON."""

from __future__ import annotations

import json
import logging
from collections import defaultdict

import pytest
from prometheus_client.parser import text_string_to_metric_families

from service.config import Settings
from service.demo import DemoRepository, seed_registry
from service.logs import configure_logging

from ..support import FaultProxy, MotoServer
from .test_sources import serving, until

ACCOUNT = "123456789012"


def scrape(text: str) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    """Samples by name, then by sorted labels: the parser rejects malformed exposition."""
    samples: dict[str, dict[tuple[tuple[str, str], ...], float]] = defaultdict(dict)
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[sample.name][tuple(sorted(sample.labels.items()))] = sample.value
    return samples


def total(samples: dict[tuple[tuple[str, str], ...], float], **labels: str) -> float:
    return sum(v for k, v in samples.items() if set(labels.items()) <= set(k))


async def test_metrics_count_calls_throttles_retries_cache_and_refreshes(
    moto: MotoServer, proxy: FaultProxy, caplog: pytest.LogCaptureFixture
) -> None:
    seed_registry(
        moto.url,
        [DemoRepository(name=f"svc/app-{i}", region="us-east-1") for i in range(12)],
    )
    # Two calls a second per operation: every refresh runs into ThrottlingException.
    proxy.set(throttle_rate=2, throttle_burst=2)
    settings = Settings(
        aws={
            "endpoint_url": proxy.url,
            "total_max_attempts": 8,
            "targets": [{"regions": ["us-east-1"], "account_id": ACCOUNT}],
        },
        refresh={"interval_seconds": 0.5, "initial_retry_seconds": 0.2},
    )
    caplog.set_level(logging.INFO, logger="service.web.metrics")
    async with serving(settings) as client:

        async def two_refreshes() -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
            response = await client.get("/metrics")
            assert response.status_code == 200
            samples = scrape(response.text)
            done = total(samples["ecr_catalog_refresh_duration_seconds_count"])
            return samples if done >= 2 else {}

        # Scraped while refreshes run, until two have finished.
        samples = await until(two_refreshes, within=90)
        first = await client.get("/entities.yaml")
        etag = first.headers["etag"]
        assert (
            await client.get("/entities.yaml", headers={"If-None-Match": etag})
        ).status_code == 304
        samples = scrape((await client.get("/metrics")).text)

    calls = samples["ecr_catalog_aws_calls_total"]
    assert total(calls, outcome="ok") >= 12 * 2
    # No policy is an answer, counted by its code.
    assert (
        total(calls, operation="GetLifecyclePolicy", outcome="LifecyclePolicyNotFoundException")
        >= 12
    )
    assert total(calls, outcome="throttled") > 0
    assert total(calls, outcome="retried") > 0
    assert total(calls, operation="DescribeImages", outcome="ok") >= 12
    stats = proxy.stats()
    assert total(calls, outcome="throttled") == sum(
        stats["injected"].get(k, 0) for k in ("throttle",)
    )

    lookups = samples["ecr_catalog_cache_lookups_total"]
    # The first refresh misses every repository's images; the second finds them cached.
    assert total(lookups, kind="images", result="miss") >= 12
    assert total(lookups, kind="images", result="hit") >= 12
    assert total(lookups, kind="tags", result="hit") >= 12

    assert total(samples["ecr_catalog_refreshes_total"]) >= 2
    assert (
        total(samples["ecr_catalog_http_requests_total"], route="/entities.yaml", status="304") == 1
    )
    assert samples["ecr_catalog_entities"][(("kind", "resource"),)] == 13

    summaries = [r for r in caplog.records if r.getMessage().startswith("refresh ")]
    assert summaries, "no refresh summary was logged"
    cold = summaries[0].refresh  # type: ignore[attr-defined]
    assert cold["repositories"] == 12 and cold["sources"] == 1
    assert cold["added"] == 16  # Domain, System, Component, registry, 12 repositories
    assert cold["throttles"] > 0 and cold["calls"] >= 36
    assert "12 repositories" in summaries[0].getMessage()


def test_json_logs_carry_the_summary_fields_and_no_secrets(
    capsys: pytest.CaptureFixture[str],
) -> None:
    root = logging.getLogger()
    # Put back afterwards, not configured again: a handler made now would write to this
    # test's captured stderr, which pytest closes, for every later test's log records.
    handlers, level = root.handlers[:], root.level
    configure_logging("json")
    try:
        logging.getLogger("service.metrics").info(
            "refresh ok", extra={"refresh": {"calls": 3, "throttles": 1}}
        )
        settings = Settings(server={"refresh_token": "s3cret-token"}, events={"token": "ev-token"})
        logging.getLogger("service").info("settings: %s", settings)
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert lines[0]["message"] == "refresh ok"
    assert lines[0]["level"] == "INFO" and lines[0]["logger"] == "service.metrics"
    assert lines[0]["refresh"] == {"calls": 3, "throttles": 1}
    assert "timestamp" in lines[0]
    assert "s3cret-token" not in lines[1]["message"] and "ev-token" not in lines[1]["message"]
