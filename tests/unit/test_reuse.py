"""The reuse rule (service/reuse.py), at each of its three steps: invisible in the output."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from service.config import CatalogSettings, RefreshSettings
from service.reading import SourceListing
from service.reuse import BuildInputs, RecordLedger
from service.snapshot.build import build_snapshot
from service.snapshot.store import SnapshotStore

from ..records import repository, source
from ..support import FakeReader

US = source(repository("team-a/api"), repository("team-a/web"))
EU = source(repository("shared/nginx", region="eu-west-1"), region="eu-west-1")


def store_for(reader: FakeReader) -> SnapshotStore:
    return SnapshotStore(reader, CatalogSettings(), RefreshSettings())


def test_an_equal_record_is_the_object_seen_before() -> None:
    ledger = RecordLedger()
    first = repository("team/app", tags={"k": "v"})
    assert ledger.settle(first) is first
    again = repository("team/app", tags={"k": "v"})
    assert again is not first and again == first
    assert ledger.settle(again) is first
    changed = repository("team/app", tags={"k": "other"})
    assert ledger.settle(changed) is changed
    # The changed record is now the one an equal record settles to.
    assert ledger.settle(repository("team/app", tags={"k": "other"})) is changed
    ledger.forget(changed.arn)
    back = repository("team/app", tags={"k": "other"})
    assert ledger.settle(back) is back and len(ledger) == 1
    # A repository deleted twice (two events for one deletion) is forgotten once, quietly.
    ledger.forget("arn:aws:ecr:us-east-1:123456789012:repository/never-seen")
    assert len(ledger) == 1


def test_inputs_of_the_same_objects_are_equal_and_any_change_is_not() -> None:
    options = CatalogSettings()
    listing = SourceListing((US.source, EU.source))
    records = {US.source: US, EU.source: EU}
    inputs = BuildInputs.of(options, listing, records, {}, {})
    # A source read again with nothing new: the same records, a new read time.
    reread = {US.source: replace(US, read_at=datetime(2030, 1, 1, tzinfo=UTC)), EU.source: EU}
    assert BuildInputs.of(options, listing, reread, {}, {}) == inputs
    one_more = {**records, US.source: replace(US, repositories=(*US.repositories, repository("x")))}
    stale = {EU.source: datetime(2026, 1, 1, tzinfo=UTC)}
    for different in (
        BuildInputs.of(options, listing, one_more, {}, {}),
        BuildInputs.of(options, listing, records, stale, {}),
        BuildInputs.of(options, listing, records, {}, {EU.source: "AccessDenied"}),
        BuildInputs.of(CatalogSettings(owner="team-x"), listing, records, {}, {}),
        BuildInputs.of(options, SourceListing((US.source,)), records, {}, {}),
    ):
        assert different != inputs


async def test_a_rebuild_reuses_unchanged_documents_and_bodies_and_renders_the_same_bytes() -> None:
    repos = [repository(f"svc/r{index:03d}") for index in range(30)]
    options = CatalogSettings(shard_size=10)
    listing = SourceListing((US.source,))
    now = datetime(2026, 1, 1, tzinfo=UTC)

    def build(records: list, previous: object = None) -> object:
        return build_snapshot(
            listing, {US.source: source(*records)}, {}, options, now, previous=previous
        )

    first = build(repos)
    same = build(repos, previous=first)
    assert same.yaml is first.yaml
    assert all(a is b for a, b in zip(same.entities, first.entities, strict=True))

    changed_repos = [*repos[:-1], repository("svc/r029", tags={"team": "other"})]
    changed = build(changed_repos, previous=first)
    fresh = build(changed_repos)
    # Reuse is invisible in the output: byte for byte what a build from nothing gives.
    assert changed.yaml.body == fresh.yaml.body and changed.yaml.gzipped == fresh.yaml.gzipped
    assert changed.json.get().body == fresh.json.get().body
    for ours, theirs in zip(
        changed.sources[US.source].shards.get(),
        fresh.sources[US.source].shards.get(),
        strict=True,
    ):
        assert (ours.etag, ours.gzipped) == (theirs.etag, theirs.gzipped)
    # Only the changed entity was rendered again; every document is now a view into the new
    # body, so the old body is not kept alive by the documents taken over from it.
    new_items = [
        item.name
        for item, old in zip(changed.entities, first.entities, strict=True)
        if item.json_document is not old.json_document
    ]
    assert new_items == ["svc--r029.us-east-1.123456789012"]
    assert changed.yaml is not first.yaml
    for item in changed.entities:
        assert isinstance(item.yaml_document, memoryview)
        assert item.yaml_document.obj is changed.yaml.body


async def test_unrendered_deferred_bodies_do_not_keep_older_snapshots_alive() -> None:
    import gc
    import weakref

    options = CatalogSettings(shard_size=10)
    listing = SourceListing((US.source,))
    records = {US.source: source(*(repository(f"svc/r{i:03d}") for i in range(30)))}
    now = datetime(2026, 1, 1, tzinfo=UTC)
    first = build_snapshot(listing, records, {}, options, now)
    first.sources[US.source].shards.get()
    gone = weakref.ref(first)
    latest = first
    for _ in range(3):
        latest = build_snapshot(listing, records, {}, options, now, previous=latest)
    del first
    gc.collect()
    assert gone() is None
    # The latest still serves shards equal to the first's, rendered or reused.
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
