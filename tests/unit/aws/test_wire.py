"""The lean ECR call path: its SigV4 against botocore's signer, and its retries over real HTTP."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials, ReadOnlyCredentials

from service.aws.wire import AdaptivePacer, SigningKeys, WireClient, sign_v4
from service.errors import CallFailed as WireCallFailed
from tests.faults.aws_wire import aws_error

NOW = datetime(2026, 11, 26, 5, 17, 44, tzinfo=UTC)
BODY = b'{"repositoryName":"team/app","maxResults":1000}'
HEADERS = {
    "content-type": "application/x-amz-json-1.1",
    "x-amz-target": "AmazonEC2ContainerRegistry_V20150921.DescribeImages",
}


def botocore_authorization(
    monkeypatch: pytest.MonkeyPatch, url: str, credentials: Credentials
) -> dict[str, str]:
    monkeypatch.setattr("botocore.auth.get_current_datetime", lambda: NOW.replace(tzinfo=None))
    request = AWSRequest(method="POST", url=url, data=BODY, headers=dict(HEADERS))
    SigV4Auth(credentials, "ecr", "eu-west-1").add_auth(request)
    return {k.lower(): v for k, v in request.headers.items()}


@pytest.mark.parametrize(
    ("url", "host", "token"),
    [
        ("https://api.ecr.eu-west-1.amazonaws.com/", "api.ecr.eu-west-1.amazonaws.com", None),
        ("http://127.0.0.1:5299/", "127.0.0.1:5299", "session  token\twith spaces"),
    ],
)
def test_signature_is_botocores(
    monkeypatch: pytest.MonkeyPatch, url: str, host: str, token: str | None
) -> None:
    credentials = Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", token)
    expected = botocore_authorization(monkeypatch, url, credentials)
    frozen = ReadOnlyCredentials(credentials.access_key, credentials.secret_key, token)
    ours = sign_v4(SigningKeys("eu-west-1", "ecr"), frozen, host, "/", HEADERS, BODY, NOW)
    assert ours["authorization"] == expected["authorization"]
    assert ours["x-amz-date"] == expected["x-amz-date"]
    assert ours.get("x-amz-security-token") == expected.get("x-amz-security-token")


def test_signing_key_is_derived_once_per_day_and_secret() -> None:
    keys = SigningKeys("eu-west-1", "ecr")
    first = keys.key("secret", "20261126")
    assert keys.key("secret", "20261126") is first
    assert keys.key("secret", "20261127") != first
    assert keys.key("rotated", "20261127") != keys.key("secret", "20261127")


Answer = Callable[[web.Request], web.Response]


@pytest.fixture
async def ecr_endpoint() -> AsyncIterator[tuple[str, list[Answer], list[web.Request]]]:
    """A loopback HTTP server that answers with the next scripted response per request."""
    script: list[Answer] = []
    seen: list[web.Request] = []

    async def handle(request: web.Request) -> web.Response:
        await request.read()
        seen.append(request)
        return script.pop(0)(request)

    app = web.Application()
    app.router.add_post("/", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}", script, seen
    finally:
        await runner.cleanup()


async def no_sleep(_seconds: float) -> None:
    return None


async def call(url: str, outcomes: list[tuple[str, str]], max_attempts: int = 5) -> Any:
    async def credentials() -> ReadOnlyCredentials:
        return ReadOnlyCredentials("AKID", "secret", None)

    async with aiohttp.ClientSession() as http:
        client = WireClient(
            endpoint_url=url,
            region="eu-west-1",
            credentials=credentials,
            http=http,
            max_attempts=max_attempts,
            on_attempt=lambda op, outcome: outcomes.append((op, outcome)),
            sleep=no_sleep,
        )
        answer = await client.call("DescribeImages", {"repositoryName": "team/app"})
        return answer, client


def throttle(_request: web.Request) -> web.Response:
    return aws_error(400, "ThrottlingException", "Rate exceeded")


def images(_request: web.Request) -> web.Response:
    return web.json_response({"imageDetails": [{"imagePushedAt": 1.7e9}]})


async def test_throttles_are_retried_and_feed_the_adaptive_limiter(
    ecr_endpoint: tuple[str, list[Answer], list[web.Request]],
) -> None:
    url, script, seen = ecr_endpoint
    script += [throttle, throttle, images]
    outcomes: list[tuple[str, str]] = []
    answer, client = await call(url, outcomes)
    assert answer == {"imageDetails": [{"imagePushedAt": 1.7e9}]}
    assert [o for _, o in outcomes] == ["throttled", "retried", "throttled", "retried", "ok"]
    # After a throttle, the API's limiter paces every later request of it.
    assert client.limiters["DescribeImages"].rate is not None
    request = seen[-1]
    assert request.headers["X-Amz-Target"].endswith(".DescribeImages")
    assert request.headers["Content-Type"] == "application/x-amz-json-1.1"
    assert request.headers["Authorization"].startswith("AWS4-HMAC-SHA256 Credential=AKID/")
    assert json.loads(await request.read()) == {"repositoryName": "team/app"}


@pytest.mark.parametrize(
    ("answers", "code", "attempts"),
    [
        ([lambda r: aws_error(400, "RepositoryNotFoundException", "gone")], "Repository", 1),
        ([lambda r: web.Response(status=500, text="oops")] * 3, "HTTP500", 3),
        ([lambda r: web.Response(status=200, body=b"\xff\xfe{")], "MalformedResponse", 1),
        ([lambda r: web.json_response(["not", "an", "object"])], "MalformedResponse", 1),
        # Nested past the parser's depth bound: malformed, never a RecursionError.
        pytest.param(
            [lambda r: web.Response(status=200, body=b"[" * 5_000)],
            "MalformedResponse",
            1,
            id="answer-5k-deep",
        ),
        pytest.param(
            [lambda r: web.Response(status=400, body=b'{"a":' * 5_000)],
            "HTTP400",
            1,
            id="error-5k-deep",
        ),
        (
            [
                lambda r: web.Response(
                    status=400,
                    body=b'{"__type":"com.amazonaws.ecr#LifecyclePolicyNotFoundException"}',
                )
            ],
            "LifecyclePolicyNotFoundException",
            1,
        ),
    ],
)
async def test_failures_carry_the_aws_code_and_only_transient_ones_retry(
    ecr_endpoint: tuple[str, list[Answer], list[web.Request]],
    answers: list[Answer],
    code: str,
    attempts: int,
) -> None:
    url, script, seen = ecr_endpoint
    script += answers
    with pytest.raises(WireCallFailed) as caught:
        await call(url, [], max_attempts=3)
    assert caught.value.code.startswith(code)
    assert caught.value.attempts == attempts == len(seen)


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def pacer_that_saw(admitted: int, every: float) -> tuple[FakeClock, AdaptivePacer]:
    """A pacer to which ECR admitted ``admitted`` calls, one every ``every`` seconds."""
    clock = FakeClock()
    pacer = AdaptivePacer(clock)
    for _ in range(admitted):
        clock.now += every
        pacer.admitted()
    return clock, pacer


def test_the_pacer_sends_freely_until_the_first_throttle() -> None:
    clock = FakeClock()
    pacer = AdaptivePacer(clock)
    assert [pacer.slot() for _ in range(50)] == [clock.now] * 50
    assert pacer.rate is None


def test_a_throttle_sets_the_rate_to_what_was_admitted_and_then_paces() -> None:
    # ECR admitted 100 calls over the last second, then throttled one.
    clock, pacer = pacer_that_saw(100, every=0.01)
    pacer.throttled(sent_at=clock.now - 0.02)
    assert pacer.rate == pytest.approx(95, rel=0.02)
    slots = [pacer.slot() for _ in range(10)]
    gaps = [later - earlier for earlier, later in zip(slots, slots[1:], strict=False)]
    assert gaps == pytest.approx([1 / pacer.rate] * 9)


def test_calls_sent_before_a_cut_do_not_cut_again() -> None:
    clock, pacer = pacer_that_saw(100, every=0.01)
    sent = clock.now - 0.03
    pacer.throttled(sent_at=sent)
    after_first = pacer.rate
    # The rest of the burst that was already in flight: no further cuts.
    for _ in range(5):
        pacer.throttled(sent_at=sent)
    assert pacer.rate == after_first
    # A call sent after the cut that is throttled again cuts again, by 5%.
    clock.now += 0.05
    pacer.throttled(sent_at=clock.now - 0.01)
    assert after_first is not None and pacer.rate == pytest.approx(after_first * 0.95)


def test_the_rate_grows_back_while_nothing_is_throttled() -> None:
    clock, pacer = pacer_that_saw(20, every=0.05)
    pacer.throttled(sent_at=clock.now)
    cut = pacer.rate
    assert cut == pytest.approx(19, rel=0.05)
    clock.now += 4
    pacer.slot()
    assert cut is not None and pacer.rate == pytest.approx(cut * 1.10**4)


def test_a_quiet_api_is_unlimited_again() -> None:
    # Cut while it was nearly idle (2 calls a second); a burst later must not crawl at that.
    clock, pacer = pacer_that_saw(3, every=0.5)
    pacer.throttled(sent_at=clock.now)
    assert pacer.rate is not None and pacer.rate < 3
    clock.now += AdaptivePacer.QUIET_SECONDS + 0.1
    assert [pacer.slot() for _ in range(20)] == [clock.now] * 20
    assert pacer.rate is None


def test_an_early_throttle_is_measured_over_the_time_elapsed() -> None:
    # botocore's smoothed rate reads near 0 half a second in; this pacer counts what it saw.
    clock, pacer = pacer_that_saw(60, every=0.005)
    pacer.throttled(sent_at=clock.now)
    assert pacer.rate == pytest.approx(0.95 * 200, rel=0.02)
