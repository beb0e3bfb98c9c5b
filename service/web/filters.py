"""The filters every entity-list route takes, normalised for matching the snapshot's index; and
the one check that a request names no query parameter its route does not take.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Query, Request
from pydantic import BaseModel, Field

from ..errors import RequestRefused
from ..names import parse_entity_ref
from ..snapshot.types import IndexedEntity
from ..text import escape_invisible

__all__ = [
    "FILTER_PARAMETERS",
    "MAX_FILTER_LENGTH",
    "MAX_FILTER_VALUES",
    "EntityFilters",
    "FilterQuery",
    "FiltersDep",
    "entity_filters",
    "known_parameters",
]

MAX_FILTER_LENGTH = 256
MAX_FILTER_VALUES = 20


def _filter_field(description: str) -> Any:
    return Field(
        None,
        description=description
        + f" Repeat it (up to {MAX_FILTER_VALUES} times) to match any of several values.",
        max_length=MAX_FILTER_VALUES,
    )


class FilterQuery(BaseModel):
    """The filters' query parameters, as FastAPI reads them (a query parameter model)."""

    kind: list[str] | None = _filter_field("Entity kind, e.g. Resource.")
    type: list[str] | None = _filter_field("spec.type, e.g. ecr-repository.")
    owner: list[str] | None = _filter_field("spec.owner as an entity ref; kind defaults to group.")
    account: list[str] | None = _filter_field("AWS account id.")
    region: list[str] | None = _filter_field("AWS region.")
    name: list[str] | None = _filter_field("metadata.name, exactly.")
    q: list[str] | None = _filter_field("Case-insensitive substring of name, title or description.")


@dataclass(frozen=True)
class EntityFilters:
    """The query filters, normalised for matching."""

    kind: frozenset[str]
    type: frozenset[str]
    owner: frozenset[str]
    account: frozenset[str]
    region: frozenset[str]
    name: frozenset[str]
    q: frozenset[str]

    @property
    def empty(self) -> bool:
        return not (self.kind or self.type or self.owner or self.account or self.region) and not (
            self.name or self.q
        )

    def matches(self, item: IndexedEntity) -> bool:
        return (
            (not self.kind or item.kind in self.kind)
            and (not self.type or item.type in self.type)
            and (not self.owner or item.owner in self.owner)
            and (not self.account or item.account in self.account)
            and (not self.region or item.region in self.region)
            and (not self.name or item.name in self.name)
            and (not self.q or any(text in item.search_text for text in self.q))
        )

    def cache_key(self) -> tuple[Any, ...]:
        return (
            tuple(sorted(self.kind)),
            tuple(sorted(self.type)),
            tuple(sorted(self.owner)),
            tuple(sorted(self.account)),
            tuple(sorted(self.region)),
            tuple(sorted(self.name)),
            tuple(sorted(self.q)),
        )


def _values(values: Sequence[str] | None, label: str) -> frozenset[str]:
    if not values:
        return frozenset()
    if any(len(value) > MAX_FILTER_LENGTH for value in values):
        raise RequestRefused(f"{label} values are limited to {MAX_FILTER_LENGTH} characters")
    return frozenset(v.strip().lower() for v in values if v.strip())


def _owner_values(values: Sequence[str] | None) -> frozenset[str]:
    owners = set()
    for value in _values(values, "owner"):
        ref = parse_entity_ref(value, default_kind="group", default_namespace="default")
        # An owner that cannot be a ref matches nothing, rather than everything.
        owners.add(str(ref) if ref else f"invalid:{value}")
    return frozenset(owners)


async def entity_filters(query: Annotated[FilterQuery, Query()]) -> EntityFilters:
    """The filters every entity-list route accepts."""
    # async: a plain def would run in a worker thread (see deps.py), for a few set lookups.
    return EntityFilters(
        kind=_values(query.kind, "kind"),
        type=_values(query.type, "type"),
        owner=_owner_values(query.owner),
        account=_values(query.account, "account"),
        region=_values(query.region, "region"),
        name=_values(query.name, "name"),
        q=_values(query.q, "q"),
    )


FiltersDep = Annotated[EntityFilters, Depends(entity_filters)]


# The filters' parameter names, in the order the documentation lists them.
FILTER_PARAMETERS = tuple(FilterQuery.model_fields)
# An answer names at most this many unknown parameters, each cut to this many characters: the
# request is bounded (server.max_url_length), the answer much more so.
MAX_UNKNOWN_SHOWN = 5
MAX_NAME_SHOWN = 40


def _shown(name: str) -> str:
    cut = name[:MAX_NAME_SHOWN] + ("…" if len(name) > MAX_NAME_SHOWN else "")
    return f"'{escape_invisible(cut)}'"


def _unknown_detail(unknown: list[str], known: tuple[str, ...]) -> str:
    named = []
    for name in unknown[:MAX_UNKNOWN_SHOWN]:
        close = difflib.get_close_matches(name[:MAX_NAME_SHOWN], known, n=1)
        named.append(_shown(name) + (f" (did you mean {close[0]!r}?)" if close else ""))
    if len(unknown) > MAX_UNKNOWN_SHOWN:
        named.append(f"and {len(unknown) - MAX_UNKNOWN_SHOWN} more")
    takes = f"the known ones are {', '.join(known)}" if known else "this URL takes none"
    noun = "parameter" if len(unknown) == 1 else "parameters"
    return f"unknown query {noun} {', '.join(named)}; {takes}"


def known_parameters(*known: str) -> Any:
    """A route dependency: 400, naming the known ones, for a query parameter not in ``known``.

    A misspelt filter (``?ower=team-a``) would otherwise be ignored, and the answer would be
    the whole catalog, as if the filter had matched everything.
    """

    async def refuse_unknown(request: Request) -> None:
        unknown = sorted({name for name in request.query_params if name not in known})
        if unknown:
            raise RequestRefused(_unknown_detail(unknown, known))

    return Depends(refuse_unknown)
