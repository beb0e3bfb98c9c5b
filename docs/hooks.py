"""MkDocs hook: writes the configuration reference into configuration.md at build time.

The reference comes from ``Settings`` itself (``service/config/reference.py``), so the page
cannot drift from the code. Building the site therefore needs the project installed
(``pip install -e '.[dev]'``, as ``make docs`` does).
"""

from __future__ import annotations

from typing import Any

from mkdocs.exceptions import PluginError

from service.config.reference import reference_markdown

MARKER = "<!-- settings-reference -->"
PAGE = "configuration.md"


def on_page_markdown(markdown: str, page: Any, **_: Any) -> str:
    if page.file.src_uri != PAGE:
        return markdown
    if MARKER not in markdown:
        raise PluginError(f"{PAGE} lost its marker {MARKER}: the settings reference has no place")
    return markdown.replace(MARKER, reference_markdown())
