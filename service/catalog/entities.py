"""The pure transform: ECR records in, Backstage entities out, each with its typed facts.

No I/O and no settings lookups: the caller passes the CatalogSettings value it wants applied,
so every function here is a plain function of its arguments and the tests need only fixtures.
What a transform learns on the way (repairs, claims, posture) is returned beside the entity
(catalog.facts), never collected as a side effect.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ..config import CatalogSettings
from ..model import Entity, RepositoryRecord
from ..names import EntityRef, is_valid_label_key, is_valid_tag, parse_entity_ref
from .annotations import FOREIGN_ANNOTATIONS, registry_annotations, repository_annotations
from .claims import Claimer, ClaimIndex
from .facts import EntityFacts, facts_of
from .inputs import SourceInputs
from .naming import (
    console_link,
    console_url,
    entity_name,
    registry_entity_name,
    repository_entity_name,
    sanitize_label_key,
    sanitize_label_value,
)
from .posture import assess

__all__ = [
    "API_VERSION",
    "FOREIGN_ANNOTATIONS",
    "REPOSITORY_ORIGIN",
    "Built",
    "SourceTransform",
    "core_entities",
    "core_refs",
]

API_VERSION = "backstage.io/v1alpha1"

REGISTRY_RESOURCE_TYPE = "container-registry"
# Roadie's convention, so that its provider and this service can run side by side.
REPOSITORY_RESOURCE_TYPE = "ecr-repository"
COMPONENT_TYPE = "service"

_LIST_SEPARATORS = re.compile(r"[,\s]+")

# Origins of repository entities are their ARNs; everything else is structural.
REPOSITORY_ORIGIN = "arn:"


@dataclass(frozen=True, slots=True)
class Built:
    """One entity, where it came from (a repository's ARN, ``registry:<source>``, ...) and its
    facts."""

    entity: Entity
    origin: str
    facts: EntityFacts


class _TagReader:
    """A repository's ECR tags, looked up case-insensitively; the first of clashing keys wins."""

    def __init__(self, tags: Iterable[tuple[str, str]]) -> None:
        self._by_key: dict[str, tuple[str, str]] = {}
        for key, value in sorted(tags):
            self._by_key.setdefault(key.lower(), (key, value))

    def first(self, keys: Sequence[str]) -> tuple[str, str] | None:
        for key in keys:
            found = self._by_key.get(key.lower())
            if found is not None:
                return found
        return None

    def matching(self, keys: Sequence[str]) -> list[tuple[str, str]]:
        wanted = {key.lower() for key in keys}
        return [pair for lowered, pair in sorted(self._by_key.items()) if lowered in wanted]


def _envelope(options: CatalogSettings, kind: str, metadata: Entity, spec: Entity) -> Entity:
    return {
        "apiVersion": API_VERSION,
        "kind": kind,
        "metadata": {"name": metadata.pop("name"), "namespace": options.namespace, **metadata},
        "spec": spec,
    }


def core_entities(options: CatalogSettings, registry_names: Sequence[str]) -> tuple[Built, ...]:
    """The Domain, the System and the Component, which depends on every registry named.

    A Domain or System that is defined elsewhere (``emit_domain``, ``emit_system`` false) is
    still referred to by name, and not emitted.
    """
    refs = [f"resource:{options.namespace}/{name}" for name in sorted(registry_names)]
    made = (
        (
            options.emit_domain,
            "catalog:domain",
            "Domain",
            {"name": options.domain, "description": options.domain_description},
            {"owner": options.owner},
        ),
        (
            options.emit_system,
            "catalog:system",
            "System",
            {"name": options.system, "description": options.system_description},
            {"owner": options.owner, "domain": options.domain},
        ),
        (
            True,
            "catalog:component",
            "Component",
            {"name": options.component, "description": options.component_description},
            {
                "type": COMPONENT_TYPE,
                "lifecycle": options.component_lifecycle,
                "owner": options.owner,
                "system": options.system,
                "dependsOn": refs,
            },
        ),
    )
    built = []
    for emitted, origin, kind, metadata, spec in made:
        if emitted:
            entity = _envelope(options, kind, metadata, spec)
            built.append(Built(entity, origin, facts_of(entity, None)))
    return tuple(built)


def core_refs(options: CatalogSettings) -> set[str]:
    """The refs of the Domain, System and Component that ``core_entities`` emits."""
    refs = {f"component:{options.namespace}/{options.component}".lower()}
    if options.emit_domain:
        refs.add(f"domain:{options.namespace}/{options.domain}".lower())
    if options.emit_system:
        refs.add(f"system:{options.namespace}/{options.system}".lower())
    return refs


class SourceTransform:
    """Turns one source's inputs into its registry and repository entities, with their facts."""

    def __init__(self, inputs: SourceInputs) -> None:
        self.inputs = inputs
        self.options = inputs.settings
        self._configured = dict(inputs.names)

    def generated_name(self, repo: RepositoryRecord) -> str:
        """The name the service makes for ``repo`` (catalog.naming)."""
        return repository_entity_name(self.inputs.source, repo.name)

    def name_of(self, repo: RepositoryRecord) -> str:
        """The name configured for ``repo`` (catalog.names), else the one it is generated."""
        return entity_name(self.inputs.source, repo.name, repo.arn, self._configured)

    def is_configured(self, repo: RepositoryRecord) -> bool:
        return repo.arn in self._configured

    @functools.cached_property
    def claims(self) -> ClaimIndex:
        return ClaimIndex.of(self.inputs.claims)

    def _source_labels(self) -> dict[str, str]:
        prefix, source = self.options.annotation_prefix, self.inputs.source
        return {f"{prefix}/account": source.account_id, f"{prefix}/region": source.region}

    def registry(self) -> Built:
        inputs, source = self.inputs, self.inputs.source
        console = console_url(source, inputs.partition)
        metadata: Entity = {
            "name": registry_entity_name(source),
            "title": f"ECR {source.account_id} {source.region}",
            "description": f"ECR registry of {source.account_id} in {source.region}.",
            "labels": self._source_labels(),
            "annotations": registry_annotations(
                inputs, self.options.annotation_prefix, console, inputs.stale_since
            ),
        }
        links = console_link(console)
        if links:
            metadata["links"] = links
        spec = {
            "type": REGISTRY_RESOURCE_TYPE,
            "owner": self.options.owner,
            "system": self.options.system,
        }
        entity = _envelope(self.options, "Resource", metadata, spec)
        return Built(entity, f"registry:{source}", facts_of(entity, source))

    def repository(self, repo: RepositoryRecord, name: str | None = None) -> Built:
        """``repo``'s entity, named ``name`` (``name_of(repo)`` when not given)."""
        inputs, options = self.inputs, self.options
        source = inputs.source
        tags = _TagReader(repo.tags)
        repairs: list[str] = []
        console = console_url(source, inputs.partition, repo.name)
        verdicts = None
        if inputs.posture is not None and inputs.day is not None:
            verdicts = assess(repo, inputs.registry, inputs.posture, inputs.day)
        metadata: Entity = {"name": name or self.name_of(repo), "title": repo.name}
        description = tags.first(options.description_tag_keys)
        if description is not None and description[1].strip():
            metadata["description"] = description[1].strip()
        metadata["labels"] = self._labels(tags, repo.arn, repairs)
        metadata["annotations"] = repository_annotations(
            inputs, repo, options.annotation_prefix, console, inputs.stale_since, verdicts
        )
        backstage_tags = self._backstage_tags(tags, repo.arn, repairs)
        if backstage_tags:
            metadata["tags"] = backstage_tags
        links = console_link(console)
        if links:
            metadata["links"] = links
        claimers = self.claims.claimers_of(repo.arn, repo.name, frozenset())
        owner, conflict = self._owner(tags, repo.arn, claimers, repairs)
        spec: Entity = {
            "type": REPOSITORY_RESOURCE_TYPE,
            "owner": owner,
            "system": options.system,
            "dependsOn": [f"resource:{options.namespace}/{registry_entity_name(source)}"],
        }
        dependency_of = self._dependency_of(tags, repo.arn, claimers, repairs)
        if dependency_of:
            spec["dependencyOf"] = dependency_of
        entity = _envelope(options, "Resource", metadata, spec)
        facts = facts_of(
            entity,
            source,
            verdicts=verdicts,
            repairs=tuple(repairs),
            claimed=bool(claimers),
            claim_conflict=conflict,
        )
        return Built(entity, repo.arn, facts)

    def _owner(
        self, tags: _TagReader, origin: str, claimers: Sequence[Claimer], repairs: list[str]
    ) -> tuple[str, str | None]:
        """The owner tag, else the owner every claimer with one agrees on, else ``catalog.owner``;
        and, when claimers disagree, why none of them is the owner.

        Anyone who can register a catalog file can claim: were one claimer to win a
        disagreement (the first by ref, say), whoever picks the winning ref would own the
        repository. So a disagreement gives no claimer the owner, and is reported.
        """
        options = self.options
        found = tags.first(options.owner_tag_keys)
        if found is not None:
            ref = parse_entity_ref(
                found[1].strip(), default_kind="group", default_namespace=options.namespace
            )
            if ref is not None and ref.kind in ("group", "user"):
                return str(ref), None
            repairs.append(f"{origin}: owner tag {found[0]!r} is not a group or user ref")
        owners = sorted({c.owner for c in claimers if c.owner is not None})
        if len(owners) == 1:
            return owners[0], None
        if not owners:
            return options.owner, None
        others = ", ".join(f"{c.ref} ({c.owner})" for c in claimers if c.owner is not None)
        conflict = (
            f"{origin}: claimed by {others}; owners disagree, so owner {options.owner}"
            " (catalog.owner)"
        )
        return options.owner, conflict

    def _dependency_of(
        self, tags: _TagReader, origin: str, claimers: Sequence[Claimer], repairs: list[str]
    ) -> list[str]:
        refs: set[EntityRef] = set()
        for claimer in claimers:
            ref = parse_entity_ref(claimer.ref, default_kind="component", default_namespace="")
            if ref is not None:
                refs.add(ref)
        for key, value in tags.matching(self.options.component_tag_keys):
            for item in filter(None, _LIST_SEPARATORS.split(value)):
                ref = parse_entity_ref(
                    item, default_kind="component", default_namespace=self.options.namespace
                )
                if ref is None or ref.kind != "component":
                    repairs.append(f"{origin}: component tag {key!r} value dropped")
                else:
                    refs.add(ref)
        return [str(ref) for ref in sorted(refs)]

    def _labels(self, tags: _TagReader, origin: str, repairs: list[str]) -> dict[str, str]:
        labels = self._source_labels()
        for key, value in tags.matching(self.options.label_tag_keys):
            label_key = sanitize_label_key(key)
            label_value = sanitize_label_value(value)
            if not is_valid_label_key(label_key) or label_key in labels:
                repairs.append(f"{origin}: tag {key!r} cannot become a label")
                continue
            if label_value != value:
                repairs.append(f"{origin}: label {label_key!r} value sanitised")
            labels[label_key] = label_value
        return dict(sorted(labels.items()))

    def _backstage_tags(self, tags: _TagReader, origin: str, repairs: list[str]) -> list[str]:
        result: set[str] = set()
        for key, value in tags.matching(self.options.backstage_tags_tag_keys):
            for item in filter(None, _LIST_SEPARATORS.split(value.lower())):
                if is_valid_tag(item):
                    result.add(item)
                else:
                    repairs.append(f"{origin}: tag {key!r} item dropped")
        return sorted(result)
