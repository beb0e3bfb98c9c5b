"""The AWS reader: the only module that talks to ECR (and the only one importing aioboto3/botocore).

One aioboto3 Session per process; one long-lived client per account and region, entered once
on an AsyncExitStack. botocore resolves each region's endpoint, provides and renews the
credentials (assumed roles included) and makes the STS calls; the ECR calls themselves go
through ``wire.WireClient`` (SigV4 + JSON 1.1), which costs a fraction of botocore's CPU per
call, with adaptive retries of its own (``wire.AdaptivePacer``). Every call runs under its
client's semaphore, which is never larger than its connection pool.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

import aioboto3
import aiohttp
from aiobotocore.config import AioConfig
from aiobotocore.credentials import (
    AioAssumeRoleCredentialFetcher,
    AioDeferredRefreshableCredentials,
)
from aiobotocore.session import AioSession
from botocore.exceptions import BotoCoreError, ClientError

from . import __version__
from .cache import AsyncTTLCache
from .model import (
    ImageSummary,
    LatestImage,
    LifecyclePolicy,
    RegistryRecord,
    RepositoryRecord,
    SourceId,
    SourceRecords,
)
from .reading import (
    EcrError,
    EcrReader,
    ReaderSettings,
    ReadObserver,
    ReadTarget,
    SourceListing,
    StaticCredentials,
    Unobserved,
)
from .wire import FrozenCredentials, WireCallFailed, WireClient

__all__ = [
    "AwsEcrReader",
    "EcrError",
    "EcrReader",
    "ReadObserver",
    "SourceListing",
    "StaticCredentials",
    "summarize_images",
]

log = logging.getLogger(__name__)

T = TypeVar("T")

PAGE_SIZE = 1000
# Repositories handled between two returns to the event loop (each ~20-50 us from the caches).
YIELD_EVERY = 32
PROGRESS_SECONDS = 10.0
# botocore refreshes assumed-role credentials 15 minutes before they expire; shorter sessions
# would mean an AssumeRole before nearly every call.
ASSUME_ROLE_SECONDS = 3600
# "Not there" answers that are normal states, not failures.
NO_LIFECYCLE_POLICY = "LifecyclePolicyNotFoundException"
REPOSITORY_GONE = "RepositoryNotFoundException"
# What every well-formed answer holds. botocore turns an unparseable 200 body into
# {"message": <body>} instead of failing, and a page without its list would read as "no
# repositories": that must be an error, never an answer.
REQUIRED_KEYS = {
    "describe_repositories": "repositories",
    "describe_images": "imageDetails",
    "list_tags_for_resource": "tags",
    "describe_registry": "registryId",
    "get_registry_scanning_configuration": "registryId",
    "get_lifecycle_policy": "lifecyclePolicyText",
    "get_caller_identity": "Account",
}
MALFORMED = "MalformedResponse"


def _parse_time(value: object) -> datetime | None:
    # The wire protocol sends epoch seconds; botocore (and tests) hand over datetimes.
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, UTC)
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return None


def _latest_key(detail: Mapping[str, Any]) -> tuple[datetime, bool, str]:
    pushed = _parse_time(detail.get("imagePushedAt")) or datetime.min.replace(tzinfo=UTC)
    # ECR does not sort; among images pushed in the same second prefer a tagged one (a
    # multi-arch index over its untagged children), then the digest, for a stable answer.
    return pushed, bool(detail.get("imageTags")), str(detail.get("imageDigest", ""))


def summarize_images(details: Iterable[Mapping[str, Any]]) -> ImageSummary:
    """Image count and latest image (by imagePushedAt) of a repository's ImageDetails."""
    count = 0
    latest: Mapping[str, Any] | None = None
    for detail in details:
        count += 1
        if latest is None or _latest_key(detail) > _latest_key(latest):
            latest = detail
    if latest is None:
        return ImageSummary(image_count=0, latest=None)
    findings = (latest.get("imageScanFindingsSummary") or {}).get("findingSeverityCounts") or {}
    return ImageSummary(
        image_count=count,
        latest=LatestImage(
            digest=str(latest.get("imageDigest", "")),
            tags=tuple(sorted(latest.get("imageTags") or ())),
            pushed_at=_latest_key(latest)[0],
            size_bytes=latest.get("imageSizeInBytes"),
            finding_counts=tuple(sorted((str(k), int(v)) for k, v in findings.items())),
            last_pulled_at=_parse_time(latest.get("lastRecordedPullTime")),
        ),
    )


def _check_shape(response: Mapping[str, Any], operation: str, account: str, region: str) -> None:
    key = REQUIRED_KEYS.get(operation)
    if key is not None and key not in response:
        raise EcrError(account, region, operation, MALFORMED, f"the answer has no {key!r}")


def _lifecycle_policy(response: Mapping[str, Any]) -> LifecyclePolicy:
    try:
        rules = json.loads(response.get("lifecyclePolicyText") or "{}").get("rules") or []
    except (ValueError, AttributeError):
        rules = []
    return LifecyclePolicy(present=True, rule_count=len(rules) if isinstance(rules, list) else 0)


def _replication_destinations(response: Mapping[str, Any], own_account: str) -> tuple[str, ...]:
    destinations: set[str] = set()
    for rule in (response.get("replicationConfiguration") or {}).get("rules") or ():
        for destination in rule.get("destinations") or ():
            region = destination.get("region", "")
            registry = destination.get("registryId", own_account)
            destinations.add(region if registry == own_account else f"{region}@{registry}")
    return tuple(sorted(destinations))


class JsonClient(Protocol):
    """An ECR client speaking the JSON protocol: ``call("DescribeImages", {...})``."""

    async def call(self, operation: str, params: dict[str, Any]) -> dict[str, Any]: ...


def _wire_name(operation: str) -> str:
    return "".join(word.title() for word in operation.split("_"))


class _RegionClient:
    """One long-lived ECR client and the semaphore that bounds its calls."""

    def __init__(self, client: JsonClient, concurrency: int, account: str, region: str) -> None:
        self.client = client
        self.semaphore = asyncio.Semaphore(concurrency)
        self.account = account
        self.region = region

    async def call(self, operation: str, **params: Any) -> dict[str, Any]:
        async with self.semaphore:
            try:
                response = await self.client.call(_wire_name(operation), params)
            except WireCallFailed as exc:
                raise EcrError(self.account, self.region, operation, exc.code, exc.message) from exc
            _check_shape(response, operation, self.account, self.region)
            return response

    async def pages(self, operation: str, items_key: str, **params: Any) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        token: str | None = None
        while True:
            page = await self.call(
                operation, maxResults=PAGE_SIZE, **params, **({"nextToken": token} if token else {})
            )
            items.extend(page.get(items_key) or ())
            token = page.get("nextToken")
            if not token:
                return items


@dataclass
class _Target:
    settings: ReadTarget
    sts: Any
    clients: dict[str, JsonClient]
    # The account the credentials belong to, once sts:GetCallerIdentity has answered.
    verified_account: str | None = None
    refusal: str | None = None

    @property
    def label(self) -> str:
        who = self.settings.role_arn or "ambient credentials"
        return f"{who} in {','.join(self.settings.regions)}"


class AwsEcrReader:
    """Reads ECR through aioboto3 and caches the per-repository answers."""

    def __init__(
        self,
        targets: Sequence[_Target],
        settings: ReaderSettings,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        observer: ReadObserver | None = None,
    ) -> None:
        self._targets = list(targets)
        self._concurrency = settings.concurrency
        self._clock = clock
        self._regions: dict[SourceId, _RegionClient] = {}
        self._known_arns: dict[SourceId, set[str]] = {}
        self._records: dict[str, RepositoryRecord] = {}
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
        self.tags_cache: AsyncTTLCache[str, tuple[tuple[str, str], ...]] = new_cache(
            "tags", settings.tags_ttl_seconds
        )
        self.images_cache: AsyncTTLCache[str, ImageSummary] = new_cache(
            "images", settings.images_ttl_seconds
        )
        self.lifecycle_cache: AsyncTTLCache[str, LifecyclePolicy] = new_cache(
            "lifecycle_policy", settings.lifecycle_policy_ttl_seconds
        )

    @classmethod
    @asynccontextmanager
    async def open(
        cls,
        settings: ReaderSettings,
        credentials: StaticCredentials | None = None,
        observer: ReadObserver | None = None,
    ) -> AsyncIterator[AwsEcrReader]:
        """Enter one client per target and region for the life of the context."""
        endpoint = {"endpoint_url": settings.endpoint_url} if settings.endpoint_url else {}
        # One botocore session for the process's own credentials; assumed roles get a session
        # each, since credentials belong to a session.
        watch = observer or Unobserved()
        base = AioSession()
        if credentials:
            base.set_credentials(credentials.access_key_id, credentials.secret_access_key)
        timeout = aiohttp.ClientTimeout(
            sock_connect=settings.connect_timeout_seconds, sock_read=settings.read_timeout_seconds
        )

        def config(region: str) -> AioConfig:
            return AioConfig(
                region_name=region,
                retries={"mode": "adaptive", "total_max_attempts": settings.total_max_attempts},
                max_pool_connections=settings.max_pool_connections,
                connect_timeout=settings.connect_timeout_seconds,
                read_timeout=settings.read_timeout_seconds,
                user_agent_extra=f"ecr-catalog/{__version__}",
            )

        async with AsyncExitStack() as stack:
            targets = []
            for target in settings.targets:
                botocore_session = (
                    await _assumed_role_session(
                        base, target, endpoint.get("endpoint_url"), config(target.regions[0])
                    )
                    if target.role_arn
                    else base
                )
                session = aioboto3.Session(botocore_session=botocore_session)
                sts = await stack.enter_async_context(
                    session.client("sts", config=config(target.regions[0]), **endpoint)
                )
                clients: dict[str, JsonClient] = {}
                for region in target.regions:
                    # botocore knows each partition's endpoint (and honours endpoint_url and
                    # AWS_ENDPOINT_URL); the wire client only needs the answer.
                    async with session.client("ecr", config=config(region), **endpoint) as ecr:
                        endpoint_url = str(ecr.meta.endpoint_url)
                    http = await stack.enter_async_context(
                        aiohttp.ClientSession(
                            connector=aiohttp.TCPConnector(limit=settings.max_pool_connections),
                            timeout=timeout,
                            headers={"user-agent": f"ecr-catalog/{__version__}"},
                            skip_auto_headers=("Content-Type",),
                        )
                    )
                    clients[region] = WireClient(
                        endpoint_url=endpoint_url,
                        region=region,
                        credentials=_frozen_credentials(botocore_session),
                        http=http,
                        max_attempts=settings.total_max_attempts,
                        max_calls_per_second=settings.max_calls_per_second,
                        on_attempt=watch.aws_call,
                    )
                targets.append(_Target(target, sts, clients))
            yield cls(targets, settings, observer=watch)

    async def _verify(self, target: _Target) -> None:
        """Ask STS whose credentials these are; refuse a target of another account."""
        if target.verified_account is not None or target.refusal is not None:
            return
        region = target.settings.regions[0]
        account = target.settings.account_id or "unknown"
        try:
            identity = await target.sts.get_caller_identity()
        except ClientError as exc:
            error = exc.response.get("Error", {})
            raise EcrError(
                account,
                region,
                "GetCallerIdentity",
                str(error.get("Code")),
                str(error.get("Message")),
            ) from exc
        except BotoCoreError as exc:
            raise EcrError(
                account, region, "GetCallerIdentity", type(exc).__name__, str(exc)
            ) from exc
        _check_shape(identity, "get_caller_identity", account, region)
        actual = str(identity["Account"])
        expected = target.settings.account_id
        if expected is not None and actual != expected:
            target.refusal = (
                f"refused: the credentials of {target.label} belong to account {actual}, "
                f"not the configured {expected}"
            )
            log.error("%s", target.refusal)
            return
        target.verified_account = actual

    async def list_sources(self) -> SourceListing:
        sources: list[SourceId] = []
        refused: list[tuple[SourceId, str]] = []
        unresolved: list[str] = []
        for target in self._targets:
            try:
                await self._verify(target)
            except EcrError as exc:
                if target.settings.account_id is None:
                    unresolved.append(f"{target.label}: {exc}")
                    continue
                # The account is configured, so the sources are known: reading them will
                # report the same failure per source, and last good data stays served.
            account = target.verified_account or target.settings.account_id
            assert account is not None
            for region, client in target.clients.items():
                source = SourceId(account, region)
                if target.refusal is not None:
                    refused.append((source, target.refusal))
                    continue
                if source not in self._regions:
                    self._regions[source] = _RegionClient(
                        client, self._concurrency, account, region
                    )
                sources.append(source)
        return SourceListing(tuple(sorted(sources)), tuple(sorted(refused)), tuple(unresolved))

    async def _read_registry(self, region: _RegionClient, source: SourceId) -> RegistryRecord:
        registry = await region.call("describe_registry")
        scanning = await region.call("get_registry_scanning_configuration")
        return RegistryRecord(
            replication_destinations=_replication_destinations(registry, source.account_id),
            scan_type=(scanning.get("scanningConfiguration") or {}).get("scanType"),
        )

    async def _read_tags(self, region: _RegionClient, arn: str) -> tuple[tuple[str, str], ...]:
        response = await region.call("list_tags_for_resource", resourceArn=arn)
        return tuple(sorted((t["Key"], t["Value"]) for t in response.get("tags") or ()))

    async def _read_images(
        self, region: _RegionClient, name: str, registry_id: str
    ) -> ImageSummary:
        details = await region.pages(
            "describe_images", "imageDetails", repositoryName=name, registryId=registry_id
        )
        return summarize_images(details)

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
        return _lifecycle_policy(response)

    async def _read_repository(
        self, region: _RegionClient, raw: Mapping[str, Any]
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
            return self._same_or_new(self._record(raw, cached[0], cached[1], cached[2]))
        try:
            tags, images, lifecycle = await asyncio.gather(
                self.tags_cache.get_or_load(arn, lambda: self._read_tags(region, arn)),
                self.images_cache.get_or_load(
                    arn, lambda: self._read_images(region, name, registry_id)
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
        return self._same_or_new(self._record(raw, tags, images, lifecycle))

    def _same_or_new(self, record: RepositoryRecord) -> RepositoryRecord:
        # An unchanged repository is handed back as the very object read before, so the store
        # can tell "nothing changed" by identity, without comparing field by field.
        previous = self._records.get(record.arn)
        if previous == record:
            return previous
        self._records[record.arn] = record
        return record

    @staticmethod
    def _record(
        raw: Mapping[str, Any],
        tags: tuple[tuple[str, str], ...],
        images: ImageSummary,
        lifecycle: LifecyclePolicy,
    ) -> RepositoryRecord:
        scanning = raw.get("imageScanningConfiguration") or {}
        return RepositoryRecord(
            name=str(raw["repositoryName"]),
            arn=str(raw["repositoryArn"]),
            uri=str(raw.get("repositoryUri", "")),
            created_at=_parse_time(raw.get("createdAt")),
            tag_mutability=raw.get("imageTagMutability"),
            encryption_type=(raw.get("encryptionConfiguration") or {}).get("encryptionType"),
            scan_on_push=scanning.get("scanOnPush"),
            tags=tags,
            images=images,
            lifecycle_policy=lifecycle,
        )

    async def forget_images(self, source: SourceId, repository: str) -> bool:
        suffix = f":repository/{repository}"
        arns = [arn for arn in self._known_arns.get(source, ()) if arn.endswith(suffix)]
        for arn in arns:
            self.images_cache.discard(arn)
        return bool(arns)

    def _forget(self, arns: Iterable[str]) -> None:
        for arn in arns:
            self._records.pop(arn, None)
            self.tags_cache.discard(arn)
            self.images_cache.discard(arn)
            self.lifecycle_cache.discard(arn)

    async def read_source(self, source: SourceId) -> SourceRecords:
        region = self._regions[source]
        registry = await self.registry_cache.get_or_load(
            source, lambda: self._read_registry(region, source)
        )
        listed = await region.pages("describe_repositories", "repositories")
        arns = {str(raw["repositoryArn"]) for raw in listed}
        self._forget(self._known_arns.get(source, set()) - arns)
        self._known_arns[source] = arns
        progress = _Progress(source, len(listed))
        results = await _bounded_map(
            lambda raw: progress.counted(self._read_repository(region, raw)),
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
            registry=registry,
            repositories=tuple(repositories),
            read_at=self._clock(),
            skipped=skipped,
        )


class _Progress:
    """Logs how far a long read has got, every PROGRESS_SECONDS, so a cold start is visible."""

    def __init__(self, source: SourceId, total: int) -> None:
        self.source = source
        self.total = total
        self.done = 0
        self.started = self.logged = time.monotonic()

    async def counted(self, work: Awaitable[T]) -> T:
        result = await work
        self.done += 1
        now = time.monotonic()
        if now - self.logged >= PROGRESS_SECONDS and self.done < self.total:
            self.logged = now
            log.info(
                "reading %s: %d of %d repositories after %.0f s",
                self.source,
                self.done,
                self.total,
                now - self.started,
            )
        return result


async def _bounded_map(
    fn: Callable[[Any], Awaitable[T]], items: Sequence[Any], workers: int
) -> list[T]:
    """``[await fn(x) for x in items]``, at most ``workers`` at a time: never a bare gather."""
    results: list[T | object] = [_NOT_DONE] * len(items)
    next_index = 0

    async def worker() -> None:
        nonlocal next_index
        while next_index < len(items):
            index = next_index
            next_index += 1
            results[index] = await fn(items[index])
            if index % YIELD_EVERY == 0:
                # Answers from the caches complete without suspending: without this, one
                # worker would run through every cached repository in a single callback
                # while requests wait.
                await asyncio.sleep(0)

    try:
        async with asyncio.TaskGroup() as group:
            for _ in range(min(workers, len(items))):
                group.create_task(worker())
    except BaseExceptionGroup as failures:
        # Callers handle EcrError, not groups: the first failure speaks for the batch.
        raise failures.exceptions[0] from failures
    if any(result is _NOT_DONE for result in results):
        # A worker ended without an error (a stray cancellation): a partial result would read
        # as repositories that no longer exist, so it is a failure, never an answer.
        raise asyncio.CancelledError("a worker stopped before finishing its items")
    return results  # type: ignore[return-value]


_NOT_DONE = object()


def _frozen_credentials(session: AioSession) -> Callable[[], Awaitable[FrozenCredentials | None]]:
    async def frozen() -> FrozenCredentials | None:
        # Asked per call: botocore renews assumed-role credentials before they expire.
        credentials = await session.get_credentials()
        if credentials is None:
            return None
        result: FrozenCredentials = await credentials.get_frozen_credentials()
        return result

    return frozen


async def _assumed_role_session(
    base: Any, target: ReadTarget, endpoint_url: str | None, config: AioConfig
) -> AioSession:
    """A session whose credentials come from AssumeRole and renew themselves before expiry."""
    assert target.role_arn is not None
    extra_args: dict[str, Any] = {
        "RoleSessionName": target.session_name,
        "DurationSeconds": ASSUME_ROLE_SECONDS,
    }
    if target.external_id:
        extra_args["ExternalId"] = target.external_id

    def sts_client(service: str, **kwargs: Any) -> Any:
        # The same timeouts and retries as every other call: botocore's defaults would let an
        # unreachable STS hold each credential refresh for tens of seconds.
        return base.create_client(
            service,
            region_name=target.regions[0],
            endpoint_url=endpoint_url,
            config=config,
            **kwargs,
        )

    fetcher = AioAssumeRoleCredentialFetcher(
        client_creator=sts_client,
        source_credentials=await base.get_credentials(),
        role_arn=target.role_arn,
        extra_args=extra_args,
    )
    role_session: Any = AioSession()
    # aiobotocore has no public setter for refreshable credentials; this is its usual way.
    role_session._credentials = AioDeferredRefreshableCredentials(
        refresh_using=fetcher.fetch_credentials, method="assume-role"
    )
    result: AioSession = role_session
    return result
