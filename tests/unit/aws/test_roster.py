"""The organisation's roster under a changing organisation: never shrunk by one listing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from service.aws.roster import Roster, RosterChange

A, B, C, D = (f"{100_000_000_000 + n}" for n in range(1, 5))
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def test_new_accounts_arrive_at_once() -> None:
    roster, change = Roster().after([B, A], T0)
    assert roster.accounts == (A, B) and roster.discovered_at == T0
    assert change == RosterChange(added=(A, B))


def test_an_account_leaves_only_when_two_discoveries_in_a_row_miss_it() -> None:
    roster, _ = Roster().after([A, B, C], T0)
    roster, change = roster.after([A, C], T0 + timedelta(hours=1))
    assert roster.accounts == (A, B, C) and roster.missed_once == (B,)
    assert change == RosterChange(leaving=(B,))
    roster, change = roster.after([A, C], T0 + timedelta(hours=2))
    assert roster.accounts == (A, C) and roster.missed_once == ()
    assert change == RosterChange(removed=(B,))


def test_an_account_seen_again_after_one_miss_stays() -> None:
    roster, _ = Roster().after([A, B], T0)
    roster, _ = roster.after([A], T0)
    roster, change = roster.after([A, B, D], T0)
    assert roster.accounts == (A, B, D) and roster.missed_once == ()
    assert change == RosterChange(added=(D,))


def test_an_empty_listing_shrinks_nothing_at_once() -> None:
    roster, _ = Roster().after([A, B], T0)
    roster, change = roster.after([], T0)
    # A throttled or partial answer that reads as "no accounts" takes nothing away yet.
    assert roster.accounts == (A, B) and change.removed == ()


def test_the_regions_of_accounts_that_left_are_dropped() -> None:
    roster, _ = Roster().after([A, B], T0, {A: ("us-east-1",), B: ("eu-west-1",)})
    roster, _ = roster.after([A], T0)
    roster, _ = roster.after([A], T0, {A: ("us-east-1", "eu-west-1")})
    assert roster.regions == {A: ("us-east-1", "eu-west-1")}


def test_a_roster_survives_a_restart_and_refuses_what_it_did_not_write() -> None:
    roster, _ = Roster().after([A, B], T0, {A: ("us-east-1",)})
    roster, _ = roster.after([A], T0)
    assert Roster.from_json(roster.to_json()) == roster
    for bad in (b"null", b"[]", b'{"format": 2}', b'{"format": 1, "accounts": ["x"]}', b"\xff"):
        with pytest.raises(ValueError):
            Roster.from_json(bad)
