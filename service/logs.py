"""Log output: text lines for people, or one JSON object per line for log shippers."""

from __future__ import annotations

import logging
import sys
from types import TracebackType
from typing import Literal

from pythonjsonlogger.json import JsonFormatter

from .text import escape_controls

__all__ = ["TextFormatter", "configure_logging"]

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

_ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None] | tuple[None, None, None]
# Prefixed to each line of a traceback: only a record's own first line starts at column 0.
CONTINUATION = "  | "


class TextFormatter(logging.Formatter):
    """Text lines that logged values cannot forge or colour, as JSON lines cannot be.

    A repository name, an event field or a request path is logged as it came; escaped here, a
    ``\\n`` in one cannot start a line that reads as another record, nor ESC drive a terminal.
    Tracebacks keep their lines, each escaped and prefixed with ``CONTINUATION``.
    """

    def formatMessage(self, record: logging.LogRecord) -> str:
        return escape_controls(super().formatMessage(record))

    def formatException(self, ei: _ExcInfo) -> str:
        return _continued(super().formatException(ei))

    def formatStack(self, stack_info: str) -> str:
        return _continued(super().formatStack(stack_info))


def _continued(text: str) -> str:
    return "\n".join(CONTINUATION + escape_controls(line) for line in text.split("\n"))


def configure_logging(log_format: Literal["text", "json"] = "text") -> None:
    """Send every logger (uvicorn's included) to stderr in ``log_format``.

    JSON lines carry ``timestamp``, ``level``, ``logger`` and ``message``, plus whatever a call
    passes as ``extra`` (the refresh summary puts its figures under ``refresh``).
    """
    handler = logging.StreamHandler(sys.stderr)
    if log_format == "json":
        handler.setFormatter(
            JsonFormatter(
                "%(asctime)s %(levelname)s %(name)s %(message)s",
                rename_fields={"asctime": "timestamp", "levelname": "level", "name": "logger"},
                timestamp=False,
            )
        )
    else:
        handler.setFormatter(TextFormatter(TEXT_FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
