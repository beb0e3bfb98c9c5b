"""Rendezvous ownership: every source has one owner, owners are balanced, and a new partition
takes only the sources it now wins."""

from __future__ import annotations

import hashlib
from collections import Counter

import pytest

from service.model import SourceId
from service.ownership import Partitioning, owner_of, weight

REGIONS = ["us-east-1", "eu-west-1", "us-west-2", "ap-southeast-2", "eu-central-1"]
# 3,000 sources: 600 accounts in 5 regions.
SOURCES = [
    SourceId(f"{100_000_000_000 + n:012d}", region) for n in range(600) for region in REGIONS
]


@pytest.mark.parametrize("count", [2, 3, 4, 5, 8])
def test_owners_are_balanced_within_twenty_percent(count: int) -> None:
    owners = Counter(owner_of(source, count) for source in SOURCES)
    assert sorted(owners) == list(range(count))
    fair = len(SOURCES) / count
    assert all(0.8 * fair <= owned <= 1.2 * fair for owned in owners.values()), owners


@pytest.mark.parametrize("count", [1, 2, 3, 4, 7])
def test_from_n_to_n_plus_one_only_the_sources_the_new_partition_wins_move(count: int) -> None:
    before = {source: owner_of(source, count) for source in SOURCES}
    after = {source: owner_of(source, count + 1) for source in SOURCES}
    moved = {source for source in SOURCES if before[source] != after[source]}
    assert moved == {source for source in SOURCES if after[source] == count}
    # About 1/(N+1) of them: rendezvous, not modulo, which would move most.
    assert 0.8 / (count + 1) <= len(moved) / len(SOURCES) <= 1.2 / (count + 1)


def test_the_weight_is_blake2b_of_the_source_and_index_the_same_in_every_process() -> None:
    source = SourceId("123456789012", "eu-west-1")
    expected = hashlib.blake2b(b"123456789012/eu-west-1/2", digest_size=8).digest()
    assert weight(source, 2) == int.from_bytes(expected, "big")
    # Fixed values: a change of hash would move sources between running partitions' volumes.
    assert owner_of(source, 3) == 1
    assert [owner_of(SourceId("123456789012", r), 4) for r in REGIONS] == [2, 1, 0, 2, 0]


def test_each_partition_owns_its_share_and_together_every_source_once() -> None:
    fleet = [Partitioning(index, 4) for index in range(4)]
    owned = [partition.own(SOURCES) for partition in fleet]
    assert sorted(s for part in owned for s in part) == sorted(SOURCES)
    assert all(
        partition.owns(s) for partition, part in zip(fleet, owned, strict=True) for s in part
    )


def test_a_single_process_owns_everything_and_an_index_outside_is_refused() -> None:
    assert Partitioning(0, 1).own(SOURCES) == tuple(SOURCES)
    with pytest.raises(ValueError, match="outside 0..2"):
        Partitioning(3, 3)


def test_each_partition_is_reached_at_its_template_url() -> None:
    partitioning = Partitioning(1, 3, "http://ecr-catalog-{index}.headless:8080/")
    assert partitioning.url(2) == "http://ecr-catalog-2.headless:8080"
    assert Partitioning(1, 3).url(2) is None
