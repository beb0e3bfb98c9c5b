"""Which organisation accounts are read: the roster, changed only by discoveries that agree.

Pure. A discovery that fails changes nothing. A discovery that succeeds adds every new account
at once, but takes one away only when the discovery before it missed it too: a throttled or
partial answer, or an account that is suspended and reactivated, never empties the catalog of
an account on one listing. The roster is saved in ``state_dir`` so that a restart while
Organizations is unreachable still reads every account.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated

from pydantic import Field, StringConstraints, TypeAdapter, ValidationError

from ..config.base import ACCOUNT, REGION
from ..instants import time_problem
from ..model import STRICT
from ..statefiles import validation_problems

__all__ = ["Roster", "RosterChange"]

FORMAT_VERSION = 1


@dataclass(frozen=True)
class RosterChange:
    """What one successful discovery did to the roster."""

    added: tuple[str, ...] = ()
    # Missed by this discovery and the one before: no longer read.
    removed: tuple[str, ...] = ()
    # Missed by this discovery only: still read, and removed if the next misses them too.
    leaving: tuple[str, ...] = ()


@dataclass(frozen=True)
class Roster:
    """The accounts read, and those the last discovery did not see."""

    accounts: tuple[str, ...] = ()
    missed_once: tuple[str, ...] = ()
    discovered_at: datetime | None = None
    # Each account's regions, when they are the account's enabled regions.
    regions: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def after(
        self,
        seen: Iterable[str],
        at: datetime,
        regions: dict[str, tuple[str, ...]] | None = None,
    ) -> tuple[Roster, RosterChange]:
        """The roster after a successful discovery that saw ``seen``."""
        seen_set = set(seen)
        current = set(self.accounts)
        added = seen_set - current
        missing = current - seen_set
        removed = {account for account in missing if account in self.missed_once}
        leaving = missing - removed
        kept = (current | added) - removed
        known_regions = {a: r for a, r in self.regions.items() if a in kept}
        known_regions.update({a: r for a, r in (regions or {}).items() if a in kept})
        roster = Roster(tuple(sorted(kept)), tuple(sorted(leaving)), at, known_regions)
        return roster, RosterChange(
            tuple(sorted(added)), tuple(sorted(removed)), tuple(sorted(leaving))
        )

    def to_json(self) -> bytes:
        """The roster as a state file."""
        document = {
            "format": FORMAT_VERSION,
            "accounts": list(self.accounts),
            "missed_once": list(self.missed_once),
            "discovered_at": self.discovered_at.isoformat() if self.discovered_at else None,
            "regions": {account: list(regions) for account, regions in self.regions.items()},
        }
        return json.dumps(document, sort_keys=True).encode("utf-8")

    @classmethod
    def from_json(cls, data: bytes) -> Roster:
        """A roster saved by ``to_json``; ValueError for anything else."""
        try:
            document = _ROSTER_FILE.validate_json(data)
        except ValidationError as exc:
            raise ValueError(f"not a roster: {validation_problems(exc)}") from None
        problem = None if document.discovered_at is None else time_problem(document.discovered_at)
        if problem is not None:
            raise ValueError(f"not a roster: discovered_at {problem}")
        if len(set(document.accounts)) != len(document.accounts):
            raise ValueError("not a roster: an account is listed twice")
        return cls(
            document.accounts, document.missed_once, document.discovered_at, document.regions
        )


AccountId = Annotated[str, StringConstraints(pattern=ACCOUNT.pattern)]
# Saved regions become sources, and their names entity names: only a region's form is read.
Region = Annotated[str, StringConstraints(pattern=REGION.pattern)]


@dataclass(frozen=True)
class _RosterFile:
    """The whole file: strict JSON, exactly these fields, as ``Roster.to_json`` writes them."""

    __pydantic_config__ = STRICT

    format: Annotated[int, Field(ge=FORMAT_VERSION, le=FORMAT_VERSION)]
    accounts: tuple[AccountId, ...]
    missed_once: tuple[AccountId, ...]
    discovered_at: datetime | None
    regions: dict[AccountId, tuple[Region, ...]]


_ROSTER_FILE = TypeAdapter(_RosterFile)
