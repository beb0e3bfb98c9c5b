"""The store: holds the current snapshot and each source's last good records, and refreshes.

A refresh reads every source, keeps each source's last good records, builds the snapshot in a
worker thread (``catalogs.py``: only the sources whose inputs changed) and swaps it in one
assignment. Requests only ever read
``store.snapshot``; they never wait on AWS. Backstage deletes whatever a 200 leaves out, so
nothing partial is ever served:

* the single URL (``/entities.yaml``) is served only when every source has data;
* each source also has its own URLs, served as soon as that source has data, so one failing
  source blocks nothing else;
* a failing source keeps serving its last good data, marked with the time it was read.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from ..catalog.claims import ClaimIndex
from ..config import CatalogSettings, PostureSettings, RefreshSettings
from ..errors import EcrError, SnapshotRefused
from ..model import SourceId
from ..ownership import Partitioning
from ..reading import DiscoveryStatus, EcrReader, SourceListing
from .catalogs import Catalogs
from .kept import LastGood
from .peers import Peer
from .persist import StateDir
from .removals import RemovalGuard, RemovalHold, RemovalLimits
from .saved import serve_saved
from .status import (
    EntityChanges,
    RefreshOutcome,
    SourceStatus,
    stale_since,
)
from .types import Snapshot

__all__ = ["SnapshotStore"]

log = logging.getLogger(__name__)


@dataclass
class SnapshotStore:
    """Holds the current snapshot and each source's last good records; refreshes single-flight."""

    reader: EcrReader
    options: CatalogSettings
    refresh_settings: RefreshSettings
    state: StateDir | None = None
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    snapshot: Snapshot | None = None
    last_refresh: RefreshOutcome | None = None
    refreshed_at: datetime | None = None
    statuses: dict[SourceId, SourceStatus] = field(default_factory=dict)
    unresolved: tuple[str, ...] = ()
    # Called after every refresh: metrics and the summary log line.
    on_refresh: Callable[[RefreshOutcome], None] = field(default=lambda _outcome: None)
    # The way back to Backstage (peers.py): told of each refresh, asked for the claims.
    peer: Peer | None = None
    _running: asyncio.Task[RefreshOutcome] | None = None
    _soon: asyncio.Task[None] | None = None
    _catalogs: Catalogs = field(default_factory=Catalogs)
    _reading: dict[SourceId, asyncio.Task[None]] = field(default_factory=dict)
    # How the organisation's discovery has gone (aws.organization), from the last listing.
    discovery: DiscoveryStatus | None = None
    _rediscover: bool = False
    # Set when the first refresh has ended, whatever its outcome.
    first_refresh_done: asyncio.Event = field(default_factory=asyncio.Event)
    # The sources the last listing named, refused ones included.
    _listed: set[SourceId] = field(default_factory=set)
    # Which claims (claims_changed) are in the current build, and which are the latest.
    _claims_version: int = 0
    _claims_built: int = 0
    # The posture checks of each repository (catalog.posture); None makes none.
    posture: PostureSettings | None = None
    # Each source's last good records, held or saved (kept.py).
    kept: LastGood = field(init=False)

    def __post_init__(self) -> None:
        self.kept = LastGood(RemovalGuard(self.state.path if self.state else None))

    @property
    def state_writes(self) -> Counter[str]:
        """Saves to ``state``, by outcome (ok, failed)."""
        return self.kept.writes

    @property
    def last_state_error(self) -> str | None:
        """The last failure to save, while it lasts."""
        return self.kept.last_error

    def claims_changed(self) -> None:
        """The peer's claims changed: build with them, and publish the change at once."""
        self._claims_version += 1
        if self.snapshot is not None:
            # Joins a debounced refresh already scheduled; one already building with the old
            # claims is followed by another (refresh_soon).
            self.refresh_soon(0)

    async def forget_images(self, source: SourceId, repository: str) -> bool:
        """A repository's images changed (an ECR event): read them again on the next refresh.
        Whether the repository was known."""
        return await self.reader.forget_images(source, repository)

    async def load_state(
        self,
        wanted: Callable[[SourceId], bool] = lambda _s: True,
        fleet: Partitioning | None = None,
    ) -> None:
        """Serve what the last run saved, marked stale, before AWS has answered anything:
        the ``wanted`` sources (still configured, this partition's), as ``fleet`` (saved.py)."""
        await serve_saved(self, wanted, fleet)

    async def refresh(self, rediscover: bool = False) -> RefreshOutcome:
        """Refresh now, or join the refresh already running; it never raises for AWS failures.

        ``rediscover`` lists the organisation's accounts again first; a refresh already
        running is followed by one that does.
        """
        if rediscover:
            self._rediscover = True
            running = self._running
            if running is not None and not running.done():
                await asyncio.shield(running)
        if self._running is None or self._running.done():
            self._running = asyncio.create_task(self._refresh())
        return await asyncio.shield(self._running)

    def refresh_soon(self, delay: float) -> bool:
        """Refresh ``delay`` seconds from now; calls until then share that one refresh.

        A refresh already running may have read before the reason for this call (a push, say),
        so the debounced refresh waits for it to end and then runs a new one. False when one
        is already scheduled.
        """
        if self.refresh_pending:
            return False

        async def later() -> None:
            await asyncio.sleep(delay)
            running = self._running
            if running is not None and not running.done():
                await asyncio.shield(running)
            await self.refresh()
            if self._claims_built != self._claims_version:
                # Claims set while that refresh was building with the ones before.
                await self.refresh()

        self._soon = asyncio.create_task(later(), name="ecr-catalog-debounced-refresh")
        self._soon.add_done_callback(lambda done: done.cancelled() or done.exception())
        return True

    @property
    def refresh_pending(self) -> bool:
        """Whether a debounced refresh (``refresh_soon``) is scheduled and has not run yet."""
        return self._soon is not None and not self._soon.done()

    async def close(self) -> None:
        """Cancel a scheduled refresh (at shutdown)."""
        if self._soon is not None:
            self._soon.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._soon

    async def _read(self, source: SourceId) -> None:
        status = self.statuses.setdefault(source, SourceStatus(source))
        status.last_attempt_at = self.clock()
        try:
            records = await self.reader.read_source(source)
        except EcrError as exc:
            self._failed(status, str(exc))
            return
        except Exception as exc:
            # Not an AWS answer but a bug or a library failure: this source fails alone.
            log.exception("reading %s failed unexpectedly", source)
            self._failed(status, f"unexpected {type(exc).__name__}: {exc}")
            return
        status.successes += 1
        status.last_success_at = records.read_at
        status.last_error = None
        limits = RemovalLimits.of(self.options)
        await self.kept.keep(self.state, status, records, self.clock(), limits)

    async def confirm_removals(self, source: SourceId) -> RemovalHold | None:
        """Apply the read held for ``source``, its removals confirmed by an operator: exactly
        what /readyz showed. None when nothing is held for it. Publish with a refresh."""
        status = self.statuses.get(source)
        return None if status is None else await self.kept.confirm(self.state, status)

    def _failed(self, status: SourceStatus, error: str) -> None:
        status.failures += 1
        status.last_error = error
        log.warning("reading %s failed; keeping its last good data: %s", status.source, error)

    async def _read_all(self, sources: Sequence[SourceId]) -> None:
        """Read every source at once, but wait no longer than the deadline for any of them.

        A read still running at the deadline is asked to stop and left behind: the refresh
        publishes without it, and that source is not read again until the old read has ended.
        The deadline does not depend on cancellation being honoured (asyncio.wait_for in
        Python 3.11 can swallow one, and botocore's rate limiter waits in it).
        """
        deadline = self.refresh_settings.deadline_seconds
        started: dict[SourceId, asyncio.Task[None]] = {}
        for source in sources:
            running = self._reading.get(source)
            if running is not None and not running.done():
                status = self.statuses.setdefault(source, SourceStatus(source))
                self._failed(status, f"the previous read is still running past {deadline:g} s")
                continue
            task = asyncio.create_task(self._read(source), name=f"read {source}")
            self._reading[source] = task
            started[source] = task
        if not started:
            return
        _, late = await asyncio.wait(started.values(), timeout=deadline)
        for source, task in started.items():
            if task in late:
                task.cancel()
                self._failed(self.statuses[source], f"read did not finish within {deadline:g} s")

    async def _refresh(self) -> RefreshOutcome:
        started_at = self.clock()
        started = time.monotonic()
        rediscover, self._rediscover = self._rediscover, False
        listing = self.kept.listing_with_kept(await self.reader.list_sources(rediscover=rediscover))
        self.unresolved = listing.unresolved
        self.discovery = listing.discovery
        for source, reason in listing.refused:
            status = self.statuses.setdefault(source, SourceStatus(source))
            status.last_attempt_at = started_at
            status.last_error = reason
        self._listed = set(listing.sources) | {source for source, _ in listing.refused}
        self._drop(set(self.kept.records) - set(listing.sources), listing.departed)
        await self._read_all(listing.sources)
        failed = tuple(str(s) for s in listing.sources if not self.statuses[s].healthy)
        failed += tuple(str(s) for s, _ in listing.refused)
        before = self.snapshot
        published, error, changes = False, None, None
        try:
            snapshot = await self.publish(listing)
        except SnapshotRefused as exc:
            log.error("snapshot refused, keeping the last good one: %s", exc)
            error = str(exc)
        else:
            self.refreshed_at = self.clock()
            published, error = True, "; ".join(snapshot.incomplete) or None
            changes = EntityChanges.between(before, snapshot)
        return self._finish(
            RefreshOutcome(
                started_at=started_at,
                duration_seconds=time.monotonic() - started,
                failed_sources=failed,
                published=published,
                error=error,
                sources=len(self.statuses),
                repositories=sum(len(r.repositories) for r in self.kept.records.values()),
                changes=changes,
                unresolved=self.unresolved,
            )
        )

    def _drop(self, gone: set[SourceId], departed: Sequence[str]) -> None:
        """Stop serving sources no longer listed: removed from the configuration, or of an
        account that left the organisation (two discoveries in a row agreed)."""
        # Statuses of sources no longer listed that never had data (a removed target whose
        # reads always failed): they would count in every later refresh.
        for source in set(self.statuses) - set(self.kept.records) - set(self._listed):
            del self.statuses[source]
        self.kept.drop(gone, departed)
        for source in gone:
            self.statuses.pop(source, None)

    async def publish(self, listing: SourceListing, refuse_any_rejection: bool = False) -> Snapshot:
        """Build the snapshot of ``listing`` from the last good records, and serve it unless it
        equals the one served; raises SnapshotRefused (build.assemble)."""
        listed = set(listing.sources)
        records = {s: r for s, r in self.kept.records.items() if s in listed}
        current = self.snapshot
        claims = self.peer.claims() if self.peer is not None else ClaimIndex()
        claims_version = self._claims_version
        built_at = self.clock()
        inputs = Catalogs.inputs(
            records,
            self.options,
            stale_since=stale_since(self.statuses.values()),
            claims=claims,
            posture=self.posture,
            built_at=built_at,
        )
        snapshot = await asyncio.to_thread(
            self._catalogs.build,
            listing,
            inputs,
            self.options,
            built_at,
            errors={s: st.last_error for s, st in self.statuses.items() if st.last_error},
            refuse_any_rejection=refuse_any_rejection,
        )
        self._claims_built = claims_version
        # An equal snapshot is not swapped in: it would only add work for every cache.
        if current is None or not snapshot.serves_as(current):
            self.snapshot = snapshot
            log.info(
                "snapshot published: %d entities, etag %s%s",
                len(snapshot.entities),
                snapshot.yaml.etag,
                f" (incomplete: {'; '.join(snapshot.incomplete)})" if snapshot.incomplete else "",
            )
        return snapshot

    def _finish(self, outcome: RefreshOutcome) -> RefreshOutcome:
        """Keep and report the outcome: metrics (``on_refresh``), then the peer."""
        self.last_refresh = outcome
        self.first_refresh_done.set()
        try:
            self.on_refresh(outcome)
            if self.peer is not None:
                self.peer.published(outcome, self.snapshot)
        except Exception:
            log.exception("reporting a refresh failed")
        return outcome

    async def run_forever(self) -> None:
        """Refresh on the interval; sooner while the single URL cannot be served yet."""
        while True:
            try:
                await self.refresh()
            except Exception:
                # A bug in one refresh must not end refreshing for the life of the process.
                log.exception("refresh failed unexpectedly")
            # Retry sooner only while nothing at all can be served: a source that keeps
            # failing must not make every healthy source be read at the retry rate.
            serving = self.snapshot is not None and bool(self.snapshot.sources)
            delay = (
                self.refresh_settings.interval_seconds
                if serving
                else self.refresh_settings.initial_retry_seconds
            )
            await asyncio.sleep(delay)
