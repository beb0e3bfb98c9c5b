"""The entity refs a page shows, as links: to the entity's page here when this catalog has it,
and to its page in Backstage when ``backstage.base_url`` is set."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from ..names import REF_FIELDS, EntityRef, parse_entity_ref

__all__ = ["RefLink", "backstage_url", "here_url", "ref_links"]

# The most refs one field shows: a list is the entity's, and its size was checked on the way
# in, but a page need not grow with it.
MAX_REFS_SHOWN = 100


@dataclass(frozen=True)
class RefLink:
    """One ref as written (``text``), with where it leads; both None for a malformed ref."""

    text: str
    ref: str | None
    here: str | None
    backstage: str | None


def _path(*parts: str) -> str:
    return "/".join(quote(part, safe="") for part in parts)


def here_url(ref: EntityRef) -> str:
    """The entity page of ``ref`` on this service."""
    return "/entities/" + _path(ref.kind, ref.namespace, ref.name)


def backstage_url(base_url: str, ref: EntityRef) -> str:
    """The entity page of ``ref`` in Backstage: its catalog plugin's route
    ``/catalog/:namespace/:kind/:name`` (plugin-catalog's README; kind and namespace in lower
    case, as its entityRouteParams writes them)."""
    return f"{base_url}/catalog/" + _path(ref.namespace, ref.kind, ref.name)


def _link(
    value: object, default_kind: str | None, namespace: str, known: Mapping[str, Any], base: str
) -> RefLink:
    text = value if isinstance(value, str) else str(value)
    ref = parse_entity_ref(value, default_kind=default_kind, default_namespace=namespace)
    if ref is None:
        return RefLink(text, None, None, None)
    return RefLink(
        text,
        str(ref),
        here_url(ref) if str(ref) in known else None,
        backstage_url(base, ref) if base else None,
    )


def ref_links(
    entity: Mapping[str, Any], known: Mapping[str, Any], base_url: str | None
) -> list[tuple[str, list[RefLink]]]:
    """Each ref field of ``entity``'s spec that is set, with its refs as links; ``known`` holds
    the refs this catalog serves (the snapshot's ``by_ref``)."""
    spec = entity.get("spec") or {}
    namespace = str((entity.get("metadata") or {}).get("namespace") or "default")
    fields = []
    # The kind's ref fields, each with the kind Backstage gives a ref that names none.
    kind = str(entity.get("kind") or "").lower()
    for field, default_kind in REF_FIELDS.get(kind, {}).items():
        value = spec.get(field)
        if not value:
            continue
        values = value[:MAX_REFS_SHOWN] if isinstance(value, list) else [value]
        links = [_link(v, default_kind, namespace, known, base_url or "") for v in values]
        fields.append((field, links))
    return fields
