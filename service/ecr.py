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
from botocore.exceptions import BotoCoreError, ClientError, SSLError

from . import __version__
from .cache import AsyncTTLCache
from .model import (
    FINDINGS_AVAILABLE,
    FINDINGS_PENDING,
    FINDINGS_UNAVAILABLE,
    ImageSummary,
    LatestImage,
    LifecyclePolicy,
    RegistryRecord,
    RepositoryRecord,
    ScanningRule,
    SourceId,
    SourceRecords,
)
from .network import Network, certificate_advice, redacted
from .partitions import partition_of
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
from .wire import (
    CERTIFICATE_FAILED,
    THROTTLING_CODES,
    FrozenCredentials,
    WireCallFailed,
    WireClient,
)

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
# STS answers a handful of calls per target (identity, then a credential renewal an hour);
# botocore retries a TLS failure like a dropped connection, so more attempts would only
# delay the message that names the CA setting to fix.
STS_ATTEMPTS = 3
# "Not there" answers that are normal states, not failures.
NO_LIFECYCLE_POLICY = "LifecyclePolicyNotFoundException"
NO_SCAN = "ScanNotFoundException"
# Answers after which the latest image's findings cannot be had, now or later: the role may
# not read them (cross-account enhanced findings cannot be: containers-roadmap#2541), or the
# image cannot be scanned.
FINDINGS_REFUSED = frozenset(
    {
        "AccessDeniedException",
        "ImageNotFoundException",
        "UnsupportedImageTypeException",
        "ValidationException",
    }
)
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


class ImageSummariser:
    """A repository's image summary, fed one DescribeImages page at a time.

    Only the latest image's detail and two figures are kept between pages: a repository of
    50,000 images is never held whole (see BENCHMARKS.md, "Memory per repository").
    """

    def __init__(self) -> None:
        self.count = 0
        self._latest: Mapping[str, Any] | None = None
        self._latest_key: tuple[datetime, bool, str] | None = None
        self._last_pulled: datetime | None = None

    def add(self, details: Iterable[Mapping[str, Any]]) -> None:
        for detail in details:
            self.count += 1
            key = _latest_key(detail)
            if self._latest_key is None or key > self._latest_key:
                self._latest, self._latest_key = detail, key
            pulled = _parse_time(detail.get("lastRecordedPullTime"))
            if pulled is not None and (self._last_pulled is None or pulled > self._last_pulled):
                self._last_pulled = pulled

    @property
    def latest_detail(self) -> Mapping[str, Any] | None:
        return self._latest

    def summary(self, findings: Findings | None = None) -> ImageSummary:
        """The summary; ``findings`` replaces what the latest image's detail says of its scan."""
        latest = self._latest
        if latest is None or self._latest_key is None:
            return ImageSummary(image_count=0, latest=None, last_pulled_at=self._last_pulled)
        findings = findings or findings_of_detail(latest)
        return ImageSummary(
            image_count=self.count,
            latest=LatestImage(
                digest=str(latest.get("imageDigest", "")),
                tags=tuple(sorted(latest.get("imageTags") or ())),
                pushed_at=self._latest_key[0],
                size_bytes=latest.get("imageSizeInBytes"),
                finding_counts=findings.counts,
                last_pulled_at=_parse_time(latest.get("lastRecordedPullTime")),
                findings=findings.status,
                scan_status=findings.scan_status,
            ),
            last_pulled_at=self._last_pulled,
        )


def summarize_images(details: Iterable[Mapping[str, Any]]) -> ImageSummary:
    """Image count and latest image (by imagePushedAt) of a repository's ImageDetails."""
    summariser = ImageSummariser()
    summariser.add(details)
    return summariser.summary()


@dataclass(frozen=True)
class Findings:
    """What is known of the latest image's scan: counts by severity, and whether they hold."""

    status: str
    counts: tuple[tuple[str, int], ...] = ()
    scan_status: str | None = None


def _counts(found: Mapping[str, Any] | None) -> tuple[tuple[str, int], ...]:
    counts = (found or {}).get("findingSeverityCounts") or {}
    return tuple(sorted((str(k), int(v)) for k, v in counts.items() if int(v) > 0))


# DescribeImageScanFindings' imageScanStatus.status, by what it means for the counts.
SCAN_DONE = frozenset({"COMPLETE", "ACTIVE"})
SCAN_PENDING = frozenset({"IN_PROGRESS", "PENDING"})


def findings_of_detail(detail: Mapping[str, Any]) -> Findings:
    """What an ImageDetail says of its scan; basic scanning puts a summary there."""
    status = (detail.get("imageScanStatus") or {}).get("status")
    summary = detail.get("imageScanFindingsSummary")
    if summary is not None:
        return Findings(FINDINGS_AVAILABLE, _counts(summary), status or "COMPLETE")
    if status in SCAN_PENDING:
        return Findings(FINDINGS_PENDING, (), status)
    return Findings(FINDINGS_UNAVAILABLE, (), status)


def findings_of_scan(response: Mapping[str, Any]) -> Findings:
    """What DescribeImageScanFindings says (enhanced results included)."""
    status = str((response.get("imageScanStatus") or {}).get("status") or "") or None
    if status in SCAN_DONE:
        return Findings(FINDINGS_AVAILABLE, _counts(response.get("imageScanFindings")), status)
    if status in SCAN_PENDING:
        return Findings(FINDINGS_PENDING, (), status)
    return Findings(FINDINGS_UNAVAILABLE, (), status)


def _scanned(raw: Mapping[str, Any], registry: RegistryRecord) -> bool:
    """Whether a scan of the repository's new images is configured: its own or the registry's."""
    if registry.scan_type == "ENHANCED" or (raw.get("imageScanningConfiguration") or {}).get(
        "scanOnPush"
    ):
        return True
    name = str(raw["repositoryName"])
    return any(rule.frequency != "MANUAL" and rule.covers(name) for rule in registry.scanning_rules)


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


@dataclass
class _Target:
    settings: ReadTarget
    sts: Any
    clients: dict[str, JsonClient]
    network: Network
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
        # By repository and digest: read again when the latest image changes, or after the TTL.
        self.findings_cache: AsyncTTLCache[tuple[str, str], Findings] = new_cache(
            "findings", settings.findings_ttl_seconds
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
        # One botocore session for the process's own credentials; assumed roles get a session
        # each, since credentials belong to a session.
        watch = observer or Unobserved()
        base = AioSession()
        if credentials:
            base.set_credentials(credentials.access_key_id, credentials.secret_access_key)
        network = Network.resolve(
            base,
            endpoint_url=settings.endpoint_url,
            endpoint_urls=settings.endpoint_urls,
            proxies=settings.proxies,
            ca_bundle=settings.ca_bundle,
        )
        timeout = aiohttp.ClientTimeout(
            sock_connect=settings.connect_timeout_seconds, sock_read=settings.read_timeout_seconds
        )

        def config(region: str, attempts: int = settings.total_max_attempts) -> AioConfig:
            return AioConfig(
                region_name=region,
                retries={"mode": "adaptive", "total_max_attempts": attempts},
                max_pool_connections=settings.max_pool_connections,
                connect_timeout=settings.connect_timeout_seconds,
                read_timeout=settings.read_timeout_seconds,
                user_agent_extra=f"ecr-catalog/{__version__}",
                proxies=dict(network.proxies) if network.proxies is not None else None,
            )

        def client(session: Any, service: str, region: str, **options: Any) -> Any:
            endpoint = network.endpoint_for(service)
            return session.client(
                service,
                config=options.pop("config", None) or config(region),
                verify=network.ca_bundle,
                **({"endpoint_url": endpoint} if endpoint else {}),
                **options,
            )

        async with AsyncExitStack() as stack:
            targets = []
            for target in settings.targets:
                botocore_session = (
                    await _assumed_role_session(
                        base, target, network, config(target.regions[0], STS_ATTEMPTS)
                    )
                    if target.role_arn
                    else base
                )
                session = aioboto3.Session(botocore_session=botocore_session)
                sts = await stack.enter_async_context(
                    client(
                        session,
                        "sts",
                        target.regions[0],
                        config=config(target.regions[0], STS_ATTEMPTS),
                    )
                )
                clients: dict[str, JsonClient] = {}
                for region in target.regions:
                    if settings.client == "botocore":
                        ecr = await stack.enter_async_context(client(session, "ecr", region))
                        clients[region] = BotocoreJsonClient(ecr, watch.aws_call, network.ca_bundle)
                        _log_route(region, str(ecr.meta.endpoint_url), network, "botocore")
                        continue
                    # botocore knows each partition's endpoint (and honours endpoint_url,
                    # AWS_ENDPOINT_URL_ECR, FIPS and dual-stack); the wire client takes its answer.
                    async with client(session, "ecr", region) as ecr:
                        endpoint_url = str(ecr.meta.endpoint_url)
                    http = await stack.enter_async_context(
                        aiohttp.ClientSession(
                            connector=aiohttp.TCPConnector(
                                limit=settings.max_pool_connections, ssl=network.ssl_context
                            ),
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
                        proxy=network.proxy_for(endpoint_url),
                        ca_bundle=network.ca_bundle,
                        max_calls_per_second=settings.max_calls_per_second,
                        on_attempt=watch.aws_call,
                    )
                    _log_route(region, endpoint_url, network, "lean")
                targets.append(_Target(target, sts, clients, network))
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
        except SSLError as exc:
            url = str(target.sts.meta.endpoint_url)
            advice = certificate_advice(
                url, str(exc.kwargs.get("error", exc)), target.network.ca_bundle
            )
            log.error("STS for %s: %s", target.label, advice)
            raise EcrError(
                account, region, "GetCallerIdentity", CERTIFICATE_FAILED, advice
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
        scanning = (await region.call("get_registry_scanning_configuration")).get(
            "scanningConfiguration"
        ) or {}
        return RegistryRecord(
            replication_destinations=_replication_destinations(registry, source.account_id),
            scan_type=scanning.get("scanType"),
            scanning_rules=tuple(
                ScanningRule(
                    frequency=str(rule.get("scanFrequency", "")),
                    filters=tuple(
                        str(item.get("filter", ""))
                        for item in rule.get("repositoryFilters") or ()
                        if item.get("filterType", "WILDCARD") == "WILDCARD"
                    ),
                )
                for rule in scanning.get("rules") or ()
            ),
        )

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
        scanned = _scanned(raw, registry)
        findings = await self.findings_cache.get_or_load(
            (arn, digest),
            lambda: self._read_findings(region, name, registry_id, digest, scanned),
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
        return _lifecycle_policy(response)

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
            return self._same_or_new(self._record(raw, cached[0], cached[1], cached[2]))
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
            self._forget_findings(arn)
        return bool(arns)

    def _forget_findings(self, arn: str) -> None:
        for key in [key for key in self.findings_cache.keys() if key[0] == arn]:
            self.findings_cache.discard(key)

    def _forget(self, arns: Iterable[str]) -> None:
        for arn in arns:
            self._records.pop(arn, None)
            self.tags_cache.discard(arn)
            self.images_cache.discard(arn)
            self.lifecycle_cache.discard(arn)
            self._forget_findings(arn)

    async def read_source(self, source: SourceId) -> SourceRecords:
        region = self._regions[source]
        registry = await self.registry_cache.get_or_load(
            source, lambda: self._read_registry(region, source)
        )
        listed = await region.every("describe_repositories", "repositories")
        arns = {str(raw["repositoryArn"]) for raw in listed}
        self._forget(self._known_arns.get(source, set()) - arns)
        self._known_arns[source] = arns
        progress = _Progress(source, len(listed))
        results = await _bounded_map(
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
    base: Any, target: ReadTarget, network: Network, config: AioConfig
) -> AioSession:
    """A session whose credentials come from AssumeRole and renew themselves before expiry."""
    assert target.role_arn is not None
    extra_args: dict[str, Any] = {
        "RoleSessionName": target.session_name,
        "DurationSeconds": ASSUME_ROLE_SECONDS,
    }
    if target.external_id:
        extra_args["ExternalId"] = target.external_id
    endpoint = network.endpoint_for("sts")

    def sts_client(service: str, **kwargs: Any) -> Any:
        # The same timeouts, retries, proxies and trust as every other call: botocore's
        # defaults would let an unreachable STS hold each credential refresh for tens of
        # seconds.
        return base.create_client(
            service,
            region_name=target.regions[0],
            config=config,
            verify=network.ca_bundle,
            **({"endpoint_url": endpoint} if endpoint else {}),
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


def _log_route(region: str, endpoint_url: str, network: Network, path: str) -> None:
    proxy = network.proxy_for(endpoint_url)
    log.info(
        "ECR in %s: %s (%s client)%s",
        region,
        endpoint_url,
        path,
        f" through the proxy {redacted(proxy)}" if proxy else "",
    )


class BotocoreJsonClient:
    """``aws.client: botocore``: every ECR call through aiobotocore, with its own retries.

    It answers like the wire client: the parsed answer, or WireCallFailed with the error code.
    It reports each call and its retries; botocore does not say which retried attempts were
    throttles, so only a call that failed for good is counted as throttled.
    """

    def __init__(self, client: Any, on_attempt: Callable[[str, str], None], ca_bundle: str) -> None:
        self.client = client
        self.on_attempt = on_attempt
        self.ca_bundle = ca_bundle

    async def call(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        method = getattr(self.client, _snake_name(operation))
        try:
            response: dict[str, Any] = await method(**params)
        except ClientError as exc:
            error = exc.response.get("Error", {})
            code = str(error.get("Code") or "Unknown")
            retries = int(exc.response.get("ResponseMetadata", {}).get("RetryAttempts", 0))
            self._count(operation, "throttled" if code in THROTTLING_CODES else code, retries)
            raise WireCallFailed(code, str(error.get("Message") or ""), retries + 1) from exc
        except SSLError as exc:
            self._count(operation, CERTIFICATE_FAILED, 0)
            url = str(self.client.meta.endpoint_url)
            advice = certificate_advice(url, str(exc.kwargs.get("error", exc)), self.ca_bundle)
            raise WireCallFailed(CERTIFICATE_FAILED, advice, 1) from exc
        except BotoCoreError as exc:
            self._count(operation, type(exc).__name__, 0)
            raise WireCallFailed(type(exc).__name__, str(exc), 1) from exc
        retries = int(response.get("ResponseMetadata", {}).get("RetryAttempts", 0))
        self._count(operation, "ok", retries)
        return response

    def _count(self, operation: str, outcome: str, retries: int) -> None:
        for _ in range(retries):
            self.on_attempt(operation, "retried")
        self.on_attempt(operation, outcome)


def _snake_name(operation: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in operation).lstrip("_")
