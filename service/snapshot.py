"""The immutable snapshot that requests read, and the store that refreshes it from ECR.

A refresh reads every source, keeps each source's last good records, builds, validates and
renders the catalog off the event loop, then swaps the snapshot in one assignment. Requests
only ever read ``store.snapshot``; they never wait on AWS. A failed refresh keeps the last
good data: Backstage deletes whatever a 200 leaves out, so a partial catalog is never served.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cachetools import LRUCache

from .catalog import REPOSITORY_ORIGIN, build_catalog
from .config import CatalogSettings, RefreshSettings
from .ecr import EcrError, EcrReader
from .model import Entity, SourceId, SourceRecords
from .render import (
    RenderedBody,
    join_json,
    join_yaml,
    render_body,
    to_json_document,
    to_yaml_document,
)
from .validate import entity_ref, parse_entity_ref, validate_entities

__all__ = [
    "IndexedEntity",
    "RefreshOutcome",
    "Snapshot",
    "SnapshotRefused",
    "SnapshotStore",
    "SourceStatus",
    "build_snapshot",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class IndexedEntity:
    """An entity with its pre-rendered documents and the fields the filters look at."""

    entity: Entity
    ref: str
    kind: str
    type: str | None
    owner: str | None
    account: str | None
    region: str | None
    name: str
    search_text: str
    yaml_document: bytes
    json_document: bytes


@dataclass(frozen=True)
class Snapshot:
    """One consistent catalog, rendered once."""

    entities: tuple[IndexedEntity, ...]
    by_ref: Mapping[str, IndexedEntity]
    yaml: RenderedBody
    json: RenderedBody
    built_at: datetime
    rejected: int
    repairs: int
    # Filtered bodies are rendered on first request and live as long as the snapshot.
    filtered_bodies: LRUCache[tuple[Any, ...], RenderedBody] = field(
        default_factory=lambda: LRUCache(maxsize=256), compare=False, repr=False
    )

    def counts_by_kind(self) -> dict[str, int]:
        return dict(sorted(Counter(item.kind for item in self.entities).items()))


def _owner_key(owner: object, namespace: str) -> str | None:
    ref = parse_entity_ref(owner, default_kind="group", default_namespace=namespace)
    return str(ref) if ref else None


def _index(entity: Entity, label_prefix: str) -> IndexedEntity:
    metadata = entity["metadata"]
    spec = entity.get("spec", {})
    labels = metadata.get("labels", {})
    namespace = metadata.get("namespace", "default")
    text = " ".join(str(metadata.get(key, "")) for key in ("name", "title", "description")).lower()
    return IndexedEntity(
        entity=entity,
        ref=str(entity_ref(entity)),
        kind=str(entity["kind"]).lower(),
        type=str(spec["type"]).lower() if "type" in spec else None,
        owner=_owner_key(spec.get("owner"), namespace),
        account=labels.get(f"{label_prefix}/account"),
        region=labels.get(f"{label_prefix}/region"),
        name=str(metadata["name"]).lower(),
        search_text=text,
        yaml_document=to_yaml_document(entity),
        json_document=to_json_document(entity),
    )


class SnapshotRefused(Exception):
    """The catalog's own entities failed validation: serving the rest would orphan them."""


def build_snapshot(
    records: Sequence[SourceRecords], options: CatalogSettings, built_at: datetime
) -> Snapshot:
    """Transform, validate and render: CPU work, run off the event loop by the store.

    A repository whose entity is invalid is left out. A Domain, System, Component or registry
    that is invalid refuses the whole snapshot, since everything else hangs off them.
    """
    build = build_catalog(records, options)
    outcome = validate_entities(build.entities, build.origins)
    structural = [r for r in outcome.rejected if not r.origin.startswith(REPOSITORY_ORIGIN)]
    if structural:
        raise SnapshotRefused("; ".join(f"{r.ref}: {', '.join(r.problems)}" for r in structural))
    for rejection in outcome.rejected:
        log.warning(
            "entity left out of the catalog: %s from %s: %s",
            rejection.ref,
            rejection.origin,
            "; ".join(rejection.problems),
        )
    indexed = tuple(_index(entity, options.annotation_prefix) for entity in outcome.accepted)
    return Snapshot(
        entities=indexed,
        by_ref={item.ref: item for item in indexed},
        yaml=render_body(join_yaml(i.yaml_document for i in indexed), with_gzip=True),
        json=render_body(join_json(i.json_document for i in indexed), with_gzip=True),
        built_at=built_at,
        rejected=len(outcome.rejected),
        repairs=len(build.repairs),
    )


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

    @property
    def healthy(self) -> bool:
        return self.last_error is None and self.last_success_at is not None

    def as_dict(self) -> dict[str, Any]:
        return {
            "account": self.source.account_id,
            "region": self.source.region,
            "healthy": self.healthy,
            "last_attempt_at": _iso(self.last_attempt_at),
            "last_success_at": _iso(self.last_success_at),
            "last_error": self.last_error,
            "repositories": self.repositories,
        }


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z") if moment else None


@dataclass(frozen=True)
class RefreshOutcome:
    """What one refresh did."""

    started_at: datetime
    duration_seconds: float
    failed_sources: tuple[str, ...]
    published: bool
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "started_at": _iso(self.started_at),
            "duration_seconds": round(self.duration_seconds, 3),
            "failed_sources": list(self.failed_sources),
            "published": self.published,
            "error": self.error,
        }


@dataclass
class SnapshotStore:
    """Holds the current snapshot and each source's last good records; refreshes single-flight."""

    reader: EcrReader
    options: CatalogSettings
    refresh_settings: RefreshSettings
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    snapshot: Snapshot | None = None
    last_refresh: RefreshOutcome | None = None
    refreshed_at: datetime | None = None
    statuses: dict[SourceId, SourceStatus] = field(default_factory=dict)
    _last_good: dict[SourceId, SourceRecords] = field(default_factory=dict)
    _running: asyncio.Task[RefreshOutcome] | None = None

    async def refresh(self) -> RefreshOutcome:
        """Refresh now, or join the refresh already running; it never raises for AWS failures."""
        if self._running is None or self._running.done():
            self._running = asyncio.create_task(self._refresh())
        return await asyncio.shield(self._running)

    async def _read(self, source: SourceId) -> None:
        status = self.statuses.setdefault(source, SourceStatus(source))
        status.last_attempt_at = self.clock()
        try:
            async with asyncio.timeout(self.refresh_settings.deadline_seconds):
                records = await self.reader.read_source(source)
        except TimeoutError:
            status.last_error = (
                f"read did not finish within {self.refresh_settings.deadline_seconds:g} s"
            )
        except EcrError as exc:
            status.last_error = str(exc)
        else:
            self._last_good[source] = records
            status.successes += 1
            status.last_success_at = records.read_at
            status.last_error = None
            status.repositories = len(records.repositories)
            return
        status.failures += 1
        log.warning("reading %s failed; keeping its last good data: %s", source, status.last_error)

    async def _refresh(self) -> RefreshOutcome:
        started_at = self.clock()
        started = time.monotonic()
        try:
            sources = await self.reader.list_sources()
            async with asyncio.TaskGroup() as group:
                for source in sources:
                    group.create_task(self._read(source))
        except EcrError as exc:
            log.warning("listing sources failed: %s", exc)
            return self._finish(started_at, started, (), published=False, error=str(exc))
        failed = tuple(str(s) for s in sources if not self.statuses[s].healthy)
        missing = [s for s in sources if s not in self._last_good]
        if missing:
            # A catalog without a source's entities would make Backstage delete them.
            error = "no data yet for " + "; ".join(
                f"{s} ({self.statuses[s].last_error})" for s in missing
            )
            return self._finish(started_at, started, failed, published=False, error=error)
        records = [self._last_good[s] for s in sources]
        try:
            snapshot = await asyncio.to_thread(build_snapshot, records, self.options, self.clock())
        except SnapshotRefused as exc:
            log.error("snapshot refused, keeping the last good one: %s", exc)
            return self._finish(started_at, started, failed, published=False, error=str(exc))
        if self.snapshot is None or snapshot.yaml.etag != self.snapshot.yaml.etag:
            self.snapshot = snapshot
            log.info(
                "snapshot published: %d entities, etag %s",
                len(snapshot.entities),
                snapshot.yaml.etag,
            )
        self.refreshed_at = self.clock()
        return self._finish(started_at, started, failed, published=True)

    def _finish(
        self,
        started_at: datetime,
        started: float,
        failed: tuple[str, ...],
        *,
        published: bool,
        error: str | None = None,
    ) -> RefreshOutcome:
        self.last_refresh = RefreshOutcome(
            started_at=started_at,
            duration_seconds=time.monotonic() - started,
            failed_sources=failed,
            published=published,
            error=error,
        )
        return self.last_refresh

    async def run_forever(self) -> None:
        """Refresh on the interval; sooner while there is no snapshot yet."""
        while True:
            try:
                await self.refresh()
            except Exception:
                # A bug in one refresh must not end refreshing for the life of the process.
                log.exception("refresh failed unexpectedly")
            delay = (
                self.refresh_settings.interval_seconds
                if self.snapshot is not None
                else self.refresh_settings.initial_retry_seconds
            )
            await asyncio.sleep(delay)
