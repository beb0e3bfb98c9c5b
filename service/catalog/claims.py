"""Claims: the Backstage entities that say which ECR repositories they use. Pure.

A team says in its own ``catalog-info.yaml`` which repository its Component ships, with the
awslabs ECR plugin's ``aws.amazon.com/amazon-ecr-arn`` annotation or this service's
``ecr-catalog.io/repositories``. Each value is a comma-separated list of repository ARNs
(matched exactly) or bare repository names (matched in every source). A claimed repository
gets ``dependencyOf`` on every claimer, and, when no ECR tag names its owner, the owner its
claimers name, if they all name the same one; claimers that disagree leave ``catalog.owner``
and a reported conflict, so no claimer can take a repository over by its choice of ref
(docs/backstage-both-ways.md, "Claims").
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..names import EntityRef, parse_entity_ref

__all__ = [
    "CLAIMING_KINDS",
    "ClaimIndex",
    "Claimer",
    "claim_filters",
    "claimer_of",
    "claimer_problems",
    "is_own_entity",
]

# The kinds that may claim with an annotation this service's own repository Resources carry
# themselves (aws.amazon.com/amazon-ecr-arn, for the awslabs plugin): asking for every kind
# would page through every repository this service serves, on every read.
CLAIMING_KINDS = ("component", "system", "api")


@dataclass(frozen=True)
class Claimer:
    """One Backstage entity that claims repositories: its ref, its owner, what it claims."""

    # Lower case, ``kind:namespace/name``: the form Backstage compares refs in.
    ref: str
    # The owner as a full ref (``group:default/team-a``), or None when it has none we can use.
    owner: str | None
    # Repository ARNs and bare names, in the order written, without duplicates.
    values: tuple[str, ...]


def _split(value: object) -> list[str]:
    if not isinstance(value, str):
        return []
    return [item.strip() for item in value.split(",") if item.strip()]


def _full_ref(value: str) -> EntityRef | None:
    ref = parse_entity_ref(value, default_kind=None, default_namespace="")
    return ref if ref is not None and str(ref) == value else None


def claimer_problems(claimer: Claimer) -> list[str]:
    """What makes ``claimer`` one that claimer_of could not have made (a file edited by hand,
    say); an owner or ref served as it is would make the repositories it claims invalid."""
    problems = []
    if _full_ref(claimer.ref) is None:
        problems.append(f"ref {claimer.ref!r} is not a lower-case kind:namespace/name")
    if claimer.owner is not None:
        owner = _full_ref(claimer.owner)
        if owner is None or owner.kind not in ("group", "user"):
            problems.append(f"owner {claimer.owner!r} is not a full group or user ref")
    if not claimer.values or any(
        not value or value != value.strip() or "," in value for value in claimer.values
    ):
        problems.append(f"the values of {claimer.ref!r} are not what an annotation gives")
    return problems


def claimer_of(entity: Mapping[str, Any], annotation_keys: Sequence[str]) -> Claimer | None:
    """The claimer an entity from Backstage's catalog API is, or None when it claims nothing.

    The owner is resolved as Backstage resolves ``spec.owner``: the kind defaults to group and
    the namespace to the claimer's own. An owner that is not a group or user ref is dropped.
    """
    metadata = entity.get("metadata")
    kind = entity.get("kind")
    if not isinstance(metadata, Mapping) or not isinstance(kind, str):
        return None
    name = metadata.get("name")
    namespace = metadata.get("namespace") or "default"
    annotations = metadata.get("annotations")
    if not isinstance(name, str) or not isinstance(namespace, str):
        return None
    if not isinstance(annotations, Mapping):
        return None
    values: dict[str, None] = {}
    for key in annotation_keys:
        values.update(dict.fromkeys(_split(annotations.get(key))))
    if not values:
        return None
    ref = f"{kind}:{namespace}/{name}".lower()
    if _full_ref(ref) is None:
        return None
    spec = entity.get("spec")
    owner_value = spec.get("owner") if isinstance(spec, Mapping) else None
    owner = parse_entity_ref(owner_value, default_kind="group", default_namespace=namespace)
    return Claimer(
        ref=ref,
        owner=str(owner) if owner is not None and owner.kind in ("group", "user") else None,
        values=tuple(values),
    )


def claim_filters(annotation_keys: Sequence[str], own_keys: Iterable[str]) -> list[str]:
    """Backstage catalog filters for the entities that may claim: one per key, or, for a key
    the service's own entities carry (``own_keys``), one per kind of ``CLAIMING_KINDS``."""
    own = set(own_keys)
    filters = []
    for key in annotation_keys:
        condition = f"metadata.annotations.{key}"
        if key in own:
            filters += [f"kind={kind},{condition}" for kind in CLAIMING_KINDS]
        else:
            filters.append(condition)
    return filters


def is_own_entity(entity: Mapping[str, Any], annotation_prefix: str) -> bool:
    """Whether an entity is one this service serves (from any replica or instance of it).

    Its repository Resources carry the claim annotation ``aws.amazon.com/amazon-ecr-arn``
    themselves; taking them as claims would feed the catalog back into itself.
    """
    metadata = entity.get("metadata")
    annotations = metadata.get("annotations") if isinstance(metadata, Mapping) else None
    if not isinstance(annotations, Mapping):
        return False
    return any(
        f"{annotation_prefix}/{key}" in annotations for key in ("repository-uri", "registry-uri")
    )


@dataclass(frozen=True)
class ClaimIndex:
    """Every claimer, looked up by repository ARN and by bare name."""

    claimers: tuple[Claimer, ...] = ()
    _by_value: dict[str, tuple[Claimer, ...]] = field(
        default_factory=dict, compare=False, repr=False
    )

    @classmethod
    def of(cls, claimers: Iterable[Claimer]) -> ClaimIndex:
        # One claimer per ref (a paged read may see an entity twice): values merged in order,
        # the first owner kept.
        by_ref: dict[str, Claimer] = {}
        for claimer in claimers:
            seen = by_ref.get(claimer.ref)
            if seen is not None:
                merged = tuple(dict.fromkeys(seen.values + claimer.values))
                claimer = Claimer(seen.ref, seen.owner or claimer.owner, merged)
            by_ref[claimer.ref] = claimer
        ordered = tuple(by_ref[ref] for ref in sorted(by_ref))
        by_value: dict[str, list[Claimer]] = {}
        for claimer in ordered:
            for value in claimer.values:
                by_value.setdefault(value, []).append(claimer)
        return cls(ordered, {value: tuple(found) for value, found in by_value.items()})

    def __bool__(self) -> bool:
        return bool(self.claimers)

    def claimers_of(self, arn: str, name: str, ignored: frozenset[str]) -> list[Claimer]:
        """Who claims the repository ``arn`` (named ``name``), sorted by ref; ``ignored``
        refs (the service's own entities) never claim."""
        found = {c.ref: c for c in (*self._by_value.get(arn, ()), *self._by_value.get(name, ()))}
        return [found[ref] for ref in sorted(found) if ref not in ignored]
