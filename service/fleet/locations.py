"""The Locations that join a fleet's partitions in Backstage. Pure.

Backstage is configured with one URL, partition 0's root Location. Its targets are the core
(Domain, System, Component, served by partition 0) and every partition's own root Location,
which lists that partition's sources' Locations. Backstage reads each of them on its own, so
N partitions become one catalog with no state shared between them.

For one URL per partition instead of one per source, partition 0 also serves a Location whose
targets are every partition's ``/entities.yaml`` (partition 0's holds the core).
"""

from __future__ import annotations

from collections.abc import Sequence

from ..catalog.locations import ROOT_LOCATION_NAME, location_entity, source_path
from ..model import Entity, SourceId
from .ownership import Partitioning

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
    """Partition 0's Location of one URL per partition: every partition's /entities.yaml."""
    return location_entity(
        ENTITIES_LOCATION_NAME,
        f"Every ECR entity served by ecr-catalog's {partitioning.count} partitions, one URL "
        "per partition.",
        _urls(partitioning, "entities.yaml"),
    )


def partition_location(index: int, count: int, sources: Sequence[SourceId]) -> Entity:
    """Partition ``index``'s root Location: the Location of each of its sources."""
    # Relative targets: resolved against partitions/{index}/catalog-info.yaml itself, so the
    # body is the same whatever host name the partition is reached by.
    return location_entity(
        partition_location_name(index),
        f"ECR entities of partition {index} of {count}: one Location per source.",
        [f"../../{source_path(source)}/catalog-info.yaml" for source in sources],
    )
