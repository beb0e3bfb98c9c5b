"""Each member account's credentials: its role, assumed when first needed, renewed in time.

The role of the same name in every account, assumed through the service's own STS client and
renewed before it expires, at a time of its own, so that a fleet of accounts does not renew at
once. STS calls are paced, whichever account asks.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from ..config import OrganizationSettings
from .clients import ASSUME_ROLE_SECONDS, Connections, refreshing_session
from .ecr import per_second
from .errors import mapped_errors

__all__ = ["AccountRole", "StsPacer"]

# Renewed this long before expiry (botocore's advisory window), plus up to RENEW_SPREAD more,
# by a hash of the account: renewals of a fleet spread over ten minutes instead of one moment.
RENEW_BEFORE = timedelta(minutes=15)
RENEW_SPREAD_SECONDS = 600


class StsPacer:
    """At most ``rate`` STS calls a second, a few at a time, whichever account asks."""

    def __init__(self, rate: float, in_flight: int = 8) -> None:
        self._budget = per_second(rate)
        self._slots = asyncio.Semaphore(in_flight)

    async def __aenter__(self) -> None:
        await self._slots.acquire()
        try:
            await self._budget.acquire()
        except BaseException:
            self._slots.release()
            raise

    async def __aexit__(self, *_exc: object) -> None:
        self._slots.release()


@dataclass(frozen=True)
class _Frozen:
    access_key: str
    secret_key: str
    token: str


class AccountRole:
    """One member account's credentials: its role, assumed when needed, renewed in time."""

    def __init__(
        self,
        role_arn: str,
        settings: OrganizationSettings,
        connections: Connections,
        home: str,
        pacer: StsPacer,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        """The role is assumed through the service's own STS client in ``home``."""
        # arn:<partition>:iam::<account>:role/<name>
        self.account = account = role_arn.split(":")[4]
        self.role_arn = role_arn
        self._settings = settings
        self._connections = connections
        self._home = home
        self._pacer = pacer
        self._ca_bundle = connections.network.ca_bundle
        self._clock = clock
        self._credentials: _Frozen | None = None
        self._renew_at: datetime | None = None
        self._expires_at: datetime | None = None
        self._lock = asyncio.Lock()
        spread = int.from_bytes(hashlib.sha256(account.encode()).digest()[:4], "big")
        self._early = RENEW_BEFORE + timedelta(seconds=spread % RENEW_SPREAD_SECONDS)
        # The account's clients take their credentials from this session, which asks
        # ``metadata`` for them again before they expire.
        self.session = refreshing_session(self.metadata, connections.base)

    async def frozen(self) -> _Frozen:
        """Credentials good for now; assumes the role (once, for every caller) when due.

        Raises EcrError naming the account and the role when it cannot be assumed.
        """
        if not self._due():
            assert self._credentials is not None
            return self._credentials
        async with self._lock:
            if self._due():  # another caller may have renewed it meanwhile
                await self._assume()
            assert self._credentials is not None
            return self._credentials

    def _due(self) -> bool:
        return (
            self._credentials is None or self._renew_at is None or self._clock() >= self._renew_at
        )

    async def metadata(self) -> dict[str, str]:
        """The credentials as botocore's refreshable credentials take them."""
        frozen = await self.frozen()
        assert self._expires_at is not None
        return {
            "access_key": frozen.access_key,
            "secret_key": frozen.secret_key,
            "token": frozen.token,
            "expiry_time": self._expires_at.isoformat(),
        }

    async def _assume(self) -> None:
        arguments: dict[str, Any] = {
            "RoleArn": self.role_arn,
            "RoleSessionName": self._settings.session_name,
            "DurationSeconds": ASSUME_ROLE_SECONDS,
        }
        if self._settings.external_id is not None:
            arguments["ExternalId"] = self._settings.external_id.get_secret_value()
        sts = await self._connections.sts(self._home)
        region = str(sts.meta.region_name)
        about = f"cannot assume {self.role_arn}: "
        async with self._pacer:
            with mapped_errors(self.account, region, "AssumeRole", self._ca_bundle, about):
                answer = await sts.assume_role(**arguments)
        credentials = answer["Credentials"]
        expires = credentials["Expiration"]
        expires = expires if isinstance(expires, datetime) else datetime.fromisoformat(expires)
        self._credentials = _Frozen(
            credentials["AccessKeyId"], credentials["SecretAccessKey"], credentials["SessionToken"]
        )
        self._expires_at = expires.astimezone(UTC)
        self._renew_at = self._expires_at - self._early
