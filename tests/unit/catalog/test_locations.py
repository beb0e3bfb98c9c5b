"""Shards and Locations of the many-URL mode."""

from __future__ import annotations

import pytest

from service.catalog.locations import shard_count, shard_of

ACCOUNT = "123456789012"


@pytest.mark.parametrize(
    ("entities", "size", "count"),
    [(0, 10, 1), (5, 10, 1), (6, 10, 2), (10, 10, 2), (11, 10, 4), (40, 10, 8), (41, 10, 16)],
)
def test_shards_start_half_full_and_double(entities: int, size: int, count: int) -> None:
    names = [f"repo-{index}.us-east-1.{ACCOUNT}" for index in range(entities)]
    assert shard_count(names, size) == count


def test_a_crowded_shard_doubles_the_count() -> None:
    # 8 names: 1 shard would be half full at 16, but all 8 in one shard of size 5 cannot be.
    names = [f"n{index}" for index in range(8)]
    count = shard_count(names, 5)
    assert count >= 2
    assert count in (2, 4, 8, 16)


def test_shards_stay_within_their_size_and_move_nothing_when_one_entity_is_added() -> None:
    names = [f"repo-{index}.us-east-1.123456789012" for index in range(500)]
    count = shard_count(names, 50)
    assert count >= 16
    added = "one-more.us-east-1.123456789012"
    grown = [*names, added]

    def shards(of: list[str]) -> dict[int, set[str]]:
        # Each list is split by its own shard count, as a build would split it.
        split: dict[int, set[str]] = {}
        for name in of:
            split.setdefault(shard_of(name, shard_count(of, 50)), set()).add(name)
        return split

    before, after = shards(names), shards(grown)
    assert max(len(members) for members in after.values()) <= 50
    changed = {index for index in before.keys() | after.keys() if before.get(index) != after[index]}
    assert len(changed) == 1
    (index,) = changed
    assert after[index] - before.get(index, set()) == {added}
