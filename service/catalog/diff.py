"""What moving from a committed catalog file to this service changes, entity by entity. Pure.

Backstage keys entities by ``kind:namespace/name``: an entity whose ref survives the move keeps
its page, its relations and everything that points at it; one whose ref changes is deleted and
a new one is created. So the diff is by ref, and a removed entity that describes the same
repository as an added one (the same ARN or URI appears in both; oldfile.named_repositories)
is reported as renamed. Refs are compared in their full form, as Backstage reads them.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..config.base import RepositoryId
from ..model import Entity
from ..names import REF_FIELDS, full_ref
from .oldfile import entity_ref, named_repositories

__all__ = ["CatalogDiff", "diff_catalogs"]

# What Backstage adds or manages itself; a committed file may carry it, this service never does.
_IGNORED_METADATA = ("uid", "etag", "generation")
_IGNORED_ANNOTATION_PREFIXES = ("backstage.io/managed-by-",)


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def _full_refs(kind: str, spec: Mapping[str, Any], namespace: str) -> dict[str, Any]:
    """``spec`` with every ref in its full form, as Backstage reads it (names.REF_FIELDS):
    ``owner: platform`` is ``group:default/platform``. A list of refs is sorted, as Backstage
    sorts it before it makes the relations; what does not parse as a ref is left as it is."""
    result = dict(spec)
    for name, default_kind in REF_FIELDS.get(kind.lower(), {}).items():
        value = spec.get(name)
        if isinstance(value, list):
            refs = [
                full_ref(item, default_kind=default_kind, default_namespace=namespace) or item
                for item in value
            ]
            result[name] = sorted(refs, key=_json)
        elif value is not None:
            found = full_ref(value, default_kind=default_kind, default_namespace=namespace)
            result[name] = value if found is None else found
    return result


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
    if isinstance(entity.get("spec"), dict):
        namespace = str(metadata["namespace"] or "default")
        result["spec"] = _full_refs(str(entity["kind"]), entity["spec"], namespace)
    return result


def _paths(value: Any, prefix: str = "") -> Iterator[tuple[str, str]]:
    """Every leaf as (dotted path, JSON of the value); lists are compared whole."""
    if isinstance(value, Mapping) and value:
        for key, item in value.items():
            yield from _paths(item, f"{prefix}.{key}" if prefix else str(key))
    else:
        yield prefix, _json(value)


def _renamed(
    before: Mapping[str, Entity], after: Mapping[str, Entity], removed: Iterable[str]
) -> dict[str, str]:
    """Each removed ref that names a repository an added entity is the entity of, and that
    entity's ref (the first by ref, when it names several)."""
    by_repository: dict[RepositoryId, str] = {}
    for ref in sorted(after):
        for repository in named_repositories(after[ref], identifying_only=True):
            by_repository.setdefault(repository, ref)
    renamed: dict[str, str] = {}
    for ref in removed:
        matches = sorted(
            by_repository[r] for r in named_repositories(before[ref]) if r in by_repository
        )
        if matches:
            renamed[ref] = matches[0]
    return renamed


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
    before = {entity_ref(e): _normalized(e) for e in old}
    after = {entity_ref(e): _normalized(e) for e in new}
    added = sorted(after.keys() - before.keys())
    removed = sorted(before.keys() - after.keys())
    renamed = _renamed(before, {ref: after[ref] for ref in added}, removed)
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
