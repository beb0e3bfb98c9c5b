"""Instants as the catalog, the API and the state files write them: RFC 3339 in UTC, to the
second (``2026-01-09T12:00:00Z``), so every replica writes the same text for the same instant."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import overload

__all__ = ["iso", "time_problem"]


@overload
def iso(moment: datetime) -> str: ...
@overload
def iso(moment: None) -> None: ...
@overload
def iso(moment: datetime | None) -> str | None: ...
def iso(moment: datetime | None) -> str | None:
    """``moment`` in UTC to the second with a ``Z``; None stays None."""
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def time_problem(moment: datetime) -> str | None:
    """Why ``moment``, read from a file, cannot be used as an instant; None when it can."""
    if moment.tzinfo is None:
        return "has no time zone"
    try:
        moment.astimezone(UTC)
    except OverflowError:
        return "is out of range in UTC"
    return None
