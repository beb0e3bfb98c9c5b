"""What a request asks for: the one parser of ``Accept``-style headers, and ``If-None-Match``.

``Accept`` (the format, or the page) and ``Accept-Encoding`` (gzip) share one grammar, a list of
values with parameters, of which only ``q`` matters here (RFC 9110, 12.4.2): ``accept_list``
parses both, and the three questions the routes ask are answered from its entries.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

__all__ = [
    "MAX_ACCEPT_ENTRIES",
    "MAX_IF_NONE_MATCH_LENGTH",
    "ErrorFormat",
    "Format",
    "accept_list",
    "accepts_gzip",
    "error_format",
    "etag_matches",
    "negotiate",
    "prefers_html",
]

# Longer If-None-Match headers are not worth parsing; they simply do not match.
MAX_IF_NONE_MATCH_LENGTH = 8192
# Entries past these are ignored: a header is parsed in time bounded by this, however long.
MAX_ACCEPT_ENTRIES = 64

Format = Literal["yaml", "json"]
ErrorFormat = Literal["html", "json", "yaml"]

_JSON_MEDIA_TYPES = frozenset(("application/json", "text/json"))
_YAML_MEDIA_TYPES = frozenset(
    ("application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml")
)
_HTML_MEDIA_TYPES = frozenset(("text/html", "application/xhtml+xml"))


def _quality(params: Sequence[str]) -> float:
    for param in params:
        name, _, value = param.strip().partition("=")
        if name.strip().lower() == "q":
            try:
                return float(value)
            except ValueError:
                return 0.0
    return 1.0


def accept_list(header: str | None) -> list[tuple[str, float]]:
    """Each value of an ``Accept`` or ``Accept-Encoding`` header, lower case, with its quality,
    in the header's order (at most ``MAX_ACCEPT_ENTRIES``)."""
    if not header:
        return []
    entries = []
    for entry in header.split(",")[:MAX_ACCEPT_ENTRIES]:
        value, *params = entry.split(";")
        entries.append((value.strip().lower(), _quality(params)))
    return entries


def accepts_gzip(accept_encoding: str | None) -> bool:
    """Whether the first gzip entry of ``Accept-Encoding`` has a quality above zero."""
    for coding, quality in accept_list(accept_encoding):
        if coding in ("gzip", "x-gzip"):
            return quality > 0
    return False


def prefers_html(accept: str | None) -> bool:
    """Whether the client asks for HTML above YAML and JSON: a browser, never curl or Backstage.

    ``*/*`` and a missing header mean data: only an explicit ``text/html`` gets the page.
    """
    html = data = 0.0
    for media, quality in accept_list(accept):
        if media in _HTML_MEDIA_TYPES:
            html = max(html, quality)
        elif media in _JSON_MEDIA_TYPES or media in _YAML_MEDIA_TYPES:
            data = max(data, quality)
    return html > data


def negotiate(accept: str | None) -> Format:
    """JSON when the client prefers it; YAML otherwise (Backstage sends ``*/*``)."""
    best: tuple[float, Format] = (0.0, "yaml")
    for position, (media, quality) in enumerate(accept_list(accept)):
        if media in _JSON_MEDIA_TYPES:
            fmt: Format = "json"
        elif media in _YAML_MEDIA_TYPES:
            fmt = "yaml"
        else:
            continue
        # Equal qualities: the earlier entry wins, hence the tiny positional penalty.
        score = quality - position * 1e-6
        if score > best[0]:
            best = (score, fmt)
    return best[1]


def error_format(accept: str | None) -> ErrorFormat:
    """How a refusal is told: a page for a browser, YAML to a client that asks for YAML by name
    above JSON, and JSON (``{"detail": ...}``) otherwise, ``*/*`` and no header included."""
    if prefers_html(accept):
        return "html"
    named_yaml = any(media in _YAML_MEDIA_TYPES and q > 0 for media, q in accept_list(accept))
    return "yaml" if named_yaml and negotiate(accept) == "yaml" else "json"


def etag_matches(if_none_match: str | None, etags: Sequence[str]) -> bool:
    """Whether ``If-None-Match`` names one of ``etags``, by the weak comparison RFC 9110
    prescribes for it (``W/`` ignored), or is ``*``."""
    if not if_none_match or len(if_none_match) > MAX_IF_NONE_MATCH_LENGTH:
        return False
    if if_none_match in etags:  # what Backstage sends: the one ETag it was given
        return True
    if if_none_match.strip() == "*":
        return True
    offered = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
    return any(etag in offered for etag in etags)
