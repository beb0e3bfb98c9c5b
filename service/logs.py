"""Log output: text lines for people, or one JSON object per line for log shippers."""

from __future__ import annotations

import logging
import sys
from typing import Literal

from pythonjsonlogger.json import JsonFormatter

__all__ = ["configure_logging"]

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


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
        handler.setFormatter(logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
