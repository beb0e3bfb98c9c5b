"""The many-URL mode's Locations and shards: which entity goes to which URL. Pure.

A root Location lists the core (Domain, System, Component) and one Location per source; a
source's Location lists its shards. Entities go to shards by a hash of their name, so adding
or removing one changes one shard's body, and the shard count changes only when a source
about doubles.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Sequence

from ..model import Entity, SourceId
from .entities import API_VERSION

__all__ = [
    "PENDING_SHARD",
    "ROOT_LOCATION_NAME",
    "location_entity",
    "pending_location",
    "root_location",
    "shard_count",
    "shard_of",
    "source_location",
    "source_location_name",
    "source_path",
]

ROOT_LOCATION_NAME = "ecr-catalog"


def shard_of(name: str, count: int) -> int:
    """The shard (of ``count``) an entity named ``name`` belongs to."""
    return int.from_bytes(hashlib.sha256(name.encode("utf-8")).digest()[:8], "big") % count


def shard_count(names: Sequence[str], shard_size: int) -> int:
    """The smallest power of two that keeps every shard at or under ``shard_size`` entities.

    The count starts where shards would be at most half full and doubles only when the hash
    spread overfills one.
    """
    count = 1
    while count * shard_size < 2 * len(names):
        count *= 2
    while max(Counter(shard_of(n, count) for n in names).values(), default=0) > shard_size:
        count *= 2
    return count


def location_entity(name: str, description: str, targets: Sequence[str]) -> Entity:
    """A ``url`` Location entity with relative targets."""
    return {
        "apiVersion": API_VERSION,
        "kind": "Location",
        "metadata": {"name": name, "description": description},
        # Relative targets: Backstage resolves them against this document's own URL, so the
        # body is the same whatever host name a replica is reached by.
        "spec": {"type": "url", "targets": list(targets)},
    }


def source_path(source: SourceId) -> str:
    """Where a source's own URLs live, relative to the service root."""
    return f"sources/{source.account_id}/{source.region}"


def root_location(sources: Sequence[SourceId]) -> Entity:
    """The root Location: the core and every listed source's Location."""
    return location_entity(
        ROOT_LOCATION_NAME,
        "Every ECR entity served by ecr-catalog: the catalog itself and one URL per source.",
        ["./catalog/core.yaml"] + [f"./{source_path(s)}/catalog-info.yaml" for s in sources],
    )


def source_location_name(source: SourceId) -> str:
    """The name of a source's Location entity."""
    return f"{ROOT_LOCATION_NAME}-{source.account_id}-{source.region}"


def source_location(source: SourceId, count: int) -> Entity:
    """A source's Location: its ``count`` shards."""
    return location_entity(
        source_location_name(source),
        f"ECR entities of {source}, in {count} shard(s).",
        [f"./shards/{count}/{index}.yaml" for index in range(count)],
    )


# Where a source without data points: the one shard of a source of up to shard_size / 2
# entities, so that for most sources the Location's targets stay the same when data arrives.
PENDING_SHARD = "./shards/1/0.yaml"


def pending_location(source: SourceId) -> Entity:
    """The Location of a listed source that has no data yet."""
    # Backstage processes a Location and all its targets as one unit: one failing target fails
    # the whole Location. So a source's Location answers 200 even before the source has data,
    # pointing at a shard URL that answers 503 until then. Only this source's Location fails,
    # and whatever it emitted before (say, before a restart) stays in place. The target is the
    # URL the source will most likely have: when a Location's targets change, Backstage removes
    # what came through the old one and the new one conflicts until then (seen with a real
    # Backstage: a recovered source's entities vanished for a while when this was
    # ./entities.yaml).
    return location_entity(
        source_location_name(source),
        f"ECR entities of {source}, not read yet.",
        [PENDING_SHARD],
    )
