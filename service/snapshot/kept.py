"""Each source's last good records: what a read gives is kept, held for an operator, or saved.

The store decides when to read and what each source's status is; this keeps what the reads
gave: the records every build starts from, the removal hold (removals.py) in front of them,
and the copy in the state directory that outlives a restart.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

from ..errors import StateWriteFailed
from ..model import SourceId, SourceRecords
from ..reading import SourceListing
from .persist import LoadedState, StateDir
from .removals import RemovalGuard, RemovalHold, RemovalLimits
from .status import SourceStatus

__all__ = ["LastGood"]

log = logging.getLogger(__name__)


@dataclass
class LastGood:
    """The last good records of each source, and how saving them has gone."""

    removals: RemovalGuard
    records: dict[SourceId, SourceRecords] = field(default_factory=dict)
    # Saves to the state directory, by outcome (ok, failed), and the last failure while it lasts.
    writes: Counter[str] = field(default_factory=Counter)
    last_error: str | None = None

    async def load(self, state: StateDir, wanted: Callable[[SourceId], bool]) -> LoadedState:
        """What the last run saved, of the ``wanted`` sources, kept; and the holds it left."""
        loaded = await asyncio.to_thread(state.load, wanted)
        await asyncio.to_thread(self.removals.load)
        for records in loaded.records:
            self.records[records.source] = records
        return loaded

    async def keep(
        self,
        state: StateDir | None,
        status: SourceStatus,
        records: SourceRecords,
        now: datetime,
        limits: RemovalLimits,
    ) -> None:
        """Keep what a read gave, unless it would remove too much to believe (``status.held``),
        in which case the last good data stays."""
        before = self.records.get(status.source)
        status.held = await self.removals.admit(status.held, before, records, now, limits)
        if status.held is not None:
            return
        self.records[status.source] = records
        status.repositories = len(records.repositories)
        if state is not None:
            await self.save(state, records)

    async def confirm(self, state: StateDir | None, status: SourceStatus) -> RemovalHold | None:
        """Apply the read held for the source of ``status``, its removals confirmed by an
        operator: exactly what /readyz showed. None when nothing is held for it."""
        hold = status.held
        if hold is None:
            return None
        status.held = None
        await self.removals.began(status.source, None)
        self.records[status.source] = hold.pending
        status.repositories = len(hold.pending.repositories)
        log.warning("%s: removing %d repositories confirmed; applied", status.source, hold.removed)
        if state is not None:
            await self.save(state, hold.pending)
        return hold

    async def save(self, state: StateDir, records: SourceRecords) -> None:
        try:
            await asyncio.to_thread(state.save, records)
        except StateWriteFailed as exc:
            # The data is read and served all the same; only a restart would miss it.
            self.writes["failed"] += 1
            self.last_error = str(exc)
            log.error("%s; serving goes on, but a restart would not have this data", exc)
        else:
            self.writes["ok"] += 1
            self.last_error = None

    def listing_with_kept(self, listing: SourceListing) -> SourceListing:
        """``listing``, with every source kept that a target whose account is unknown may own."""
        if not listing.unresolved:
            return listing
        # A target whose account is unknown may own sources read before (or saved before a
        # restart): keep serving them rather than orphaning them in Backstage.
        refused = {r for r, _ in listing.refused}
        known = set(listing.sources) | {s for s in self.records if s not in refused}
        return replace(listing, sources=tuple(sorted(known)))

    def drop(self, gone: Iterable[SourceId], departed: Sequence[str]) -> None:
        """Sources no longer listed: removed from the configuration, or of an account that left
        the organisation (``departed``: two discoveries in a row agreed). Nothing of them is
        kept."""
        gone = sorted(gone)
        for account in departed:
            sources = [s for s in gone if s.account_id == account]
            entities = sum(1 + len(self.records[s].repositories) for s in sources)
            log.warning(
                "account %s left the organisation: %d source(s) and %d entities leave the catalog",
                account,
                len(sources),
                entities,
            )
        for source in gone:
            self.removals.forget(source)
            del self.records[source]
