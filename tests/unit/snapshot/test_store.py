"""The snapshot store: single flight, last good data, nothing partial."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import yaml

from service.catalog.claims import Claimer, ClaimIndex
from service.config import CatalogSettings, PostureSettings, RefreshSettings
from service.errors import EcrError
from service.reading import SourceListing
from service.snapshot.status import RefreshOutcome
from service.snapshot.store import SnapshotStore
from service.snapshot.types import Snapshot

from ...catalog_build import build_catalog, build_snapshot, validate_entities
from ...records import repository, source
from ...support import FakeReader, until_true

US = source(repository("team-a/api"), repository("team-a/web"))
EU = source(repository("shared/nginx", region="eu-west-1"), region="eu-west-1")
REF_API = "resource:default/team-a--api.us-east-1.123456789012"


def store_for(reader: FakeReader, **refresh: float) -> SnapshotStore:
    return SnapshotStore(reader, CatalogSettings(), RefreshSettings(**refresh))


def denied(region: str) -> EcrError:
    return EcrError("123456789012", region, "describe_repositories", "AccessDeniedException", "no")


def names(store: SnapshotStore) -> list[str]:
    assert store.snapshot is not None
    return [item.name for item in store.snapshot.entities]


async def test_a_refresh_publishes_a_rendered_snapshot() -> None:
    store = store_for(FakeReader(US, EU))
    outcome = await store.refresh()
    assert outcome.published and outcome.failed_sources == ()
    assert store.snapshot is not None
    assert store.snapshot.counts_by_kind() == {
        "component": 1,
        "domain": 1,
        "resource": 5,
        "system": 1,
    }
    assert store.snapshot.yaml.body.count(b"\n---\n") + 1 == 8


async def test_no_snapshot_until_every_source_has_been_read_once() -> None:
    reader = FakeReader(US, EU)
    reader.answers[EU.source] = denied("eu-west-1")
    store = store_for(reader)
    outcome = await store.refresh()
    assert store.snapshot is not None and not store.snapshot.complete
    assert "no data yet for 123456789012/eu-west-1" in (outcome.error or "")
    assert list(store.snapshot.sources) == [US.source]


async def test_a_failing_source_keeps_its_last_good_data() -> None:
    reader = FakeReader(US, EU)
    store = store_for(reader)
    await store.refresh()
    before = names(store)
    reader.answers[EU.source] = denied("eu-west-1")
    reader.answers[US.source] = source(repository("team-a/api"))
    outcome = await store.refresh()
    assert outcome.failed_sources == ("123456789012/eu-west-1",)
    after = names(store)
    assert "shared--nginx.eu-west-1.123456789012" in after
    assert set(before) - set(after) == {"team-a--web.us-east-1.123456789012"}
    assert store.statuses[EU.source].last_error is not None
    assert store.statuses[EU.source].last_success_at is not None


async def test_concurrent_refreshes_share_one_run() -> None:
    reader = FakeReader(US)
    reader.gate = asyncio.Event()
    store = store_for(reader)
    first = asyncio.create_task(store.refresh())
    second = asyncio.create_task(store.refresh())
    # The read is held at the gate; both tasks ran (in order) before the poll's first sleep ended.
    await until_true(lambda: reader.reads == 1, "the first read")
    reader.gate.set()
    assert await first is await second
    assert reader.reads == 1


async def test_a_hung_source_is_abandoned_at_the_deadline() -> None:
    reader = FakeReader(US)
    reader.gate = asyncio.Event()
    store = store_for(reader, deadline_seconds=0.05)
    await store.refresh()
    assert store.snapshot is not None and not store.snapshot.complete
    assert "did not finish" in (store.statuses[US.source].last_error or "")


async def test_an_unchanged_refresh_keeps_the_same_etag() -> None:
    store = store_for(FakeReader(US, EU))
    await store.refresh()
    assert store.snapshot is not None
    first = store.snapshot
    await store.refresh()
    assert store.snapshot is first


async def test_an_invalid_repository_entity_is_left_out_and_counted() -> None:
    build = build_catalog([US], CatalogSettings())
    bad = dict(build.entities[-1], status={"x": 1})
    outcome = validate_entities([*build.entities[:-1], bad], build.origins)
    assert [r.origin for r in outcome.rejected] == [build.origins[-1]]


async def test_invalid_structural_entities_refuse_the_whole_snapshot() -> None:
    reader = FakeReader(US)
    store = store_for(reader)
    await store.refresh()
    good = store.snapshot
    # Config validation refuses such an owner; the validator is the last line of defence.
    store.options = CatalogSettings.model_construct(
        **{**CatalogSettings().model_dump(), "owner": "a/b/c"}
    )
    outcome = await store.refresh()
    assert not outcome.published
    assert "owner" in (outcome.error or "")
    assert store.snapshot is good


async def test_adding_a_repository_changes_exactly_one_shard_body() -> None:
    repos = [repository(f"svc/r{index:03d}") for index in range(60)]
    options = CatalogSettings(shard_size=10)
    listing = SourceListing((US.source,))
    now = datetime(2026, 1, 1, tzinfo=UTC)

    def shards(records: list) -> tuple:
        snapshot = build_snapshot(listing, {US.source: source(*records)}, {}, options, now)
        return snapshot.sources[US.source].shards.get()

    before = shards(repos)
    after = shards([*repos, repository("svc/new")])
    assert len(before) == len(after)
    changed = [i for i, (a, b) in enumerate(zip(before, after, strict=True)) if a.etag != b.etag]
    assert len(changed) == 1


async def test_a_stale_source_is_marked_on_its_entities_only() -> None:
    reader = FakeReader(US, EU)
    store = store_for(reader)
    await store.refresh()
    reader.answers[EU.source] = denied("eu-west-1")
    await store.refresh()
    assert store.snapshot is not None
    stale = store.snapshot.stale_sources
    assert list(stale) == [EU.source]
    key = "ecr-catalog.io/last-successful-read-at"
    marked = [
        item.name
        for item in store.snapshot.entities
        if key in yaml.safe_load(bytes(item.yaml_document))["metadata"].get("annotations", {})
    ]
    assert sorted(marked) == ["ecr-123456789012-eu-west-1", "shared--nginx.eu-west-1.123456789012"]


class FakePeer:
    """The store's Peer (service.snapshot.peers), as the Backstage link is."""

    def __init__(self) -> None:
        self.current = ClaimIndex()
        self.published_to: list[tuple[RefreshOutcome, Snapshot | None]] = []

    def published(self, outcome: RefreshOutcome, snapshot: Snapshot | None) -> None:
        self.published_to.append((outcome, snapshot))

    def claims(self) -> ClaimIndex:
        return self.current


async def test_new_claims_are_published_and_equal_ones_build_nothing() -> None:
    store = store_for(FakeReader(US))
    peer = store.peer = FakePeer()
    await store.refresh()
    before = store.snapshot
    assert before is not None
    assert peer.published_to == [(store.last_refresh, before)]
    claims = ClaimIndex.of(
        [Claimer("component:default/api", "group:default/team-c", ("team-a/api",))]
    )
    peer.current = claims
    store.claims_changed()
    assert store.refresh_pending
    await until_true(lambda: store.snapshot is not before, "the claims published")
    assert store.snapshot is not None
    repo = yaml.safe_load(bytes(store.snapshot.by_ref[REF_API].yaml_document))
    assert repo["spec"]["owner"] == "group:default/team-c"
    assert repo["spec"]["dependencyOf"] == ["component:default/api"]
    assert store.snapshot.claimed == 1
    # The same claims again change nothing (the reader tells the store of changes only).
    peer.current = ClaimIndex.of(list(claims.claimers))
    published = store.snapshot
    await store.refresh()
    assert store.snapshot is published


async def test_posture_is_judged_on_the_build_day_and_a_new_day_rebuilds() -> None:
    now = [datetime(2026, 1, 9, 12, tzinfo=UTC)]
    store = SnapshotStore(
        FakeReader(US),
        CatalogSettings(),
        RefreshSettings(),
        # Pulled on 2026-01-09 (tests/records.py): stale once a whole day has passed since.
        posture=PostureSettings(stale_pull_days=1),
        clock=lambda: now[0],
    )
    await store.refresh()
    first = store.snapshot
    assert first is not None
    repo = yaml.safe_load(bytes(first.by_ref[REF_API].yaml_document))
    assert repo["metadata"]["annotations"]["ecr-catalog.io/posture"] == "fail"
    assert first.posture_failures[("scanning", "group:default/platform-team")] == 2
    assert first.by_ref[REF_API].posture == "fail"
    assert "scanning" in first.by_ref[REF_API].posture_failures
    await store.refresh()
    assert store.snapshot is first, "the same day and the same records built again"
    now[0] = datetime(2026, 1, 11, 1, tzinfo=UTC)
    await store.refresh()
    # A new day is a new input: built again, and the verdicts moved with the day.
    assert store.snapshot is not None and store.snapshot is not first
    repo = yaml.safe_load(bytes(store.snapshot.by_ref[REF_API].yaml_document))
    assert "stale" in repo["metadata"]["annotations"]["ecr-catalog.io/posture-failures"]
    assert "stale" not in first.by_ref[REF_API].posture_failures
