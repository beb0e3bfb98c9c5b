"""Our own frozen records of what ECR holds: the reader makes them, the transform reads them.

Slotted, since a large registry holds one record per repository for the life of the process.
Each record also tells pydantic how to check it (``__pydantic_config__``, read only by
``service/snapshot/persist.py``): a state file from disk must match these fields exactly,
types included.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

__all__ = [
    "STRICT",
    "FINDINGS_AVAILABLE",
    "FINDINGS_PENDING",
    "FINDINGS_UNAVAILABLE",
    "Entity",
    "ImageSummary",
    "LatestImage",
    "LifecyclePolicy",
    "Partition",
    "RegistryRecord",
    "RepositoryRecord",
    "ScanningRule",
    "SourceId",
    "SourceRecords",
]

# A Backstage entity as plain JSON-shaped data: what is validated, rendered and served.
Entity = dict[str, Any]

# How pydantic reads our records, in state files and wherever else: exactly the fields
# written, types included. pydantic's ConfigDict, as the plain dict it is: this module does
# not import pydantic.
STRICT = {"extra": "forbid", "strict": True}


@dataclass(frozen=True, order=True, slots=True)
class SourceId:
    """One account in one region: the unit that is read, cached and fails on its own."""

    __pydantic_config__ = STRICT

    account_id: str
    region: str

    def __str__(self) -> str:
        return f"{self.account_id}/{self.region}"


@dataclass(frozen=True, slots=True)
class Partition:
    """The AWS partition a source's region belongs to, as botocore's partition data has it."""

    __pydantic_config__ = STRICT

    name: str  # aws, aws-cn, aws-us-gov, ...
    dns_suffix: str  # amazonaws.com, amazonaws.com.cn, ...
    # The AWS console's host, or None in a partition without a public console.
    console_host: str | None


# Whether a latest image's scan findings could be had (see LatestImage.findings).
FINDINGS_AVAILABLE = "available"
FINDINGS_PENDING = "pending"
FINDINGS_UNAVAILABLE = "unavailable"


@dataclass(frozen=True, slots=True)
class LatestImage:
    """The most recently pushed image of a repository."""

    __pydantic_config__ = STRICT

    digest: str
    tags: tuple[str, ...]
    pushed_at: datetime
    size_bytes: int | None
    # Severity name (upper case, as ECR spells it) to count, for the severities found.
    finding_counts: tuple[tuple[str, int], ...] = ()
    last_pulled_at: datetime | None = None
    # available (finding_counts is the whole story), pending (a scan is due or running) or
    # unavailable (denied, failed, unsupported, never scanned): never silently empty.
    findings: str = FINDINGS_UNAVAILABLE
    # ECR's own word for the scan (COMPLETE, ACTIVE, IN_PROGRESS, FAILED, ...), when known.
    scan_status: str | None = None


@dataclass(frozen=True, slots=True)
class ImageSummary:
    """What DescribeImages told us about one repository."""

    __pydantic_config__ = STRICT

    image_count: int
    latest: LatestImage | None
    # The most recent pull of any of its images, as ECR recorded it (it lags real pulls).
    last_pulled_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class LifecyclePolicy:
    """Whether a lifecycle policy exists and how many rules it has.

    A policy ECR returns but whose text cannot be read (not JSON, nested too deeply, no rule
    list: only a non-conforming endpoint sends one, as ECR checks policies when they are put)
    is ``present`` with ``rule_count`` None: a fact of that repository, never a failed read.
    None rather than a third field keeps the state files of present and absent policies as
    they were (service/snapshot/persist.py).
    """

    __pydantic_config__ = STRICT

    present: bool
    rule_count: int | None = 0

    @property
    def unparseable(self) -> bool:
        """Set, but its rules could not be read."""
        return self.present and self.rule_count is None


@dataclass(frozen=True, slots=True)
class RepositoryRecord:
    """One ECR repository with the answers of its per-repository calls."""

    __pydantic_config__ = STRICT

    name: str
    arn: str
    created_at: datetime | None
    tag_mutability: str | None
    encryption_type: str | None
    scan_on_push: bool | None
    tags: tuple[tuple[str, str], ...]
    images: ImageSummary
    lifecycle_policy: LifecyclePolicy


@dataclass(frozen=True, slots=True)
class ScanningRule:
    """One rule of a registry's scanning configuration."""

    __pydantic_config__ = STRICT

    # SCAN_ON_PUSH, CONTINUOUS_SCAN or MANUAL.
    frequency: str
    # Repository-name wildcards ("*" matches any run of characters); a rule covers a
    # repository when one of them matches its name.
    filters: tuple[str, ...]

    def covers(self, repository: str) -> bool:
        """Whether one of the filters matches ``repository``, as ECR matches a WILDCARD."""
        return any(_wildcard(pattern).fullmatch(repository) for pattern in self.filters)


@functools.lru_cache(maxsize=256)
def _wildcard(pattern: str) -> re.Pattern[str]:
    return re.compile(".*".join(re.escape(part) for part in pattern.split("*")))


@dataclass(frozen=True, slots=True)
class RegistryRecord:
    """Registry-wide settings of one source."""

    __pydantic_config__ = STRICT

    # Replication destinations as "region" or "region@account", sorted.
    replication_destinations: tuple[str, ...] = ()
    scan_type: str | None = None
    scanning_rules: tuple[ScanningRule, ...] = ()


@dataclass(frozen=True, slots=True)
class SourceRecords:
    """Everything one successful read of a source returned."""

    __pydantic_config__ = STRICT

    source: SourceId
    partition: Partition
    registry: RegistryRecord
    repositories: tuple[RepositoryRecord, ...]
    read_at: datetime
    # Repositories that vanished between listing and their per-repository calls.
    skipped: tuple[str, ...] = field(default=())
