"""Push: after a publish that changed entities, ask Backstage to read their Locations now.

Backstage's ``POST /api/catalog/refresh`` marks an entity and its nearest Location ancestor
for processing; the Location reads its URL again, and every entity whose document changed is
processed at once. So one request per affected Location covers every change, new entities
included:

* one URL (``/entities.yaml``): the Component, whose Location is the one URL;
* many URLs (``/catalog-info.yaml``): each changed source's ``Location`` (whose own Location
  ancestor, the root, is refreshed with it); the root alone when only the Domain, System or
  Component changed, or for a source Backstage has not seen yet.

Which mode Backstage reads is asked of Backstage: the Component's
``backstage.io/managed-by-location``. Requests run in their own task, so nothing publishes or
answers later for them. Each ref is sent at most once per ``refresh_min_interval_seconds``
(changes in between wait and share one request); a failed request is tried once more after
a pause, and then left for the next change.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ..catalog.locations import ROOT_LOCATION_NAME, source_location_name
from ..config import BackstageSettings, CatalogSettings
from ..errors import BackstageError
from ..instants import iso
from ..model import SourceId
from ..names import EntityRef
from ..snapshot.status import RefreshOutcome
from .client import BackstageClient

__all__ = ["RefreshPusher"]

log = logging.getLogger(__name__)

MANAGED_BY_LOCATION = "backstage.io/managed-by-location"
RETRY_AFTER_SECONDS = 2.0
# Refresh requests in flight at once, and the most sent per push (a change that touches many
# sources of a fleet is sent in turns, refresh_min_interval_seconds apart).
CONCURRENCY = 4
MAX_REFS = 50


def _location_ref(name: str) -> str:
    return f"location:default/{name}"


@dataclass
class RefreshPusher:
    """Turns changed snapshots into the fewest refresh requests; one task sends them."""

    client: BackstageClient
    settings: BackstageSettings
    catalog: CatalogSettings
    # Counts each request's outcome (metrics): ok, not_found, unauthorized, failed.
    on_outcome: Callable[[str], None] = field(default=lambda _outcome: None)
    clock: Callable[[], float] = time.monotonic
    outcomes: Counter[str] = field(default_factory=Counter)
    mode: str | None = None
    last_at: datetime | None = None
    last_outcome: str | None = None
    last_error: str | None = None
    _sources: set[SourceId] = field(default_factory=set)
    _core: bool = False
    _sent_at: dict[str, float] = field(default_factory=dict)
    _wake: asyncio.Event = field(default_factory=asyncio.Event)

    def changed(self, outcome: RefreshOutcome) -> None:
        """The store's refresh report: note what changed; the task sends it. Never blocks."""
        changes = outcome.changes
        if not self.settings.refresh_on_change or changes is None or not changes.any:
            return
        if changes.first:
            # The first snapshot after a start: Backstage read the same data from the last run.
            return
        self._sources |= changes.sources
        self._core = self._core or changes.core or not changes.sources
        self._wake.set()

    @property
    def pending(self) -> bool:
        return bool(self._sources) or self._core

    async def run(self) -> None:
        """Send what changed, as soon as each ref's interval allows; for the life of the app."""
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self.pending:
                try:
                    await self._push()
                except Exception:
                    log.exception("pushing a refresh to Backstage failed unexpectedly")
                    self._sources.clear()
                    self._core = False

    async def _push(self) -> None:
        mode = await self._mode()
        if mode is None:
            return
        # Wait until every target may be sent again; changes meanwhile join the targets, and
        # may bring targets of their own to wait for.
        for _ in range(MAX_REFS + 1):
            wait = self._wait(self._targets(mode))
            if wait <= 0:
                break
            await asyncio.sleep(wait)
        targets = self._targets(mode)
        self._sources -= {
            s for s in self._sources if _location_ref(source_location_name(s)) in targets
        }
        self._core = False
        gate = asyncio.Semaphore(CONCURRENCY)
        unknown = await asyncio.gather(*(self._send(ref, gate) for ref in targets))
        root = _location_ref(ROOT_LOCATION_NAME)
        if any(unknown) and root not in targets:
            # A source Backstage has not seen yet comes in through the root.
            await asyncio.sleep(max(0.0, self._wait([root])))
            await self._send(root, gate)
        if self._sources:
            # More than MAX_REFS changed: the rest go one interval later.
            await asyncio.sleep(self.settings.refresh_min_interval_seconds)

    def _wait(self, targets: list[str]) -> float:
        """How long until every target may be sent again (refresh_min_interval_seconds)."""
        interval, now = self.settings.refresh_min_interval_seconds, self.clock()
        return max(
            (self._sent_at[ref] + interval - now for ref in targets if ref in self._sent_at),
            default=0.0,
        )

    def _targets(self, mode: str) -> list[str]:
        if mode == "one":
            self._sources.clear()
            return [f"component:{self.catalog.namespace}/{self.catalog.component}".lower()]
        # A change across a whole fleet goes out MAX_REFS at a time, one interval apart.
        refs = sorted(_location_ref(source_location_name(s)) for s in self._sources)[:MAX_REFS]
        return refs or [_location_ref(ROOT_LOCATION_NAME)]

    async def _mode(self) -> str | None:
        """ "one" or "many", from where Backstage has the Component; None if it has not."""
        component = EntityRef("component", self.catalog.namespace, self.catalog.component.lower())
        try:
            entity = await self.client.entity(component)
        except BackstageError as exc:
            self._sources.clear()
            self._core = False
            self._record(_outcome_of(exc), str(exc))
            return None
        if entity is None:
            # Not ingested yet: Backstage will read every entity at its first processing.
            self._sources.clear()
            self._core = False
            self._record("not_found", f"Backstage has no {component} yet")
            return None
        location = _annotation(entity, MANAGED_BY_LOCATION)
        self.mode = "many" if location.endswith("/catalog/core.yaml") else "one"
        return self.mode

    async def _send(self, ref: str, gate: asyncio.Semaphore) -> bool:
        """Refresh ``ref``, with one retry; True when Backstage does not know it."""
        async with gate:
            self._sent_at[ref] = self.clock()
            for attempt in (1, 2):
                try:
                    await self.client.refresh(ref)
                except BackstageError as exc:
                    if exc.retryable and attempt == 1:
                        await asyncio.sleep(RETRY_AFTER_SECONDS)
                        continue
                    outcome = _outcome_of(exc)
                    self._record(outcome, str(exc))
                    if outcome == "failed":
                        log.warning("%s; waiting for the next change", exc)
                    return outcome == "not_found"
                self._record("ok", None)
                log.info("asked Backstage to refresh %s", ref)
                return False
        return False

    def _record(self, outcome: str, error: str | None) -> None:
        self.outcomes[outcome] += 1
        self.last_at = datetime.now(UTC)
        self.last_outcome = outcome
        self.last_error = error
        self.on_outcome(outcome)

    def as_dict(self) -> dict[str, Any]:
        """As /readyz shows it."""
        return {
            "refresh_on_change": self.settings.refresh_on_change,
            "mode": self.mode,
            "last_at": iso(self.last_at),
            "last_outcome": self.last_outcome,
            "last_error": self.last_error,
            "outcomes": dict(sorted(self.outcomes.items())),
        }


def _outcome_of(exc: BackstageError) -> str:
    if exc.status == 404:
        return "not_found"
    if exc.status in (401, 403):
        return "unauthorized"
    return "failed"


def _annotation(entity: dict[str, Any], key: str) -> str:
    annotations = (entity.get("metadata") or {}).get("annotations") or {}
    value = annotations.get(key) if isinstance(annotations, dict) else None
    return value if isinstance(value, str) else ""
