"""What moving from a committed catalog file to this service changes, entity by entity. Pure.

Backstage keys entities by ``kind:namespace/name``: an entity whose ref survives the move keeps
its page, its relations and everything that points at it; one whose ref changes is deleted and
a new one is created. So the diff is by ref, and a removed entity that describes the same
repository as an added one (the same ARN or URI appears in both) is reported as renamed.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from ..errors import CatalogUnreadable
from ..model import Entity

__all__ = ["CatalogDiff", "diff_catalogs", "read_catalog_documents"]

# What Backstage adds or manages itself; a committed file may carry it, this service never does.
_IGNORED_METADATA = ("uid", "etag", "generation")
_IGNORED_ANNOTATION_PREFIXES = ("backstage.io/managed-by-",)
_IDENTIFYING_SUFFIXES = ("/arn", "-arn", "repository-uri", "/repository")


def read_catalog_documents(text: str, origin: str) -> list[Entity]:
    """The entities of a (multi-document) YAML catalog file; empty documents are skipped."""
    try:
        documents = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as exc:
        raise CatalogUnreadable(f"{origin} is not valid YAML: {exc}") from exc
    for index, document in enumerate(documents, start=1):
        if not isinstance(document, dict) or not isinstance(document.get("metadata"), dict):
            raise CatalogUnreadable(f"document {index} of {origin} is not an entity")
        if not document.get("kind") or not document["metadata"].get("name"):
            raise CatalogUnreadable(f"document {index} of {origin} has no kind or name")
    return documents


def _ref(entity: Entity) -> str:
    metadata = entity["metadata"]
    namespace = metadata.get("namespace") or "default"
    return f"{entity['kind']}:{namespace}/{metadata['name']}".lower()


def _normalized(entity: Entity) -> Entity:
    result = {k: v for k, v in entity.items() if k not in ("relations", "status")}
    metadata = {k: v for k, v in entity["metadata"].items() if k not in _IGNORED_METADATA}
    metadata.setdefault("namespace", "default")
    annotations = {
        k: v
        for k, v in (metadata.get("annotations") or {}).items()
        if not k.startswith(_IGNORED_ANNOTATION_PREFIXES)
    }
    if annotations:
        metadata["annotations"] = annotations
    else:
        metadata.pop("annotations", None)
    result["metadata"] = metadata
    return result


def _paths(value: Any, prefix: str = "") -> Iterator[tuple[str, str]]:
    """Every leaf as (dotted path, JSON of the value); lists are compared whole."""
    if isinstance(value, Mapping) and value:
        for key, item in value.items():
            yield from _paths(item, f"{prefix}.{key}" if prefix else str(key))
    else:
        yield prefix, json.dumps(value, sort_keys=True, default=str)


def _identifiers(entity: Entity) -> set[str]:
    annotations = entity["metadata"].get("annotations") or {}
    found = {
        str(value)
        for key, value in annotations.items()
        if str(key).endswith(_IDENTIFYING_SUFFIXES) and value
    }
    return {value.lower() for value in found}


@dataclass(frozen=True)
class Changed:
    ref: str
    fields: tuple[str, ...]


@dataclass(frozen=True)
class CatalogDiff:
    """Refs added, removed (with the new ref of a renamed one) and changed (with fields)."""

    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    renamed: Mapping[str, str] = field(default_factory=dict)
    changed: tuple[Changed, ...] = ()
    unchanged: int = 0

    @property
    def empty(self) -> bool:
        return not (self.added or self.removed or self.changed)

    def as_dict(self) -> dict[str, Any]:
        return {
            "added": list(self.added),
            "removed": [{"ref": ref, "renamed_to": self.renamed.get(ref)} for ref in self.removed],
            "changed": [{"ref": c.ref, "fields": list(c.fields)} for c in self.changed],
            "unchanged": self.unchanged,
        }

    def lines(self) -> Iterator[str]:
        yield f"added ({len(self.added)}):"
        yield from (f"  + {ref}" for ref in self.added)
        yield f"removed ({len(self.removed)}):"
        for ref in self.removed:
            renamed = self.renamed.get(ref)
            yield f"  - {ref}" + (f"  (renamed: same repository as {renamed})" if renamed else "")
        yield f"changed ({len(self.changed)}):"
        for change in self.changed:
            yield f"  ~ {change.ref}: {', '.join(change.fields)}"
        yield (
            f"{len(self.added)} added, {len(self.removed)} removed "
            f"({len(self.renamed)} of them renamed), {len(self.changed)} changed, "
            f"{self.unchanged} unchanged"
        )


def diff_catalogs(old: Iterable[Entity], new: Iterable[Entity]) -> CatalogDiff:
    """Compare an old catalog with the new one, entity by entity."""
    before = {_ref(e): _normalized(e) for e in old}
    after = {_ref(e): _normalized(e) for e in new}
    added = sorted(after.keys() - before.keys())
    removed = sorted(before.keys() - after.keys())
    by_identifier: dict[str, str] = {}
    for ref in added:
        for identifier in _identifiers(after[ref]):
            by_identifier.setdefault(identifier, ref)
    renamed: dict[str, str] = {}
    for ref in removed:
        # The old file may keep the ARN or URI under any annotation key.
        values = {v.lower() for _, v in _paths(before[ref]) if v.startswith('"')}
        matches = sorted(
            {by_identifier[json.loads(v)] for v in values if json.loads(v) in by_identifier}
        )
        if matches:
            renamed[ref] = matches[0]
    changed: list[Changed] = []
    unchanged = 0
    for ref in sorted(before.keys() & after.keys()):
        old_paths = dict(_paths(before[ref]))
        new_paths = dict(_paths(after[ref]))
        fields = sorted(
            path
            for path in old_paths.keys() | new_paths.keys()
            if old_paths.get(path) != new_paths.get(path)
        )
        if fields:
            changed.append(Changed(ref, tuple(fields)))
        else:
            unchanged += 1
    return CatalogDiff(tuple(added), tuple(removed), renamed, tuple(changed), unchanged)
