"""Build a snapshot from records: transform, validate, render, and reuse what did not change.

CPU work, run off the event loop by the store. Each entity is built, validated and written into
the one YAML body in turn (``catalog.plan.CatalogPlan``), so a build never holds every
entity dict at once. An entity whose JSON document equals one of the snapshot before it passed
validation then: it is taken over, documents and all, and bodies equal to earlier ones are
taken over with their gzip (the third step of ``service.reuse``).
"""

from __future__ import annotations

import io
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from ..catalog.claims import ClaimIndex
from ..catalog.entities import REPOSITORY_ORIGIN
from ..catalog.locations import (
    pending_location,
    root_location,
    shard_count,
    shard_of,
    source_location,
)
from ..catalog.plan import NameCollision, plan_catalog
from ..catalog.render import (
    RenderedBody,
    etag_of,
    join_json,
    join_yaml,
    render_body,
    to_json_document,
    to_yaml_document,
)
from ..catalog.validate import EntityValidator, Rejection, entity_ref, parse_entity_ref
from ..config import CatalogSettings, PostureSettings
from ..errors import SnapshotRefused
from ..model import Entity, SourceId, SourceRecords
from ..reading import SourceListing
from .types import Deferred, IndexedEntity, Snapshot, SourceView

__all__ = ["build_snapshot", "log_rejections"]

log = logging.getLogger(__name__)


def log_rejections(rejections: Sequence[Rejection]) -> None:
    """One warning per entity left out, naming where it came from (a repository ARN)."""
    for rejection in rejections:
        log.warning(
            "entity left out of the catalog: %s from %s: %s",
            rejection.ref,
            rejection.origin,
            "; ".join(rejection.problems),
        )


@dataclass
class _Earlier:
    """What a build may take over from the snapshot before it instead of rendering again.

    Reusing unchanged documents and bodies also makes both snapshots share those bytes while
    they are swapped, instead of holding two copies.
    """

    # By their JSON document.
    items: dict[bytes, IndexedEntity] = field(default_factory=dict)
    yaml: dict[str, RenderedBody] = field(default_factory=dict)
    # Only shards rendered already, by source: a deferred rendering keeps these alive until
    # it runs, never the snapshot they came from.
    shards: dict[SourceId, dict[str, RenderedBody]] = field(default_factory=dict)

    @classmethod
    def of(cls, snapshot: Snapshot | None) -> _Earlier:
        earlier = cls()
        if snapshot is None:
            return earlier
        earlier.items = {item.json_document: item for item in snapshot.entities}
        earlier.yaml = {snapshot.yaml.etag: snapshot.yaml}
        earlier.shards = {
            source: {body.etag: body for body in view.shards.peek() or ()}
            for source, view in snapshot.sources.items()
        }
        return earlier


def _gzipped_body(body: bytes, known: Mapping[str, RenderedBody]) -> RenderedBody:
    """``body`` hashed and compressed, or the equal body rendered before."""
    found = known.get(etag_of(body))
    return found if found is not None else render_body(body, with_gzip=True)


def _viewing(body: bytes, placed: Sequence[tuple[IndexedEntity, int]]) -> list[IndexedEntity]:
    """Each item with its YAML document as a view into ``body``, their concatenation.

    ``placed`` pairs each item with the length of its document; the full body and every
    document on its own would hold each document twice. An item that views ``body`` already
    (an unchanged body) is kept.
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


def _owner_key(owner: object, namespace: str) -> str | None:
    ref = parse_entity_ref(owner, default_kind="group", default_namespace=namespace)
    return str(ref) if ref else None


def _listed(value: str | None) -> tuple[str, ...]:
    return tuple(value.split(",")) if value else ()


def _index(entity: Entity, label_prefix: str, json_document: bytes) -> IndexedEntity:
    """The item of a new entity; its YAML document is written by the build (see _viewing)."""
    metadata = entity["metadata"]
    spec = entity.get("spec", {})
    labels = metadata.get("labels", {})
    annotations = metadata.get("annotations", {})
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
        posture=annotations.get(f"{label_prefix}/posture"),
        posture_failures=_listed(annotations.get(f"{label_prefix}/posture-failures")),
        posture_unknown=_listed(annotations.get(f"{label_prefix}/posture-unknown")),
        yaml_document=b"",
        json_document=json_document,
    )


def _yaml_body(entity: Entity) -> RenderedBody:
    return render_body(to_yaml_document(entity), with_gzip=False)


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
            shards[shard_of(item.name, count)].append(item.yaml_document)
        return tuple(_gzipped_body(join_yaml(docs), known_shards) for docs in shards)

    return SourceView(
        source=source,
        stale_since=stale_since,
        entities=Deferred(
            lambda: render_body(join_yaml(i.yaml_document for i in items), with_gzip=True)
        ),
        shard_count=count,
        shards=Deferred(render_shards),
        location=_yaml_body(source_location(source, count)),
    )


def _is_repository(origin: str) -> bool:
    return origin.startswith(REPOSITORY_ORIGIN)


def _collision_rejections(collisions: Sequence[NameCollision]) -> tuple[Rejection, ...]:
    """One rejection per repository whose name collides: each is reported, none is served."""
    return tuple(
        Rejection(
            collision.ref,
            origin,
            (f"{collision.describe()}; none is served, so that none takes over another",),
        )
        for collision in collisions
        for origin in collision.origins
    )


def _withheld(collisions: Sequence[NameCollision]) -> dict[SourceId, str]:
    """The sources that hold a collision, and why they are not served.

    Backstage deletes what a 200 leaves out, and whichever entity a 200 served would own the
    other's ref; a 503 keeps what Backstage has until the names no longer collide.
    """
    reasons: dict[SourceId, list[str]] = {}
    for collision in collisions:
        for source in collision.sources:
            reasons.setdefault(source, []).append(collision.describe())
    return {
        source: f"{source} is withheld: entity names collide: {'; '.join(found)}"
        for source, found in sorted(reasons.items())
    }


def build_snapshot(
    listing: SourceListing,
    records: Mapping[SourceId, SourceRecords],
    stale_since: Mapping[SourceId, datetime],
    options: CatalogSettings,
    built_at: datetime,
    errors: Mapping[SourceId, str] | None = None,
    previous: Snapshot | None = None,
    claims: ClaimIndex | None = None,
    posture: PostureSettings | None = None,
    refuse_any_rejection: bool = False,
) -> Snapshot:
    """Transform, validate and render the records of every source into one snapshot.

    A repository whose entity is invalid is left out. A Domain, System, Component or registry
    that is invalid refuses the whole snapshot (SnapshotRefused), since everything else hangs
    off them. Documents and bodies equal to ones in ``previous`` are taken from it. ``claims``
    are the Backstage entities that claim repositories (catalog.claims); ``posture`` the checks
    each repository gets (catalog.posture). With ``refuse_any_rejection`` (records saved by
    an earlier run, which passed then) an invalid repository refuses the snapshot too.
    SnapshotRefused names the sources whose entities it refused. Repositories whose names
    collide (catalog.plan.NameCollision) are all left out and reported, and their sources are
    withheld: listed as incomplete, their URLs answering 503.
    """
    earlier = _Earlier.of(previous)
    plan = plan_catalog(
        [records[s] for s in sorted(records)],
        options,
        registry_sources=listing.sources,
        stale_since=stale_since,
        claims=claims,
        # Judged on the build's day (UTC), so replicas agree all day long.
        posture=None if posture is None else (posture, built_at.astimezone(UTC).date()),
    )
    validator = EntityValidator()
    body = io.BytesIO()
    placed: list[tuple[IndexedEntity, int]] = []
    sources_of: list[SourceId | None] = []
    refused_sources: set[SourceId] = set()
    for entity, origin, source in zip(plan.entities(), plan.origins, plan.sources, strict=True):
        json_document = to_json_document(entity)
        known = earlier.items.get(json_document)
        # One equal to an entity the last snapshot served passed validation then: its own
        # rules are not checked again, only the uniqueness of its ref.
        if not validator.admit(entity, origin, known_valid=known is not None):
            if source is not None and (refuse_any_rejection or not _is_repository(origin)):
                refused_sources.add(source)
            continue
        if known is None:
            item = _index(entity, options.annotation_prefix, json_document)
            yaml_document: bytes | memoryview = to_yaml_document(entity)
        else:
            item, yaml_document = known, known.yaml_document
        body.write(yaml_document)
        placed.append((item, len(yaml_document)))
        sources_of.append(source)
    rejections = (*validator.rejected, *_collision_rejections(plan.collisions))
    withheld = _withheld(plan.collisions)
    structural = [r for r in rejections if refuse_any_rejection or not _is_repository(r.origin)]
    if structural:
        if refuse_any_rejection:
            refused_sources.update(withheld)
        raise SnapshotRefused(
            "; ".join(f"{r.ref}: {', '.join(r.problems)}" for r in structural),
            tuple(sorted(refused_sources)),
        )
    log_rejections(rejections)
    yaml_body = _gzipped_body(body.getvalue(), earlier.yaml)
    del body
    indexed = _viewing(yaml_body.body, placed)
    core: list[IndexedEntity] = []
    per_source: dict[SourceId, list[IndexedEntity]] = {s: [] for s in records}
    for item, source in zip(indexed, sources_of, strict=True):
        (core if source is None else per_source[source]).append(item)

    # Each unresolved target is said as a sentence already (reading.SourceListing).
    incomplete = list(listing.unresolved)
    incomplete += [f"{source} is refused: {reason}" for source, reason in listing.refused]
    incomplete += [
        f"no data yet for {s}" + (f" ({errors[s]})" if errors and s in errors else "")
        for s in listing.sources
        if s not in records
    ]
    incomplete += withheld.values()
    targets_known = not listing.unresolved
    sources = {
        source: _source_view(
            source,
            items,
            stale_since.get(source),
            options.shard_size,
            earlier.shards.get(source, {}),
        )
        for source, items in per_source.items()
        if source not in withheld
    }
    return Snapshot(
        entities=tuple(indexed),
        by_ref={item.ref: item for item in indexed},
        yaml=yaml_body,
        json=Deferred(
            lambda: render_body(join_json(i.json_document for i in indexed), with_gzip=True)
        ),
        incomplete=tuple(incomplete),
        # With a target's sources unknown, nothing that lists every source can be served.
        core=render_body(join_yaml(i.yaml_document for i in core), with_gzip=False)
        if targets_known
        else None,
        root_location=_yaml_body(root_location(listing.sources)) if targets_known else None,
        sources=sources,
        listed=listing.sources,
        # A withheld source's own Location lists its shards: it answers 503 with them, since
        # a pending one would orphan them.
        pending_locations={
            s: _yaml_body(pending_location(s))
            for s in listing.sources
            if s not in sources and s not in withheld
        },
        built_at=built_at,
        rejections=rejections,
        repairs=plan.repairs,
        claim_conflicts=plan.claim_conflicts,
        claimed=plan.claimed,
        withheld=withheld,
    )
