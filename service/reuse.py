"""The reuse rule: what did not change keeps its identity, from ECR's answers to the bytes served.

Most refreshes find nothing new. So that such a refresh costs almost nothing:

1. ``RecordLedger`` (the reader): a repository whose answers are unchanged gives the very
   record object of the read before; a read that found nothing new hands back only old objects.
2. ``BuildInputs`` (the store): a snapshot records the objects it was built from. A refresh
   whose inputs are those same objects (compared by identity first, so the comparison is
   cheap) builds nothing: the current snapshot stands.
3. The build (``service.snapshot.build``) takes each entity whose document equals one of the
   snapshot before it, and each body equal to one before, instead of rendering them again.

Each step is an optimisation that must be invisible: the tests of this module and of the build
check that reuse gives exactly the bytes a build from nothing gives.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .model import RepositoryRecord, SourceId, SourceRecords
from .reading import SourceListing

__all__ = ["BuildInputs", "RecordLedger"]


class RecordLedger:
    """The last record of each repository (by ARN): equal new records give the old object back."""

    def __init__(self) -> None:
        self._records: dict[str, RepositoryRecord] = {}

    def settle(self, record: RepositoryRecord) -> RepositoryRecord:
        """``record``, or the record seen before for its ARN if that one is equal to it."""
        previous = self._records.get(record.arn)
        if previous == record:
            return previous
        self._records[record.arn] = record
        return record

    def forget(self, arn: str) -> None:
        """The repository is gone: its next record, if it comes back, is new."""
        self._records.pop(arn, None)

    def __len__(self) -> int:
        return len(self._records)


@dataclass(frozen=True)
class BuildInputs:
    """Everything a snapshot is built from: equal inputs build an equal snapshot."""

    options: Any
    listing: SourceListing
    sources: tuple[tuple[Any, ...], ...]
    stale_since: tuple[tuple[SourceId, datetime], ...]
    errors: tuple[tuple[SourceId, str], ...]
    claims: Any = None

    @classmethod
    def of(
        cls,
        options: Any,
        listing: SourceListing,
        records: Mapping[SourceId, SourceRecords],
        stale_since: Mapping[SourceId, datetime],
        errors: Mapping[SourceId, str],
        claims: Any = None,
    ) -> BuildInputs:
        # read_at is left out: a source read again with nothing new builds the same catalog.
        sources = tuple(
            (s, r.partition, r.registry, r.repositories, r.skipped)
            for s, r in sorted(records.items())
        )
        return cls(
            options,
            listing,
            sources,
            tuple(sorted(stale_since.items())),
            tuple(sorted(errors.items())),
            claims,
        )
