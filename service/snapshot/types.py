"""What a snapshot is: one consistent catalog, rendered once, that every request reads."""

from __future__ import annotations

import asyncio
import functools
import threading
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Generic, TypeVar

from ..catalog.facts import EntityFacts
from ..catalog.posture import Posture
from ..catalog.render import RenderedBody
from ..catalog.validate import Rejection
from ..model import SourceId
from .partitioned import PartitionBodies

__all__ = ["Deferred", "IndexedEntity", "Snapshot", "SourceView"]

T = TypeVar("T")


class Deferred(Generic[T]):
    """A value computed on first use, once, off the event loop.

    For bodies few clients ask for (the JSON body, a source's one-body URL, the shards of the
    many-URL mode): each set is as large as the whole catalog, held by every snapshot for
    nobody unless someone asks.
    """

    def __init__(self, compute: Callable[[], T]) -> None:
        self._compute: Callable[[], T] | None = compute
        self._value: T | None = None
        self._lock = threading.Lock()

    def peek(self) -> T | None:
        """The value if it has been computed, else None."""
        return self._value

    def get(self) -> T:
        """The value, computed now if it was not yet (in the calling thread)."""
        with self._lock:
            if self._compute is not None:
                self._value = self._compute()
                # Drops what the computation closed over.
                self._compute = None
            assert self._value is not None
            return self._value

    async def aget(self) -> T:
        """The value; a first computation runs in a worker thread, never on the loop."""
        value = self._value
        return value if value is not None else await asyncio.to_thread(self.get)


@dataclass(frozen=True, slots=True)
class IndexedEntity:
    """An entity's pre-rendered documents and its facts (catalog.facts), which the filters,
    the pages and the metrics read.

    The entity itself is not kept: a snapshot holds bytes, which the garbage collector never
    scans, instead of the many small dicts it would (see docs/reliability.md).
    """

    facts: EntityFacts
    # A view into its source's YAML body (or the core's): one copy of each document.
    yaml_document: bytes | memoryview
    json_document: bytes

    @property
    def ref(self) -> str:
        return self.facts.ref

    @property
    def kind(self) -> str:
        return self.facts.kind

    @property
    def type(self) -> str | None:
        return self.facts.type

    @property
    def owner(self) -> str | None:
        return self.facts.owner

    @property
    def account(self) -> str | None:
        return self.facts.account

    @property
    def region(self) -> str | None:
        return self.facts.region

    @property
    def name(self) -> str:
        return self.facts.name

    @property
    def search_text(self) -> str:
        return self.facts.search_text

    @property
    def verdicts(self) -> Posture | None:
        return self.facts.verdicts

    @property
    def posture(self) -> str | None:
        return self.facts.posture

    @property
    def posture_failures(self) -> tuple[str, ...]:
        return self.facts.posture_failures

    @property
    def posture_unknown(self) -> tuple[str, ...]:
        return self.facts.posture_unknown


@dataclass(frozen=True)
class SourceView:
    """What one source serves on its own URLs."""

    source: SourceId
    # The last successful read, when the latest read failed; None when fresh.
    stale_since: datetime | None
    entities: Deferred[RenderedBody]
    shard_count: int
    # Rendered when first asked for: only the many-URL mode reads them.
    shards: Deferred[tuple[RenderedBody, ...]]
    location: RenderedBody


@dataclass(frozen=True)
class Snapshot:
    """One consistent catalog, rendered once."""

    entities: tuple[IndexedEntity, ...]
    by_ref: Mapping[str, IndexedEntity]
    yaml: RenderedBody
    json: Deferred[RenderedBody]
    # Why the single URL cannot be served; empty when every source has data.
    incomplete: tuple[str, ...]
    # The Domain, System and Component, and the root Location; None while a target's sources
    # are unknown, since both list every source.
    core: RenderedBody | None
    root_location: RenderedBody | None
    sources: Mapping[SourceId, SourceView]
    # Every source the configuration names and the reader could list, with data or not.
    listed: tuple[SourceId, ...]
    # The Location of each listed source that has no data yet (see catalog.locations).
    pending_locations: Mapping[SourceId, RenderedBody]
    built_at: datetime
    # The entities left out, each with where it came from and the rules it broke.
    rejections: tuple[Rejection, ...]
    # What was repaired on the way ("<repository ARN>: <what>").
    repairs: tuple[str, ...]
    # Repositories claimed in Backstage by entities of different owners, which set no owner.
    claim_conflicts: tuple[str, ...] = ()
    # How many repositories Backstage entities claim.
    claimed: int = 0
    # Sources read, but not served, and why: their URLs answer 503, which keeps what Backstage
    # has, where a 200 without some of their entities would delete those (snapshot.build).
    withheld: Mapping[SourceId, str] = field(default_factory=dict)
    # A partition's own Locations, in a fleet of partitions (partitioned.py); None alone.
    partition: PartitionBodies | None = None
    # No cache of the web layer here: it keeps filtered bodies, bounded in bytes
    # (service/web/views.py).

    @property
    def complete(self) -> bool:
        return not self.incomplete

    def serves_as(self, other: Snapshot) -> bool:
        """Whether every URL would answer the same bytes from ``other`` as from this one."""
        return (
            self.yaml.etag == other.yaml.etag
            and self.incomplete == other.incomplete
            and self.root_location == other.root_location
            and self.core == other.core
            and self.partition == other.partition
        )

    def counts_by_kind(self) -> dict[str, int]:
        """How many entities of each kind (lower case), sorted by kind."""
        return dict(sorted(Counter(item.kind for item in self.entities).items()))

    @functools.cached_property
    def posture_failures(self) -> Mapping[tuple[str, str], int]:
        """How many repositories fail each posture check, by (check, owner); once per snapshot."""
        return dict(
            sorted(
                Counter(
                    (check, item.owner or "")
                    for item in self.entities
                    for check in item.posture_failures
                ).items()
            )
        )

    @functools.cached_property
    def stale_sources(self) -> Mapping[SourceId, datetime]:
        """Each source served from last good data, and the time of that data, in order.

        Worked out once per snapshot: every response names them.
        """
        return {
            s: v.stale_since for s, v in sorted(self.sources.items()) if v.stale_since is not None
        }
