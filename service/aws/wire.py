"""ECR's JSON 1.1 wire protocol, signed with SigV4, for the calls made once per repository.

A registry of many repositories costs three calls per repository per read, so the CPU of a
call is what a cold read costs: aiobotocore spends it on rebuilding the user agent, event
hooks, model-driven serialising and parsing and a general signer (BENCHMARKS.md has the
profile). This module makes the same calls with a POST with an ``X-Amz-Target`` header, SigV4
with the signing key cached per day, and ``json.loads``; ``aws.client: botocore`` sends them
through aiobotocore instead.

Retries are adaptive, as in botocore's adaptive mode: throttles slow the sending rate down on
the client, and failed attempts back off exponentially with full jitter. Two differences, on
purpose and measured (BENCHMARKS.md): each API has its own limiter, since ECR throttles each
API on its own (botocore keeps one per client, so a throttled DescribeImages would slow
ListTagsForResource down with it); and the limiter is ``AdaptivePacer``, not botocore's CUBIC
one (see there). botocore still resolves the endpoint and provides (and renews) the
credentials; STS stays with it.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol
from urllib.parse import urlsplit

import aiohttp
from aiobotocore.retries import bucket

from .. import jsontext
from ..errors import CallFailed
from .network import certificate_advice

__all__ = [
    "CERTIFICATE_FAILED",
    "ECR_TARGET_PREFIX",
    "THROTTLING_CODES",
    "FrozenCredentials",
    "SigningKeys",
    "WireClient",
    "AdaptivePacer",
    "sign_v4",
]

ECR_TARGET_PREFIX = "AmazonEC2ContainerRegistry_V20150921"
CONTENT_TYPE = "application/x-amz-json-1.1"
# The code of a call whose TLS certificate could not be verified: not retried.
CERTIFICATE_FAILED = "CertificateVerifyFailed"
# botocore's standard-mode lists: throttles feed the adaptive rate limiter, both retry.
THROTTLING_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottledException",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "RequestLimitExceeded",
        "BandwidthLimitExceeded",
        "LimitExceededException",
        "RequestThrottled",
        "SlowDown",
        "PriorRequestNotComplete",
    }
)
TRANSIENT_CODES = frozenset({"RequestTimeout", "RequestTimeoutException", "InternalFailure"})
TRANSIENT_STATUSES = frozenset({500, 502, 503, 504})
MAX_BACKOFF_SECONDS = 20.0


class FrozenCredentials(Protocol):
    """botocore's ReadOnlyCredentials."""

    @property
    def access_key(self) -> str | None: ...

    @property
    def secret_key(self) -> str | None: ...

    @property
    def token(self) -> str | None: ...


@dataclass
class SigningKeys:
    """SigV4 derived keys, one per (secret, day): four HMACs saved on every other call."""

    region: str
    service: str
    _keys: dict[tuple[str, str], bytes] = field(default_factory=dict)

    def key(self, secret: str, day: str) -> bytes:
        cached = self._keys.get((secret, day))
        if cached is None:
            cached = _hmac(f"AWS4{secret}".encode(), day)
            for part in (self.region, self.service, "aws4_request"):
                cached = _hmac(cached, part)
            # Rotated credentials and new days replace the old keys instead of piling up.
            self._keys = {(secret, day): cached}
        return cached


def _hmac(key: bytes, message: str) -> bytes:
    return hmac.new(key, message.encode(), hashlib.sha256).digest()


def sign_v4(
    keys: SigningKeys,
    credentials: FrozenCredentials,
    host: str,
    path: str,
    headers: dict[str, str],
    body: bytes,
    now: datetime,
) -> dict[str, str]:
    """``headers`` plus X-Amz-Date, the session token and Authorization for a POST.

    Every header passed in is signed, as botocore does; names must be lower case.
    """
    stamp = now.strftime("%Y%m%dT%H%M%SZ")
    day = stamp[:8]
    signed = dict(headers, host=host)
    signed["x-amz-date"] = stamp
    if credentials.token:
        signed["x-amz-security-token"] = credentials.token
    names = sorted(signed)
    canonical = "\n".join(
        [
            "POST",
            path,
            "",
            *(f"{name}:{' '.join(signed[name].split())}" for name in names),
            "",
            ";".join(names),
            hashlib.sha256(body).hexdigest(),
        ]
    )
    scope = f"{day}/{keys.region}/{keys.service}/aws4_request"
    to_sign = "\n".join(
        ["AWS4-HMAC-SHA256", stamp, scope, hashlib.sha256(canonical.encode()).hexdigest()]
    )
    signature = hmac.new(
        keys.key(credentials.secret_key or "", day), to_sign.encode(), hashlib.sha256
    ).hexdigest()
    signed["authorization"] = (
        f"AWS4-HMAC-SHA256 Credential={credentials.access_key}/{scope}, "
        f"SignedHeaders={';'.join(names)}, Signature={signature}"
    )
    return signed


class AdaptivePacer:
    """Client-side adaptive rate limiting for one API in one region.

    Unlimited until ECR throttles; then the rate ECR admitted over the last second, less 5%,
    growing 10% for every second without a throttle, so that it finds more room when the load
    that shares the account's quota (CI pushing and pulling) goes away; unlimited again after
    QUIET_SECONDS without one, since a cut taken while this API was nearly idle (a trickle of
    calls between refreshes) would otherwise pace the next burst at that trickle. A throttle
    of a call sent before the last cut is not counted again: those calls were already too many.

    botocore's adaptive limiter (CUBIC) cuts to 70% of a smoothed *send* rate, which is still
    near 0 in the first half second of a read, so a cold read's first throttles cut each API
    far below what ECR admits, and it climbs back for seconds (traced in BENCHMARKS.md).
    """

    WINDOW_SECONDS = 1.0
    CUT = 0.95
    GROWTH_PER_SECOND = 1.10
    MIN_RATE = 0.5
    QUIET_SECONDS = 5.0

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        # Calls per second; None until the first throttle.
        self.rate: float | None = None
        self._admitted: deque[float] = deque()
        self._next_slot = 0.0
        self._cut_at = float("-inf")
        self._grown_at = 0.0

    def slot(self) -> float:
        """When the next call may be sent (now, or later): the caller sleeps until then."""
        now = self.clock()
        if self.rate is not None and now - self._cut_at > self.QUIET_SECONDS:
            self.rate = None
        if self.rate is None:
            return now
        if now - self._grown_at >= 1.0:
            self.rate *= self.GROWTH_PER_SECOND ** min(now - self._grown_at, 10.0)
            self._grown_at = now
        slot = max(now, self._next_slot)
        self._next_slot = slot + 1.0 / self.rate
        return slot

    def admitted(self) -> None:
        now = self.clock()
        self._admitted.append(now)
        self._forget_before(now - self.WINDOW_SECONDS)

    def throttled(self, sent_at: float) -> None:
        now = self.clock()
        if sent_at < self._cut_at:
            return
        self._forget_before(now - self.WINDOW_SECONDS)
        # Over the span the admitted calls cover, not the whole window: an API that has only
        # just begun (or was idle) must not read as a slow one.
        if len(self._admitted) >= 2:
            span = max(self._admitted[-1] - self._admitted[0], 0.1)
            admitted_rate = (len(self._admitted) - 1) / span
        else:
            admitted_rate = len(self._admitted) / self.WINDOW_SECONDS
        new_rate = max(self.MIN_RATE, self.CUT * admitted_rate)
        self.rate = new_rate if self.rate is None else min(self.rate * self.CUT, new_rate)
        self._cut_at = self._grown_at = now
        self._next_slot = max(self._next_slot, now)

    def _forget_before(self, moment: float) -> None:
        while self._admitted and self._admitted[0] < moment:
            self._admitted.popleft()


def _error_code(status: int, headers: Any, body: bytes) -> tuple[str, str]:
    try:
        document = jsontext.loads(body) if body else {}
    except ValueError:
        document = {}
    if not isinstance(document, dict):
        document = {}
    # "com.amazonaws.ecr#ThrottlingException" or "ThrottlingException:http://..."
    raw = str(document.get("__type") or headers.get("x-amzn-ErrorType") or f"HTTP{status}")
    code = raw.rsplit("#", 1)[-1].split(":", 1)[0]
    message = document.get("message") or document.get("Message") or ""
    return code, str(message)


@dataclass
class WireClient:
    """One region's JSON 1.1 client: one HTTP connection pool, an adaptive limiter per API."""

    endpoint_url: str
    region: str
    credentials: Callable[[], Awaitable[FrozenCredentials | None]]
    http: aiohttp.ClientSession
    max_attempts: int
    # The proxy the calls go through (service/network.py), or None; may hold credentials.
    proxy: str | None = field(default=None, repr=False)
    # The CA bundle the connections trust, named when a certificate cannot be verified.
    ca_bundle: str = ""
    # Calls per second per API, a fixed budget applied before the adaptive limiter.
    max_calls_per_second: float | None = None
    service: str = "ecr"
    target_prefix: str = ECR_TARGET_PREFIX
    limiters: dict[str, AdaptivePacer] = field(default_factory=dict)
    budgets: dict[str, bucket.AsyncTokenBucket] = field(default_factory=dict)
    on_attempt: Callable[[str, str], None] = lambda _operation, _outcome: None
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep

    def __post_init__(self) -> None:
        parts = urlsplit(self.endpoint_url)
        self._host = parts.netloc
        self._path = parts.path or "/"
        self._keys = SigningKeys(self.region, self.service)

    async def call(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        """The parsed answer of ``operation``; raises CallFailed once retries are spent."""
        body = json.dumps(params, separators=(",", ":")).encode()
        headers = {
            "content-type": CONTENT_TYPE,
            "x-amz-target": f"{self.target_prefix}.{operation}",
        }
        attempt = 0
        while True:
            attempt += 1
            limiter = self.limiters.get(operation)
            if limiter is None:
                limiter = self.limiters[operation] = AdaptivePacer()
            if self.max_calls_per_second is not None:
                budget = self.budgets.get(operation)
                if budget is None:
                    budget = self.budgets[operation] = bucket.AsyncTokenBucket(
                        max_rate=self.max_calls_per_second, clock=bucket.Clock()
                    )
                await budget.acquire()
            outcome = await self._attempt(limiter, headers, body)
            if not isinstance(outcome, _Failure):
                self.on_attempt(operation, "ok")
                return outcome
            self.on_attempt(operation, "throttled" if outcome.throttled else outcome.code)
            if not outcome.retryable or attempt >= self.max_attempts:
                raise CallFailed(outcome.code, outcome.message, attempt)
            self.on_attempt(operation, "retried")
            await self.sleep(random.random() * min(MAX_BACKOFF_SECONDS, 2.0 ** (attempt - 1)))

    async def _attempt(
        self, limiter: AdaptivePacer, headers: dict[str, str], body: bytes
    ) -> dict[str, Any] | _Failure:
        sent_at = limiter.slot()
        wait = sent_at - limiter.clock()
        if wait > 0:
            await self.sleep(wait)
        credentials = await self.credentials()
        if credentials is None or not credentials.access_key or not credentials.secret_key:
            return _Failure("NoCredentials", "no AWS credentials were found")
        # Signed just before sending: a request that waited for a connection would expire.
        signed = sign_v4(
            self._keys, credentials, self._host, self._path, headers, body, datetime.now(UTC)
        )
        try:
            async with self.http.post(
                self.endpoint_url, data=body, headers=signed, proxy=self.proxy
            ) as response:
                status, raw = response.status, await response.read()
                response_headers = response.headers
        except aiohttp.ClientConnectorCertificateError as exc:
            # Trying again cannot help: the trust is wrong until someone changes it.
            detail = str(exc.certificate_error)
            advice = certificate_advice(self.endpoint_url, detail, self.ca_bundle)
            return _Failure(CERTIFICATE_FAILED, advice)
        except aiohttp.ClientConnectorSSLError as exc:
            return _Failure("TLSError", f"TLS with {self.endpoint_url} failed: {exc}")
        except (aiohttp.ClientError, TimeoutError) as exc:
            return _Failure(type(exc).__name__, str(exc) or type(exc).__name__, retryable=True)
        if status == 200:
            limiter.admitted()
            try:
                answer = jsontext.loads(raw)
            except ValueError as exc:
                return _Failure("MalformedResponse", f"the answer is not JSON: {exc}")
            if not isinstance(answer, dict):
                return _Failure("MalformedResponse", "the answer is not a JSON object")
            return answer
        code, message = _error_code(status, response_headers, raw)
        throttled = code in THROTTLING_CODES or status == 429
        if throttled:
            limiter.throttled(sent_at)
        else:
            # An error answer (LifecyclePolicyNotFoundException, say) was admitted all the same.
            limiter.admitted()
        retryable = throttled or code in TRANSIENT_CODES or status in TRANSIENT_STATUSES
        return _Failure(code, message, retryable, throttled)


@dataclass(frozen=True)
class _Failure:
    code: str
    message: str
    retryable: bool = False
    throttled: bool = False
