"""Reuse by equality of a source's inputs (service/snapshot/catalogs.py), invisible in the
output."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime

from service.catalog.claims import Claimer, ClaimIndex
from service.catalog.inputs import SourceInputs
from service.config import CatalogSettings, PostureSettings, RefreshSettings
from service.reading import SourceListing
from service.snapshot.catalogs import Catalogs
from service.snapshot.store import SnapshotStore
from service.snapshot.types import Snapshot

from ..catalog_build import build_snapshot
from ..records import repository, source
from ..support import FakeReader

US = source(repository("team-a/api"), repository("team-a/web"))
EU = source(repository("shared/nginx", region="eu-west-1"), region="eu-west-1")


def store_for(reader: FakeReader) -> SnapshotStore:
    return SnapshotStore(reader, CatalogSettings(), RefreshSettings())


def test_inputs_of_the_same_objects_are_equal_and_any_change_is_not() -> None:
    options = CatalogSettings()
    inputs = SourceInputs.of(US, options)
    # A source read again with nothing new: the same records, a new read time.
    assert SourceInputs.of(replace(US, read_at=datetime(2030, 1, 1, tzinfo=UTC)), options) == inputs
    one_more = replace(US, repositories=(*US.repositories, repository("x")))
    claims = ClaimIndex.of([Claimer("component:default/api", None, ("team-a/api",))])
    posture = PostureSettings()
    judged = SourceInputs.of(US, options, posture=(posture, date(2026, 1, 1)))
    for different in (
        SourceInputs.of(one_more, options),
        SourceInputs.of(US, options, stale_since=datetime(2026, 1, 1, tzinfo=UTC)),
        SourceInputs.of(US, CatalogSettings(owner="team-x")),
        SourceInputs.of(US, options, claims=claims),
        judged,
        replace(judged, day=date(2026, 1, 2)),
    ):
        assert different != inputs
    assert replace(judged, day=date(2026, 1, 2)) != judged
    # Without posture the day is no input: a new day builds nothing.
    assert inputs.day is None
    # Claims that touch none of its repositories are no input either.
    elsewhere = ClaimIndex.of([Claimer("component:default/x", None, ("shared/nginx",))])
    assert SourceInputs.of(US, options, claims=elsewhere) == inputs


async def test_a_source_whose_inputs_are_equal_keeps_its_catalog_and_the_bytes_are_the_same() -> (
    None
):
    repos = [repository(f"svc/r{index:03d}") for index in range(30)]
    options = CatalogSettings(shard_size=10)
    listing = SourceListing((US.source, EU.source))
    now = datetime(2026, 1, 1, tzinfo=UTC)
    catalogs = Catalogs()

    def build(records: list, into: Catalogs) -> Snapshot:
        both = {US.source: source(*records), EU.source: EU}
        return build_snapshot(listing, both, {}, options, now, catalogs=into)

    first = build(repos, catalogs)
    kept = catalogs._kept[EU.source]
    same = build(repos, catalogs)
    # Equal inputs: the same catalogs, and so the very same snapshot.
    assert same is first and catalogs._kept[EU.source] is kept

    changed_repos = [*repos[:-1], repository("svc/r029", tags={"team": "other"})]
    changed = build(changed_repos, catalogs)
    fresh = build(changed_repos, Catalogs())
    # Only the changed source was built again.
    assert catalogs._kept[EU.source] is kept
    assert changed.sources[EU.source] is first.sources[EU.source]
    assert changed.sources[US.source] is not first.sources[US.source]
    # Reuse is invisible in the output: byte for byte what a build from nothing gives.
    assert changed.yaml.body == fresh.yaml.body and changed.yaml.gzipped == fresh.yaml.gzipped
    assert changed.json.get().body == fresh.json.get().body
    for ours, theirs in zip(
        changed.sources[US.source].shards.get(),
        fresh.sources[US.source].shards.get(),
        strict=True,
    ):
        assert (ours.etag, ours.gzipped) == (theirs.etag, theirs.gzipped)


async def test_a_kept_catalog_does_not_keep_older_snapshots_alive() -> None:
    import gc
    import weakref

    options = CatalogSettings(shard_size=10)
    listing = SourceListing((US.source, EU.source))
    records = source(*(repository(f"svc/r{i:03d}") for i in range(30)))
    now = datetime(2026, 1, 1, tzinfo=UTC)
    catalogs = Catalogs()
    first = build_snapshot(
        listing, {US.source: records, EU.source: EU}, {}, options, now, catalogs=catalogs
    )
    first.sources[US.source].shards.get()
    gone = weakref.ref(first)
    latest = first
    for index in range(3):
        eu = source(repository(f"shared/r{index}", region="eu-west-1"), region="eu-west-1")
        both = {US.source: records, EU.source: eu}
        latest = build_snapshot(listing, both, {}, options, now, catalogs=catalogs)
    assert latest.sources[US.source] is first.sources[US.source]
    del first
    gc.collect()
    assert gone() is None
    # The latest still serves the shards the first rendered.
    assert len(latest.sources[US.source].shards.get()) == latest.sources[US.source].shard_count


async def test_a_refresh_that_reads_the_same_records_builds_nothing() -> None:
    reader = FakeReader(US, EU)
    store = store_for(reader)
    await store.refresh()
    first = store.snapshot
    await store.refresh()
    # Same record objects in: the current snapshot stands, not even rebuilt.
    assert store.snapshot is first
    reader.answers[US.source] = source(repository("team-a/api"), region="us-east-1")
    await store.refresh()
    assert store.snapshot is not first
    assert store.last_refresh is not None and store.last_refresh.changes is not None
    assert store.last_refresh.changes.removed == 1
