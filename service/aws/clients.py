"""Sessions and clients: one per target and region, opened once, with the network settings.

One botocore session for the process's own credentials; an assumed role gets a session of its
own, whose credentials renew themselves before they expire, and which shares the first
session's loaded service data (``refreshing_session``). botocore resolves each region's
endpoint (partition, FIPS, dual-stack, AWS_ENDPOINT_URL_*), provides the credentials and makes
every call: ECR (``ecr.EcrClient``), STS, Organizations and Account.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any

import aioboto3
from aiobotocore.config import AioConfig
from aiobotocore.credentials import (
    AioAssumeRoleCredentialFetcher,
    AioCredentialResolver,
    AioDeferredRefreshableCredentials,
)
from aiobotocore.session import AioSession
from botocore.credentials import CredentialProvider

from .. import __version__
from ..config import AwsSettings, TargetSettings
from ..errors import EcrError
from ..model import SourceId
from ..reading import ReadObserver, StaticCredentials
from .answers import check_shape
from .ecr import EcrClient
from .errors import CERTIFICATE_FAILED, mapped_errors
from .network import FinalCertificates, Network, redacted

__all__ = [
    "Connections",
    "Target",
    "assumed_role_session",
    "open_targets",
    "refreshing_session",
]

log = logging.getLogger(__name__)

# botocore refreshes assumed-role credentials 15 minutes before they expire; shorter sessions
# would mean an AssumeRole before nearly every call.
ASSUME_ROLE_SECONDS = 3600
# STS answers a handful of calls per target (identity, then a credential renewal an hour): a
# failure is reported soon rather than waited out over the ECR calls' many attempts.
STS_ATTEMPTS = 3


@dataclass
class Target:
    """One target's credentials, its STS client, and an ECR client per region."""

    settings: TargetSettings
    sts: Any
    # An aiobotocore ECR client per region, wrapped per account once it is known.
    clients: dict[str, Any]
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
            with mapped_errors(account, region, "GetCallerIdentity", self.network.ca_bundle):
                identity = await self.sts.get_caller_identity()
        except EcrError as exc:
            if exc.code == CERTIFICATE_FAILED:
                log.error("STS for %s: %s", self.label, exc.detail)
            raise
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
    """Sessions, clients and semaphores, each made when first needed and kept.

    One botocore session for the service's own credentials. Per region one semaphore, shared
    by every account read in that region (each with its own credentials and client), so a
    fleet of accounts never has more calls in flight than one account would. Closed with the
    reader (the exit stack).
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
        # The clients of the service's own credentials are made through this one session.
        self.own = aioboto3.Session(botocore_session=self.base)
        self.network = Network.resolve(
            self.base,
            endpoint_url=settings.endpoint_url,
            endpoint_urls={str(service): url for service, url in settings.endpoint_urls.items()},
            proxies=None
            if settings.proxies is None
            else {str(scheme): url for scheme, url in settings.proxies.items()},
            ca_bundle=str(settings.ca_bundle) if settings.ca_bundle else None,
        )
        self._routes_logged: set[str] = set()
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
            http_session_cls=FinalCertificates,
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
            found = await self.stack.enter_async_context(
                self.client(self.own, "sts", region, STS_ATTEMPTS)
            )
            self._sts[region] = found
        return found

    async def open_ecr(self, session: Any, region: str) -> Any:
        """An aiobotocore ECR client with the credentials of ``session`` (an aioboto3 session),
        kept open until the stack closes."""
        client = await self.stack.enter_async_context(self.client(session, "ecr", region))
        self._log_route(region, str(client.meta.endpoint_url))
        return client

    def ecr(self, source: SourceId, open_client: Callable[[], Awaitable[Any]]) -> EcrClient:
        """The ECR calls of ``source``, through the client ``open_client`` gives on the first
        call, under its region's semaphore."""
        return EcrClient(
            open_client,
            self.semaphore(source.region),
            source,
            self.observer,
            self.network.ca_bundle,
            self.settings.max_calls_per_second,
        )

    def _log_route(self, region: str, endpoint_url: str) -> None:
        if region in self._routes_logged:
            return
        self._routes_logged.add(region)
        proxy = self.network.proxy_for(endpoint_url)
        through = f" through the proxy {redacted(proxy)}" if proxy else ""
        log.info("ECR in %s: %s%s", region, endpoint_url, through)


async def open_targets(connections: Connections) -> list[Target]:
    """The configured targets, each with its STS client and an ECR client per region."""
    targets = []
    for target in connections.settings.resolved_targets():
        home = target.regions[0]
        session = (
            await assumed_role_session(
                connections.base,
                target,
                connections.network,
                connections.config(home, STS_ATTEMPTS),
            )
            if target.role_arn
            else connections.own
        )
        sts = await connections.stack.enter_async_context(
            connections.client(session, "sts", home, STS_ATTEMPTS)
        )
        clients = {region: await connections.open_ecr(session, region) for region in target.regions}
        targets.append(Target(target, sts, clients, connections.network))
    return targets


async def assumed_role_session(
    base: Any, target: TargetSettings, network: Network, config: AioConfig
) -> Any:
    """An aioboto3 session whose credentials come from AssumeRole and renew themselves before
    expiry."""
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
    return refreshing_session(fetcher.fetch_credentials, base)


class _Refreshing(CredentialProvider):
    """A credential provider of one session: credentials from ``refresh_using``, renewed by
    botocore before they expire."""

    METHOD = "assume-role"

    def __init__(self, refresh_using: Callable[[], Awaitable[dict[str, str]]]) -> None:
        super().__init__()
        self._refresh_using = refresh_using

    async def load(self) -> AioDeferredRefreshableCredentials:
        return AioDeferredRefreshableCredentials(
            refresh_using=self._refresh_using, method=self.METHOD
        )


def refreshing_session(
    refresh_using: Callable[[], Awaitable[dict[str, str]]], base: AioSession
) -> Any:
    """An aioboto3 session whose credentials come from ``refresh_using``, renewed before
    expiry, and whose service data is ``base``'s.

    Each botocore session loads the service models and the endpoint tables of its clients
    once, for itself. An organisation gives every account a session of its own: sharing
    ``base``'s data loader (botocore's public ``data_loader`` component, which caches what it
    has loaded) makes an account's session and clients cost what the clients themselves hold.
    Figures in docs/partitions.md ("Benchmark"). Each aioboto3 session adds boto3's folder to
    the loader's search path, so there is one per set of credentials, never one per client.
    """
    session = AioSession()
    session.register_component("data_loader", base.get_component("data_loader"))
    # botocore's public seam for where a session's credentials come from: its credential
    # provider component, here a chain of the one provider.
    session.register_component(
        "credential_provider", AioCredentialResolver([_Refreshing(refresh_using)])
    )
    return aioboto3.Session(botocore_session=session)
