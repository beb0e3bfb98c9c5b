"""Our own frozen records of what ECR holds: the reader makes them, the transform reads them.

Slotted: at 10,000 repositories the records are held in both processes (service/reader_process.py).
Each record also tells pydantic how to check it (``__pydantic_config__``, read only by
``service/persist.py``): a state file from disk must match these fields exactly, types included.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

__all__ = [
    "Entity",
    "ImageSummary",
    "LatestImage",
    "LifecyclePolicy",
    "RegistryRecord",
    "RepositoryRecord",
    "SourceId",
    "SourceRecords",
]

# A Backstage entity as plain JSON-shaped data: what is validated, rendered and served.
Entity = dict[str, Any]

# pydantic's ConfigDict, as the plain dict it is: this module does not import pydantic.
_STRICT = {"extra": "forbid", "strict": True}


@dataclass(frozen=True, order=True, slots=True)
class SourceId:
    """One account in one region: the unit that is read, cached and fails on its own."""

    __pydantic_config__ = _STRICT

    account_id: str
    region: str

    def __str__(self) -> str:
        return f"{self.account_id}/{self.region}"


@dataclass(frozen=True, slots=True)
class LatestImage:
    """The most recently pushed image of a repository."""

    __pydantic_config__ = _STRICT

    digest: str
    tags: tuple[str, ...]
    pushed_at: datetime
    size_bytes: int | None
    # Severity name (upper case, as ECR spells it) to count; empty when never scanned.
    finding_counts: tuple[tuple[str, int], ...] = ()
    last_pulled_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class ImageSummary:
    """What DescribeImages told us about one repository."""

    __pydantic_config__ = _STRICT

    image_count: int
    latest: LatestImage | None


@dataclass(frozen=True, slots=True)
class LifecyclePolicy:
    """Whether a lifecycle policy exists and how many rules it has."""

    __pydantic_config__ = _STRICT

    present: bool
    rule_count: int = 0


@dataclass(frozen=True, slots=True)
class RepositoryRecord:
    """One ECR repository with the answers of its per-repository calls."""

    __pydantic_config__ = _STRICT

    name: str
    arn: str
    uri: str
    created_at: datetime | None
    tag_mutability: str | None
    encryption_type: str | None
    scan_on_push: bool | None
    tags: tuple[tuple[str, str], ...]
    images: ImageSummary
    lifecycle_policy: LifecyclePolicy


@dataclass(frozen=True, slots=True)
class RegistryRecord:
    """Registry-wide settings of one source."""

    __pydantic_config__ = _STRICT

    # Replication destinations as "region" or "region@account", sorted.
    replication_destinations: tuple[str, ...] = ()
    scan_type: str | None = None


@dataclass(frozen=True, slots=True)
class SourceRecords:
    """Everything one successful read of a source returned."""

    __pydantic_config__ = _STRICT

    source: SourceId
    registry: RegistryRecord
    repositories: tuple[RepositoryRecord, ...]
    read_at: datetime
    # Repositories that vanished between listing and their per-repository calls.
    skipped: tuple[str, ...] = field(default=())
