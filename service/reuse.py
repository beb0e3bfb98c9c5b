"""The reader's record ledger: an unchanged repository keeps the identity of its record.

A repository whose answers are unchanged gives the very record object of the read before, so
that comparing a source's inputs with the last ones (service.snapshot.catalogs, where reuse is
equality) mostly finds the same objects, which tuples compare by identity first.
"""

from __future__ import annotations

from .model import RepositoryRecord

__all__ = ["RecordLedger"]


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
