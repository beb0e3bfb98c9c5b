"""Removals too large to believe: the pure decision, each source's hold, and when it ends.

Backstage deletes what a 200 leaves out (catalog-backend 4.x defaults ``orphanStrategy`` to
``delete``). A source that is read successfully but suddenly lists far fewer repositories is
more often a permissions change than a real mass deletion: an SCP, a changed read role,
``DescribeRepositories`` denied on a path. Those causes persist, so a second read that agrees
proves nothing. Like Backstage's own incremental ingestion (``rejectRemovalsAbovePercentage``),
a read that would remove more than ``catalog.max_removal_percent`` of a source's repositories,
and at least ``catalog.max_removal_min`` of them, is held: the whole read is set aside (its
other news too), and the source's last good data stays served, until

* an operator confirms it (``POST /refresh?confirm_removals=<account>/<region>``): the held
  read itself is applied, exactly what /readyz showed;
* or it has been held for ``catalog.removal_hold_hours`` since the first held read: the read of
  that moment is applied;
* or a later read no longer removes too much (permissions restored): that read is applied, and
  the hold ends by itself.

Held reads are never saved, so after a restart the saved last good data is served and the next
read is held again. The first held read's time is saved in ``state_dir``
(``removals/holds.json``), so that a restart does not start the hold's hours again.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Set
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, TypeAdapter, ValidationError

from ..config import CatalogSettings
from ..config.base import ACCOUNT, REGION
from ..errors import StateFileInvalid
from ..instants import iso, time_problem
from ..model import STRICT, SourceId, SourceRecords
from ..statefiles import load_state_file, validation_problems, write_atomically

__all__ = [
    "HOLDS_FILE",
    "RemovalGuard",
    "RemovalHold",
    "RemovalLimits",
    "RemovalVerdict",
    "judge_removal",
    "parse_source",
]

log = logging.getLogger(__name__)

HOLDS_FILE = Path("removals") / "holds.json"
FORMAT_VERSION = 1
# The most names of repositories that would go that a hold lists (its count is always whole).
EXAMPLES = 20


@dataclass(frozen=True)
class RemovalLimits:
    """The settings of the decision: what is too large, and how long a hold lasts."""

    max_percent: float
    min_count: int
    hold: timedelta

    @classmethod
    def of(cls, options: CatalogSettings) -> RemovalLimits:
        return cls(
            options.max_removal_percent,
            options.max_removal_min,
            timedelta(hours=options.removal_hold_hours),
        )


@dataclass(frozen=True)
class RemovalVerdict:
    """What a read would remove of a source's repositories, and whether that is too much."""

    before: int
    removed: int
    too_large: bool


def judge_removal(
    before: Set[str], after: Set[str], max_percent: float, min_count: int
) -> RemovalVerdict:
    """Whether going from ``before`` to ``after`` (repository ARNs) removes too much to believe:
    more than ``max_percent`` per cent of ``before``, and at least ``min_count`` of them."""
    removed = len(before - after)
    # Multiplied out rather than divided, so that exactly the limit (10 of 20 at 50) is not
    # "more than" it through a rounding; an empty ``before`` removes nothing.
    too_large = removed >= min_count and removed * 100 > max_percent * len(before)
    return RemovalVerdict(before=len(before), removed=removed, too_large=too_large)


@dataclass(frozen=True)
class RemovalHold:
    """A read of one source held back because of what it would remove."""

    source: SourceId
    # The first held read (kept across restarts), and the latest one.
    since: datetime
    last_held_at: datetime
    applies_at: datetime
    # Repositories served (the last good data), listed by the held read, and about to go.
    served: int
    read: int
    removed: int
    examples: tuple[str, ...]
    # The held read itself: what a confirmation applies.
    pending: SourceRecords = field(repr=False, compare=False)

    def as_dict(self) -> dict[str, Any]:
        """As /readyz and the operator page show it."""
        return {
            "would_remove": self.removed,
            "served": self.served,
            "read": self.read,
            "since": iso(self.since),
            "last_held_at": iso(self.last_held_at),
            "applies_at": iso(self.applies_at),
            "examples": list(self.examples),
            "confirm": f"POST /refresh?confirm_removals={self.source}",
        }


def parse_source(text: str) -> SourceId | None:
    """The source ``<account id>/<region>`` names, or None when it is not of that form."""
    account, slash, region = text.partition("/")
    # ASCII only: ``\\d`` would also take other scripts' digits.
    if not (text.isascii() and slash and ACCOUNT.fullmatch(account) and REGION.fullmatch(region)):
        return None
    return SourceId(account, region)


@dataclass(frozen=True)
class _HoldsFile:
    """``removals/holds.json``: when each held source's hold began."""

    __pydantic_config__ = STRICT

    format: Annotated[int, Field(ge=FORMAT_VERSION, le=FORMAT_VERSION)]
    since: dict[str, datetime]


_HOLDS_FILE = TypeAdapter(_HoldsFile)


def _holds_from_json(data: bytes) -> dict[SourceId, datetime]:
    try:
        document = _HOLDS_FILE.validate_json(data)
    except ValidationError as exc:
        raise StateFileInvalid(validation_problems(exc)) from exc
    since: dict[SourceId, datetime] = {}
    for name, moment in document.since.items():
        source = parse_source(name)
        problem = time_problem(moment)
        if source is None or problem is not None:
            raise StateFileInvalid(f"{name!r}: {problem or 'not <account id>/<region>'}")
        since[source] = moment
    return since


def _holds_to_json(since: dict[SourceId, datetime]) -> bytes:
    document = {"format": FORMAT_VERSION, "since": {str(s): iso(t) for s, t in since.items()}}
    return json.dumps(document, sort_keys=True).encode("utf-8")


class RemovalGuard:
    """Decides, read by read, whether a source's new records are applied or held, and keeps
    when each hold began in ``state_dir``."""

    def __init__(self, state_dir: Path | None) -> None:
        self._file = state_dir / HOLDS_FILE if state_dir else None
        self._since: dict[SourceId, datetime] = {}
        self._writing = asyncio.Lock()

    def load(self) -> None:
        """When the holds of the last run began (blocking: call it in a worker thread)."""
        if self._file is not None:
            self._since = load_state_file(self._file, "removal holds file", _holds_from_json) or {}

    def forget(self, source: SourceId) -> None:
        """A source no longer served: its hold's start is dropped (saved with the next change)."""
        self._since.pop(source, None)

    async def admit(
        self,
        previous: RemovalHold | None,
        before: SourceRecords | None,
        after: SourceRecords,
        now: datetime,
        limits: RemovalLimits,
    ) -> RemovalHold | None:
        """None: apply ``after``. Otherwise it is held, and the hold says what it would remove.

        ``previous`` is the source's hold so far; ``before`` its last good records.
        """
        hold = self._judge(previous, before, after, now, limits)
        await self.began(after.source, hold.since if hold else None)
        return hold

    def _judge(
        self,
        previous: RemovalHold | None,
        before: SourceRecords | None,
        after: SourceRecords,
        now: datetime,
        limits: RemovalLimits,
    ) -> RemovalHold | None:
        if before is None:
            return None
        old = {r.arn for r in before.repositories}
        new = {r.arn for r in after.repositories}
        verdict = judge_removal(old, new, limits.max_percent, limits.min_count)
        source = after.source
        if not verdict.too_large:
            if previous is not None:
                log.warning(
                    "%s: the read no longer removes too much (%d of %d): the hold ends",
                    source,
                    verdict.removed,
                    verdict.before,
                )
            return None
        # A start saved by the last run counts (never one in the future: a clock set back).
        since = previous.since if previous else min(self._since.get(source, now), now)
        if now - since >= limits.hold:
            log.warning(
                "%s: removing %d of its %d repositories was held since %s without a "
                "confirmation; applied after catalog.removal_hold_hours",
                source,
                verdict.removed,
                verdict.before,
                iso(since),
            )
            return None
        gone = sorted(r.name for r in before.repositories if r.arn not in new)
        hold = RemovalHold(
            source=source,
            since=since,
            last_held_at=now,
            applies_at=since + limits.hold,
            served=verdict.before,
            read=len(after.repositories),
            removed=verdict.removed,
            examples=tuple(gone[:EXAMPLES]),
            pending=after,
        )
        if previous is None or previous.removed != hold.removed:
            log.warning(
                "%s: the read would remove %d of its %d repositories, too many to believe; "
                "held, and its last good data is served, until confirmed "
                "(POST /refresh?confirm_removals=%s) or until %s",
                source,
                hold.removed,
                hold.served,
                source,
                iso(hold.applies_at),
            )
        return hold

    async def began(self, source: SourceId, since: datetime | None) -> None:
        """Keep when ``source``'s hold began (None: it has none), saved when that changes."""
        if self._since.get(source) == since:
            return
        if since is None:
            self._since.pop(source, None)
        else:
            self._since[source] = since
        if self._file is None:
            return
        async with self._writing:
            # Serialised under the lock, so two reads ending together save in order.
            data = _holds_to_json(self._since)
            try:
                await asyncio.to_thread(write_atomically, self._file, data)
            except OSError as exc:
                # Only a restart would miss it: the hold's hours would start again.
                log.error("cannot write %s: %s", self._file, exc.strerror or exc)
