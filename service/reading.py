"""The seam between reading ECR and the snapshot: what a reader is, and what it reports.

The snapshot store depends on the ``EcrReader`` protocol only; ``service.aws`` implements it
against AWS, and tests pass fakes of it. Nothing here imports botocore or aiohttp.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from .instants import iso
from .model import SourceId, SourceRecords
from .ownership import FleetSources

__all__ = [
    "DiscoveryStatus",
    "EcrReader",
    "ReadObserver",
    "SourceListing",
    "StaticCredentials",
    "Unobserved",
]


@dataclass(frozen=True)
class DiscoveryStatus:
    """How discovery has gone, for /readyz and the metrics."""

    accounts: int
    last_attempt_at: datetime | None
    last_success_at: datetime | None
    last_error: str | None
    # Missed by the last discovery: still read, gone if the next one misses them too.
    leaving: tuple[str, ...]
    discoveries: int
    failures: int

    def as_dict(self) -> dict[str, Any]:
        """As /readyz shows it."""

        return {
            "accounts": self.accounts,
            "last_attempt_at": iso(self.last_attempt_at),
            "last_success_at": iso(self.last_success_at),
            "last_error": self.last_error,
            "leaving": list(self.leaving),
            "discoveries": self.discoveries,
            "failures": self.failures,
        }


@dataclass(frozen=True)
class SourceListing:
    """The sources that can be read, and the problems that keep others from being listed.

    ``refused`` are sources whose target failed its identity check: they are known but are
    never read. ``unresolved`` says, a sentence each, which targets' accounts could not be found,
    so their sources are not even known; nothing that needs every source may be published while
    it is not empty.
    """

    sources: tuple[SourceId, ...]
    refused: tuple[tuple[SourceId, str], ...] = ()
    unresolved: tuple[str, ...] = ()
    # Organisation accounts that two discoveries in a row no longer saw: they leave the catalog.
    departed: tuple[str, ...] = ()
    # How the organisation's discovery has gone; None without aws.organization.
    discovery: DiscoveryStatus | None = None
    # In a fleet of partitions, every source of the fleet: ``sources`` above are then only
    # this partition's own (service/fleet). None for a single process.
    fleet: FleetSources | None = None


class ReadObserver(Protocol):
    """Where the reader reports its AWS calls and cache lookups (the metrics)."""

    def aws_call(self, operation: str, outcome: str, times: int = 1) -> None:
        """Calls of ``operation`` by outcome: ok, or an error code; and their attempts that
        AWS throttled (throttled) and that botocore retried (retried, throttles included)."""

    def cache_lookup(self, kind: str, hit: bool, times: int = 1) -> None:
        """Cache lookups of a query kind (images, tags, lifecycle_policy, registry, findings)."""


class Unobserved:
    """A ReadObserver that keeps nothing (``ecr-catalog render``, tests)."""

    def aws_call(self, operation: str, outcome: str, times: int = 1) -> None:
        pass

    def cache_lookup(self, kind: str, hit: bool, times: int = 1) -> None:
        pass


class EcrReader(Protocol):
    """What the snapshot store needs from ECR; tests pass fakes of it."""

    async def list_sources(self, rediscover: bool = False) -> SourceListing:
        """Every configured account and region that can be named now.

        ``rediscover`` asks for the organisation's accounts to be listed again now.
        """
        ...

    async def read_source(self, source: SourceId) -> SourceRecords:
        """One consistent read of a source; raises EcrError when it cannot be had."""
        ...

    async def forget_images(self, source: SourceId, repository: str) -> bool:
        """Drop what is cached of a repository's images; False if the repository is unknown."""
        ...


@dataclass(frozen=True)
class StaticCredentials:
    """Fixed keys, for the embedded demo and for tests against moto."""

    access_key_id: str
    secret_access_key: str
