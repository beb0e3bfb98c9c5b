"""Backstage reading /catalog-info.yaml: nested Locations, one per source, with one failing.

Two accounts (one through assume-role) and three regions behind the fault proxy. Backstage
follows the root Location to the core entities and to each source's Location and shards.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from ...integration.test_sources import (
    A_REGIONS,
    ACCOUNT_A,
    ACCOUNT_B,
    B_REGIONS,
    ROLE_B,
    seed_two_accounts,
)
from ...support import (
    FaultProxy,
    MotoServer,
    start_moto,
    start_proxy,
    stop_process,
)
from .harness import Backstage, Service, eventually, running_backstage, running_service

pytestmark = pytest.mark.backstage


@dataclass
class Stack:
    moto: MotoServer
    proxy: FaultProxy
    service: Service
    backstage: Backstage


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("backstage-sources")
    moto = start_moto()
    proxy = start_proxy(moto.url)
    settings = {
        "aws": {
            "endpoint_url": proxy.url,
            "total_max_attempts": 1,
            "connect_timeout_seconds": 1,
            "read_timeout_seconds": 5,
            "targets": [
                {"regions": A_REGIONS, "account_id": ACCOUNT_A},
                {"regions": B_REGIONS, "account_id": ACCOUNT_B, "role_arn": ROLE_B},
            ],
        },
        "refresh": {"interval_seconds": 2, "initial_retry_seconds": 1},
        "catalog": {"shard_size": 10},
    }
    try:
        seed_two_accounts(moto)
        for index in range(30):
            moto.ecr("us-east-1").create_repository(repositoryName=f"bulk/r{index:02d}")
        # eu-west-1 is denied from the start: its URLs answer 503 and block nothing else.
        proxy.set(deny_regions=["eu-west-1"])
        with (
            running_service(tmp, settings) as service,
            running_backstage(tmp, service, "/catalog-info.yaml") as backstage,
        ):
            yield Stack(moto, proxy, service, backstage)
    finally:
        stop_process(proxy.process)
        stop_process(moto.process)


def test_healthy_sources_are_ingested_while_one_cannot_be_read(stack: Stack) -> None:
    expected = {ref for ref in stack.service.sources_refs() if "eu-west-1" not in ref}
    assert len(expected) == 3 + 33 + 2 + 2

    def ingested() -> set[str] | None:
        refs = set(stack.backstage.ingested())
        return refs if expected <= refs else None

    try:
        refs = eventually(ingested, 150, "Backstage to ingest the healthy sources")
    except AssertionError:
        missing = sorted(expected - set(stack.backstage.ingested()))
        raise AssertionError(f"missing {missing}\n{stack.backstage.log_tail()}") from None
    assert not any("eu-west-1" in ref for ref in refs - {"component:default/ecr-registry"})
    # Each repository came from one of its source's shard URLs.
    origins = {
        entity["metadata"]["annotations"]["backstage.io/managed-by-location"]
        for entity in stack.backstage.ingested().values()
        if entity["kind"] == "Resource"
    }
    assert all("/shards/" in origin for origin in origins)
    assert len(origins) > 5


def test_the_recovered_source_arrives_and_nothing_is_lost(stack: Stack) -> None:
    before = set(stack.backstage.ingested())
    stack.proxy.clear()
    expected = set(stack.service.sources_refs())

    def everything() -> bool:
        return expected <= set(stack.backstage.ingested())

    eventually(everything, 150, "Backstage to ingest the recovered source")
    assert before <= set(stack.backstage.ingested())
    # Now fail one region again, mid-flight: its entities stay in Backstage.
    stack.proxy.set(deny_regions=["ap-southeast-2"])
    eventually(
        lambda: any(
            s["region"] == "ap-southeast-2" and s["stale"]
            for s in stack.service.readiness()["sources"]
        ),
        30,
        "the service to see the failure",
    )
    deadline = time.monotonic() + 40
    while time.monotonic() < deadline:
        assert expected <= set(stack.backstage.ingested())
        time.sleep(2)
    # The recovered source kept its Location's target (./shards/1/0.yaml): nothing it emitted
    # ever came through two URLs.
    assert "conflicting entityRef" not in stack.backstage.log.read_text(errors="replace")
