"""Log lines: what a logged value holds cannot forge a line or drive a terminal."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from service.logs import CONTINUATION, TextFormatter, configure_logging
from service.text import escape_controls, escape_invisible

HOSTILE = "team/api\n2026-01-01 00:00:00,000 CRITICAL service: forged\x1b[31m red\r\x07\u2028x"


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    """The root handler that configure_logging installs, writing to a buffer."""
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    stream = io.StringIO()
    try:
        yield stream
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)


def _configured(stream: io.StringIO, log_format: str) -> None:
    configure_logging(log_format)  # type: ignore[arg-type]
    handler = logging.getLogger().handlers[0]
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(stream)


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_a_hostile_value_stays_on_its_own_line_and_escaped(
    captured: io.StringIO, log_format: str
) -> None:
    _configured(captured, log_format)
    logging.getLogger("service.web.operations").info("event: push in %s", HOSTILE)
    output = captured.getvalue()
    assert output.count("\n") == 1 and output.endswith("\n")
    for raw in ("\x1b", "\r", "\x07", "\u2028"):
        assert raw not in output
    if log_format == "text":
        assert output.split(" ", 2)[2].startswith("INFO service.web.operations: event: push in")
        assert "team/api\\n2026-01-01 00:00:00,000 CRITICAL" in output
        assert "forged\\x1b[31m red\\r\\x07\\u2028x" in output
    else:
        assert json.loads(output)["message"] == f"event: push in {HOSTILE}"


def test_a_traceback_keeps_its_lines_each_marked_as_a_continuation(
    captured: io.StringIO,
) -> None:
    _configured(captured, "text")
    try:
        raise ValueError("bad name\nCRITICAL forged\x1b[2J")
    except ValueError:
        logging.getLogger("service").exception("reading %s failed", "a\nb")
    first, *rest = captured.getvalue().rstrip("\n").split("\n")
    assert first.endswith("ERROR service: reading a\\nb failed")
    assert rest[0] == CONTINUATION + "Traceback (most recent call last):"
    assert all(line.startswith(CONTINUATION) for line in rest)
    assert rest[-1] == CONTINUATION + "CRITICAL forged\\x1b[2J"


def test_escapes_are_visible_and_plain_text_is_left_alone() -> None:
    assert escape_controls("plain: ünïcode, tabs\tand\x7f") == "plain: ünïcode, tabs\\tand\\x7f"
    assert escape_controls("\x00\x9b\u2029") == "\\x00\\x9b\\u2029"
    # Bidirectional controls reorder a terminal's line as they do a page's.
    assert escape_controls("a\u202eb\u2066c\u200fd\u061c") == "a\\u202eb\\u2066c\\u200fd\\u061c"
    # A page keeps its white space and escapes the rest alike.
    assert escape_invisible("a\tb\nc\r\x1b\u202e") == "a\tb\nc\r\\x1b\\u202e"
    record = logging.LogRecord("n", logging.WARNING, "f", 1, "%s", ("x\ny",), None)
    assert TextFormatter("%(levelname)s %(message)s").format(record) == "WARNING x\\ny"
