"""Writing, loading and setting aside the files of ``state_dir``: one way for every kind of
state file (each source's records, the organisation roster, the Backstage claims).

A write is atomic (a temporary file in the same directory, fsync, rename, fsync of the
directory), so a crash leaves the old file or the new one, whole. A file that cannot be read
is renamed aside as ``*.corrupt`` (``*.1.corrupt`` and so on when one is there already), never
deleted: it may be what someone wants to look at. Loading reads each document strictly
(``model.STRICT``) and says pydantic's first problems in words (``validation_problems``).
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from pydantic import ValidationError

__all__ = [
    "CORRUPT_SUFFIX",
    "TEMPORARY_PREFIX",
    "load_state_file",
    "read_state_file",
    "set_aside",
    "validation_problems",
    "write_atomically",
]

log = logging.getLogger(__name__)

CORRUPT_SUFFIX = ".corrupt"
TEMPORARY_PREFIX = ".tmp-"

T = TypeVar("T")


def write_atomically(target: Path, data: bytes) -> None:
    """Replace ``target`` with ``data``; raises OSError when it cannot be written."""
    target.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(
        dir=target.parent, prefix=TEMPORARY_PREFIX, suffix=target.suffix
    )
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, target)
        directory = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def set_aside(file: Path, what: str, reason: object) -> None:
    """Rename ``file`` (a ``what``) to ``*.corrupt`` and log why; a failed rename is logged."""
    aside = file.with_suffix(CORRUPT_SUFFIX)
    number = 1
    while aside.exists():
        aside = file.with_suffix(f".{number}{CORRUPT_SUFFIX}")
        number += 1
    log.error("%s %s is unreadable and set aside as %s: %s", what, file, aside, reason)
    try:
        os.replace(file, aside)
    except OSError as move_error:
        log.error("cannot set %s aside: %s", file, move_error)


def read_state_file(file: Path, what: str) -> bytes | None:
    """The bytes of ``file`` (a ``what``), or None when there is none to load.

    One that is there but is not a regular file (a directory, a dangling link, or a FIFO that
    would block start-up for ever), or that cannot be read, is set aside.
    """
    if not os.path.lexists(file):
        return None
    try:
        if not file.is_file():
            raise OSError(f"{file} is not a regular file")
        return file.read_bytes()
    except OSError as exc:
        set_aside(file, what, exc.strerror or exc)
        return None


def load_state_file(file: Path, what: str, parse: Callable[[bytes], T]) -> T | None:
    """What ``parse`` makes of ``file`` (a ``what``), or None when there is nothing to load.

    A file that cannot be read (read_state_file), or that ``parse`` refuses with ValueError,
    is set aside.
    """
    data = read_state_file(file, what)
    if data is None:
        return None
    try:
        return parse(data)
    except ValueError as exc:
        set_aside(file, what, exc)
        return None


def validation_problems(exc: ValidationError) -> str:
    """The first three problems pydantic found in a state file, in words."""
    errors = exc.errors(include_url=False, include_input=False)
    shown = "; ".join(
        f"{'.'.join(str(part) for part in error['loc']) or 'the file'}: {error['msg']}"
        for error in errors[:3]
    )
    return shown + (f" (and {len(errors) - 3} more)" if len(errors) > 3 else "")
