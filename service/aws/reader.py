"""The ECR reader: lists the sources, reads each one, and caches the answers.

Per registry it calls DescribeRegistry and GetRegistryScanningConfiguration, and per region
DescribeRepositories; the per-repository calls are ``repositories.RepositoryReads``'. Every
call goes through the source's ``ecr.EcrClient`` (paced, under the region's semaphore), and
the per-repository work of a source is a bounded map, never a bare gather.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..config import AwsSettings, CacheSettings
from ..errors import EcrError
from ..model import RegistryRecord, SourceId, SourceRecords
from ..reading import ReadObserver, SourceListing, StaticCredentials, Unobserved
from .answers import registry_record
from .bounded import Progress, bounded_map
from .cache import AsyncTTLCache
from .clients import Connections, Target, open_targets
from .ecr import EcrClient
from .organization import Organization
from .partitions import partition_of
from .repositories import RepositoryReads

__all__ = ["AwsEcrReader"]

log = logging.getLogger(__name__)


def _ready(client: Any) -> Callable[[], Awaitable[Any]]:
    async def opened() -> Any:
        return client

    return opened


class AwsEcrReader:
    """Reads ECR through its clients (``clients.py``) and caches the per-repository answers."""

    def __init__(
        self,
        targets: Sequence[Target],
        connections: Connections,
        settings: CacheSettings,
        organization: Organization | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        observer: ReadObserver | None = None,
    ) -> None:
        self._targets = list(targets)
        self._connections = connections
        self._concurrency = connections.settings.concurrency
        self._organization = organization
        self._clock = clock
        self._regions: dict[SourceId, EcrClient] = {}
        self._known_arns: dict[SourceId, set[str]] = {}
        watch = observer or Unobserved()
        self.repositories = RepositoryReads(settings, watch)

        def new_cache(kind: str, ttl: float) -> Any:
            return AsyncTTLCache(
                ttl,
                maxsize=settings.max_entries,
                jitter=settings.jitter,
                on_lookup=lambda hit: watch.cache_lookup(kind, hit),
            )

        self.registry_cache: AsyncTTLCache[SourceId, RegistryRecord] = new_cache(
            "registry", settings.registry_ttl_seconds
        )
        self.listing_cache: AsyncTTLCache[SourceId, list[dict[str, Any]]] = new_cache(
            "repositories", settings.repositories_ttl_seconds
        )

    @classmethod
    @asynccontextmanager
    async def open(
        cls,
        aws: AwsSettings,
        cache: CacheSettings,
        credentials: StaticCredentials | None = None,
        observer: ReadObserver | None = None,
        state_dir: Path | None = None,
        partitions: int = 1,
    ) -> AsyncIterator[AwsEcrReader]:
        """Open the configured targets' clients for the life of the context; the accounts of an
        organisation get theirs when first read. ``state_dir`` keeps the organisation's roster;
        ``partitions`` share the organisation's pace (partition.count)."""
        watch = observer or Unobserved()
        async with AsyncExitStack() as stack:
            connections = Connections(aws, watch, credentials, stack)
            targets = await open_targets(connections)
            organization = (
                Organization(aws.organization, connections, state_dir, partitions=partitions)
                if aws.organization is not None
                else None
            )
            yield cls(targets, connections, cache, organization, observer=watch)

    async def list_sources(self, rediscover: bool = False) -> SourceListing:
        sources: list[SourceId] = []
        refused: list[tuple[SourceId, str]] = []
        unresolved: list[str] = []
        explicit: set[str] = set()
        for target in self._targets:
            account = await self._account_of(target, unresolved)
            if account is None:
                continue
            explicit.add(account)
            for region, client in target.clients.items():
                source = SourceId(account, region)
                if target.refusal is not None:
                    refused.append((source, target.refusal))
                    continue
                if source not in self._regions:
                    self._regions[source] = self._connections.ecr(source, _ready(client))
                sources.append(source)
        if rediscover:
            # A forced refresh lists every source's repositories again, whatever their TTL.
            for known in self.listing_cache.keys():
                self.listing_cache.discard(known)
        departed: tuple[str, ...] = ()
        discovery = None
        if self._organization is not None:
            change = await self._organization.rediscover(force=rediscover)
            departed = change.removed if change is not None else ()
            sources += self._organization_sources(explicit)
            discovery = self._organization.status
            if discovery.last_success_at is None:
                # Never discovered, and nothing saved: the catalog cannot say which accounts
                # it lacks, so it is incomplete, never an empty 200.
                unresolved.append(
                    "cannot tell which accounts the organisation has: "
                    + (discovery.last_error or "not discovered yet")
                )
        return SourceListing(
            tuple(sorted(sources)),
            tuple(sorted(refused)),
            tuple(unresolved),
            departed=departed,
            discovery=discovery,
        )

    @staticmethod
    async def _account_of(target: Target, unresolved: list[str]) -> str | None:
        """The account ``target`` reads; None, with the reason in ``unresolved``, if unknown."""
        try:
            await target.verify()
        except EcrError as exc:
            if target.settings.account_id is None:
                unresolved.append(f"cannot tell which account to read with {target.label}: {exc}")
                return None
            # The account is configured, so the sources are known: reading them will report
            # the same failure per source, and last good data stays served.
        return target.verified_account or target.settings.account_id

    def _organization_sources(self, explicit: set[str]) -> list[SourceId]:
        """Each (account, region) of the roster; an account also configured explicitly is
        read once, with the explicit target's settings."""
        organization = self._organization
        assert organization is not None
        sources = []
        for account in organization.roster.accounts:
            if account in explicit:
                continue
            for region in organization.regions_of(account):
                source = SourceId(account, region)
                if source not in self._regions:
                    self._regions[source] = self._connections.ecr(
                        source, self._account_client(account, region)
                    )
                sources.append(source)
        for source in [s for s in self._regions if s.account_id not in explicit]:
            if source.account_id not in organization.roster.accounts:
                # Left the organisation: no client, no cached answers kept for it.
                del self._regions[source]
                self.repositories.forget(self._known_arns.pop(source, set()))
        return sources

    def _account_client(self, account: str, region: str) -> Callable[[], Awaitable[Any]]:
        """Opens the client on the first call: a partition never makes a session for an
        account whose sources it does not read."""
        organization = self._organization
        assert organization is not None
        return lambda: self._connections.open_ecr(organization.role(account).session, region)

    async def _read_registry(self, region: EcrClient, source: SourceId) -> RegistryRecord:
        registry = await region.call("describe_registry")
        scanning = await region.call("get_registry_scanning_configuration")
        return registry_record(registry, scanning, source.account_id)

    async def forget_images(self, source: SourceId, repository: str) -> bool:
        suffix = f":repository/{repository}"
        arns = [arn for arn in self._known_arns.get(source, ()) if arn.endswith(suffix)]
        for arn in arns:
            self.repositories.forget_images(arn)
        # A push to a repository not listed yet: the next refresh lists the source again.
        self.listing_cache.discard(source)
        return bool(arns)

    async def read_source(self, source: SourceId) -> SourceRecords:
        region = self._regions[source]
        registry = await self.registry_cache.get_or_load(
            source, lambda: self._read_registry(region, source)
        )
        listed = await self.listing_cache.get_or_load(
            source, lambda: region.every("describe_repositories", "repositories")
        )
        arns = {str(raw["repositoryArn"]) for raw in listed}
        self.repositories.forget(self._known_arns.get(source, set()) - arns)
        self._known_arns[source] = arns
        progress = Progress(source, len(listed))
        results = await bounded_map(
            lambda raw: progress.counted(self.repositories.read(region, raw, registry)),
            listed,
            self._concurrency,
        )
        repositories = sorted((r for r in results if r is not None), key=lambda r: r.name)
        skipped = tuple(
            sorted(
                str(raw["repositoryName"])
                for raw, r in zip(listed, results, strict=True)
                if r is None
            )
        )
        return SourceRecords(
            source=source,
            partition=partition_of(source.region),
            registry=registry,
            repositories=tuple(repositories),
            read_at=self._clock(),
            skipped=skipped,
        )
