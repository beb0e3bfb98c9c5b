"""Every kind of state file (a source's records, the organisation roster, the Backstage claims):
whatever a file holds, its parser either gives back what was written or raises ValueError, and
a file that is there but cannot be read is set aside. Nothing else may escape: at start-up any
other exception is a crash loop."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.aws.roster import Roster
from service.backstage.claims import claims_from_json, claims_to_json
from service.catalog.claims import Claimer, ClaimIndex
from service.snapshot.persist import records_from_json, records_to_json
from service.statefiles import read_state_file

from ..records import repository, source
from ..support import JSON_VALUES

AT = datetime(2026, 1, 9, 12, 0, tzinfo=UTC)
ROSTER = Roster(
    ("111111111111", "222222222222"), ("222222222222",), AT, {"111111111111": ("us-east-1",)}
)
CLAIMS = ClaimIndex.of([Claimer("component:default/api", "group:default/team-a", ("team-a/api",))])
RECORDS = source(repository("team-a/api"))

# Each parser, and a file it wrote, which must read back as what was written.
PARSERS: dict[str, tuple[Callable[[bytes], Any], bytes, Any]] = {
    "records": (records_from_json, records_to_json(RECORDS), RECORDS),
    "roster": (Roster.from_json, ROSTER.to_json(), ROSTER),
    "claims": (claims_from_json, claims_to_json(CLAIMS, AT), (CLAIMS, AT)),
}
KINDS = sorted(PARSERS)


def _refuses(kind: str, data: bytes) -> None:
    parse, _, _ = PARSERS[kind]
    with pytest.raises(ValueError):
        parse(data)


@pytest.mark.parametrize("kind", KINDS)
def test_what_was_written_reads_back(kind: str) -> None:
    parse, written, value = PARSERS[kind]
    assert parse(written) == value


@pytest.mark.parametrize("kind", KINDS)
@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(value=JSON_VALUES)
def test_any_json_value_is_refused_with_a_value_error(kind: str, value: Any) -> None:
    _refuses(kind, json.dumps(value).encode())


@pytest.mark.parametrize("kind", KINDS)
@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(content=st.binary(max_size=1024))
def test_any_byte_string_is_refused_with_a_value_error(kind: str, content: bytes) -> None:
    _refuses(kind, content)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    "content",
    [
        b"[" * 100_000,  # deeper than Python's json module can recurse
        b'{"format": ' + b"9" * 5_000 + b"}",  # past int()'s digit limit
        b'{"format": NaN}',
        b"\xef\xbb\xbf{}",  # a byte order mark
        b"",
    ],
    ids=["deep", "huge-int", "nan", "bom", "empty"],
)
def test_documents_that_trip_a_json_parser_are_refused(kind: str, content: bytes) -> None:
    _refuses(kind, content)


@pytest.mark.parametrize("kind", KINDS)
def test_the_file_cut_short_or_with_a_field_more_is_refused(kind: str) -> None:
    _, written, _ = PARSERS[kind]
    _refuses(kind, written[:-1])
    document = json.loads(written)
    _refuses(kind, json.dumps({**document, "extra": 1}).encode())
    for field in document:
        _refuses(kind, json.dumps({k: v for k, v in document.items() if k != field}).encode())


# Where each file keeps a time.
TIME_FIELDS = {
    "records": ("records", "read_at"),
    "roster": ("discovered_at",),
    "claims": ("read_at",),
}


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    "moment",
    [
        "2026-01-09T12:00:00",  # no time zone
        "9999-12-31T23:59:59-01:00",  # past the calendar's end once in UTC
        "0001-01-01T00:00:00+01:00",  # before its start
    ],
)
def test_a_time_that_cannot_be_written_in_utc_is_refused(kind: str, moment: str) -> None:
    _, written, _ = PARSERS[kind]
    document = json.loads(written)
    *path, last = TIME_FIELDS[kind]
    held = document
    for part in path:
        held = held[part]
    held[last] = moment
    _refuses(kind, json.dumps(document).encode())


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("version", ["true", "1.0", "2.0", '"1"', "0", "3"])
def test_only_the_format_version_written_is_read(kind: str, version: str) -> None:
    _, written, _ = PARSERS[kind]
    # The version as raw JSON: true and 1.0 are not the integer 1.
    document = json.dumps({**json.loads(written), "format": "VERSION"})
    _refuses(kind, document.replace('"VERSION"', version).encode())


def test_a_roster_refuses_ids_and_regions_that_are_none_and_accounts_twice() -> None:
    document = json.loads(ROSTER.to_json())
    for accounts in (["x"], ["11111111111"], [111111111111], ["1111111111111"]):
        _refuses("roster", json.dumps({**document, "accounts": accounts}).encode())
    _refuses("roster", json.dumps({**document, "regions": {"x": ["us-east-1"]}}).encode())
    # Saved regions become sources, and their names entity names.
    for region in ("x y", "../../etc", "US-EAST-1", ""):
        regions = {"111111111111": [region]}
        _refuses("roster", json.dumps({**document, "regions": regions}).encode())
    twice = ["111111111111", "111111111111"]
    _refuses("roster", json.dumps({**document, "accounts": twice}).encode())
    every_partition = ["us-gov-west-1", "cn-north-1", "us-isob-east-1", "eusc-de-east-1"]
    fine = json.dumps({**document, "regions": {"111111111111": every_partition}}).encode()
    assert Roster.from_json(fine).regions == {"111111111111": tuple(every_partition)}


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("owner", "bad owner!!"),  # would make every repository it claims invalid, left out
        ("owner", "component:default/api"),  # an owner is a group or a user
        ("owner", "team-a"),  # saved in full, as claimer_of resolves it
        ("ref", "not a ref"),
        ("ref", "component:api"),  # saved with its namespace
        ("ref", "Component:default/api"),  # compared lower-case
        ("values", []),
        ("values", ["a,b"]),
        ("values", [" padded "]),
    ],
)
def test_a_claims_file_refuses_claimers_no_read_of_backstage_makes(field: str, value: Any) -> None:
    document = json.loads(claims_to_json(CLAIMS, AT))
    document["claimers"][0][field] = value
    _refuses("claims", json.dumps(document).encode())


def test_a_claims_file_keeps_user_owners_and_claimers_without_one() -> None:
    claims = ClaimIndex.of(
        [
            Claimer("component:default/api", "user:default/jdoe", ("team-a/api",)),
            Claimer("system:ops/platform", None, ("arn:aws:ecr:us-east-1:1:repository/x",)),
        ]
    )
    assert claims_from_json(claims_to_json(claims, AT)) == (claims, AT)


def test_a_missing_file_is_nothing_to_load(tmp_path: Path) -> None:
    assert read_state_file(tmp_path / "roster.json", "roster") is None
    assert list(tmp_path.iterdir()) == []


def test_a_regular_file_is_read(tmp_path: Path) -> None:
    (tmp_path / "roster.json").write_bytes(b"{}")
    assert read_state_file(tmp_path / "roster.json", "roster") == b"{}"


@pytest.mark.parametrize("make", ["directory", "dangling link", "fifo"])
def test_what_is_not_a_regular_file_is_set_aside(
    tmp_path: Path, make: str, caplog: pytest.LogCaptureFixture
) -> None:
    file = tmp_path / "roster.json"
    if make == "directory":
        file.mkdir()
    elif make == "dangling link":
        file.symlink_to(tmp_path / "nowhere")
    else:
        os.mkfifo(file)
    assert read_state_file(file, "organisation roster") is None
    assert [p.name for p in tmp_path.iterdir()] == ["roster.corrupt"]
    assert f"organisation roster {file} is unreadable and set aside" in caplog.text
