"""Security: a token-gated refresh, no secrets anywhere, bounded requests, least privilege."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path

import httpx
import pytest

from service.config import Settings
from service.demo import DEMO_CREDENTIALS

from ..support import FaultProxy, MotoServer, until_true
from .test_sources import (
    ACCOUNT_A,
    ACCOUNT_B,
    ROLE_B,
    complete,
    seed_two_accounts,
    serving,
    until,
)

POLICY = Path(__file__).parents[2] / "deploy" / "aws" / "iam" / "aws" / "permissions.json"
TOKEN = "refresh-token-5f1d9c0a7e"
EXTERNAL_ID = "external-id-0b7e3c91d2"


def secure_settings(url: str, **server: object) -> Settings:
    return Settings(
        aws={
            "endpoint_url": url,
            "total_max_attempts": 1,
            "targets": [
                {"regions": ["us-east-1", "eu-west-1"], "account_id": ACCOUNT_A},
                {
                    "regions": ["us-east-1"],
                    "account_id": ACCOUNT_B,
                    "role_arn": ROLE_B,
                    "external_id": EXTERNAL_ID,
                },
            ],
        },
        server={"refresh_token": TOKEN, "refresh_min_interval_seconds": 60, **server},
        refresh={"interval_seconds": 3600, "initial_retry_seconds": 0.2},
    )


async def ready(client: httpx.AsyncClient) -> None:
    async def is_ready() -> bool:
        return bool((await client.get("/readyz")).json()["ready"])

    await until_true(is_ready, "the service ready", within=15)


async def test_forced_refresh_is_off_without_a_token(moto: MotoServer) -> None:
    settings = secure_settings(moto.url, refresh_token=None)
    async with serving(settings) as client:
        assert (await client.post("/refresh")).status_code == 404
        auth = {"Authorization": f"Bearer {TOKEN}"}
        assert (await client.post("/refresh", headers=auth)).status_code == 404


async def test_forced_refresh_needs_the_token_and_is_rate_limited(moto: MotoServer) -> None:
    seed_two_accounts(moto)
    async with serving(secure_settings(moto.url)) as client:
        await ready(client)
        assert (await client.post("/refresh")).status_code == 401
        wrong = {"Authorization": "Bearer " + TOKEN[:-1] + "x"}
        assert (await client.post("/refresh", headers=wrong)).status_code == 401
        basic = {"Authorization": f"Basic {TOKEN}"}
        assert (await client.post("/refresh", headers=basic)).status_code == 401
        right = {"Authorization": f"Bearer {TOKEN}"}
        moto.ecr("us-east-1").create_repository(repositoryName="forced/new")
        accepted = await client.post("/refresh", headers=right)
        assert accepted.status_code == 202
        again = await client.post("/refresh", headers=right)
        assert again.status_code == 429
        assert 0 < int(again.headers["retry-after"]) <= 60

        async def picked_up() -> bool:
            items = (await client.get("/entities.json")).json()["items"]
            return f"forced--new.us-east-1.{ACCOUNT_A}" in [e["metadata"]["name"] for e in items]

        await until(picked_up)


async def test_a_429_expires_over_http(moto: MotoServer) -> None:
    right = {"Authorization": f"Bearer {TOKEN}"}
    async with serving(secure_settings(moto.url, refresh_min_interval_seconds=0.5)) as client:
        await ready(client)
        assert (await client.post("/refresh", headers=right)).status_code == 202
        assert (await client.post("/refresh", headers=right)).status_code == 429

        async def admitted() -> bool:
            return (await client.post("/refresh", headers=right)).status_code == 202

        await until(admitted, within=5)


async def test_no_secret_appears_in_logs_errors_readyz_or_metrics(
    moto: MotoServer, proxy: FaultProxy, caplog: pytest.LogCaptureFixture
) -> None:
    seed_two_accounts(moto)
    proxy.set(deny_regions=["eu-west-1"], error_rate=0.3, error_status=500, seed=7)
    texts = []
    with caplog.at_level(logging.DEBUG, logger="service"):
        async with serving(secure_settings(proxy.url)) as client:
            for _ in range(40):
                for path in ("/readyz", "/entities.yaml", "/metrics", "/catalog-info.yaml"):
                    response = await client.get(path)
                    texts.append(response.text + json.dumps(dict(response.headers)))
                texts.append((await client.post("/refresh")).text)
                await asyncio.sleep(0.05)
    texts.append(caplog.text)
    everything = "\n".join(texts)
    assert "AccessDeniedException" in everything  # errors are reported...
    for secret in (TOKEN, EXTERNAL_ID, DEMO_CREDENTIALS[1]):  # ...but never a secret
        assert secret not in everything
    assert TOKEN not in repr(secure_settings(proxy.url))
    assert EXTERNAL_ID not in repr(secure_settings(proxy.url))


async def test_overlong_request_targets_get_414(moto: MotoServer) -> None:
    async with serving(secure_settings(moto.url)) as client:
        response = await client.get("/entities.json?q=" + "x" * 9000)
        assert response.status_code == 414
        assert (await client.get("/" + "a" * 9000)).status_code == 414


async def test_iam_policy_allows_exactly_the_ecr_calls_made(
    moto: MotoServer, proxy: FaultProxy
) -> None:
    seed_two_accounts(moto)
    async with serving(secure_settings(proxy.url)) as client:
        await ready(client)
        await until(lambda: complete(client))
    made = {f"ecr:{op}" for op in proxy.stats()["calls"] if op != "(not ECR)"}
    statements = json.loads(POLICY.read_text())["Statement"]
    allowed = {action for s in statements for action in [s["Action"]] if isinstance(action, str)}
    allowed |= {a for s in statements if isinstance(s["Action"], list) for a in s["Action"]}
    assert made == {a for a in allowed if a.startswith("ecr:")}
    assert {a for a in allowed if not a.startswith("ecr:")} == {"sts:AssumeRole"}
    assert all(s["Effect"] == "Allow" for s in statements)
