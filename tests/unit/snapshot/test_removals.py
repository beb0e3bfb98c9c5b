"""Removals too large to believe: the pure decision, and the store's holds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.config import CatalogSettings, RefreshSettings
from service.model import SourceId
from service.snapshot.persist import StateDir
from service.snapshot.removals import HOLDS_FILE, judge_removal, parse_source
from service.snapshot.store import SnapshotStore

from ...records import repository, source
from ...support import FakeReader

US = SourceId("123456789012", "us-east-1")
T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


def arns(count: int, start: int = 0) -> set[str]:
    return {f"arn:aws:ecr:us-east-1:123456789012:repository/r{i}" for i in range(start, count)}


@pytest.mark.parametrize(
    ("before", "after", "too_large"),
    [
        (20, 10, False),  # exactly 50% is not more than 50%
        (20, 9, True),  # 11 of 20
        (10, 1, False),  # 90%, but 9 is fewer than 10
        (10, 0, True),  # exactly 10, all of them: an empty read of a source
        (12, 2, True),  # exactly 10, and more than half
        (0, 0, False),  # nothing to remove
        (100, 100, False),
    ],
)
def test_a_removal_is_too_large_above_the_share_and_from_the_count(
    before: int, after: int, too_large: bool
) -> None:
    verdict = judge_removal(arns(before), arns(after), 50, 10)
    assert verdict.too_large is too_large
    assert (verdict.before, verdict.removed) == (before, before - after)


def test_only_repositories_that_go_count_not_new_ones() -> None:
    # 11 of 20 go while 30 arrive: still 11 removed of 20.
    verdict = judge_removal(arns(20), arns(9) | arns(60, start=30), 50, 10)
    assert (verdict.removed, verdict.too_large) == (11, True)


@given(
    before=st.integers(0, 300),
    kept=st.integers(0, 300),
    percent=st.floats(0, 100),
    least=st.integers(1, 50),
)
def test_the_verdict_is_the_rule_in_words(
    before: int, kept: int, percent: float, least: int
) -> None:
    kept = min(kept, before)
    verdict = judge_removal(arns(before), arns(kept), percent, least)
    removed = before - kept
    assert verdict.too_large == (removed >= least and removed / before * 100 > percent)
    # 100 turns the hold off: no removal is more than all of them.
    assert not judge_removal(arns(before), arns(kept), 100, least).too_large


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("123456789012/us-east-1", US),
        ("123456789012/us-gov-west-1", SourceId("123456789012", "us-gov-west-1")),
        ("123456789012/us-east-1\n", None),
        ("12345678901/us-east-1", None),
        ("123456789012", None),
        ("123456789012/", None),
        ("123456789012/us-east-1/x", None),
        ("١٢٣٤٥٦٧٨٩٠١٢/us-east-1", None),
        ("123456789012/US-EAST-1", None),
    ],
)
def test_a_source_is_named_as_account_slash_region(text: str, parsed: SourceId | None) -> None:
    assert parse_source(text) == parsed


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


FULL = source(*(repository(f"svc/r{i:02d}") for i in range(20)))
# Permissions lost on a path: 15 of the 20 are no longer listed.
SHRUNK = source(*(repository(f"svc/r{i:02d}") for i in range(5)))


def store_for(
    reader: FakeReader, clock: Clock, state: Path | None = None, **catalog: float
) -> SnapshotStore:
    return SnapshotStore(
        reader,
        CatalogSettings(**catalog),
        RefreshSettings(),
        StateDir(state) if state else None,
        clock=clock,
    )


def served(store: SnapshotStore) -> set[str]:
    assert store.snapshot is not None
    # The repositories' entities (the registry is a resource too).
    return {item.name for item in store.snapshot.entities if item.name.startswith("svc--")}


async def held_store(clock: Clock, state: Path | None = None) -> tuple[SnapshotStore, FakeReader]:
    reader = FakeReader(FULL)
    store = store_for(reader, clock, state)
    await store.refresh()
    reader.answers[US] = SHRUNK
    return store, reader


async def test_a_read_that_removes_too_much_is_held_and_nothing_changes() -> None:
    clock = Clock()
    store, reader = await held_store(clock)
    first = store.snapshot
    before = served(store)
    for _ in range(3):
        clock.now += timedelta(hours=1)
        outcome = await store.refresh()
        assert store.snapshot is first and served(store) == before
        assert outcome.published and outcome.failed_sources == ()
    hold = store.statuses[US].held
    assert hold is not None
    assert (hold.removed, hold.served, hold.read) == (15, 20, 5)
    assert hold.since == T0 + timedelta(hours=1)
    assert hold.applies_at == T0 + timedelta(hours=25)
    assert hold.examples[0] == "svc/r05"
    shown = store.statuses[US].as_dict()["removal_hold"]
    assert shown["would_remove"] == 15 and shown["since"] == "2026-03-01T10:00:00Z"
    assert store.statuses[US].healthy and store.statuses[US].repositories == 20


async def test_a_held_read_is_held_whole_with_its_other_news() -> None:
    clock = Clock()
    store, reader = await held_store(clock)
    before = served(store)
    reader.answers[US] = source(*SHRUNK.repositories, repository("svc/new"))
    await store.refresh()
    assert served(store) == before


async def test_a_read_that_no_longer_removes_too_much_ends_the_hold() -> None:
    clock = Clock()
    store, reader = await held_store(clock)
    await store.refresh()
    assert store.statuses[US].held is not None
    # Permissions restored; one repository really went, another arrived.
    reader.answers[US] = source(*FULL.repositories[1:], repository("svc/new"))
    await store.refresh()
    assert store.statuses[US].held is None
    names = served(store)
    assert "svc--new.us-east-1.123456789012" in names
    assert "svc--r00.us-east-1.123456789012" not in names


async def test_a_removal_below_the_count_is_applied_at_once() -> None:
    reader = FakeReader(source(*(repository(f"svc/r{i}") for i in range(10))))
    store = store_for(reader, Clock())
    await store.refresh()
    reader.answers[US] = source(repository("svc/r0"))  # 9 of 10 go: fewer than 10
    await store.refresh()
    assert store.statuses[US].held is None
    assert served(store) == {"svc--r0.us-east-1.123456789012"}


async def test_a_confirmation_applies_exactly_the_held_read() -> None:
    clock = Clock()
    store, reader = await held_store(clock)
    assert await store.confirm_removals(US) is None  # nothing held yet
    await store.refresh()
    hold = await store.confirm_removals(US)
    assert hold is not None and hold.removed == 15
    assert store.statuses[US].held is None and store.statuses[US].repositories == 5
    await store.refresh()
    assert len(served(store)) == 5
    assert await store.confirm_removals(US) is None


async def test_a_hold_is_applied_after_removal_hold_hours() -> None:
    clock = Clock()
    store, reader = await held_store(clock)
    await store.refresh()
    clock.now += timedelta(hours=23, minutes=59)
    await store.refresh()
    assert len(served(store)) == 20
    clock.now += timedelta(minutes=1)
    await store.refresh()
    assert store.statuses[US].held is None
    assert len(served(store)) == 5


async def test_a_restart_serves_the_last_good_data_and_keeps_the_holds_start(
    tmp_path: Path,
) -> None:
    clock = Clock()
    store, reader = await held_store(clock, tmp_path)
    await store.refresh()
    assert (tmp_path / HOLDS_FILE).exists()

    clock.now += timedelta(hours=23)
    again = store_for(reader, clock, tmp_path)
    await again.load_state()
    assert len(served(again)) == 20  # the held read was never saved
    await again.refresh()
    hold = again.statuses[US].held
    assert hold is not None and hold.since == T0
    assert len(served(again)) == 20
    clock.now += timedelta(hours=1)
    await again.refresh()
    assert again.statuses[US].held is None and len(served(again)) == 5
    assert b'"since": {}' in (tmp_path / HOLDS_FILE).read_bytes()


async def test_a_corrupt_holds_file_is_set_aside_and_holds_start_afresh(tmp_path: Path) -> None:
    clock = Clock()
    store, reader = await held_store(clock, tmp_path)
    (tmp_path / HOLDS_FILE).parent.mkdir(parents=True)
    (tmp_path / HOLDS_FILE).write_text('{"format": 1, "since": {"x": "2020-01-01T00:00:00Z"}}')
    again = store_for(reader, clock, tmp_path)
    await again.load_state()
    assert (tmp_path / HOLDS_FILE).with_suffix(".corrupt").exists()
    await again.refresh()
    hold = again.statuses[US].held
    assert hold is not None and hold.since == T0
