"""Which partition owns each source: rendezvous (highest random weight) hashing. Pure.

Each source goes to the partition with the highest weight for it, a hash of the source and the
partition's index. Going from N to N+1 partitions moves exactly the sources whose new winner is
partition N, about 1/(N+1) of them; every other source keeps its owner, since the weights of
partitions 0..N-1 do not change. Modulo hashing would move almost every source.

The hash is BLAKE2b, stable across processes and Python versions: never Python's ``hash()``,
which is salted per process, so two partitions would disagree.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

from .config.partition import PartitionSettings, partition_url
from .model import SourceId

__all__ = ["FleetSources", "Partitioning", "owner_of", "partitioning_of", "weight"]


def weight(source: SourceId, index: int) -> int:
    """Partition ``index``'s weight for ``source``: 64 bits of BLAKE2b."""
    key = f"{source.account_id}/{source.region}/{index}".encode()
    return int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "big")


def owner_of(source: SourceId, count: int) -> int:
    """The partition (of ``count``) that owns ``source``: the highest weight, the lowest
    index on a tie."""
    if count <= 1:
        return 0
    return max(range(count), key=lambda index: (weight(source, index), -index))


@dataclass(frozen=True)
class Partitioning:
    """This process's place in a fleet of ``count`` partitions, and how each is reached."""

    index: int
    count: int
    # How partition i is reached, with "{index}" (config.partition); None: not said.
    url_template: str | None = None
    # The URL that reaches any partition (config.partition); None: partition 0's.
    fleet_url: str | None = None

    def __post_init__(self) -> None:
        if not 0 <= self.index < self.count:
            raise ValueError(f"partition index {self.index} is outside 0..{self.count - 1}")

    @property
    def is_first(self) -> bool:
        """Partition 0 serves what spans every source: the core entities and the root."""
        return self.index == 0

    def owns(self, source: SourceId) -> bool:
        return owner_of(source, self.count) == self.index

    def own(self, sources: Iterable[SourceId]) -> tuple[SourceId, ...]:
        """The sources of ``sources`` this partition owns, in their order."""
        return tuple(source for source in sources if self.owns(source))

    def url(self, index: int) -> str | None:
        """The base URL of partition ``index``, without a slash at the end; None unknown."""
        return None if self.url_template is None else partition_url(self.url_template, index)

    @property
    def stable_url(self) -> str | None:
        """Where every source's URLs are named, whichever partition owns it: fleet_url, or
        else partition 0's URL."""
        return self.fleet_url or self.url(0)


@dataclass(frozen=True)
class FleetSources:
    """What a partition knows of the whole fleet when it builds: its place, and every source
    of the fleet (its own and the others'), which the Component depends on."""

    partitioning: Partitioning
    # None while not known (before the first listing, serving saved data): nothing that names
    # every source can be served then.
    sources: tuple[SourceId, ...] | None


def partitioning_of(settings: PartitionSettings) -> Partitioning | None:
    """This process's place in its fleet; None for a single process (``count`` 1)."""
    if settings.count == 1:
        return None
    return Partitioning(
        settings.own_index, settings.count, settings.url_template, settings.fleet_url
    )
