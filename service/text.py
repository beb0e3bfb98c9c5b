"""Text from outside (ECR names and tags, event fields) shown to people: the one rule for which
characters are written as visible escapes, in logs and on pages."""

from __future__ import annotations

import re

__all__ = ["escape_controls", "escape_invisible"]

# Unicode's Bidi_Control characters: embeddings, overrides, isolates and the marks. Held by a
# name or a tag, one reorders what is shown after it ("Trojan Source", CVE-2021-42574), such as
# a YAML line displayed reversed, or a log line that reads as something else.
_BIDI = "\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"
# C0 and C1 controls, DEL, and Unicode's line and paragraph separators: what can end a line or
# drive a terminal (ESC starts its colour and cursor sequences).
_CONTROL = re.compile(f"[\x00-\x1f\x7f-\x9f\u2028\u2029{_BIDI}]")
# The same less tab, line feed and carriage return, which a page shows as the white space
# they are (a YAML block keeps its lines).
_INVISIBLE = re.compile(f"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029{_BIDI}]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escaped(match: re.Match[str]) -> str:
    char = match.group()
    return _NAMED.get(char) or (
        f"\\x{ord(char):02x}" if ord(char) < 0x100 else f"\\u{ord(char):04x}"
    )


def escape_controls(text: str) -> str:
    """``text`` with every control and bidirectional character as a visible escape (``\\n``,
    ``\\x1b``, ``\\u202e``): for a log line, which none of them may end, colour or reorder."""
    return _CONTROL.sub(_escaped, text)


def escape_invisible(text: str) -> str:
    """``text`` with every control and bidirectional character but white space (tab, line
    feed, carriage return) as a visible escape: for a page."""
    return _INVISIBLE.sub(_escaped, text)
