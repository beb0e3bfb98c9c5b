"""ECR's JSON 1.1 wire protocol, signed with SigV4, for the calls made once per repository.

Profiled (py-spy, 3,000 calls against bench/fake_ecr.py), aiobotocore spends ~1.8 ms of CPU on
each call: user-agent rebuilding, event hooks, model-driven serialising and parsing, a general
signer. At 10,000 repositories that is a minute of CPU per cold refresh, longer than ECR's own
rate limits would take. This module makes the same calls for a fraction: a POST with a
``X-Amz-Target`` header, SigV4 with the signing key cached per day, and ``json.loads``.

Retries stay botocore's adaptive mode: the client-side rate limiter is botocore's own
(``AsyncClientRateLimiter``, CUBIC on throttles), and failed attempts back off exponentially
with full jitter like botocore's standard mode. One difference, on purpose: botocore keeps one
limiter per client, but ECR throttles each API on its own, so a throttled DescribeImages would
slow ListTagsForResource down with it. Here each operation has its own limiter. botocore
still resolves the endpoint and provides (and renews) the credentials; STS stays with it.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol
from urllib.parse import urlsplit

import aiohttp
from aiobotocore.retries import bucket
from aiobotocore.retries.adaptive import AsyncClientRateLimiter
from botocore.retries import throttling
from botocore.retries.adaptive import RateClocker

__all__ = [
    "ECR_TARGET_PREFIX",
    "THROTTLING_CODES",
    "FrozenCredentials",
    "SigningKeys",
    "WireCallFailed",
    "WireClient",
    "new_rate_limiter",
    "sign_v4",
]

ECR_TARGET_PREFIX = "AmazonEC2ContainerRegistry_V20150921"
CONTENT_TYPE = "application/x-amz-json-1.1"
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


class WireCallFailed(Exception):
    """A call that failed for good: its last error code and message, and attempts made."""

    def __init__(self, code: str, message: str, attempts: int) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.attempts = attempts


class _Throttles:
    """What AsyncClientRateLimiter asks of a throttling detector."""

    def is_throttling_error(self, **kwargs: Any) -> bool:
        return bool(kwargs.get("throttled"))


def new_rate_limiter() -> AsyncClientRateLimiter:
    """botocore's adaptive-mode limiter, wired as aiobotocore wires it for a client."""
    clock = bucket.Clock()
    # The stubs give aiobotocore's limiter botocore's synchronous parameter types.
    return AsyncClientRateLimiter(
        rate_adjustor=throttling.CubicCalculator(
            starting_max_rate=0, start_time=clock.current_time()
        ),
        rate_clocker=RateClocker(clock),
        token_bucket=bucket.AsyncTokenBucket(max_rate=1, clock=clock),  # type: ignore[arg-type]
        throttling_detector=_Throttles(),  # type: ignore[arg-type]
        clock=clock,
    )


def _error_code(status: int, headers: Any, body: bytes) -> tuple[str, str]:
    try:
        document = json.loads(body) if body else {}
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
    # Calls per second per API, a fixed budget applied before the adaptive limiter.
    max_calls_per_second: float | None = None
    service: str = "ecr"
    target_prefix: str = ECR_TARGET_PREFIX
    limiters: dict[str, AsyncClientRateLimiter] = field(default_factory=dict)
    budgets: dict[str, bucket.AsyncTokenBucket] = field(default_factory=dict)
    on_attempt: Callable[[str, str], None] = lambda _operation, _outcome: None
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep

    def __post_init__(self) -> None:
        parts = urlsplit(self.endpoint_url)
        self._host = parts.netloc
        self._path = parts.path or "/"
        self._keys = SigningKeys(self.region, self.service)

    async def call(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        """The parsed answer of ``operation``; raises WireCallFailed once retries are spent."""
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
                limiter = self.limiters[operation] = new_rate_limiter()
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
                raise WireCallFailed(outcome.code, outcome.message, attempt)
            self.on_attempt(operation, "retried")
            await self.sleep(random.random() * min(MAX_BACKOFF_SECONDS, 2.0 ** (attempt - 1)))

    async def _attempt(
        self, limiter: AsyncClientRateLimiter, headers: dict[str, str], body: bytes
    ) -> dict[str, Any] | _Failure:
        await limiter.on_sending_request(request=None)
        credentials = await self.credentials()
        if credentials is None or not credentials.access_key or not credentials.secret_key:
            return _Failure("NoCredentials", "no AWS credentials were found")
        # Signed just before sending: a request that waited for a connection would expire.
        signed = sign_v4(
            self._keys, credentials, self._host, self._path, headers, body, datetime.now(UTC)
        )
        try:
            async with self.http.post(self.endpoint_url, data=body, headers=signed) as response:
                status, raw = response.status, await response.read()
                response_headers = response.headers
        except (aiohttp.ClientError, TimeoutError) as exc:
            await limiter.on_receiving_response(throttled=False)
            return _Failure(type(exc).__name__, str(exc) or type(exc).__name__, retryable=True)
        if status == 200:
            await limiter.on_receiving_response(throttled=False)
            try:
                answer = json.loads(raw)
            except ValueError as exc:
                return _Failure("MalformedResponse", f"the answer is not JSON: {exc}")
            if not isinstance(answer, dict):
                return _Failure("MalformedResponse", "the answer is not a JSON object")
            return answer
        code, message = _error_code(status, response_headers, raw)
        throttled = code in THROTTLING_CODES or status == 429
        await limiter.on_receiving_response(throttled=throttled)
        retryable = throttled or code in TRANSIENT_CODES or status in TRANSIENT_STATUSES
        return _Failure(code, message, retryable, throttled)


@dataclass(frozen=True)
class _Failure:
    code: str
    message: str
    retryable: bool = False
    throttled: bool = False
