"""The snapshot: the core entities plus the catalog of each source, assembled and checked once.

Each source's catalog is built on its own (source.py); what spans sources is done here: the
Domain, System and Component (which depends on every listed source's registry), the uniqueness
of refs across sources, the single body and its ETag, the Locations, and what is missing.
"""

from __future__ import annotations

import heapq
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from ..catalog.entities import core_entities
from ..catalog.locations import pending_location
from ..catalog.naming import registry_entity_name
from ..catalog.render import RenderedBody, join_json, join_yaml, render_body, to_yaml_document
from ..catalog.validate import EntityValidator, Rejection
from ..config import CatalogSettings
from ..errors import SnapshotRefused
from ..model import Entity, SourceId
from ..reading import SourceListing
from .partitioned import every_source, fleet_gaps, partition_bodies, root_of, serves_core
from .source import NameCollision, SourceCatalog, index_all
from .types import Deferred, IndexedEntity, Snapshot

__all__ = ["Assembly", "assemble", "log_rejections"]

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


@dataclass(frozen=True)
class Assembly:
    """Everything a snapshot is assembled from; an equal assembly gives an equal snapshot.

    Catalogs compare by identity first (the store keeps a source's catalog while its inputs
    are equal), so comparing two assemblies of a quiet refresh costs next to nothing.
    """

    listing: SourceListing
    settings: CatalogSettings
    catalogs: tuple[SourceCatalog, ...]
    # Why a listed source without a catalog has none yet, by source.
    errors: tuple[tuple[SourceId, str], ...] = ()
    # Records saved by an earlier run, which passed then: any rejection refuses.
    refuse_any_rejection: bool = False


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


def _across_sources(catalogs: Sequence[SourceCatalog]) -> tuple[NameCollision, ...]:
    """Refs served by more than one source. Names end in their source's region and account, so
    this never happens by naming; it would take a change there, and then no source wins."""
    by_ref: dict[str, list[tuple[str, SourceId]]] = {}
    for catalog in catalogs:
        for item in catalog.entities:
            by_ref.setdefault(item.ref.lower(), []).append((item.ref, catalog.source))
    return tuple(
        NameCollision(ref, tuple(sorted(r for r, _ in found)), tuple(sorted(s for _, s in found)))
        for ref, found in sorted(by_ref.items())
        if len(found) > 1
    )


def _ordered(
    core: Sequence[IndexedEntity], catalogs: Iterable[SourceCatalog]
) -> list[IndexedEntity]:
    """Every entity in the order of the single body (source.sort_key): the core comes first,
    in its own order, and each source's Resources are sorted already, so they are merged."""
    merged = heapq.merge(*(catalog.entities for catalog in catalogs), key=lambda i: i.name)
    return [*core, *merged]


def _yaml_body(entity: Entity) -> RenderedBody:
    return render_body(to_yaml_document(entity), with_gzip=False)


def _incomplete(assembly: Assembly, withheld: Mapping[SourceId, str]) -> list[str]:
    listing, errors = assembly.listing, dict(assembly.errors)
    built = {catalog.source for catalog in assembly.catalogs}
    # Each unresolved target is said as a sentence already (reading.SourceListing).
    incomplete = list(listing.unresolved)
    incomplete += [f"{source} is refused: {reason}" for source, reason in listing.refused]
    incomplete += [
        f"no data yet for {s}" + (f" ({errors[s]})" if s in errors else "")
        for s in listing.sources
        if s not in built
    ]
    incomplete += withheld.values()
    return incomplete


def _refuse(
    assembly: Assembly, core: Sequence[Rejection], withheld: Mapping[SourceId, str]
) -> None:
    """Refuse the snapshot when an entity that others hang off is invalid (or, with
    ``refuse_any_rejection``, any entity), naming the sources whose entities it refused."""
    strict = assembly.refuse_any_rejection
    refused: set[SourceId] = set()
    found = list(core)
    for catalog in assembly.catalogs:
        blamed = catalog.rejections if strict else catalog.structural
        if blamed:
            refused.add(catalog.source)
            found += blamed
    if strict:
        found += _collision_rejections([c for x in assembly.catalogs for c in x.collisions])
        refused.update(withheld)
    if found:
        raise SnapshotRefused(
            "; ".join(f"{r.ref}: {', '.join(r.problems)}" for r in found),
            tuple(sorted(refused)),
        )


def assemble(assembly: Assembly, built_at: datetime) -> Snapshot:
    """The snapshot of the core entities and every source's catalog.

    A repository whose entity is invalid is left out. A Domain, System, Component or registry
    that is invalid refuses the whole snapshot (SnapshotRefused), since everything else hangs
    off them. Repositories whose names collide are all left out and reported, and their
    sources are withheld: listed as incomplete, their URLs answering 503.
    """
    listing, settings, catalogs = assembly.listing, assembly.settings, assembly.catalogs
    validator = EntityValidator()
    # A partition of a fleet serves the core only on partition 0, naming every source of the
    # fleet (partitioned.py); a single process names its own.
    every, with_core = every_source(listing), serves_core(listing)
    registries = [registry_entity_name(source) for source in every or ()]
    built_core = core_entities(settings, registries) if with_core else []
    core, core_body = index_all(built_core, validator)
    across = _across_sources(catalogs)
    collisions = sorted(
        (*across, *(c for catalog in catalogs for c in catalog.collisions)), key=lambda c: c.ref
    )
    withheld = _withheld(collisions)
    _refuse(assembly, validator.rejected, withheld)
    rejections = (
        *(r for catalog in catalogs for r in catalog.rejections),
        *_collision_rejections(collisions),
    )
    log_rejections(rejections)
    dropped = {c.ref for c in across}
    indexed = [i for i in _ordered(core, catalogs) if i.ref.lower() not in dropped]
    targets_known = not listing.unresolved and every is not None
    served = {c.source: c.view for c in catalogs if c.source not in withheld}
    return Snapshot(
        entities=tuple(indexed),
        by_ref={item.ref: item for item in indexed},
        yaml=render_body(join_yaml(i.yaml_document for i in indexed), with_gzip=True),
        json=Deferred(
            lambda: render_body(join_json(i.json_document for i in indexed), with_gzip=True)
        ),
        incomplete=(*_incomplete(assembly, withheld), *fleet_gaps(listing)),
        # With a target's sources unknown, nothing that lists every source can be served.
        core=render_body(core_body, with_gzip=False) if targets_known and with_core else None,
        root_location=root_of(listing) if targets_known and with_core else None,
        partition=partition_bodies(listing, targets_known),
        sources=served,
        listed=listing.sources,
        # A withheld source's own Location lists its shards: it answers 503 with them, since
        # a pending one would orphan them.
        pending_locations={
            s: _yaml_body(pending_location(s))
            for s in listing.sources
            if s not in served and s not in withheld
        },
        built_at=built_at,
        rejections=rejections,
        repairs=tuple(r for catalog in catalogs for r in catalog.repairs),
        claim_conflicts=tuple(c for catalog in catalogs for c in catalog.claim_conflicts),
        claimed=sum(catalog.claimed for catalog in catalogs),
        withheld=withheld,
    )
