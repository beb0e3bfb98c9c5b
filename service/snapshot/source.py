"""One source's catalog: ``build_source(SourceInputs) -> SourceCatalog``. Pure CPU work.

A source is built, validated and rendered on its own, from one frozen value (catalog.inputs),
so that a refresh keeps the catalog of every source whose inputs are equal to the last ones
(reuse is equality) and builds only those that changed. What spans sources, the uniqueness of
refs and the Component's dependencies, is checked when the snapshot is assembled (build.py).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from ..catalog.entities import REPOSITORY_ORIGIN, Built, SourceTransform
from ..catalog.inputs import SourceInputs
from ..catalog.locations import shard_count, shard_of, source_location
from ..catalog.render import (
    RenderedBody,
    join_yaml,
    render_body,
    to_json_document,
    to_yaml_document,
)
from ..catalog.validate import EntityValidator, Rejection
from ..model import RepositoryRecord, SourceId
from .types import Deferred, IndexedEntity, SourceView

__all__ = [
    "NameCollision",
    "SourceCatalog",
    "build_source",
    "index_all",
    "sort_key",
    "transform_source",
]

_KIND_ORDER = {"Domain": 0, "System": 1, "Component": 2, "Resource": 3}


def sort_key(kind: str, name: str) -> tuple[int, str]:
    """The order of entities in every body: by kind, then by name ignoring case."""
    return _KIND_ORDER.get(kind, 99), name.lower()


@dataclass(frozen=True)
class NameCollision:
    """Repositories whose entities would share one ref; none of them is built.

    Names are injective by construction (catalog.naming), and end in the source's region and
    account, so this takes a 64-bit SHA-256 match within a source or records that name one
    repository twice. Serving either entity would let one repository take over the other's
    page and owner, and serving neither in a 200 would make Backstage delete both: so the
    source is served as incomplete (snapshot.build).
    """

    ref: str
    # The repositories' ARNs, sorted, one per record (a repository listed twice, twice).
    origins: tuple[str, ...]
    sources: tuple[SourceId, ...]
    # Why, when it is not plain: a configured name that is another repository's generated one.
    note: str = ""

    def describe(self) -> str:
        found = f"{self.ref} would be emitted by {len(self.origins)}: {', '.join(self.origins)}"
        return f"{found} ({self.note})" if self.note else found


@dataclass(frozen=True, eq=False)
class SourceCatalog:
    """One source's validated entities with their facts, its rendered bodies, and what was
    left out on the way. Kept as long as its ``inputs`` stay equal."""

    inputs: SourceInputs
    # Sorted as served; each document a view into ``view.entities``' body.
    entities: tuple[IndexedEntity, ...]
    view: SourceView
    # Entities that break Backstage's rules, in order, and the repositories whose names
    # collide, none of which is built.
    rejections: tuple[Rejection, ...]
    collisions: tuple[NameCollision, ...]
    repairs: tuple[str, ...]
    claim_conflicts: tuple[str, ...]
    claimed: int

    @property
    def source(self) -> SourceId:
        return self.inputs.source

    @property
    def structural(self) -> tuple[Rejection, ...]:
        """Rejections of entities everything else hangs off (the registry): never served
        without them."""
        return tuple(r for r in self.rejections if not r.origin.startswith(REPOSITORY_ORIGIN))


def _ref(namespace: str, name: str) -> str:
    return f"resource:{namespace}/{name}".lower()


def _collisions(
    transform: SourceTransform, named: Sequence[tuple[RepositoryRecord, str]]
) -> tuple[NameCollision, ...]:
    """Every ref that more than one repository record would be served under, and every
    configured name (catalog.names) that is another repository's generated name.

    Backstage compares refs ignoring case. None of them wins: whichever won would be chosen
    by a sort, and so by whoever names a repository. A configured name may not take another
    repository's generated name even when that one is configured a name of its own: the
    generated name is the ref that repository had, and may still have in Backstage.
    """
    namespace, source = transform.options.namespace, transform.inputs.source
    by_ref: dict[str, list[str]] = defaultdict(list)
    for repo, name in named:
        by_ref[_ref(namespace, name)].append(repo.arn)
    notes: dict[str, str] = {}
    if transform.inputs.names:
        generated = {_ref(namespace, transform.generated_name(repo)): repo for repo, _ in named}
        for repo, name in named:
            other = generated.get(_ref(namespace, name))
            if transform.is_configured(repo) and other is not None and other.arn != repo.arn:
                ref = _ref(namespace, name)
                if other.arn not in by_ref[ref]:
                    by_ref[ref].append(other.arn)
                notes[ref] = f"catalog.names gives {repo.arn} the generated name of {other.arn}"
    return tuple(
        NameCollision(ref, tuple(sorted(arns)), (source,), notes.get(ref, ""))
        for ref, arns in sorted(by_ref.items())
        if len(arns) > 1
    )


def index_all(
    built: Sequence[Built], validator: EntityValidator
) -> tuple[list[IndexedEntity], bytes]:
    """The entities ``validator`` admits, in order, indexed, and their YAML body; each item's
    document is a view into that body, so that the body and the items share one copy."""
    admitted: list[tuple[Built, bytes]] = []
    for one in built:
        if validator.admit(one.entity, one.origin):
            admitted.append((one, to_yaml_document(one.entity)))
    body = join_yaml(document for _, document in admitted)
    view = memoryview(body)
    items, start = [], 0
    for one, document in admitted:
        end = start + len(document)
        items.append(IndexedEntity(one.facts, view[start:end], to_json_document(one.entity)))
        start = end
    return items, body


def _source_view(inputs: SourceInputs, items: Sequence[IndexedEntity], body: bytes) -> SourceView:
    count = shard_count([item.name for item in items], inputs.settings.shard_size)

    def render_shards() -> tuple[RenderedBody, ...]:
        shards: list[list[bytes | memoryview]] = [[] for _ in range(count)]
        for item in items:
            shards[shard_of(item.name, count)].append(item.yaml_document)
        return tuple(render_body(join_yaml(docs), with_gzip=True) for docs in shards)

    return SourceView(
        source=inputs.source,
        stale_since=inputs.stale_since,
        entities=Deferred(lambda: render_body(body, with_gzip=True)),
        shard_count=count,
        shards=Deferred(render_shards),
        location=render_body(
            to_yaml_document(source_location(inputs.source, count)), with_gzip=False
        ),
    )


def transform_source(inputs: SourceInputs) -> tuple[list[Built], tuple[NameCollision, ...]]:
    """One source's registry and every repository whose name collides with no other's, each
    with its facts, sorted by name ignoring case; and the collisions."""
    transform = SourceTransform(inputs)
    named = [(repo, transform.name_of(repo)) for repo in inputs.repositories]
    collisions = _collisions(transform, named)
    collided = {origin for collision in collisions for origin in collision.origins}
    built = [transform.registry()]
    built += [transform.repository(repo, name) for repo, name in named if repo.arn not in collided]
    # Stable: equal keys keep the registry first, then the records' order.
    built.sort(key=lambda one: sort_key(one.entity["kind"], one.entity["metadata"]["name"]))
    return built, collisions


def build_source(inputs: SourceInputs) -> SourceCatalog:
    """Transform, validate and render one source (``transform_source``)."""
    built, collisions = transform_source(inputs)
    validator = EntityValidator()
    items, body = index_all(built, validator)
    facts = [one.facts for one in built]
    return SourceCatalog(
        inputs=inputs,
        entities=tuple(items),
        view=_source_view(inputs, items, body),
        rejections=tuple(validator.rejected),
        collisions=collisions,
        repairs=tuple(repair for fact in facts for repair in fact.repairs),
        claim_conflicts=tuple(f.claim_conflict for f in facts if f.claim_conflict is not None),
        claimed=sum(1 for fact in facts if fact.claimed),
    )
