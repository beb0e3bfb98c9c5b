"""The Locations that join a fleet's partitions in Backstage. Pure.

Backstage is configured with one URL, partition 0's root Location. Its targets are the core
(Domain, System, Component, served by partition 0) and every partition's own root Location,
which lists that partition's sources' Locations. Backstage reads each of them on its own, so
N partitions become one catalog with no state shared between them.

A source's own URLs are named at the fleet's stable URL (partition.fleet_url, or partition 0's),
and the partitions that do not own it redirect them to the one that does: so the URLs of a
source, by which Backstage knows its entities, stay the same when the count changes.

For one URL per partition instead of one per source, partition 0 also serves a Location whose
targets are every partition's ``/partitions/<i>/entities.yaml`` (partition 0's holds the
core); those URLs do change hands when the count changes (docs/partitions.md).
"""

from __future__ import annotations

from collections.abc import Sequence

from ..catalog.locations import ROOT_LOCATION_NAME, location_entity, source_path
from ..model import Entity, SourceId
from ..ownership import Partitioning

__all__ = [
    "ENTITIES_LOCATION_NAME",
    "entities_location",
    "fleet_location",
    "partition_location",
    "partition_location_name",
    "partition_path",
]

ENTITIES_LOCATION_NAME = f"{ROOT_LOCATION_NAME}-partitions"


def partition_path(index: int) -> str:
    """Where partition ``index``'s root Location lives, relative to the service root."""
    return f"partitions/{index}/catalog-info.yaml"


def partition_location_name(index: int) -> str:
    return f"{ROOT_LOCATION_NAME}-partition-{index}"


def _urls(partitioning: Partitioning, path: str) -> list[str]:
    """``path`` on every partition, from partition.url_template."""
    targets = []
    for index in range(partitioning.count):
        base = partitioning.url(index)
        if base is None:
            raise ValueError("partition.url_template is not set")
        targets.append(f"{base}/{path.format(index=index)}")
    return targets


def fleet_location(partitioning: Partitioning) -> Entity:
    """Partition 0's root Location: the core, and every partition's root Location."""
    return location_entity(
        ROOT_LOCATION_NAME,
        f"Every ECR entity served by ecr-catalog's {partitioning.count} partitions: the "
        "catalog itself and each partition's root Location.",
        ["./catalog/core.yaml", *_urls(partitioning, "partitions/{index}/catalog-info.yaml")],
    )


def entities_location(partitioning: Partitioning) -> Entity:
    """Partition 0's Location of one URL per partition: each partition's own entities."""
    return location_entity(
        ENTITIES_LOCATION_NAME,
        f"Every ECR entity served by ecr-catalog's {partitioning.count} partitions, one URL "
        "per partition.",
        _urls(partitioning, "partitions/{index}/entities.yaml"),
    )


def partition_location(partitioning: Partitioning, sources: Sequence[SourceId]) -> Entity:
    """A partition's root Location: the Location of each of its sources, at the fleet's
    stable URL (``Partitioning.stable_url``), which redirects to the owner."""
    # Backstage gives an entity to the URL that first emitted it, and a second URL emitting it
    # conflicts until the first one's entity is deleted. A source's URLs are therefore the
    # same whichever partition owns it, so that a change of the count moves no entity from
    # one URL to another: only the partition root that lists the source changes.
    base = partitioning.stable_url
    if base is None:
        raise ValueError("partition.url_template is not set")
    index = partitioning.index
    return location_entity(
        partition_location_name(index),
        f"ECR entities of partition {index} of {partitioning.count}: one Location per source.",
        [f"{base}/{source_path(source)}/catalog-info.yaml" for source in sources],
    )
