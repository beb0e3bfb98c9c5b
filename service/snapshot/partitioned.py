"""What a snapshot serves in a fleet of partitions (service/fleet), beside its sources' URLs.

A single process (no ``listing.fleet``) serves as it always has. A partition serves its own
sources; partition 0 also the core entities, whose Component depends on every source of the
fleet, and the root Locations that name every partition.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..catalog.locations import root_location
from ..catalog.render import RenderedBody, render_body, to_yaml_document
from ..fleet.locations import entities_location, fleet_location, partition_location
from ..model import Entity, SourceId
from ..ownership import Partitioning, owner_of
from ..reading import SourceListing

__all__ = [
    "FLEET_NOT_LISTED",
    "PartitionBodies",
    "every_source",
    "fleet_gaps",
    "partition_bodies",
    "root_of",
    "serves_core",
]

FLEET_NOT_LISTED = "the fleet's sources are not listed yet (serving saved data)"


@dataclass(frozen=True)
class PartitionBodies:
    """The Locations of a partition that are not its sources' own, and where the others'
    sources are served."""

    partitioning: Partitioning
    # This partition's root Location (its sources' Locations); None while a target's sources
    # are unknown, since it lists every source of this partition.
    location: RenderedBody | None
    # Partition 0's Location of every partition's entities URL; None on other partitions
    # and while the fleet is not known.
    entities_location: RenderedBody | None
    # Every source of the fleet, so that another partition's is redirected to its owner;
    # empty while the fleet is not listed.
    fleet: frozenset[SourceId] = frozenset()

    @property
    def index(self) -> int:
        return self.partitioning.index

    @property
    def count(self) -> int:
        return self.partitioning.count

    def url_of(self, index: int, path: str) -> str:
        """``path`` (from the root, with its slash) on partition ``index``."""
        base = self.partitioning.url(index)
        assert base is not None, "partition.url_template is required with a fleet"
        return base + path

    def owner_of(self, source: SourceId) -> int | None:
        """The partition that serves ``source``; None if the fleet has no such source."""
        return owner_of(source, self.count) if source in self.fleet else None


def _body(entity: Entity) -> RenderedBody:
    return render_body(to_yaml_document(entity), with_gzip=False)


def every_source(listing: SourceListing) -> tuple[SourceId, ...] | None:
    """Every source the catalog's Component depends on: the listing's own for a single
    process, the whole fleet's for a partition; None while the fleet is not listed."""
    return listing.sources if listing.fleet is None else listing.fleet.sources


def serves_core(listing: SourceListing) -> bool:
    """Whether this process serves the Domain, System and Component: only one partition does."""
    return listing.fleet is None or listing.fleet.partitioning.is_first


def root_of(listing: SourceListing) -> RenderedBody:
    """The root Location (``/catalog-info.yaml``) of a single process or of partition 0."""
    if listing.fleet is None:
        return _body(root_location(listing.sources))
    return _body(fleet_location(listing.fleet.partitioning))


def fleet_gaps(listing: SourceListing) -> tuple[str, ...]:
    """Why partition 0's single URL, which holds the core, cannot be served yet."""
    if serves_core(listing) and every_source(listing) is None:
        return (FLEET_NOT_LISTED,)
    return ()


def partition_bodies(listing: SourceListing, known: bool) -> PartitionBodies | None:
    """A partition's own Locations; None for a single process. ``known``: every target's
    sources are known, and so are the fleet's."""
    fleet = listing.fleet
    if fleet is None:
        return None
    partitioning = fleet.partitioning
    return PartitionBodies(
        partitioning,
        _body(partition_location(partitioning, listing.sources)) if known else None,
        _body(entities_location(partitioning)) if known and partitioning.is_first else None,
        frozenset(fleet.sources or ()),
    )
