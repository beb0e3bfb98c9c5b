"""What one source's catalog is built from, as one frozen value: equal inputs, equal catalog.

The snapshot keeps each source's catalog while its inputs stay equal (snapshot.source), so
everything the transform reads must be in here, and nothing else: the time of a read is left
out, so that a source read again with nothing new builds nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime

from ..config import CatalogSettings, PostureSettings
from ..model import Partition, RegistryRecord, RepositoryRecord, SourceId, SourceRecords
from .claims import Claimer, ClaimIndex

__all__ = ["SourceInputs"]


@dataclass(frozen=True)
class SourceInputs:
    """One source's records, the claims that touch it, the posture's day, the names configured
    for its repositories, and the settings."""

    source: SourceId
    partition: Partition
    registry: RegistryRecord
    repositories: tuple[RepositoryRecord, ...]
    settings: CatalogSettings
    # The time of the last good read, while the latest read failed; None when fresh.
    stale_since: datetime | None = None
    # The claimers of its repositories, by ref, none of them one of the service's own entities.
    claims: tuple[Claimer, ...] = ()
    posture: PostureSettings | None = None
    # The day posture is judged on (UTC); None without posture, so that a new day changes
    # nothing then.
    day: date | None = None
    # (ARN, name) of its repositories that catalog.names names, sorted; ``settings`` holds
    # no catalog.names, so that a name configured for another source changes nothing here.
    names: tuple[tuple[str, str], ...] = ()

    @classmethod
    def of(
        cls,
        records: SourceRecords,
        settings: CatalogSettings,
        *,
        stale_since: datetime | None = None,
        claims: ClaimIndex | None = None,
        is_own: Callable[[str], bool] = lambda _ref: False,
        posture: tuple[PostureSettings, date] | None = None,
    ) -> SourceInputs:
        """The inputs of ``records``: of ``claims``, only the claimers of its repositories
        whose ref ``is_own`` does not name (the service's own entities never claim);
        ``posture``, the checks and the day to judge them on."""
        touching: tuple[Claimer, ...] = ()
        if claims:
            found = {
                claimer.ref: claimer
                for repo in records.repositories
                for claimer in claims.claimers_of(repo.arn, repo.name, frozenset())
            }
            touching = tuple(found[ref] for ref in sorted(found) if not is_own(ref))
        configured = settings.names
        names = {r.arn: configured[r.arn] for r in records.repositories if r.arn in configured}
        return cls(
            source=records.source,
            partition=records.partition,
            registry=records.registry,
            repositories=records.repositories,
            # Without catalog.names: a source's inputs hold its own entries alone (``names``).
            settings=settings.model_copy(update={"names": {}}) if configured else settings,
            stale_since=stale_since,
            claims=touching,
            posture=None if posture is None else posture[0],
            day=None if posture is None else posture[1],
            names=tuple(sorted(names.items())),
        )
