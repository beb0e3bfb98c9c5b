"""Sessions and clients: one per target and region, opened once, with the network settings.

One botocore session for the process's own credentials; an assumed role gets a session of its
own, whose credentials renew themselves before they expire. botocore resolves each region's
endpoint (partition, FIPS, dual-stack, AWS_ENDPOINT_URL_*), provides the credentials and makes
the STS calls. ECR calls go through the lean client (``wire.WireClient``), or with
``aws.client: botocore`` through aiobotocore itself (``BotocoreJsonClient``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any, Protocol

import aioboto3
import aiohttp
from aiobotocore.config import AioConfig
from aiobotocore.credentials import (
    AioAssumeRoleCredentialFetcher,
    AioDeferredRefreshableCredentials,
)
from aiobotocore.session import AioSession
from botocore.exceptions import BotoCoreError, ClientError, SSLError

from .. import __version__
from ..config import AwsSettings, TargetSettings
from ..errors import CallFailed, EcrError
from ..jsontext import TOO_DEEP
from ..reading import ReadObserver, StaticCredentials
from .answers import MALFORMED, check_shape
from .network import Network, certificate_advice, redacted
from .wire import CERTIFICATE_FAILED, THROTTLING_CODES, FrozenCredentials, WireClient

__all__ = [
    "BotocoreJsonClient",
    "Connections",
    "JsonClient",
    "Target",
    "assumed_role_session",
    "frozen_credentials",
    "refreshing_session",
    "open_targets",
]

log = logging.getLogger(__name__)

# botocore refreshes assumed-role credentials 15 minutes before they expire; shorter sessions
# would mean an AssumeRole before nearly every call.
ASSUME_ROLE_SECONDS = 3600
# STS answers a handful of calls per target (identity, then a credential renewal an hour);
# botocore retries a TLS failure like a dropped connection, so more attempts would only
# delay the message that names the CA setting to fix.
STS_ATTEMPTS = 3


class JsonClient(Protocol):
    """An ECR client speaking the JSON protocol: ``call("DescribeImages", {...})``.

    It raises CallFailed, with ECR's error code, once its retries are spent.
    """

    async def call(self, operation: str, params: dict[str, Any]) -> dict[str, Any]: ...


@dataclass
class Target:
    """One target's credentials, its STS client, and an ECR client per region."""

    settings: TargetSettings
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

    async def verify(self) -> None:
        """Ask STS whose credentials these are; refuse a target of another account."""
        if self.verified_account is not None or self.refusal is not None:
            return
        region = self.settings.regions[0]
        account = self.settings.account_id or "unknown"
        try:
            identity = await self.sts.get_caller_identity()
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
            url = str(self.sts.meta.endpoint_url)
            advice = certificate_advice(
                url, str(exc.kwargs.get("error", exc)), self.network.ca_bundle
            )
            log.error("STS for %s: %s", self.label, advice)
            raise EcrError(
                account, region, "GetCallerIdentity", CERTIFICATE_FAILED, advice
            ) from exc
        except BotoCoreError as exc:
            raise EcrError(
                account, region, "GetCallerIdentity", type(exc).__name__, str(exc)
            ) from exc
        check_shape(identity, "get_caller_identity", account, region)
        actual = str(identity["Account"])
        expected = self.settings.account_id
        if expected is not None and actual != expected:
            self.refusal = (
                f"refused: the credentials of {self.label} belong to account {actual}, "
                f"not the configured {expected}"
            )
            log.error("%s", self.refusal)
            return
        self.verified_account = actual


class Connections:
    """Sessions, clients and connection pools, each made when first needed and kept.

    One botocore session for the service's own credentials. Per region one aiohttp pool and
    one semaphore, shared by every account read in that region (each with its own
    credentials), so a fleet of accounts never holds more connections than one account would.
    Closed with the reader (the exit stack).
    """

    def __init__(
        self,
        settings: AwsSettings,
        observer: ReadObserver,
        credentials: StaticCredentials | None,
        stack: AsyncExitStack,
    ) -> None:
        self.settings = settings
        self.observer = observer
        self.stack = stack
        self.base = AioSession()
        if credentials:
            self.base.set_credentials(credentials.access_key_id, credentials.secret_access_key)
        self.network = Network.resolve(
            self.base,
            endpoint_url=settings.endpoint_url,
            endpoint_urls={str(service): url for service, url in settings.endpoint_urls.items()},
            proxies=None
            if settings.proxies is None
            else {str(scheme): url for scheme, url in settings.proxies.items()},
            ca_bundle=str(settings.ca_bundle) if settings.ca_bundle else None,
        )
        self._pools: dict[str, aiohttp.ClientSession] = {}
        self._endpoints: dict[str, str] = {}
        self._semaphores: dict[str, asyncio.Semaphore] = {}
        self._sts: dict[str, Any] = {}

    def config(self, region: str, attempts: int | None = None) -> AioConfig:
        """botocore's client settings: the same timeouts, retries, proxies for every client."""
        settings = self.settings
        return AioConfig(
            region_name=region,
            retries={
                "mode": "adaptive",
                "total_max_attempts": attempts or settings.total_max_attempts,
            },
            max_pool_connections=settings.max_pool_connections,
            connect_timeout=settings.connect_timeout_seconds,
            read_timeout=settings.read_timeout_seconds,
            user_agent_extra=f"ecr-catalog/{__version__}",
            proxies=dict(self.network.proxies) if self.network.proxies is not None else None,
        )

    def client(self, session: Any, service: str, region: str, attempts: int | None = None) -> Any:
        """An aiobotocore client (an async context manager) of ``session``."""
        endpoint = self.network.endpoint_for(service)
        return session.client(
            service,
            config=self.config(region, attempts),
            verify=self.network.ca_bundle,
            **({"endpoint_url": endpoint} if endpoint else {}),
        )

    def semaphore(self, region: str) -> asyncio.Semaphore:
        """The calls in flight in ``region``, whichever account makes them."""
        found = self._semaphores.get(region)
        if found is None:
            found = self._semaphores[region] = asyncio.Semaphore(self.settings.concurrency)
        return found

    async def sts(self, region: str) -> Any:
        """The service's own STS client in ``region``, shared (AssumeRole for every account)."""
        found = self._sts.get(region)
        if found is None:
            session = aioboto3.Session(botocore_session=self.base)
            found = await self.stack.enter_async_context(
                self.client(session, "sts", region, STS_ATTEMPTS)
            )
            self._sts[region] = found
        return found

    async def ecr(
        self,
        region: str,
        credentials: Callable[[], Awaitable[FrozenCredentials | None]],
        session: Any,
    ) -> JsonClient:
        """An ECR client for one account in ``region``: lean, sharing the region's pool; or,
        with ``aws.client: botocore``, an aiobotocore client of ``session``."""
        if self.settings.client == "botocore":
            ecr = await self.stack.enter_async_context(self.client(session, "ecr", region))
            if region not in self._endpoints:
                self._endpoints[region] = str(ecr.meta.endpoint_url)
                _log_route(region, self._endpoints[region], self.network, "botocore")
            return BotocoreJsonClient(ecr, self.observer.aws_call, self.network.ca_bundle)
        endpoint_url = await self._endpoint(region)
        return WireClient(
            endpoint_url=endpoint_url,
            region=region,
            credentials=credentials,
            http=await self._pool(region),
            max_attempts=self.settings.total_max_attempts,
            proxy=self.network.proxy_for(endpoint_url),
            ca_bundle=self.network.ca_bundle,
            max_calls_per_second=self.settings.max_calls_per_second,
            on_attempt=self.observer.aws_call,
        )

    async def _endpoint(self, region: str) -> str:
        found = self._endpoints.get(region)
        if found is None:
            # botocore knows each partition's endpoint (and honours endpoint_url,
            # AWS_ENDPOINT_URL_ECR, FIPS and dual-stack); the wire client takes its answer.
            session = aioboto3.Session(botocore_session=self.base)
            async with self.client(session, "ecr", region) as ecr:
                found = self._endpoints[region] = str(ecr.meta.endpoint_url)
            _log_route(region, found, self.network, "lean")
        return found

    async def _pool(self, region: str) -> aiohttp.ClientSession:
        found = self._pools.get(region)
        if found is None:
            settings = self.settings
            found = await self.stack.enter_async_context(
                aiohttp.ClientSession(
                    connector=aiohttp.TCPConnector(
                        limit=settings.max_pool_connections, ssl=self.network.ssl_context
                    ),
                    timeout=aiohttp.ClientTimeout(
                        sock_connect=settings.connect_timeout_seconds,
                        sock_read=settings.read_timeout_seconds,
                    ),
                    headers={"user-agent": f"ecr-catalog/{__version__}"},
                    skip_auto_headers=("Content-Type",),
                )
            )
            self._pools[region] = found
        return found


async def open_targets(connections: Connections) -> list[Target]:
    """The configured targets, each with its STS client and an ECR client per region."""
    targets = []
    for target in connections.settings.resolved_targets():
        home = target.regions[0]
        botocore_session = (
            await assumed_role_session(
                connections.base,
                target,
                connections.network,
                connections.config(home, STS_ATTEMPTS),
            )
            if target.role_arn
            else connections.base
        )
        session = aioboto3.Session(botocore_session=botocore_session)
        sts = await connections.stack.enter_async_context(
            connections.client(session, "sts", home, STS_ATTEMPTS)
        )
        frozen = frozen_credentials(botocore_session)
        clients = {
            region: await connections.ecr(region, frozen, session) for region in target.regions
        }
        targets.append(Target(target, sts, clients, connections.network))
    return targets


def frozen_credentials(
    session: AioSession,
) -> Callable[[], Awaitable[FrozenCredentials | None]]:
    """Credentials of ``session``, asked for per call: botocore renews assumed roles."""

    async def frozen() -> FrozenCredentials | None:
        # Asked per call: botocore renews assumed-role credentials before they expire.
        credentials = await session.get_credentials()
        if credentials is None:
            return None
        result: FrozenCredentials = await credentials.get_frozen_credentials()
        return result

    return frozen


async def assumed_role_session(
    base: Any, target: TargetSettings, network: Network, config: AioConfig
) -> AioSession:
    """A session whose credentials come from AssumeRole and renew themselves before expiry."""
    assert target.role_arn is not None
    extra_args: dict[str, Any] = {
        "RoleSessionName": target.session_name,
        "DurationSeconds": ASSUME_ROLE_SECONDS,
    }
    if target.external_id:
        extra_args["ExternalId"] = target.external_id.get_secret_value()
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
    return refreshing_session(fetcher.fetch_credentials)


def refreshing_session(refresh_using: Callable[[], Awaitable[dict[str, str]]]) -> AioSession:
    """A botocore session whose credentials come from ``refresh_using``, renewed before expiry."""
    session: Any = AioSession()
    # aiobotocore has no public setter for refreshable credentials; this is its usual way.
    session._credentials = AioDeferredRefreshableCredentials(
        refresh_using=refresh_using, method="assume-role"
    )
    result: AioSession = session
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

    It answers like the wire client: the parsed answer, or CallFailed with the error code.
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
            raise CallFailed(code, str(error.get("Message") or ""), retries + 1) from exc
        except SSLError as exc:
            self._count(operation, CERTIFICATE_FAILED, 0)
            url = str(self.client.meta.endpoint_url)
            advice = certificate_advice(url, str(exc.kwargs.get("error", exc)), self.ca_bundle)
            raise CallFailed(CERTIFICATE_FAILED, advice, 1) from exc
        except BotoCoreError as exc:
            self._count(operation, type(exc).__name__, 0)
            raise CallFailed(type(exc).__name__, str(exc), 1) from exc
        except RecursionError as exc:
            # botocore's JSON parser takes only ValueError as a bad body; a body nested past
            # the parser's depth bound (service/jsontext.py) is a malformed answer all the same.
            self._count(operation, MALFORMED, 0)
            raise CallFailed(MALFORMED, f"the answer is not JSON: {TOO_DEEP}", 1) from exc
        retries = int(response.get("ResponseMetadata", {}).get("RetryAttempts", 0))
        self._count(operation, "ok", retries)
        return response

    def _count(self, operation: str, outcome: str, retries: int) -> None:
        for _ in range(retries):
            self.on_attempt(operation, "retried")
        self.on_attempt(operation, outcome)


def _snake_name(operation: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in operation).lstrip("_")
