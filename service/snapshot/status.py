"""How the reads and refreshes have gone: each source's status, each refresh's outcome."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..instants import iso
from ..model import SourceId
from .removals import RemovalHold
from .types import Snapshot

__all__ = [
    "NOT_READ_SINCE_RESTART",
    "SAVED_DATA_SET_ASIDE",
    "EntityChanges",
    "RefreshOutcome",
    "SourceStatus",
]

NOT_READ_SINCE_RESTART = "not read since the restart; serving the data saved before it"
SAVED_DATA_SET_ASIDE = "not read since the restart, and its saved data was set aside as corrupt"


@dataclass
class SourceStatus:
    """How the reads of one source have gone."""

    source: SourceId
    last_attempt_at: datetime | None = None
    last_success_at: datetime | None = None
    last_error: str | None = None
    repositories: int | None = None
    successes: int = 0
    failures: int = 0
    # A read that would remove too much, held: the last good data is served (removals.py).
    held: RemovalHold | None = None

    @property
    def healthy(self) -> bool:
        """Read once at least, and the latest read succeeded."""
        return self.last_error is None and self.last_success_at is not None

    def as_dict(self) -> dict[str, Any]:
        """As /readyz shows it."""
        return {
            "account": self.source.account_id,
            "region": self.source.region,
            "healthy": self.healthy,
            "stale": self.last_error is not None and self.last_success_at is not None,
            "last_attempt_at": iso(self.last_attempt_at),
            "last_success_at": iso(self.last_success_at),
            "last_error": self.last_error,
            "repositories": self.repositories,
            "removal_hold": self.held.as_dict() if self.held else None,
        }


def stale_since(statuses: Iterable[SourceStatus]) -> dict[SourceId, datetime]:
    """The time of the last good read of each source whose latest read failed."""
    return {
        status.source: status.last_success_at
        for status in statuses
        if status.last_error is not None and status.last_success_at is not None
    }


@dataclass(frozen=True)
class RefreshOutcome:
    """What one refresh did."""

    started_at: datetime
    duration_seconds: float
    failed_sources: tuple[str, ...]
    published: bool
    error: str | None = None
    sources: int = 0
    repositories: int = 0
    changes: EntityChanges | None = None
    # Why targets could not be listed at all (reading.SourceListing.unresolved).
    unresolved: tuple[str, ...] = ()

    @property
    def read_nothing(self) -> bool:
        """No source was read: none could even be named (no credentials, STS unreachable,
        every target refused), or every one failed. A failure, not a quiet refresh."""
        failed = len(self.failed_sources)
        return bool(self.unresolved or failed) and failed >= self.sources

    def as_dict(self) -> dict[str, Any]:
        return {
            "started_at": iso(self.started_at),
            "duration_seconds": round(self.duration_seconds, 3),
            "failed_sources": list(self.failed_sources),
            "published": self.published,
            "error": self.error,
        }


@dataclass(frozen=True)
class EntityChanges:
    """How a new snapshot differs from the one it replaced, by entity ref."""

    added: int = 0
    removed: int = 0
    changed: int = 0
    # The sources with an entity added, removed or changed, and whether the catalog's own
    # entities (Domain, System, Component) were: which Locations Backstage should read again.
    sources: frozenset[SourceId] = frozenset()
    core: bool = False
    # Whether there was a snapshot before: the first after a start changes nothing Backstage
    # has not seen from the last run.
    first: bool = False

    @property
    def any(self) -> bool:
        return bool(self.added or self.removed or self.changed)

    @classmethod
    def between(cls, before: Snapshot | None, after: Snapshot) -> EntityChanges:
        """What ``after`` adds, removes and changes against ``before`` (None: nothing before)."""
        if before is after:
            # Most refreshes publish nothing new (the build was skipped): no dicts of every ref.
            return cls()
        old = {item.ref: item for item in before.entities} if before else {}
        new = {item.ref: item for item in after.entities}
        added = new.keys() - old.keys()
        removed = old.keys() - new.keys()
        changed = {
            ref
            for ref, item in new.items()
            if ref in old and old[ref].json_document != item.json_document
        }
        touched = [new[ref] for ref in added | changed] + [old[ref] for ref in removed]
        return cls(
            added=len(added),
            removed=len(removed),
            changed=len(changed),
            sources=frozenset(
                SourceId(item.account, item.region)
                for item in touched
                if item.account is not None and item.region is not None
            ),
            core=any(item.account is None for item in touched),
            first=before is None,
        )
