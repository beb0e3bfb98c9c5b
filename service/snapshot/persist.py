"""Each source's last good records on disk, so a restarted service serves at once.

Files are written atomically (temporary file, fsync, rename, fsync of the directory), one per
source. A corrupt state file must never stop the service from starting, so loading trusts
nothing: a file is parsed against the records' own fields (pydantic, strict, no extra or
missing field), and anything else (not JSON, another JSON value, another format version, a
wrong type, a naive time, a file named for another source, a file that cannot be read) is
logged and renamed aside as ``*.corrupt``, and its source is reported (LoadedState.unreadable)
so that nothing is served as complete until it is read again; so are records of the right
form that the snapshot refuses (the store's _publish_saved). A well-formed file of a source
that is no longer configured is kept as it is and not loaded. A save that fails (a read-only
or full disk) is logged and raised as ``StateWriteFailed``; the store counts it and serving
goes on.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, fields, is_dataclass
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, TypeAdapter, ValidationError

from ..errors import StateFileInvalid, StateWriteFailed
from ..instants import time_problem
from ..model import STRICT, SourceId, SourceRecords
from ..statefiles import (
    CORRUPT_SUFFIX,
    TEMPORARY_PREFIX,
    load_state_file,
    set_aside,
    validation_problems,
    write_atomically,
)

__all__ = ["LoadedState", "StateDir", "records_from_json", "records_to_json"]

log = logging.getLogger(__name__)

# 2: the partition of each source, the scanning rules of its registry, findings and last pulls;
# repository URIs are no longer kept (they follow from the partition).
FORMAT_VERSION = 2


@dataclass(frozen=True)
class _StateFile:
    """The whole file: strict JSON, exactly these fields (see model.py's records)."""

    __pydantic_config__ = STRICT

    format: Annotated[int, Field(ge=FORMAT_VERSION, le=FORMAT_VERSION)]
    records: SourceRecords


_STATE_FILE = TypeAdapter(_StateFile)


def _encode(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"cannot persist {type(value).__name__}")


def records_to_json(records: SourceRecords) -> bytes:
    """The records as JSON bytes, with a format version."""
    document = {"format": FORMAT_VERSION, "records": asdict(records)}
    return json.dumps(document, default=_encode, sort_keys=True).encode("utf-8")


def _time_problems(value: object) -> Iterator[str]:
    # The store compares these times with aware ones and writes them in UTC: a naive one, or
    # one past the calendar's end in UTC, would fail a build or a refresh later.
    if isinstance(value, datetime):
        problem = time_problem(value)
        if problem is not None:
            yield f"{value} {problem}"
    elif is_dataclass(value):
        for item in fields(value):
            yield from _time_problems(getattr(value, item.name))
    elif isinstance(value, tuple):
        for item in value:
            yield from _time_problems(item)


def records_from_json(data: bytes) -> SourceRecords:
    """Parse what records_to_json wrote; raises StateFileInvalid for anything else."""
    try:
        document = _STATE_FILE.validate_json(data)
    except ValidationError as exc:
        raise StateFileInvalid(_earlier_format(data) or validation_problems(exc)) from exc
    problems = list(_time_problems(document.records))
    if problems:
        raise StateFileInvalid(f"times that cannot be used: {', '.join(problems[:3])}")
    # Fields with defaults would be filled in silently: the file must be whole, as written.
    if json.loads(records_to_json(document.records)) != json.loads(data):
        raise StateFileInvalid("fields are missing, or not in the form this version writes")
    return document.records


def _earlier_format(data: bytes) -> str | None:
    # What an earlier version wrote is set aside like any other file, but said as what it is.
    try:
        version = json.loads(data).get("format")
    except (ValueError, AttributeError, RecursionError):
        return None
    if isinstance(version, int) and not isinstance(version, bool) and 0 < version < FORMAT_VERSION:
        return f"format {version}, written by an earlier version; this one writes {FORMAT_VERSION}"
    return None


@dataclass(frozen=True)
class LoadedState:
    """What a state directory gave at start-up."""

    records: list[SourceRecords]
    # Wanted sources whose file was there but set aside: their data was served before, so
    # nothing may be served as complete until they are read again.
    unreadable: tuple[SourceId, ...] = ()


class StateDir:
    """A directory of ``<account>-<region>.json`` files, one per source."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def _file(self, source: SourceId) -> Path:
        return self.path / f"{source.account_id}-{source.region}.json"

    @staticmethod
    def _named_source(file: Path) -> SourceId | None:
        """The source a file's name is for (``<account>-<region>.json``, or ``.corrupt``,
        ``.1.corrupt``, …), if it names one."""
        account, _, region = file.name.split(".", 1)[0].partition("-")
        if len(account) == 12 and account.isdigit() and region:
            return SourceId(account, region)
        return None

    def save(self, records: SourceRecords) -> None:
        """Replace the source's file atomically: a crash leaves the old or the new one, whole.

        Raises StateWriteFailed, naming the file, when it cannot be written.
        """
        target = self._file(records.source)
        try:
            write_atomically(target, records_to_json(records))
        except OSError as exc:
            raise StateWriteFailed(f"cannot write {target}: {exc.strerror or exc}") from exc

    def set_aside(self, source: SourceId, reason: object) -> None:
        """Rename the source's file aside as ``*.corrupt``: it loaded, but cannot be served."""
        set_aside(self._file(source), "state file", reason)

    def load(self, wanted: Callable[[SourceId], bool] = lambda _s: True) -> LoadedState:
        """Every valid file of a ``wanted`` source; invalid ones are set aside as ``*.corrupt``.

        A valid file of a source not ``wanted`` (no longer configured) stays where it is.
        """
        try:
            if self.path.exists() and not self.path.is_dir():
                log.error(
                    "the state directory %s is not a directory: nothing is loaded from it, "
                    "and saving to it will fail",
                    self.path,
                )
                return LoadedState([])
            files = sorted(self.path.glob("*.json")) if self.path.is_dir() else []
        except OSError as exc:
            log.error("cannot list the state directory %s: %s", self.path, exc)
            return LoadedState([])
        loaded = []
        unreadable = []
        for file in files:
            if file.name.startswith(TEMPORARY_PREFIX):
                # A save that was interrupted; its source's previous file is still whole.
                file.unlink(missing_ok=True)
                continue
            records = load_state_file(file, "state file", functools.partial(self._read, file))
            if records is None:
                named = self._named_source(file)
                if named is not None and wanted(named):
                    unreadable.append(named)
                continue
            if not wanted(records.source):
                log.warning(
                    "state file %s holds %s, which is no longer configured: kept, not loaded",
                    file,
                    records.source,
                )
                continue
            loaded.append(records)
        # Set aside by an earlier start, and not read since (or its new file would be here).
        unreadable += self._set_aside_before(files, wanted)
        return LoadedState(loaded, tuple(sorted(set(unreadable))))

    def _set_aside_before(
        self, files: list[Path], wanted: Callable[[SourceId], bool]
    ) -> list[SourceId]:
        present = {self._named_source(file) for file in files}
        found = []
        for aside in self.path.glob(f"*{CORRUPT_SUFFIX}"):
            named = self._named_source(aside)
            if named is not None and named not in present and wanted(named):
                found.append(named)
        return found

    def _read(self, file: Path, data: bytes) -> SourceRecords:
        records = records_from_json(data)
        if file != self._file(records.source):
            raise StateFileInvalid(f"it holds {records.source}, which belongs in another file")
        return records
