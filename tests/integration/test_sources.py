"""Many accounts and regions, each failing alone: moto server + fault proxy + assume-role."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import httpx
import pytest
import yaml
from asgi_lifespan import LifespanManager

from service.aws.reader import AwsEcrReader
from service.config import Settings
from service.demo import DEMO_CREDENTIALS, DemoRepository, seed_registry
from service.reading import StaticCredentials
from service.web.app import create_app

from ..support import (
    FaultProxy,
    MotoServer,
    assume_role_credentials,
    start_fake_ecr,
    start_proxy,
    stop_process,
    until_true,
)

ACCOUNT_A = "123456789012"
ACCOUNT_B = "111122223333"
ROLE_B = f"arn:aws:iam::{ACCOUNT_B}:role/ecr-catalog-reader"
A_REGIONS = ["us-east-1", "eu-west-1"]
B_REGIONS = ["us-east-1", "ap-southeast-2"]


def seed_two_accounts(moto: MotoServer) -> None:
    seed_registry(
        moto.url,
        [
            DemoRepository(name="shared/base", region="us-east-1", tags={"owner": "team-a"}),
            DemoRepository(name="a/api", region="us-east-1", images=(("v1",),)),
            DemoRepository(name="a/eu-only", region="eu-west-1"),
            DemoRepository(name="a/eu-second", region="eu-west-1"),
        ],
    )
    access_key, secret_key, token = assume_role_credentials(moto.url, ROLE_B)
    seed_registry(
        moto.url,
        [
            DemoRepository(name="shared/base", region="us-east-1", tags={"owner": "team-b"}),
            DemoRepository(name="b/sydney", region="ap-southeast-2"),
        ],
        credentials=(access_key, secret_key),
        session_token=token,
    )


def settings_for(
    url: str, *, state_dir: Path | None = None, b_account: str = ACCOUNT_B
) -> Settings:
    return Settings(
        aws={
            "endpoint_url": url,
            "total_max_attempts": 1,
            "connect_timeout_seconds": 1,
            "read_timeout_seconds": 5,
            "targets": [
                {"regions": A_REGIONS, "account_id": ACCOUNT_A},
                {"regions": B_REGIONS, "account_id": b_account, "role_arn": ROLE_B},
            ],
        },
        refresh={"interval_seconds": 0.3, "initial_retry_seconds": 0.2},
        catalog={"shard_size": 10},
        state_dir=state_dir,
    )


STATE_FILES = sorted(
    f"{account}-{region}.json"
    for account, regions in ((ACCOUNT_A, A_REGIONS), (ACCOUNT_B, B_REGIONS))
    for region in regions
)


def names(directory: Path, pattern: str) -> list[str]:
    return sorted(p.name for p in directory.glob(pattern))


@asynccontextmanager
async def serving(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    credentials = StaticCredentials(*DEMO_CREDENTIALS)
    app = create_app(
        settings,
        lambda observer: AwsEcrReader.open(
            settings.aws, settings.cache, credentials, observer, state_dir=settings.state_dir
        ),
    )
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://svc") as client:
            yield client


async def until(check: Any, within: float = 20.0) -> Any:
    """``await check()`` until it is true; fails after ``within`` seconds."""
    return await until_true(check, "the awaited condition", within)


async def entities(client: httpx.AsyncClient) -> dict[str, dict[str, Any]]:
    response = await client.get("/entities.json")
    assert response.status_code == 200, response.text
    return {e["metadata"]["name"]: e for e in response.json()["items"]}


async def complete(client: httpx.AsyncClient) -> bool:
    return bool((await client.get("/readyz")).json()["complete"])


async def test_two_accounts_three_regions_with_assume_role(
    moto: MotoServer, proxy: FaultProxy
) -> None:
    seed_two_accounts(moto)
    async with serving(settings_for(proxy.url)) as client:
        await until(lambda: complete(client))
        served = await entities(client)
    registries = sorted(
        n for n, e in served.items() if e["spec"].get("type") == "container-registry"
    )
    assert registries == [
        f"ecr-{ACCOUNT_B}-ap-southeast-2",
        f"ecr-{ACCOUNT_B}-us-east-1",
        f"ecr-{ACCOUNT_A}-eu-west-1",
        f"ecr-{ACCOUNT_A}-us-east-1",
    ]
    # The same repository name in two accounts: two distinct, stable names.
    in_a = served[f"shared--base.us-east-1.{ACCOUNT_A}"]
    in_b = served[f"shared--base.us-east-1.{ACCOUNT_B}"]
    assert in_a["spec"]["owner"] == "group:default/team-a"
    assert in_b["spec"]["owner"] == "group:default/team-b"
    assert in_b["metadata"]["annotations"]["amazonaws.com/account-id"] == ACCOUNT_B
    assert (
        served[f"b--sydney.ap-southeast-2.{ACCOUNT_B}"]["metadata"]["labels"][
            "ecr-catalog.io/region"
        ]
        == "ap-southeast-2"
    )


async def test_a_denied_region_keeps_its_entities_while_others_update(
    moto: MotoServer, proxy: FaultProxy
) -> None:
    seed_two_accounts(moto)
    async with serving(settings_for(proxy.url)) as client:
        await until(lambda: complete(client))
        before = await entities(client)
        proxy.set(deny_regions=["eu-west-1"])
        moto.ecr("us-east-1").create_repository(repositoryName="a/new")
        moto.ecr("eu-west-1").delete_repository(repositoryName="a/eu-second", force=True)

        async def updated() -> dict[str, Any] | None:
            served = await entities(client)
            return served if f"a--new.us-east-1.{ACCOUNT_A}" in served else None

        after = await until(updated)
        # The failing source still serves everything its last good read listed...
        assert f"a--eu-second.eu-west-1.{ACCOUNT_A}" in after
        assert set(before) <= set(after)
        stale = after[f"a--eu-only.eu-west-1.{ACCOUNT_A}"]["metadata"]["annotations"]
        assert "ecr-catalog.io/last-successful-read-at" in stale
        fresh = after[f"a--api.us-east-1.{ACCOUNT_A}"]["metadata"]["annotations"]
        assert "ecr-catalog.io/last-successful-read-at" not in fresh
        # ... and says so, on /readyz and in the headers.
        readiness = (await client.get("/readyz")).json()
        (eu,) = [s for s in readiness["sources"] if s["region"] == "eu-west-1"]
        assert eu["stale"] and "AccessDeniedException" in eu["last_error"]
        response = await client.get("/entities.yaml")
        assert response.headers["x-catalog-stale-sources"].startswith(f"{ACCOUNT_A}/eu-west-1=")
        source_response = await client.get(f"/sources/{ACCOUNT_A}/us-east-1/entities.yaml")
        assert "x-catalog-stale-sources" not in source_response.headers

        # Only a successful read removes a repository.
        proxy.clear()

        async def deletion_seen() -> bool:
            return f"a--eu-second.eu-west-1.{ACCOUNT_A}" not in await entities(client)

        await until(deletion_seen)


async def test_cold_start_with_a_failing_source_blocks_nothing_else(
    moto: MotoServer, proxy: FaultProxy
) -> None:
    seed_two_accounts(moto)
    proxy.set(deny_regions=["eu-west-1"])
    async with serving(settings_for(proxy.url)) as client:

        async def three_sources_served() -> bool:
            # A read's status is set when it ends, and the service is ready once the refresh
            # that read it has published: both, with the fourth source still failing.
            readiness = await client.get("/readyz")
            healthy = sum(1 for s in readiness.json()["sources"] if s["healthy"])
            return healthy == 3 and readiness.status_code == 200

        await until(three_sources_served)
        single = await client.get("/entities.yaml")
        assert single.status_code == 503 and "retry-after" in single.headers
        assert "AccessDeniedException" in single.json()["detail"]
        # The failing source's Location still answers, pointing at a URL that answers 503:
        # Backstage fails that Location alone instead of the root with all its siblings.
        failing = await client.get(f"/sources/{ACCOUNT_A}/eu-west-1/catalog-info.yaml")
        assert failing.status_code == 200
        assert yaml.safe_load(failing.text)["spec"]["targets"] == ["./shards/1/0.yaml"]
        for path in ("shards/1/0.yaml", "entities.yaml"):
            pending = await client.get(f"/sources/{ACCOUNT_A}/eu-west-1/{path}")
            assert pending.status_code == 503
        healthy = await client.get(f"/sources/{ACCOUNT_B}/ap-southeast-2/entities.yaml")
        assert healthy.status_code == 200
        root = yaml.safe_load((await client.get("/catalog-info.yaml")).text)
        assert f"./sources/{ACCOUNT_A}/eu-west-1/catalog-info.yaml" in root["spec"]["targets"]
        assert (await client.get("/catalog/core.yaml")).status_code == 200
        assert (
            await client.get("/sources/999999999999/us-east-1/entities.yaml")
        ).status_code == 404


async def test_root_location_parses_and_every_target_resolves(
    moto: MotoServer, proxy: FaultProxy
) -> None:
    seed_two_accounts(moto)
    for index in range(25):
        moto.ecr("eu-west-1").create_repository(repositoryName=f"bulk/r{index:02d}")
    async with serving(settings_for(proxy.url)) as client:
        await until(lambda: complete(client))
        single = set(await entities(client))

        async def documents(url: str) -> list[dict[str, Any]]:
            response = await client.get(url)
            assert response.status_code == 200, url
            assert response.headers["etag"].startswith('"')
            return [d for d in yaml.safe_load_all(response.text) if d]

        collected: list[str] = []
        pending = ["http://svc/catalog-info.yaml"]
        shard_sizes = []
        while pending:
            url = pending.pop()
            for document in await documents(url):
                if document["kind"] == "Location":
                    assert document["spec"]["type"] == "url"
                    pending += [urljoin(url, t) for t in document["spec"]["targets"]]
                else:
                    collected.append(document["metadata"]["name"])
            if "/shards/" in url:
                shard_sizes.append(len(await documents(url)))
    # Every entity exactly once, the same set as the single URL.
    assert sorted(collected) == sorted(single)
    assert max(shard_sizes) <= 10
    assert len(shard_sizes) > 4


async def test_a_target_of_the_wrong_account_is_refused(
    moto: MotoServer, proxy: FaultProxy
) -> None:
    seed_two_accounts(moto)
    async with serving(settings_for(proxy.url, b_account="999999999999")) as client:

        async def refused() -> dict[str, Any] | None:
            body = (await client.get("/readyz")).json()
            errors = [s["last_error"] or "" for s in body["sources"]]
            return body if any("refused" in e for e in errors) and body["ready"] else None

        body = await until(refused)
    (message,) = {s["last_error"] for s in body["sources"] if s["account"] == "999999999999"}
    assert f"belong to account {ACCOUNT_B}, not the configured 999999999999" in message
    assert not body["complete"]


async def test_a_restart_while_aws_is_unreachable_serves_saved_data(
    moto: MotoServer, proxy: FaultProxy, tmp_path: Path
) -> None:
    seed_two_accounts(moto)
    settings = settings_for(proxy.url, state_dir=tmp_path)
    async with serving(settings) as client:
        await until(lambda: complete(client))
        before = await entities(client)
    assert names(tmp_path, "*.json") == STATE_FILES

    proxy.set(refuse=True)
    async with serving(settings) as client:
        # Served at once, before any read of AWS has succeeded.
        readiness = (await client.get("/readyz")).json()
        assert readiness["ready"] and readiness["complete"]
        after = await entities(client)
        assert set(after) == set(before)
        annotations = after[f"a--api.us-east-1.{ACCOUNT_A}"]["metadata"]["annotations"]
        assert "ecr-catalog.io/last-successful-read-at" in annotations

        async def refused_reads() -> bool:
            body = (await client.get("/readyz")).json()
            errors = [s["last_error"] for s in body["sources"]]
            return all(e and "since the restart" not in e for e in errors)

        await until(refused_reads)
        assert set(await entities(client)) == set(before)
    assert proxy.stats()["injected"]["refused"] > 0


async def test_a_corrupt_state_file_is_set_aside(
    moto: MotoServer, proxy: FaultProxy, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    seed_two_accounts(moto)
    (tmp_path / f"{ACCOUNT_A}-us-east-1.json").write_bytes(b'{"format": 1, "records": {tru')
    (tmp_path / f"{ACCOUNT_A}-eu-west-1.json").write_bytes(b"\x00\xff garbage")
    async with serving(settings_for(proxy.url, state_dir=tmp_path)) as client:
        await until(lambda: complete(client))
        assert len(await entities(client)) == 3 + 4 + 6
    assert "is unreadable and set aside" in caplog.text
    assert names(tmp_path, "*.corrupt") == [
        f"{ACCOUNT_A}-eu-west-1.corrupt",
        f"{ACCOUNT_A}-us-east-1.corrupt",
    ]
    assert names(tmp_path, "*.json") == STATE_FILES


@pytest.mark.parametrize("failure", ["throttle", "http_500"])
async def test_a_listing_that_fails_on_page_2_of_3_keeps_the_last_good_data(
    tmp_path: Path, failure: str
) -> None:
    fake, fake_url = start_fake_ecr(
        "--regions", "1", "--repositories", "12", "--max-page-size", "5"
    )
    faults = start_proxy(fake_url)
    try:
        settings = Settings(
            aws={
                "endpoint_url": faults.url,
                # Retried, then given up: the failure outlasts every attempt.
                "total_max_attempts": 3,
                "targets": [{"regions": ["us-east-1"], "account_id": ACCOUNT_A}],
            },
            refresh={"interval_seconds": 0.3, "initial_retry_seconds": 0.2},
        )
        async with serving(settings) as client:
            await until(lambda: complete(client))
            before = await entities(client)
            assert len(before) == 3 + 1 + 12
            assert faults.stats()["calls"]["DescribeRepositories"] >= 3  # pages of 5, 5, 2
            faults.set(fail_next_token="5", fail_page_with=failure.removeprefix("http_"))

            async def failing() -> str | None:
                (status,) = (await client.get("/readyz")).json()["sources"]
                error = status["last_error"]
                return error if error and "describe_repositories" in error else None

            error = await until(failing)
            assert ("ThrottlingException" if failure == "throttle" else "InternalFailure") in error

            async def published_stale() -> dict[str, Any] | None:
                # The failure is published with the refresh that saw it: marked, not dropped.
                served = await entities(client)
                registry = served[f"ecr-{ACCOUNT_A}-us-east-1"]["metadata"]["annotations"]
                return served if "ecr-catalog.io/last-successful-read-at" in registry else None

            after = await until(published_stale)
            assert set(after) == set(before)
            injected = faults.stats()["injected"]
            assert injected[f"page_{failure.removeprefix('http_')}"] >= 3
            faults.clear()

            async def recovered() -> bool:
                (status,) = (await client.get("/readyz")).json()["sources"]
                return bool(status["healthy"])

            await until(recovered)
            assert set(await entities(client)) == set(before)
    finally:
        stop_process(faults.process)
        stop_process(fake)
