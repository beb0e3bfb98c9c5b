"""The catalog's plan: which entities, in which order, each built only when it is needed. Pure.

``plan_catalog`` orders the entities from names alone and leaves each to be built, validated and
rendered in turn (``snapshot.build``); ``build_catalog`` builds them all at once, for callers
that want the entity dicts (the command's diff, the tests). Repositories whose refs would
collide are none of them planned, and are named instead (``NameCollision``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from functools import partial

from ..config import CatalogSettings, PostureSettings
from ..model import Entity, RepositoryRecord, SourceId, SourceRecords
from .claims import ClaimIndex
from .entities import EntityBuilder
from .naming import registry_entity_name, repository_entity_name

__all__ = ["CatalogBuild", "CatalogPlan", "NameCollision", "build_catalog", "plan_catalog"]

_KIND_ORDER = {"Domain": 0, "System": 1, "Component": 2, "Resource": 3}


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


@dataclass(frozen=True)
class NameCollision:
    """Repositories whose entities would share one ref; none of them is built.

    Names are injective by construction (catalog.naming), so this takes a 64-bit SHA-256 match
    or records that name one repository twice. Serving either entity would let one repository
    take over the other's page and owner, and serving neither in a 200 would make Backstage
    delete both: so their sources are served as incomplete (snapshot.build).
    """

    ref: str
    # The repositories' ARNs, sorted, one per record (a repository listed twice, twice).
    origins: tuple[str, ...]
    sources: tuple[SourceId, ...]

    def describe(self) -> str:
        return f"{self.ref} would be emitted by {len(self.origins)}: {', '.join(self.origins)}"


def _sort_key(kind: str, name: str) -> tuple[int, str]:
    return _KIND_ORDER.get(kind, 99), name.lower()


@dataclass(frozen=True)
class CatalogPlan:
    """The catalog's entities in their final order, each built only when iterated over.

    A large catalog's entity dicts, all alive at once, would leave the process's heap that much
    larger for good (peak RSS): the order is known from names alone, so each entity can be
    built, rendered and dropped in turn.
    ``origins[i]`` and ``sources[i]`` belong to the i-th entity; ``repairs`` is complete once
    ``entities()`` has been iterated to the end.
    """

    origins: tuple[str, ...]
    sources: tuple[SourceId | None, ...]
    # The repositories left out because their names collide, by ref.
    collisions: tuple[NameCollision, ...]
    _makers: tuple[Callable[[], Entity], ...]
    _builder: EntityBuilder

    def __len__(self) -> int:
        return len(self._makers)

    def entities(self) -> Iterator[Entity]:
        return (make() for make in self._makers)

    @property
    def repairs(self) -> tuple[str, ...]:
        return tuple(self._builder.repairs)

    @property
    def claim_conflicts(self) -> tuple[str, ...]:
        """Repositories claimed by entities of different owners, which set no owner."""
        return tuple(self._builder.claim_conflicts)

    @property
    def claimed(self) -> int:
        """How many repositories at least one Backstage entity claims."""
        return len(self._builder.claimed)


def plan_catalog(
    sources: Iterable[SourceRecords],
    options: CatalogSettings,
    *,
    registry_sources: Iterable[SourceId] | None = None,
    stale_since: Mapping[SourceId, datetime] | None = None,
    claims: ClaimIndex | None = None,
    posture: tuple[PostureSettings, date] | None = None,
) -> CatalogPlan:
    """What ``build_catalog`` builds, in the same order, with no entity built yet."""
    records_list = sorted(sources, key=lambda r: r.source)
    claims = claims or ClaimIndex()
    named = [
        (records, repo, repository_entity_name(records.source, repo.name))
        for records in records_list
        for repo in records.repositories
    ]
    collisions = _collisions(named, options.namespace)
    collided = {collision.ref for collision in collisions}
    own_refs = _own_refs(records_list, named, options, claims)
    builder = EntityBuilder(options, stale_since or {}, claims, own_refs, posture)
    # (sort key, origin, source, maker); the sort is stable, so equal keys keep this order.
    items: list[tuple[tuple[int, str], str, SourceId | None, Callable[[], Entity]]] = [
        (_sort_key("Domain", options.domain), "catalog:domain", None, builder.domain),
        (_sort_key("System", options.system), "catalog:system", None, builder.system),
    ]
    for records in records_list:
        source = records.source
        items.append(
            (
                _sort_key("Resource", registry_entity_name(source)),
                f"registry:{source}",
                source,
                partial(builder.registry, records),
            )
        )
    items.extend(
        (
            _sort_key("Resource", name),
            repo.arn,
            records.source,
            partial(builder.repository, records, repo),
        )
        for records, repo, name in named
        if f"resource:{options.namespace}/{name}".lower() not in collided
    )
    every_source = (
        [r.source for r in records_list] if registry_sources is None else list(registry_sources)
    )
    registry_names = [registry_entity_name(s) for s in every_source]
    items.append(
        (
            _sort_key("Component", options.component),
            "catalog:component",
            None,
            partial(builder.component, registry_names),
        )
    )
    items.sort(key=lambda item: item[0])
    return CatalogPlan(
        origins=tuple(origin for _, origin, _, _ in items),
        sources=tuple(source for _, _, source, _ in items),
        collisions=collisions,
        _makers=tuple(make for _, _, _, make in items),
        _builder=builder,
    )


_Named = tuple[SourceRecords, RepositoryRecord, str]


def _collisions(named: Sequence[_Named], namespace: str) -> tuple[NameCollision, ...]:
    """Every ref that more than one repository record would be served under.

    Backstage compares refs ignoring case. None of them wins: whichever won would be chosen
    by a sort, and so by whoever names a repository.
    """
    by_ref: dict[str, list[tuple[str, SourceId]]] = defaultdict(list)
    for records, repo, name in named:
        by_ref[f"resource:{namespace}/{name}".lower()].append((repo.arn, records.source))
    return tuple(
        NameCollision(
            ref,
            tuple(sorted(arn for arn, _ in members)),
            tuple(sorted({source for _, source in members})),
        )
        for ref, members in sorted(by_ref.items())
        if len(members) > 1
    )


def _own_refs(
    records_list: Sequence[SourceRecords],
    named: Sequence[_Named],
    options: CatalogSettings,
    claims: ClaimIndex,
) -> frozenset[str]:
    """The refs of the entities built here: they never claim (no feedback loop)."""
    if not claims:
        return frozenset()
    namespace = options.namespace
    names = [("domain", options.domain), ("system", options.system)]
    names.append(("component", options.component))
    names += [("resource", registry_entity_name(records.source)) for records in records_list]
    names += [("resource", name) for _, _, name in named]
    return frozenset(f"{kind}:{namespace}/{name}".lower() for kind, name in names)


def build_catalog(
    sources: Iterable[SourceRecords],
    options: CatalogSettings,
    *,
    registry_sources: Iterable[SourceId] | None = None,
    stale_since: Mapping[SourceId, datetime] | None = None,
    claims: ClaimIndex | None = None,
    posture: tuple[PostureSettings, date] | None = None,
) -> CatalogBuild:
    """Turn the records of every source into Backstage entities, sorted by kind and name.

    The result holds one Domain, one System, one Component, a registry Resource per source and
    a repository Resource per repository. The Component depends on the registry of every source
    in ``registry_sources`` (default: the sources given), read or not. Entities of a source in
    ``stale_since`` carry the time of its last successful read. Repositories that ``claims``
    name depend on their claimers and take a claimer's owner when no tag names one (see
    catalog.claims). With ``posture`` (the checks and the day to judge on), each repository
    says how it fares (catalog.posture). Unsafe tag values are repaired
    or dropped and listed in ``repairs``; final validation is validate.validate_entities' job.
    """
    plan = plan_catalog(
        sources,
        options,
        registry_sources=registry_sources,
        stale_since=stale_since,
        claims=claims,
        posture=posture,
    )
    return CatalogBuild(
        entities=tuple(plan.entities()),
        origins=plan.origins,
        sources=plan.sources,
        repairs=plan.repairs,
    )
