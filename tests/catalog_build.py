"""The whole catalog as entity dicts, and snapshots from records in one call, for the tests.

The service builds one source at a time (service.snapshot.source) and never holds every
entity dict at once; the tests want them all, in the served order, to compare with the golden
file and to look at one entity. None of this ships in ``service/``.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time

from service.catalog.claims import ClaimIndex
from service.catalog.entities import Built, core_entities
from service.catalog.naming import registry_entity_name
from service.catalog.validate import EntityValidator, Rejection
from service.config import CatalogSettings, PostureSettings
from service.model import Entity, SourceId, SourceRecords
from service.reading import SourceListing
from service.snapshot.catalogs import Catalogs
from service.snapshot.source import transform_source
from service.snapshot.types import Snapshot

__all__ = ["CatalogBuild", "ValidationOutcome", "build_catalog", "build_snapshot"]


@dataclass(frozen=True)
class CatalogBuild:
    """The built entities, each with where it came from, and the repairs made on the way.

    ``sources[i]`` is the source entity ``i`` belongs to, or None for the Domain, System and
    Component, which belong to the catalog as a whole.
    """

    entities: tuple[Entity, ...]
    origins: tuple[str, ...]
    sources: tuple[SourceId | None, ...]
    repairs: tuple[str, ...]


def _source(built: Built) -> SourceId | None:
    facts = built.facts
    return None if facts.account is None else SourceId(facts.account, facts.region or "")


def build_catalog(
    sources: Iterable[SourceRecords],
    options: CatalogSettings,
    *,
    registry_sources: Iterable[SourceId] | None = None,
    stale_since: Mapping[SourceId, datetime] | None = None,
    claims: ClaimIndex | None = None,
    posture: tuple[PostureSettings, date] | None = None,
) -> CatalogBuild:
    """Every entity of the catalog, in the served order, unvalidated (``validate_entities``)."""
    records = {one.source: one for one in sources}
    listed = sorted(records) if registry_sources is None else list(registry_sources)
    inputs = Catalogs.inputs(
        records,
        options,
        stale_since=stale_since or {},
        claims=claims or ClaimIndex(),
        posture=None if posture is None else posture[0],
        built_at=datetime.combine(posture[1] if posture else date.today(), time(12), UTC),
    )
    per_source = [transform_source(one)[0] for _, one in sorted(inputs.items())]
    core = core_entities(options, [registry_entity_name(s) for s in listed])
    name = lambda one: one.entity["metadata"]["name"].lower()  # noqa: E731
    built = [*core, *heapq.merge(*per_source, key=name)]
    return CatalogBuild(
        entities=tuple(one.entity for one in built),
        origins=tuple(one.origin for one in built),
        sources=tuple(_source(one) for one in built),
        repairs=tuple(repair for one in built for repair in one.facts.repairs),
    )


@dataclass(frozen=True)
class ValidationOutcome:
    """The entities fit to serve, and those left out."""

    accepted: tuple[Entity, ...]
    rejected: tuple[Rejection, ...]


def validate_entities(
    entities: Iterable[Entity], origins: Sequence[str] | None = None
) -> ValidationOutcome:
    """Keep the entities Backstage accepts (service.catalog.validate.EntityValidator)."""
    validator = EntityValidator()
    accepted = [
        entity
        for index, entity in enumerate(entities)
        if validator.admit(entity, origins[index] if origins is not None else None)
    ]
    return ValidationOutcome(tuple(accepted), tuple(validator.rejected))


def build_snapshot(
    listing: SourceListing,
    records: Mapping[SourceId, SourceRecords],
    stale_since: Mapping[SourceId, datetime],
    options: CatalogSettings,
    built_at: datetime,
    *,
    errors: Mapping[SourceId, str] | None = None,
    claims: ClaimIndex | None = None,
    posture: PostureSettings | None = None,
    refuse_any_rejection: bool = False,
    catalogs: Catalogs | None = None,
) -> Snapshot:
    """The snapshot of ``records``, as the store builds it; pass ``catalogs`` to keep the
    catalogs of sources whose inputs stay equal from one call to the next."""
    catalogs = catalogs if catalogs is not None else Catalogs()
    inputs = Catalogs.inputs(
        records,
        options,
        stale_since=stale_since,
        claims=claims or ClaimIndex(),
        posture=posture,
        built_at=built_at,
    )
    return catalogs.build(
        listing,
        inputs,
        options,
        built_at,
        errors=errors or {},
        refuse_any_rejection=refuse_any_rejection,
    )
