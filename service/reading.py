"""What the serving side needs to know of a reader: its interface, its errors, its listing.

Kept apart from ``ecr`` so that the serving process, which reads through a child process
(``reader_process``), never imports botocore or aiohttp: ~25 MB and ~0.6 s of imports.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from .model import SourceId, SourceRecords

__all__ = [
    "EcrError",
    "EcrReader",
    "ReadObserver",
    "ReadTarget",
    "ReaderSettings",
    "SourceListing",
    "StaticCredentials",
    "Unobserved",
]


class EcrError(Exception):
    """An ECR or STS call failed; names the account, region and operation."""

    def __init__(self, account: str, region: str, operation: str, code: str, message: str) -> None:
        super().__init__(f"{operation} in {account}/{region} failed: {code}: {message}")
        self.account = account
        self.region = region
        self.operation = operation
        self.code = code
        self.detail = message

    def __reduce__(self) -> tuple[Any, ...]:
        # Crosses the pipe from the reader process (service/reader_process.py) intact.
        return (type(self), (self.account, self.region, self.operation, self.code, self.detail))


@dataclass(frozen=True)
class SourceListing:
    """The sources that can be read, and the problems that keep others from being listed.

    ``refused`` are sources whose target failed its identity check: they are known but are
    never read. ``unresolved`` names targets whose account could not be found, so their sources
    are not even known; nothing that needs every source may be published while it is not empty.
    """

    sources: tuple[SourceId, ...]
    refused: tuple[tuple[SourceId, str], ...] = ()
    unresolved: tuple[str, ...] = ()


class ReadObserver(Protocol):
    """Where the reader reports its AWS calls and cache lookups (the metrics)."""

    def aws_call(self, operation: str, outcome: str, times: int = 1) -> None:
        """Attempts of ``operation``: ok, throttled, retried, or an error code."""

    def cache_lookup(self, kind: str, hit: bool, times: int = 1) -> None:
        """Cache lookups of a query kind (images, tags, lifecycle_policy, registry)."""


class Unobserved:
    def aws_call(self, operation: str, outcome: str, times: int = 1) -> None:
        pass

    def cache_lookup(self, kind: str, hit: bool, times: int = 1) -> None:
        pass


class EcrReader(Protocol):
    """What the snapshot store needs from ECR; tests pass fakes of it."""

    async def list_sources(self) -> SourceListing:
        """Every configured account and region that can be named now."""
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


@dataclass(frozen=True)
class ReadTarget:
    """One set of credentials (ambient, or an assumed role) and the regions read with it."""

    regions: tuple[str, ...]
    account_id: str | None
    role_arn: str | None
    # A secret: never logged or shown.
    external_id: str | None = field(repr=False)
    session_name: str


@dataclass(frozen=True)
class ReaderSettings:
    """What the ECR reader needs of Settings, as plain data: ``Settings.reader_settings()``.

    The fields are those of ``aws`` and ``cache`` (validated there), with the targets resolved.
    The reader process unpickles this without importing pydantic, which Settings would bring
    along: ~12 MB of that process's RSS.
    """

    targets: tuple[ReadTarget, ...]
    endpoint_url: str | None
    endpoint_urls: dict[str, str]
    # May hold credentials: never logged or shown.
    proxies: dict[str, str] | None = field(repr=False)
    ca_bundle: str | None
    client: Literal["lean", "botocore"]
    max_pool_connections: int
    concurrency: int
    total_max_attempts: int
    max_calls_per_second: float | None
    connect_timeout_seconds: float
    read_timeout_seconds: float
    images_ttl_seconds: float
    tags_ttl_seconds: float
    lifecycle_policy_ttl_seconds: float
    registry_ttl_seconds: float
    findings_ttl_seconds: float
    # Of every cache: see CacheSettings.
    jitter: float
    max_entries: int
    log_format: Literal["text", "json"]
