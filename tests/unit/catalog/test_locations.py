"""Shards and Locations of the many-URL mode."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.catalog.locations import shard_count, shard_of

ACCOUNT = "123456789012"


@pytest.mark.parametrize(
    ("entities", "size", "count"),
    [(0, 10, 1), (5, 10, 1), (6, 10, 2), (10, 10, 2), (11, 10, 4), (40, 10, 8), (41, 10, 16)],
)
def test_shards_start_half_full_and_double(entities: int, size: int, count: int) -> None:
    names = [f"repo-{index}.us-east-1.{ACCOUNT}" for index in range(entities)]
    assert shard_count(names, size) == count


def _largest_shard(names: list[str], count: int) -> int:
    return max(Counter(shard_of(name, count) for name in names).values(), default=0)


@settings(max_examples=300)
@given(
    names=st.lists(st.text(min_size=1, max_size=12), unique=True, max_size=80),
    size=st.integers(min_value=1, max_value=8),
)
def test_the_count_is_the_first_power_of_two_from_half_full_that_overfills_no_shard(
    names: list[str], size: int
) -> None:
    count = shard_count(names, size)
    assert count & (count - 1) == 0  # a power of two
    assert count * size >= 2 * len(names)  # at most half full on average
    assert _largest_shard(names, count) <= size
    # The smallest such: half as many shards would be more than half full, or overfill one.
    half = count // 2
    assert count == 1 or half * size < 2 * len(names) or _largest_shard(names, half) > size


def test_a_crowded_shard_doubles_the_count() -> None:
    """Names that the hash puts together: the half-full start overfills a shard."""
    names = [f"n{index}" for index in range(200)]
    crowded = next(
        chosen
        for start in range(len(names) - 4)
        if _largest_shard(chosen := names[start : start + 4], 4) > 2
    )
    # Four names of at most 2 a shard start at 4 shards, and 4 overfill one: 8 or more.
    assert shard_count(crowded, 2) >= 8
    assert shard_count(crowded, 2) == next(
        count for count in (8, 16, 32, 64, 128) if _largest_shard(crowded, count) <= 2
    )


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


@pytest.mark.parametrize(
    ("name", "of_16", "of_1024"),
    [
        ("repo-0.us-east-1.123456789012", 14, 654),
        ("team-a--api.us-east-1.123456789012", 2, 434),
        ("x", 4, 68),
    ],
)
def test_an_entitys_shard_is_the_same_in_every_version(name: str, of_16: int, of_1024: int) -> None:
    # Pinned: a new hash would move entities between shard URLs on upgrade, and Backstage would
    # delete each from its old shard and create it again in the new one.
    assert (shard_of(name, 16), shard_of(name, 1024)) == (of_16, of_1024)
