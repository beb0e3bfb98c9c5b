"""The ECR reader: lists the sources, reads each one, and caches the per-repository answers.

Per region it calls DescribeRepositories, and per repository ListTagsForResource, DescribeImages
(summarised page by page) and GetLifecyclePolicy, each answer cached with its own TTL; per
registry DescribeRegistry and GetRegistryScanningConfiguration. Every call runs under its
region's semaphore, never larger than the connection pool, and the per-repository work of a
source is a bounded map, never a bare gather. An unchanged repository comes back as the very
record of the read before (``service.reuse.RecordLedger``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aioboto3

from ..config import AwsSettings, CacheSettings
from ..errors import CallFailed, EcrError
from ..model import (
    FINDINGS_PENDING,
    FINDINGS_UNAVAILABLE,
    ImageSummary,
    LifecyclePolicy,
    RegistryRecord,
    RepositoryRecord,
    SourceId,
    SourceRecords,
)
from ..reading import ReadObserver, SourceListing, StaticCredentials, Unobserved
from ..reuse import RecordLedger
from .answers import (
    FINDINGS_REFUSED,
    NO_LIFECYCLE_POLICY,
    NO_SCAN,
    REPOSITORY_GONE,
    Findings,
    ImageSummariser,
    check_shape,
    findings_of_scan,
    lifecycle_policy,
    registry_record,
    repository_record,
    scanned,
)
from .bounded import Progress, bounded_map
from .cache import AsyncTTLCache
from .clients import Connections, JsonClient, Target, open_targets
from .organization import Organization, role_session
from .partitions import partition_of

__all__ = ["AwsEcrReader"]

log = logging.getLogger(__name__)

PAGE_SIZE = 1000


def _ready(client: JsonClient) -> Callable[[], Awaitable[JsonClient]]:
    async def opened() -> JsonClient:
        return client

    return opened


def _wire_name(operation: str) -> str:
    return "".join(word.title() for word in operation.split("_"))


class _RegionClient:
    """One account's ECR client in one region, made on first call, under the region's semaphore.

    The semaphore is the region's, shared by every account read there (``Connections``).
    """

    def __init__(
        self,
        open_client: Callable[[], Awaitable[JsonClient]],
        semaphore: asyncio.Semaphore,
        account: str,
        region: str,
    ) -> None:
        self._open_client = open_client
        self._client: JsonClient | None = None
        self.semaphore = semaphore
        self.account = account
        self.region = region

    async def call(self, operation: str, **params: Any) -> dict[str, Any]:
        if self._client is None:
            self._client = await self._open_client()
        async with self.semaphore:
            try:
                response = await self._client.call(_wire_name(operation), params)
            except CallFailed as exc:
                raise EcrError(self.account, self.region, operation, exc.code, exc.message) from exc
            check_shape(response, operation, self.account, self.region)
            return response

    async def pages(
        self, operation: str, items_key: str, **params: Any
    ) -> AsyncIterator[list[dict[str, Any]]]:
        """Each page's items in turn: a caller that summarises never holds them all."""
        token: str | None = None
        while True:
            page = await self.call(
                operation, maxResults=PAGE_SIZE, **params, **({"nextToken": token} if token else {})
            )
            yield page.get(items_key) or []
            token = page.get("nextToken")
            if not token:
                return

    async def every(self, operation: str, items_key: str, **params: Any) -> list[dict[str, Any]]:
        """Every item of every page."""
        return [item async for page in self.pages(operation, items_key, **params) for item in page]


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
        self._regions: dict[SourceId, _RegionClient] = {}
        self._known_arns: dict[SourceId, set[str]] = {}
        self._ledger = RecordLedger()
        watch = observer or Unobserved()

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
        self.tags_cache: AsyncTTLCache[str, tuple[tuple[str, str], ...]] = new_cache(
            "tags", settings.tags_ttl_seconds
        )
        self.images_cache: AsyncTTLCache[str, ImageSummary] = new_cache(
            "images", settings.images_ttl_seconds
        )
        self.lifecycle_cache: AsyncTTLCache[str, LifecyclePolicy] = new_cache(
            "lifecycle_policy", settings.lifecycle_policy_ttl_seconds
        )
        # By repository and digest: read again when the latest image changes, or after the TTL.
        self.findings_cache: AsyncTTLCache[tuple[str, str], Findings] = new_cache(
            "findings", settings.findings_ttl_seconds
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
    ) -> AsyncIterator[AwsEcrReader]:
        """Open the configured targets' clients for the life of the context; the accounts of an
        organisation get theirs when first read. ``state_dir`` keeps the organisation's roster."""
        watch = observer or Unobserved()
        async with AsyncExitStack() as stack:
            connections = Connections(aws, watch, credentials, stack)
            targets = await open_targets(connections)
            organization = (
                Organization(aws.organization, connections, state_dir)
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
            try:
                await target.verify()
            except EcrError as exc:
                if target.settings.account_id is None:
                    unresolved.append(
                        f"cannot tell which account to read with {target.label}: {exc}"
                    )
                    continue
                # The account is configured, so the sources are known: reading them will
                # report the same failure per source, and last good data stays served.
            account = target.verified_account or target.settings.account_id
            assert account is not None
            explicit.add(account)
            for region, client in target.clients.items():
                source = SourceId(account, region)
                if target.refusal is not None:
                    refused.append((source, target.refusal))
                    continue
                if source not in self._regions:
                    self._regions[source] = _RegionClient(
                        _ready(client), self._connections.semaphore(region), account, region
                    )
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
                    self._regions[source] = _RegionClient(
                        self._account_client(account, region),
                        self._connections.semaphore(region),
                        account,
                        region,
                    )
                sources.append(source)
        for source in [s for s in self._regions if s.account_id not in explicit]:
            if source.account_id not in organization.roster.accounts:
                # Left the organisation: no client, no cached answers kept for it.
                del self._regions[source]
                self._forget(self._known_arns.pop(source, set()))
        return sources

    def _account_client(self, account: str, region: str) -> Callable[[], Awaitable[JsonClient]]:
        assert self._organization is not None
        role = self._organization.role(account)

        async def open_client() -> JsonClient:
            session: Any = None
            if self._connections.settings.client == "botocore":
                session = aioboto3.Session(botocore_session=role_session(role))
            return await self._connections.ecr(region, role.frozen, session)

        return open_client

    async def _read_registry(self, region: _RegionClient, source: SourceId) -> RegistryRecord:
        registry = await region.call("describe_registry")
        scanning = await region.call("get_registry_scanning_configuration")
        return registry_record(registry, scanning, source.account_id)

    async def _read_tags(self, region: _RegionClient, arn: str) -> tuple[tuple[str, str], ...]:
        response = await region.call("list_tags_for_resource", resourceArn=arn)
        return tuple(sorted((t["Key"], t["Value"]) for t in response.get("tags") or ()))

    async def _read_images(
        self,
        region: _RegionClient,
        raw: Mapping[str, Any],
        registry: RegistryRecord,
    ) -> ImageSummary:
        name, arn = str(raw["repositoryName"]), str(raw["repositoryArn"])
        registry_id = str(raw.get("registryId", region.account))
        summariser = ImageSummariser()
        async for page in region.pages(
            "describe_images", "imageDetails", repositoryName=name, registryId=registry_id
        ):
            summariser.add(page)
        latest = summariser.latest_detail
        # Enhanced scanning (Inspector) leaves the summary out of DescribeImages
        # (aws/containers-roadmap#1662): ask for the latest image's findings, once per digest.
        if latest is None or (
            registry.scan_type != "ENHANCED" and latest.get("imageScanFindingsSummary") is not None
        ):
            return summariser.summary()
        digest = str(latest.get("imageDigest", ""))
        is_scanned = scanned(raw, registry)
        findings = await self.findings_cache.get_or_load(
            (arn, digest),
            lambda: self._read_findings(region, name, registry_id, digest, is_scanned),
        )
        return summariser.summary(findings)

    async def _read_findings(
        self, region: _RegionClient, name: str, registry_id: str, digest: str, scanned: bool
    ) -> Findings:
        try:
            response = await region.call(
                "describe_image_scan_findings",
                repositoryName=name,
                registryId=registry_id,
                imageId={"imageDigest": digest},
                maxResults=1,
            )
        except EcrError as exc:
            if exc.code == NO_SCAN:
                # Not scanned: yet, if a scan is configured for it; otherwise never.
                return Findings(FINDINGS_PENDING if scanned else FINDINGS_UNAVAILABLE)
            if exc.code in FINDINGS_REFUSED:
                log.warning("findings of %s in %s are unavailable: %s", name, region.region, exc)
                return Findings(FINDINGS_UNAVAILABLE)
            raise
        return findings_of_scan(response)

    async def _read_lifecycle(
        self, region: _RegionClient, name: str, registry_id: str
    ) -> LifecyclePolicy:
        try:
            response = await region.call(
                "get_lifecycle_policy", repositoryName=name, registryId=registry_id
            )
        except EcrError as exc:
            if exc.code == NO_LIFECYCLE_POLICY:
                return LifecyclePolicy(present=False)
            raise
        return lifecycle_policy(response)

    async def _read_repository(
        self, region: _RegionClient, raw: Mapping[str, Any], registry: RegistryRecord
    ) -> RepositoryRecord | None:
        name = str(raw["repositoryName"])
        arn = str(raw["repositoryArn"])
        registry_id = str(raw.get("registryId", region.account))
        caches = (self.tags_cache, self.images_cache, self.lifecycle_cache)
        cached = (
            self.tags_cache.peek(arn),
            self.images_cache.peek(arn),
            self.lifecycle_cache.peek(arn),
        )
        # Most repositories of a warm refresh are answered from the caches alone: no tasks.
        if cached[0] is not None and cached[1] is not None and cached[2] is not None:
            for cache in caches:
                cache.counted_hit()
            return self._ledger.settle(repository_record(raw, cached[0], cached[1], cached[2]))
        try:
            tags, images, lifecycle = await asyncio.gather(
                self.tags_cache.get_or_load(arn, lambda: self._read_tags(region, arn)),
                self.images_cache.get_or_load(
                    arn, lambda: self._read_images(region, raw, registry)
                ),
                self.lifecycle_cache.get_or_load(
                    arn, lambda: self._read_lifecycle(region, name, registry_id)
                ),
            )
        except EcrError as exc:
            # Deleted between DescribeRepositories and now: the next listing will not have it.
            if exc.code == REPOSITORY_GONE:
                return None
            raise
        return self._ledger.settle(repository_record(raw, tags, images, lifecycle))

    async def forget_images(self, source: SourceId, repository: str) -> bool:
        suffix = f":repository/{repository}"
        arns = [arn for arn in self._known_arns.get(source, ()) if arn.endswith(suffix)]
        for arn in arns:
            self.images_cache.discard(arn)
            self._forget_findings(arn)
        # A push to a repository not listed yet: the next refresh lists the source again.
        self.listing_cache.discard(source)
        return bool(arns)

    def _forget_findings(self, arn: str) -> None:
        for key in [key for key in self.findings_cache.keys() if key[0] == arn]:
            self.findings_cache.discard(key)

    def _forget(self, arns: Iterable[str]) -> None:
        for arn in arns:
            self._ledger.forget(arn)
            self.tags_cache.discard(arn)
            self.images_cache.discard(arn)
            self.lifecycle_cache.discard(arn)
            self._forget_findings(arn)

    async def read_source(self, source: SourceId) -> SourceRecords:
        region = self._regions[source]
        registry = await self.registry_cache.get_or_load(
            source, lambda: self._read_registry(region, source)
        )
        listed = await self.listing_cache.get_or_load(
            source, lambda: region.every("describe_repositories", "repositories")
        )
        arns = {str(raw["repositoryArn"]) for raw in listed}
        self._forget(self._known_arns.get(source, set()) - arns)
        self._known_arns[source] = arns
        progress = Progress(source, len(listed))
        results = await bounded_map(
            lambda raw: progress.counted(self._read_repository(region, raw, registry)),
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
