"""The one parser of Accept-style headers, and If-None-Match."""

from __future__ import annotations

import pytest

from service.web.negotiation import (
    MAX_ACCEPT_ENTRIES,
    accept_list,
    accepts_gzip,
    etag_matches,
    negotiate,
    prefers_html,
)


def test_accept_list_lowers_values_and_reads_only_q() -> None:
    header = "Text/HTML;level=1;q=0.5, application/json , */*;Q=0.1, x;q=nonsense"
    assert accept_list(header) == [
        ("text/html", 0.5),
        ("application/json", 1.0),
        ("*/*", 0.1),
        ("x", 0.0),
    ]
    assert accept_list(None) == accept_list("") == []


def test_accept_list_reads_a_bounded_number_of_entries() -> None:
    assert len(accept_list("a," * 10_000)) == MAX_ACCEPT_ENTRIES


@pytest.mark.parametrize(
    ("header", "gzip"),
    [
        ("gzip, deflate", True),
        ("x-gzip", True),
        ("GZIP;q=0.1", True),
        ("gzip;q=0", False),
        ("gzip;q=0, gzip", False),  # the first entry decides
        ("identity", False),
        ("*", False),
        (None, False),
    ],
)
def test_accepts_gzip(header: str | None, gzip: bool) -> None:
    assert accepts_gzip(header) is gzip


@pytest.mark.parametrize(
    ("accept", "fmt", "html"),
    [
        (None, "yaml", False),
        ("*/*", "yaml", False),
        ("application/json", "json", False),
        ("application/yaml;q=0.5, application/json", "json", False),
        ("application/json, application/yaml", "json", False),
        ("application/yaml, application/json", "yaml", False),
        ("text/json;q=0.9, text/x-yaml;q=0.1", "json", False),
        ("text/html,application/xhtml+xml,*/*;q=0.8", "yaml", True),
        ("text/html;q=0.5, application/json", "json", False),
        ("text/html, application/json", "json", False),
    ],
)
def test_negotiate_and_prefers_html_read_the_same_entries(
    accept: str | None, fmt: str, html: bool
) -> None:
    assert negotiate(accept) == fmt
    assert prefers_html(accept) is html


@pytest.mark.parametrize(
    ("if_none_match", "matches"),
    [
        ('"a"', True),
        ('"x", "b"', True),
        ('W/"a"', True),
        ("*", True),
        (' "x" ,W/"b" ', True),
        ('"c"', False),
        ("", False),
        (None, False),
        ('"a", ' + '"x", ' * 3000, False),  # too long to read
    ],
)
def test_etag_matches_weakly(if_none_match: str | None, matches: bool) -> None:
    assert etag_matches(if_none_match, ('"a"', '"b"')) is matches
