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
            document = json.loads(data)
            if not isinstance(document, dict) or document.get("format") != FORMAT_VERSION:
                raise ValueError("not a roster of this format")
            accounts = _accounts(document["accounts"])
            missed = _accounts(document["missed_once"])
            discovered = document["discovered_at"]
            regions = {
                str(account): tuple(str(region) for region in values)
                for account, values in dict(document["regions"]).items()
            }
            return cls(
                accounts,
                missed,
                datetime.fromisoformat(discovered) if discovered is not None else None,
                regions,
            )
        except (KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"not a roster: {exc}") from exc


def _accounts(values: object) -> tuple[str, ...]:
    if not isinstance(values, list) or not all(
        isinstance(v, str) and len(v) == 12 and v.isdigit() for v in values
    ):
        raise ValueError("accounts must be a list of 12-digit ids")
    return tuple(values)
