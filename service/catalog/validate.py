"""Backstage's entity rules, checked (and safely repaired) before anything is served.

The rules mirror @backstage/catalog-model's kind schemas, with the name rules of service.names.
One invalid document, or one envelope error, fails a whole ``type: url`` location, so nothing
reaches a snapshot without passing here. Pure: no I/O, no settings.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from ..model import Entity
from ..names import (
    KIND,
    REF_FIELDS,
    EntityRef,
    is_valid_annotation_key,
    is_valid_entity_name,
    is_valid_label_key,
    is_valid_label_value,
    is_valid_namespace,
    is_valid_tag,
    parse_entity_ref,
)

__all__ = [
    "EntityValidator",
    "Rejection",
    "entity_problems",
    "entity_ref",
]


API_VERSIONS = frozenset({"backstage.io/v1alpha1", "backstage.io/v1beta1"})
ROOT_FIELDS = frozenset({"apiVersion", "kind", "metadata", "spec"})
# Fields the catalog sets itself; an entity that carries them is refused or overwritten.
FORBIDDEN_METADATA = frozenset({"uid", "etag", "generation"})
CATALOG_OWNED_ANNOTATIONS = frozenset(
    {"backstage.io/managed-by-location", "backstage.io/managed-by-origin-location"}
)
REQUIRED_SPEC_FIELDS: dict[str, tuple[str, ...]] = {
    "component": ("type", "lifecycle", "owner"),
    "resource": ("type", "owner"),
    "system": ("owner",),
    "domain": ("owner",),
}
# The ref fields (names.REF_FIELDS) whose schema is a list of refs; the others hold one.
LIST_REF_FIELDS = frozenset(
    {"dependsOn", "dependencyOf", "providesApis", "consumesApis", "memberOf", "children", "members"}
)


def _is_valid_url(value: object) -> bool:
    # Backstage runs `new URL(url)`: an absolute URL with a scheme; we also insist on a host.
    if not isinstance(value, str) or not value or any(c.isspace() for c in value):
        return False
    try:
        parts = urlsplit(value)
    except ValueError:
        return False
    return bool(parts.scheme) and bool(parts.netloc)


def entity_ref(entity: Entity) -> EntityRef:
    """The ref of an entity that passed validation."""
    metadata = entity["metadata"]
    return EntityRef(
        str(entity["kind"]).lower(),
        str(metadata.get("namespace", "default")).lower(),
        str(metadata["name"]).lower(),
    )


def _mapping_problems(
    field: str,
    value: object,
    key_ok: Any,
    value_ok: Any,
) -> list[str]:
    if not isinstance(value, dict):
        return [f"metadata.{field} must be a mapping"]
    problems = []
    for key, item in value.items():
        if not key_ok(key):
            problems.append(f"metadata.{field} key {key!r} is invalid")
        elif not value_ok(item):
            problems.append(f"metadata.{field}[{key!r}] has an invalid value")
    return problems


def _metadata_problems(metadata: object) -> list[str]:
    if not isinstance(metadata, dict):
        return ["metadata must be a mapping"]
    problems = []
    if not is_valid_entity_name(metadata.get("name")):
        problems.append(f"metadata.name {metadata.get('name')!r} is invalid")
    if "namespace" in metadata and not is_valid_namespace(metadata["namespace"]):
        problems.append(f"metadata.namespace {metadata['namespace']!r} is invalid")
    problems += [f"metadata.{key} must not be set" for key in FORBIDDEN_METADATA & metadata.keys()]
    for optional_text in ("title", "description"):
        if optional_text in metadata and not isinstance(metadata[optional_text], str):
            problems.append(f"metadata.{optional_text} must be a string")
    if "labels" in metadata:
        problems += _mapping_problems(
            "labels", metadata["labels"], is_valid_label_key, is_valid_label_value
        )
    if "annotations" in metadata:
        annotations = metadata["annotations"]
        problems += _mapping_problems(
            "annotations", annotations, is_valid_annotation_key, lambda v: isinstance(v, str)
        )
        if isinstance(annotations, dict):
            problems += [
                f"annotation {key} is set by the catalog itself"
                for key in sorted(CATALOG_OWNED_ANNOTATIONS & annotations.keys())
            ]
    problems += _tags_problems(metadata.get("tags", []))
    problems += _links_problems(metadata.get("links", []))
    return problems


def _tags_problems(tags: object) -> list[str]:
    if not isinstance(tags, list):
        return ["metadata.tags must be a list"]
    problems = [f"tag {tag!r} is invalid" for tag in tags if not is_valid_tag(tag)]
    if len({t for t in tags if isinstance(t, str)}) != len(tags):
        problems.append("metadata.tags has duplicates")
    return problems


def _links_problems(links: object) -> list[str]:
    if not isinstance(links, list):
        return ["metadata.links must be a list"]
    return [
        f"link {link!r} has no valid url"
        for link in links
        if not isinstance(link, dict) or not _is_valid_url(link.get("url"))
    ]


def _spec_problems(kind: str, spec: object) -> list[str]:
    if not isinstance(spec, dict):
        return ["spec must be a mapping"]
    problems = [
        f"spec.{field} is required for a {kind}"
        for field in REQUIRED_SPEC_FIELDS.get(kind.lower(), ())
        if not isinstance(spec.get(field), str) or not spec.get(field)
    ]
    for field, default_kind in REF_FIELDS.get(kind.lower(), {}).items():
        if field not in spec:
            continue
        value = spec[field]
        refs = value if isinstance(value, list) else [value]
        if field in LIST_REF_FIELDS and not isinstance(value, list):
            problems.append(f"spec.{field} must be a list")
            continue
        for ref in refs:
            # Whether a ref is valid does not depend on the namespace it defaults to.
            parsed = parse_entity_ref(ref, default_kind=default_kind, default_namespace="default")
            if parsed is None:
                problems.append(f"spec.{field} ref {ref!r} is invalid")
    return problems


def entity_problems(entity: object) -> list[str]:
    """Every rule the entity breaks; empty when Backstage would accept it."""
    if not isinstance(entity, dict):
        return ["an entity must be a mapping"]
    problems = [f"root field {key!r} is not allowed" for key in sorted(entity.keys() - ROOT_FIELDS)]
    if entity.get("apiVersion") not in API_VERSIONS:
        problems.append(f"apiVersion {entity.get('apiVersion')!r} is not supported")
    kind = entity.get("kind")
    if not isinstance(kind, str) or not KIND.fullmatch(kind):
        problems.append(f"kind {kind!r} is invalid")
        kind = ""
    metadata = entity.get("metadata")
    problems += _metadata_problems(metadata)
    problems += _spec_problems(kind, entity.get("spec"))
    return problems


@dataclass(frozen=True)
class Rejection:
    """An entity left out of the snapshot, and why."""

    ref: str
    origin: str
    problems: tuple[str, ...]


def _describe(entity: object) -> str:
    if isinstance(entity, dict) and isinstance(entity.get("metadata"), dict):
        return f"{entity.get('kind')}:{entity['metadata'].get('name')}"
    return "<not an entity>"


class EntityValidator:
    """Validates entities one at a time, so that a build need not hold them all at once.

    Keeps the refs seen so far (refs must be unique, ignoring case) and the rejections.
    """

    def __init__(self) -> None:
        self.rejected: list[Rejection] = []
        self._seen: set[EntityRef] = set()

    def admit(self, entity: Entity, origin: str | None = None) -> bool:
        """Whether Backstage accepts ``entity`` after those admitted before it.

        ``origin`` names where it came from (a repository ARN, say), for the rejection log.
        """
        origin = origin if origin is not None else _describe(entity)
        problems = entity_problems(entity)
        if problems:
            self.rejected.append(Rejection(_describe(entity), origin, tuple(problems)))
            return False
        ref = entity_ref(entity)
        if ref in self._seen:
            self.rejected.append(Rejection(str(ref), origin, (f"ref {ref} is emitted twice",)))
            return False
        self._seen.add(ref)
        return True
