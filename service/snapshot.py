"""The immutable snapshot that requests read, and the store that refreshes it from ECR.

A refresh reads every source, keeps each source's last good records, builds, validates and
renders the catalog off the event loop, then swaps the snapshot in one assignment. Requests
only ever read ``store.snapshot``; they never wait on AWS. Backstage deletes whatever a 200
leaves out, so nothing partial is ever served:

* the single URL (``/entities.yaml``) is served only when every source has data;
* each source also has its own URLs, served as soon as that source has data, so one failing
  source blocks nothing else;
* a failing source keeps serving its last good data, marked with the time it was read.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import hashlib
import io
import logging
import threading
import time
import zlib
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from cachetools import LRUCache

from .catalog import API_VERSION, REPOSITORY_ORIGIN, plan_catalog
from .config import CatalogSettings, RefreshSettings
from .model import Entity, SourceId, SourceRecords
from .persist import StateDir, StateWriteFailed
from .reading import EcrError, EcrReader, SourceListing
from .render import (
    RenderedBody,
    etag_of,
    join_json,
    join_yaml,
    render_body,
    to_json_document,
    to_yaml_document,
)
from .validate import EntityValidator, Rejection, entity_ref, parse_entity_ref

__all__ = [
    "Deferred",
    "EntityChanges",
    "IndexedEntity",
    "RefreshOutcome",
    "Snapshot",
    "SnapshotRefused",
    "SnapshotStore",
    "SourceStatus",
    "SourceView",
    "build_snapshot",
    "log_rejections",
    "shard_count",
]

log = logging.getLogger(__name__)

T = TypeVar("T")


class Deferred(Generic[T]):
    """A value computed on first use, once, off the event loop.

    For bodies few clients ask for (the JSON body, a source's one-body URL, the shards of the
    many-URL mode): at 10,000 repositories each set is ~20 MB plus its gzip, held by every
    snapshot for nobody.
    """

    def __init__(self, compute: Callable[[], T]) -> None:
        self._compute: Callable[[], T] | None = compute
        self._value: T | None = None
        self._lock = threading.Lock()

    def peek(self) -> T | None:
        """The value if it has been computed, else None."""
        return self._value

    def get(self) -> T:
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
    """An entity's pre-rendered documents and the fields the filters look at.

    The entity itself is not kept: a snapshot holds bytes, which the garbage collector never
    scans, instead of tens of thousands of small dicts it would (see RELIABILITY.md).
    """

    ref: str
    kind: str
    type: str | None
    owner: str | None
    account: str | None
    region: str | None
    name: str
    search_text: str
    # In a snapshot, a view into its full YAML body (see _viewing): one copy of each document.
    yaml_document: bytes | memoryview
    # The JSON document, deflated (18 MB at 10,000 repositories kept as plain bytes, for views
    # operators ask for now and then), and its digest: what a rebuild compares to reuse it.
    deflated_json: bytes
    json_digest: bytes

    @property
    def json_document(self) -> bytes:
        return _inflated(self.deflated_json)


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
    # The Location of each listed source that has no data yet (see source_location).
    pending_locations: Mapping[SourceId, RenderedBody]
    built_at: datetime
    rejected: int
    repairs: int
    # Filtered bodies are rendered on first request and live as long as the snapshot.
    filtered_bodies: LRUCache[tuple[Any, ...], RenderedBody] = field(
        default_factory=lambda: LRUCache(maxsize=256), compare=False, repr=False
    )

    @property
    def complete(self) -> bool:
        return not self.incomplete

    def counts_by_kind(self) -> dict[str, int]:
        return dict(sorted(Counter(item.kind for item in self.entities).items()))

    def stale_sources(self) -> dict[SourceId, datetime]:
        return {s: v.stale_since for s, v in self.sources.items() if v.stale_since is not None}


# What every entity's JSON repeats, as a preset dictionary for deflate: a document of ~1.8 KB
# deflates to ~1.3 KB on its own and to a few hundred bytes against this. Only this process
# reads what it deflates, so the dictionary may change from one version to the next.
_JSON_DICTIONARY = (
    b'{"apiVersion":"backstage.io/v1alpha1","kind":"Component","metadata":{"name":"","namespace"'
    b':"default","title":"","description":"","labels":{"ecr-catalog.io/account":"","ecr-catalog'
    b'.io/region":"","environment":"","team":""},"annotations":{"amazonaws.com/account-id":"",'
    b'"amazonaws.com/arn":"arn:aws:ecr:us-east-1:123456789012:repository/","amazonaws.com/ecr-r'
    b'epository-arn":"arn:aws:ecr:","aws.amazon.com/amazon-ecr-arn":"arn:aws:ecr:","backstage.'
    b'io/view-url":"https://us-east-1.console.aws.amazon.com/ecr/repositories/private/?region='
    b'","ecr-catalog.io/created-at":"2026-01-01T00:00:00Z","ecr-catalog.io/encryption-type":"AE'
    b'S256","ecr-catalog.io/image-count":"","ecr-catalog.io/latest-image-digest":"sha256:","ecr'
    b'-catalog.io/latest-image-findings-high":"","ecr-catalog.io/latest-image-pushed-at":"","ec'
    b'r-catalog.io/latest-image-size-bytes":"","ecr-catalog.io/latest-image-tags":"latest","ecr'
    b'-catalog.io/lifecycle-policy":"true","ecr-catalog.io/lifecycle-rule-count":"","ecr-catalo'
    b'g.io/repository-uri":".dkr.ecr.us-east-1.amazonaws.com/","ecr-catalog.io/scan-on-push":"f'
    b'alse","ecr-catalog.io/tag-mutability":"IMMUTABLE"},"tags":[],"links":[{"url":"https://us-'
    b'east-1.console.aws.amazon.com/ecr/repositories/private/","title":"AWS console","icon":"cl'
    b'oud"}]},"spec":{"type":"ecr-repository","owner":"group:default/","system":"container-regi'
    b'stry","dependsOn":["resource:default/ecr-123456789012-us-east-1"]}}'
)


def _deflated(document: bytes) -> bytes:
    deflater = zlib.compressobj(6, zlib.DEFLATED, -15, 9, zlib.Z_DEFAULT_STRATEGY, _JSON_DICTIONARY)
    return deflater.compress(document) + deflater.flush()


def _inflated(deflated: bytes) -> bytes:
    inflater = zlib.decompressobj(-15, _JSON_DICTIONARY)
    return inflater.decompress(deflated) + inflater.flush()


def _json_digest(document: bytes) -> bytes:
    return hashlib.blake2b(document, digest_size=16).digest()


def _owner_key(owner: object, namespace: str) -> str | None:
    ref = parse_entity_ref(owner, default_kind="group", default_namespace=namespace)
    return str(ref) if ref else None


@dataclass
class _Reuse:
    """What a build may take over from the snapshot before it instead of rendering again.

    Most refreshes change a handful of entities, if any. Rendering YAML is most of a build's
    CPU and gzip most of the rest; reusing unchanged documents and bodies also makes both
    snapshots share those bytes while they are swapped, instead of holding two copies.
    """

    # By the digest of their JSON document.
    items: dict[bytes, IndexedEntity] = field(default_factory=dict)
    yaml: dict[str, RenderedBody] = field(default_factory=dict)
    # Only shards rendered already, by source: a deferred rendering keeps these alive until
    # it runs, never the snapshot they came from.
    shards: dict[SourceId, dict[str, RenderedBody]] = field(default_factory=dict)

    @classmethod
    def of(cls, snapshot: Snapshot | None) -> _Reuse:
        reuse = cls()
        if snapshot is None:
            return reuse
        reuse.items = {item.json_digest: item for item in snapshot.entities}
        reuse.yaml = {snapshot.yaml.etag: snapshot.yaml}
        reuse.shards = {
            source: {body.etag: body for body in view.shards.peek() or ()}
            for source, view in snapshot.sources.items()
        }
        return reuse


def _gzipped_body(body: bytes, known: Mapping[str, RenderedBody]) -> RenderedBody:
    """``body`` hashed and compressed, or the equal body rendered before."""
    found = known.get(etag_of(body))
    return found if found is not None else render_body(body, with_gzip=True)


def _viewing(body: bytes, placed: Sequence[tuple[IndexedEntity, int]]) -> list[IndexedEntity]:
    """Each item with its YAML document as a view into ``body``, their concatenation.

    ``placed`` pairs each item with the length of its document. The full body and every
    document on its own would hold each document twice: 18 MB at 10,000 repositories. An item
    that views ``body`` already (an unchanged body) is kept.
    """
    view = memoryview(body)
    viewing = []
    start = 0
    for item, length in placed:
        end = start + length
        document = item.yaml_document
        if not (isinstance(document, memoryview) and document.obj is body):
            item = replace(item, yaml_document=view[start:end])
        viewing.append(item)
        start = end
    return viewing


def _index(entity: Entity, label_prefix: str, json_document: bytes, digest: bytes) -> IndexedEntity:
    """The item of a new entity; its YAML document is written by the build (see _viewing)."""
    metadata = entity["metadata"]
    spec = entity.get("spec", {})
    labels = metadata.get("labels", {})
    namespace = metadata.get("namespace", "default")
    text = " ".join(str(metadata.get(key, "")) for key in ("name", "title", "description")).lower()
    return IndexedEntity(
        ref=str(entity_ref(entity)),
        kind=str(entity["kind"]).lower(),
        type=str(spec["type"]).lower() if "type" in spec else None,
        owner=_owner_key(spec.get("owner"), namespace),
        account=labels.get(f"{label_prefix}/account"),
        region=labels.get(f"{label_prefix}/region"),
        name=str(metadata["name"]).lower(),
        search_text=text,
        yaml_document=b"",
        deflated_json=_deflated(json_document),
        json_digest=digest,
    )


def log_rejections(rejections: Sequence[Rejection]) -> None:
    """One warning per entity left out, naming where it came from (a repository ARN)."""
    for rejection in rejections:
        log.warning(
            "entity left out of the catalog: %s from %s: %s",
            rejection.ref,
            rejection.origin,
            "; ".join(rejection.problems),
        )


class SnapshotRefused(Exception):
    """The catalog's own entities failed validation: serving the rest would orphan them."""


def _shard_of(name: str, count: int) -> int:
    return int.from_bytes(hashlib.sha256(name.encode("utf-8")).digest()[:8], "big") % count


def shard_count(names: Sequence[str], shard_size: int) -> int:
    """The smallest power of two that keeps every shard at or under ``shard_size`` entities.

    Entities go to shards by a hash of their name, so adding or removing one changes one
    shard's body. The count starts where shards would be at most half full and doubles only
    when the hash spread overfills one, so it changes only when a source about doubles.
    """
    count = 1
    while count * shard_size < 2 * len(names):
        count *= 2
    while max(Counter(_shard_of(n, count) for n in names).values(), default=0) > shard_size:
        count *= 2
    return count


def _location(name: str, description: str, targets: Sequence[str]) -> RenderedBody:
    entity = {
        "apiVersion": API_VERSION,
        "kind": "Location",
        "metadata": {"name": name, "description": description},
        # Relative targets: Backstage resolves them against this document's own URL, so the
        # body is the same whatever host name a replica is reached by.
        "spec": {"type": "url", "targets": list(targets)},
    }
    return render_body(to_yaml_document(entity), with_gzip=False)


def source_path(source: SourceId) -> str:
    """Where a source's own URLs live, relative to the service root."""
    return f"sources/{source.account_id}/{source.region}"


# Where a source without data points: the one shard of a source of up to shard_size / 2
# entities, so that for most sources the Location's targets stay the same when data arrives.
PENDING_SHARD = "./shards/1/0.yaml"


def _pending_location(source: SourceId) -> RenderedBody:
    # Backstage processes a Location and all its targets as one unit: one failing target fails
    # the whole Location. So a source's Location answers 200 even before the source has data,
    # pointing at a shard URL that answers 503 until then. Only this source's Location fails,
    # and whatever it emitted before (say, before a restart) stays in place. The target is the
    # URL the source will most likely have: when a Location's targets change, Backstage removes
    # what came through the old one and the new one conflicts until then (seen with a real
    # Backstage: a recovered source's entities vanished for a while when this was
    # ./entities.yaml).
    return _location(
        f"ecr-catalog-{source.account_id}-{source.region}",
        f"ECR entities of {source}, not read yet.",
        [PENDING_SHARD],
    )


def _source_view(
    source: SourceId,
    items: Sequence[IndexedEntity],
    stale_since: datetime | None,
    shard_size: int,
    known_shards: Mapping[str, RenderedBody],
) -> SourceView:
    count = shard_count([item.name for item in items], shard_size)

    def render_shards() -> tuple[RenderedBody, ...]:
        shards: list[list[bytes | memoryview]] = [[] for _ in range(count)]
        for item in items:
            shards[_shard_of(item.name, count)].append(item.yaml_document)
        return tuple(_gzipped_body(join_yaml(docs), known_shards) for docs in shards)

    return SourceView(
        source=source,
        stale_since=stale_since,
        entities=Deferred(
            lambda: render_body(join_yaml(i.yaml_document for i in items), with_gzip=True)
        ),
        shard_count=count,
        shards=Deferred(render_shards),
        location=_location(
            f"ecr-catalog-{source.account_id}-{source.region}",
            f"ECR entities of {source}, in {count} shard(s).",
            [f"./shards/{count}/{index}.yaml" for index in range(count)],
        ),
    )


def build_snapshot(
    listing: SourceListing,
    records: Mapping[SourceId, SourceRecords],
    stale_since: Mapping[SourceId, datetime],
    options: CatalogSettings,
    built_at: datetime,
    errors: Mapping[SourceId, str] | None = None,
    previous: Snapshot | None = None,
) -> Snapshot:
    """Transform, validate and render: CPU work, run off the event loop by the store.

    A repository whose entity is invalid is left out. A Domain, System, Component or registry
    that is invalid refuses the whole snapshot, since everything else hangs off them.
    Documents and bodies equal to ones in ``previous`` are taken from it, not rendered again.
    """
    reuse = _Reuse.of(previous)
    plan = plan_catalog(
        [records[s] for s in sorted(records)],
        options,
        registry_sources=listing.sources,
        stale_since=stale_since,
    )
    validator = EntityValidator()
    body = io.BytesIO()
    placed: list[tuple[IndexedEntity, int]] = []
    sources_of: list[SourceId | None] = []
    # Each entity is built, validated, rendered into the one body and dropped in turn (see
    # CatalogPlan). One equal to an entity the last snapshot served passed validation then:
    # its own rules are not checked again and its documents are taken over, not rendered.
    for entity, origin, source in zip(plan.entities(), plan.origins, plan.sources, strict=True):
        json_document = to_json_document(entity)
        digest = _json_digest(json_document)
        known = reuse.items.get(digest)
        if not validator.admit(entity, origin, known_valid=known is not None):
            continue
        if known is None:
            item = _index(entity, options.annotation_prefix, json_document, digest)
            yaml_document: bytes | memoryview = to_yaml_document(entity)
        else:
            item, yaml_document = known, known.yaml_document
        body.write(yaml_document)
        placed.append((item, len(yaml_document)))
        sources_of.append(source)
    structural = [r for r in validator.rejected if not r.origin.startswith(REPOSITORY_ORIGIN)]
    if structural:
        raise SnapshotRefused("; ".join(f"{r.ref}: {', '.join(r.problems)}" for r in structural))
    log_rejections(validator.rejected)
    yaml_body = _gzipped_body(body.getvalue(), reuse.yaml)
    del body
    indexed = _viewing(yaml_body.body, placed)
    core: list[IndexedEntity] = []
    per_source: dict[SourceId, list[IndexedEntity]] = {s: [] for s in records}
    for item, source in zip(indexed, sources_of, strict=True):
        (core if source is None else per_source[source]).append(item)

    incomplete = [f"sources of {target} are unknown" for target in listing.unresolved]
    incomplete += [f"{source} is refused: {reason}" for source, reason in listing.refused]
    incomplete += [
        f"no data yet for {s}" + (f" ({errors[s]})" if errors and s in errors else "")
        for s in listing.sources
        if s not in records
    ]
    targets_known = not listing.unresolved
    sources = {
        source: _source_view(
            source, items, stale_since.get(source), options.shard_size, reuse.shards.get(source, {})
        )
        for source, items in per_source.items()
    }
    return Snapshot(
        entities=tuple(indexed),
        by_ref={item.ref: item for item in indexed},
        yaml=yaml_body,
        json=Deferred(
            lambda: render_body(join_json(i.json_document for i in indexed), with_gzip=True)
        ),
        incomplete=tuple(incomplete),
        core=render_body(join_yaml(i.yaml_document for i in core), with_gzip=False)
        if targets_known
        else None,
        root_location=_location(
            "ecr-catalog",
            "Every ECR entity served by ecr-catalog: the catalog itself and one URL per source.",
            ["./catalog/core.yaml"]
            + [f"./{source_path(s)}/catalog-info.yaml" for s in listing.sources],
        )
        if targets_known
        else None,
        sources=sources,
        listed=listing.sources,
        pending_locations={s: _pending_location(s) for s in listing.sources if s not in sources},
        built_at=built_at,
        rejected=len(validator.rejected),
        repairs=len(plan.repairs),
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
            "stale": self.last_error is not None and self.last_success_at is not None,
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
    sources: int = 0
    repositories: int = 0
    changes: EntityChanges | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "started_at": _iso(self.started_at),
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

    @classmethod
    def between(cls, before: Snapshot | None, after: Snapshot) -> EntityChanges:
        if before is after:
            # Most refreshes publish nothing new (the build was skipped): no dicts of every ref.
            return cls()
        old = {item.ref: item.json_digest for item in before.entities} if before else {}
        new = {item.ref: item.json_digest for item in after.entities}
        return cls(
            added=len(new.keys() - old.keys()),
            removed=len(old.keys() - new.keys()),
            changed=sum(1 for ref, doc in new.items() if ref in old and old[ref] != doc),
        )


NOT_READ_SINCE_RESTART = "not read since the restart; serving the data saved before it"


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
    _last_good: dict[SourceId, SourceRecords] = field(default_factory=dict)
    # Called after every refresh: metrics and the summary log line.
    on_refresh: Callable[[RefreshOutcome], None] = field(default=lambda _outcome: None)
    _running: asyncio.Task[RefreshOutcome] | None = None
    _soon: asyncio.Task[None] | None = None
    # What the current snapshot was built from (see _publish).
    _built_from: tuple[Any, ...] | None = None
    _reading: dict[SourceId, asyncio.Task[None]] = field(default_factory=dict)
    # Saves to ``state``, by outcome (ok, failed), and the last failure while it lasts.
    state_writes: Counter[str] = field(default_factory=Counter)
    last_state_error: str | None = None

    async def load_state(self, wanted: Callable[[SourceId], bool] = lambda _s: True) -> None:
        """Serve what the last run saved, marked stale, before AWS has answered anything.

        Only sources that are ``wanted`` (still configured) are loaded; see StateDir.load.
        """
        if self.state is None:
            return
        saved = await asyncio.to_thread(self.state.load, wanted)
        for records in saved:
            self._last_good[records.source] = records
            self.statuses[records.source] = SourceStatus(
                records.source,
                last_success_at=records.read_at,
                last_error=NOT_READ_SINCE_RESTART,
                repositories=len(records.repositories),
            )
        if saved:
            log.info("loaded saved data of %d source(s) from %s", len(saved), self.state.path)
            listing = SourceListing(tuple(sorted(self._last_good)))
            await self._publish(listing)

    async def refresh(self) -> RefreshOutcome:
        """Refresh now, or join the refresh already running; it never raises for AWS failures."""
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
        self._last_good[source] = records
        status.successes += 1
        status.last_success_at = records.read_at
        status.last_error = None
        status.repositories = len(records.repositories)
        if self.state is not None:
            await self._save(records)

    async def _save(self, records: SourceRecords) -> None:
        assert self.state is not None
        try:
            await asyncio.to_thread(self.state.save, records)
        except StateWriteFailed as exc:
            # The data is read and served all the same; only a restart would miss it.
            self.state_writes["failed"] += 1
            self.last_state_error = str(exc)
            log.error("%s; serving goes on, but a restart would not have this data", exc)
        else:
            self.state_writes["ok"] += 1
            self.last_state_error = None

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

    def _effective_listing(self, listing: SourceListing) -> SourceListing:
        if not listing.unresolved:
            return listing
        # A target whose account is unknown may own sources read before (or saved before a
        # restart): keep serving them rather than orphaning them in Backstage.
        known = set(listing.sources) | {
            s for s in self._last_good if s not in {r for r, _ in listing.refused}
        }
        return SourceListing(tuple(sorted(known)), listing.refused, listing.unresolved)

    async def _refresh(self) -> RefreshOutcome:
        started_at = self.clock()
        started = time.monotonic()
        listing = self._effective_listing(await self.reader.list_sources())
        self.unresolved = listing.unresolved
        for source, reason in listing.refused:
            status = self.statuses.setdefault(source, SourceStatus(source))
            status.last_attempt_at = started_at
            status.last_error = reason
        for gone in set(self._last_good) - set(listing.sources):
            # Removed from the configuration (not merely failing): stop serving it.
            del self._last_good[gone]
            self.statuses.pop(gone, None)
        await self._read_all(listing.sources)
        failed = tuple(str(s) for s in listing.sources if not self.statuses[s].healthy)
        failed += tuple(str(s) for s, _ in listing.refused)
        before = self.snapshot
        try:
            snapshot = await self._publish(listing)
        except SnapshotRefused as exc:
            log.error("snapshot refused, keeping the last good one: %s", exc)
            return self._finish(started_at, started, failed, published=False, error=str(exc))
        self.refreshed_at = self.clock()
        error = "; ".join(snapshot.incomplete) or None
        return self._finish(
            started_at,
            started,
            failed,
            published=True,
            error=error,
            changes=EntityChanges.between(before, snapshot),
        )

    async def _publish(self, listing: SourceListing) -> Snapshot:
        stale = {
            s: status.last_success_at
            for s, status in self.statuses.items()
            if status.last_error is not None and status.last_success_at is not None
        }
        records = {s: r for s, r in self._last_good.items() if s in set(listing.sources)}
        errors = {s: st.last_error for s, st in self.statuses.items() if st.last_error}
        current = self.snapshot
        # The reader hands back the same record objects for unchanged repositories, so this
        # comparison is cheap; when it holds, the build would give the current snapshot again.
        inputs = (
            self.options,
            listing,
            tuple((s, r.registry, r.repositories, r.skipped) for s, r in sorted(records.items())),
            tuple(sorted(stale.items())),
            tuple(sorted(errors.items())),
        )
        if current is not None and inputs == self._built_from:
            return current
        snapshot = await asyncio.to_thread(
            build_snapshot, listing, records, stale, self.options, self.clock(), errors, current
        )
        self._built_from = inputs
        if current is None:
            # The first refresh loaded what botocore builds lazily (service models, endpoint
            # rules) for the life of the process: keep the collector from rescanning it.
            gc.freeze()
        if (
            current is None
            or snapshot.yaml.etag != current.yaml.etag
            or snapshot.incomplete != current.incomplete
            or snapshot.root_location != current.root_location
            or snapshot.core != current.core
        ):
            self.snapshot = snapshot
            log.info(
                "snapshot published: %d entities, etag %s%s",
                len(snapshot.entities),
                snapshot.yaml.etag,
                f" (incomplete: {'; '.join(snapshot.incomplete)})" if snapshot.incomplete else "",
            )
        return snapshot

    def _finish(
        self,
        started_at: datetime,
        started: float,
        failed: tuple[str, ...],
        *,
        published: bool,
        error: str | None = None,
        changes: EntityChanges | None = None,
    ) -> RefreshOutcome:
        self.last_refresh = RefreshOutcome(
            started_at=started_at,
            duration_seconds=time.monotonic() - started,
            failed_sources=failed,
            published=published,
            error=error,
            sources=len(self.statuses),
            repositories=sum(len(r.repositories) for r in self._last_good.values()),
            changes=changes,
        )
        try:
            self.on_refresh(self.last_refresh)
        except Exception:
            log.exception("reporting a refresh failed")
        return self.last_refresh

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
