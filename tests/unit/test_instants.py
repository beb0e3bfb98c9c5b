"""How every instant is written: RFC 3339 in UTC to the second, whatever the machine's zone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from service.instants import iso, time_problem


@pytest.mark.usefixtures("machine_in_tokyo")
def test_an_instant_is_written_in_utc_to_the_second_with_a_z() -> None:
    moment = datetime(2026, 1, 9, 20, 0, 5, 999_999, tzinfo=UTC)
    assert iso(moment) == "2026-01-09T20:00:05Z"
    tokyo = moment.astimezone(timezone(timedelta(hours=9)))
    assert iso(tokyo) == "2026-01-09T20:00:05Z"
    assert iso(None) is None


def test_what_cannot_be_an_instant_is_said() -> None:
    assert time_problem(datetime(2026, 1, 9, tzinfo=UTC)) is None
    assert time_problem(datetime(2026, 1, 9)) == "has no time zone"
    end = datetime(9999, 12, 31, 23, 59, tzinfo=timezone(timedelta(hours=-1)))
    assert time_problem(end) == "is out of range in UTC"


@pytest.mark.usefixtures("machine_in_tokyo")
def test_the_range_is_utcs_not_the_machines() -> None:
    # Nine hours before the calendar ends in UTC: past its end in Tokyo, and still an instant.
    assert time_problem(datetime(9999, 12, 31, 20, tzinfo=UTC)) is None
