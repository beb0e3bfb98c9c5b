"""Each source's last good records on disk, so a restarted service serves at once.

Files are written atomically (temporary file, fsync, rename, fsync of the directory), one per
source. A file that cannot be read or parsed is logged, renamed aside and ignored: a corrupt
state file must never stop the service from starting.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import Any

from .model import (
    ImageSummary,
    LatestImage,
    LifecyclePolicy,
    RegistryRecord,
    RepositoryRecord,
    SourceId,
    SourceRecords,
)

__all__ = ["StateDir", "records_from_json", "records_to_json"]

log = logging.getLogger(__name__)

FORMAT_VERSION = 1


def _encode(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"cannot persist {type(value).__name__}")


def records_to_json(records: SourceRecords) -> bytes:
    """The records as JSON bytes, with a format version."""
    document = {"format": FORMAT_VERSION, "records": asdict(records)}
    return json.dumps(document, default=_encode, sort_keys=True).encode("utf-8")


def _time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value is not None else None


def _repository(raw: dict[str, Any]) -> RepositoryRecord:
    images = raw["images"]
    latest = images["latest"]
    return RepositoryRecord(
        name=raw["name"],
        arn=raw["arn"],
        uri=raw["uri"],
        created_at=_time(raw["created_at"]),
        tag_mutability=raw["tag_mutability"],
        encryption_type=raw["encryption_type"],
        scan_on_push=raw["scan_on_push"],
        tags=tuple((str(k), str(v)) for k, v in raw["tags"]),
        images=ImageSummary(
            image_count=int(images["image_count"]),
            latest=None
            if latest is None
            else LatestImage(
                digest=latest["digest"],
                tags=tuple(latest["tags"]),
                pushed_at=datetime.fromisoformat(latest["pushed_at"]),
                size_bytes=latest["size_bytes"],
                finding_counts=tuple((str(k), int(v)) for k, v in latest["finding_counts"]),
                last_pulled_at=_time(latest["last_pulled_at"]),
            ),
        ),
        lifecycle_policy=LifecyclePolicy(**raw["lifecycle_policy"]),
    )


def records_from_json(data: bytes) -> SourceRecords:
    """Parse what records_to_json wrote; raises ValueError (or KeyError/TypeError) otherwise."""
    document = json.loads(data)
    if document.get("format") != FORMAT_VERSION:
        raise ValueError(f"unknown state format {document.get('format')!r}")
    raw = document["records"]
    registry = raw["registry"]
    return SourceRecords(
        source=SourceId(**raw["source"]),
        registry=RegistryRecord(
            replication_destinations=tuple(registry["replication_destinations"]),
            scan_type=registry["scan_type"],
        ),
        repositories=tuple(_repository(r) for r in raw["repositories"]),
        read_at=datetime.fromisoformat(raw["read_at"]),
        skipped=tuple(raw["skipped"]),
    )


class StateDir:
    """A directory of ``<account>-<region>.json`` files, one per source."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def _file(self, source: SourceId) -> Path:
        return self.path / f"{source.account_id}-{source.region}.json"

    def save(self, records: SourceRecords) -> None:
        """Replace the source's file atomically: a crash leaves the old or the new one, whole."""
        self.path.mkdir(parents=True, exist_ok=True)
        target = self._file(records.source)
        descriptor, temporary = tempfile.mkstemp(dir=self.path, prefix=".tmp-", suffix=".json")
        try:
            with os.fdopen(descriptor, "wb") as handle:
                handle.write(records_to_json(records))
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        directory = os.open(self.path, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)

    def load(self) -> list[SourceRecords]:
        """Every readable source file; unreadable ones are set aside as ``*.corrupt``."""
        if not self.path.is_dir():
            return []
        loaded = []
        for file in sorted(self.path.glob("*.json")):
            if file.name.startswith(".tmp-"):
                file.unlink(missing_ok=True)
                continue
            try:
                records = records_from_json(file.read_bytes())
                if file != self._file(records.source):
                    raise ValueError("file name does not match the source it holds")
            except (OSError, ValueError, KeyError, TypeError) as exc:
                aside = file.with_suffix(".corrupt")
                log.error("state file %s is unreadable and set aside as %s: %s", file, aside, exc)
                try:
                    os.replace(file, aside)
                except OSError as move_error:
                    log.error("cannot set %s aside: %s", file, move_error)
                continue
            loaded.append(records)
        return loaded
