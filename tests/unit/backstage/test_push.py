"""The refresh pusher: which refs it sends for a change, how often, and what it does on failure.

Backstage is stood in for by httpx's MockTransport, which answers as the catalog API does (its
routes, its 404 for an unknown entity); the real thing is in tests/e2e/backstage.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from service.backstage import push
from service.backstage.client import BackstageClient
from service.backstage.push import RefreshPusher
from service.config import BackstageSettings, CatalogSettings
from service.model import SourceId
from service.snapshot.status import EntityChanges, RefreshOutcome

US = SourceId("123456789012", "us-east-1")
EU = SourceId("123456789012", "eu-west-1")
CORE = "url:http://svc/catalog/core.yaml"
ONE = "url:http://svc/entities.yaml"


class FakeCatalog:
    """Backstage's catalog API as far as the pusher calls it."""

    def __init__(self, location: str, known: set[str], fail: int = 0) -> None:
        self.location = location
        self.known = known
        self.fail = fail
        self.refreshed: list[str] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.headers.get("authorization") != "Bearer t0ken":
            return httpx.Response(401, json={"error": {"message": "no token"}})
        if request.method == "GET":
            return httpx.Response(
                200,
                json={
                    "kind": "Component",
                    "metadata": {"annotations": {push.MANAGED_BY_LOCATION: self.location}},
                },
            )
        ref = json.loads(request.content)["entityRef"]
        if self.fail:
            self.fail -= 1
            return httpx.Response(503)
        if ref not in self.known:
            return httpx.Response(404, json={"error": {"message": f"Entity {ref} not found"}})
        self.refreshed.append(ref)
        return httpx.Response(200)


def pusher(catalog: FakeCatalog, **settings: Any) -> tuple[RefreshPusher, list[str]]:
    options = BackstageSettings(base_url="http://backstage", token="t0ken", **settings)
    client = BackstageClient(options, transport=httpx.MockTransport(catalog))
    outcomes: list[str] = []
    return RefreshPusher(client, options, CatalogSettings(), on_outcome=outcomes.append), outcomes


def changed(*sources: SourceId, core: bool = False, first: bool = False) -> RefreshOutcome:
    return RefreshOutcome(
        started_at=datetime(2026, 1, 9, tzinfo=UTC),
        duration_seconds=0.1,
        failed_sources=(),
        published=True,
        changes=EntityChanges(changed=1, sources=frozenset(sources), core=core, first=first),
    )


async def settle(condition: Callable[[], bool]) -> None:
    for _ in range(400):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the pusher did not get there")


@pytest.fixture(autouse=True)
def quick_retry(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(push, "RETRY_AFTER_SECONDS", 0.05)


async def test_the_one_url_mode_refreshes_the_component_once_for_any_change() -> None:
    catalog = FakeCatalog(ONE, {"component:default/ecr-registry"})
    sender, outcomes = pusher(catalog)
    task = asyncio.create_task(sender.run())
    sender.changed(changed(US, EU, core=True))
    await settle(lambda: outcomes == ["ok"])
    assert catalog.refreshed == ["component:default/ecr-registry"]
    assert sender.mode == "one"
    task.cancel()


async def test_the_many_url_mode_refreshes_each_changed_sources_location() -> None:
    catalog = FakeCatalog(
        CORE,
        {"location:default/ecr-catalog-123456789012-us-east-1", "location:default/ecr-catalog"},
    )
    sender, outcomes = pusher(catalog)
    task = asyncio.create_task(sender.run())
    sender.changed(changed(US))
    await settle(lambda: outcomes == ["ok"])
    assert catalog.refreshed == ["location:default/ecr-catalog-123456789012-us-east-1"]
    # Only the catalog's own entities changed: the root Location.
    sender.changed(changed(core=True))
    await settle(lambda: len(outcomes) == 2)
    assert catalog.refreshed[-1] == "location:default/ecr-catalog"
    task.cancel()


async def test_a_source_backstage_does_not_know_yet_comes_in_through_the_root() -> None:
    catalog = FakeCatalog(CORE, {"location:default/ecr-catalog"})
    sender, outcomes = pusher(catalog)
    task = asyncio.create_task(sender.run())
    sender.changed(changed(EU))
    await settle(lambda: outcomes == ["not_found", "ok"])
    assert catalog.refreshed == ["location:default/ecr-catalog"]
    task.cancel()


async def test_changes_within_the_interval_share_one_later_request() -> None:
    catalog = FakeCatalog(ONE, {"component:default/ecr-registry"})
    sender, outcomes = pusher(catalog, refresh_min_interval_seconds=0.3)
    task = asyncio.create_task(sender.run())
    sender.changed(changed(US))
    await settle(lambda: len(outcomes) == 1)
    for _ in range(5):
        sender.changed(changed(US))
        await asyncio.sleep(0.02)
    await asyncio.sleep(0.1)
    assert len(catalog.refreshed) == 1, "a second request inside the interval"
    await settle(lambda: len(outcomes) == 2)
    await asyncio.sleep(0.5)
    assert len(catalog.refreshed) == 2
    task.cancel()


async def test_a_failure_is_retried_once_and_then_left_for_the_next_change() -> None:
    catalog = FakeCatalog(ONE, {"component:default/ecr-registry"}, fail=5)
    sender, outcomes = pusher(catalog, refresh_min_interval_seconds=0)
    task = asyncio.create_task(sender.run())
    sender.changed(changed(US))
    await settle(lambda: outcomes == ["failed"])
    await asyncio.sleep(0.2)
    assert catalog.fail == 3, "more than one retry"
    assert sender.last_error is not None and "503" in sender.last_error
    catalog.fail = 1
    sender.changed(changed(US))
    await settle(lambda: outcomes == ["failed", "ok"])
    task.cancel()


async def test_nothing_is_sent_for_the_first_snapshot_or_when_turned_off() -> None:
    catalog = FakeCatalog(ONE, {"component:default/ecr-registry"})
    sender, outcomes = pusher(catalog)
    sender.changed(changed(US, first=True))
    assert not sender.pending
    off, _ = pusher(catalog, refresh_on_change=False)
    off.changed(changed(US))
    assert not off.pending
    del outcomes


async def test_an_unreachable_backstage_is_counted_and_never_raises() -> None:
    options = BackstageSettings(base_url="http://127.0.0.1:9", token="t0ken")
    outcomes: list[str] = []
    sender = RefreshPusher(
        BackstageClient(options), options, CatalogSettings(), on_outcome=outcomes.append
    )
    task = asyncio.create_task(sender.run())
    sender.changed(changed(US))
    await settle(lambda: outcomes == ["failed"])
    assert sender.last_error is not None and "no answer" in sender.last_error
    assert "t0ken" not in sender.last_error
    task.cancel()


async def test_a_fleet_wide_change_goes_out_a_few_refs_an_interval(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(push, "MAX_REFS", 2)
    sources = [SourceId("123456789012", region) for region in ("a-1", "b-1", "c-1")]
    refs = {f"location:default/ecr-catalog-123456789012-{s.region}" for s in sources}
    catalog = FakeCatalog(CORE, refs)
    sender, outcomes = pusher(catalog, refresh_min_interval_seconds=0.3)
    task = asyncio.create_task(sender.run())
    sender.changed(changed(*sources))
    await settle(lambda: len(outcomes) == 2)
    await asyncio.sleep(0.1)
    assert len(catalog.refreshed) == 2, "more than MAX_REFS in one go"
    await settle(lambda: len(outcomes) == 3)
    assert set(catalog.refreshed) == refs
    task.cancel()
