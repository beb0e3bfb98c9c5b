"""Every account of an organisation: moto's Organizations, a role assumed in each account.

moto keeps ECR state per account, and AssumeRole into ``arn:aws:iam::<id>:role/...`` gives
credentials it treats as that account, so each member account here has repositories of its
own. The fault proxy in front of moto refuses one account's role and takes Organizations down.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest

from service.aws.roster import Roster
from service.config import Settings
from service.demo import DemoRepository, seed_registry

from ..support import (
    FaultProxy,
    MotoServer,
    assume_role_credentials,
    start_fake_ecr,
    stop_process,
    until_true,
)
from .test_sources import entities, serving

ROLE = "ecr-catalog-reader"
MANAGEMENT = "123456789012"
ORGANIZATIONS = "AWSOrganizationsV20161128."


@dataclass
class Org:
    """A moto organisation: OUs by name, accounts by name."""

    moto: MotoServer
    client: Any
    root: str
    units: dict[str, str]
    accounts: dict[str, str]

    def account(self, name: str, unit: str, repositories: int = 2) -> str:
        created = self.client.create_account(Email=f"{name}@example.com", AccountName=name)
        account = str(created["CreateAccountStatus"]["AccountId"])
        self.client.move_account(
            AccountId=account, SourceParentId=self.root, DestinationParentId=self.units[unit]
        )
        self.accounts[name] = account
        key, secret, token = assume_role_credentials(
            self.moto.url, f"arn:aws:iam::{account}:role/{ROLE}"
        )
        seed_registry(
            self.moto.url,
            [
                DemoRepository(name=f"{name}/app-{index}", region="us-east-1")
                for index in range(repositories)
            ],
            credentials=(key, secret),
            session_token=token,
        )
        return account

    def role(self, name: str) -> str:
        return f"arn:aws:iam::{self.accounts[name]}:role/{ROLE}"


@pytest.fixture
def org(moto: MotoServer) -> Org:
    client = boto3.client(
        "organizations",
        region_name="us-east-1",
        endpoint_url=moto.url,
        aws_access_key_id="demo-access-key",
        aws_secret_access_key="demo-secret-key",
    )
    client.create_organization(FeatureSet="ALL")
    root = str(client.list_roots()["Roots"][0]["Id"])
    units: dict[str, str] = {}
    for name, parent in (("prod", None), ("dev", None), ("team", "prod"), ("parking", None)):
        parent_id = units[parent] if parent else root
        unit = client.create_organizational_unit(ParentId=parent_id, Name=name)
        units[name] = str(unit["OrganizationalUnit"]["Id"])
    organization = Org(moto, client, root, units, {})
    organization.account("alpha", "prod")
    organization.account("beta", "dev")
    organization.account("gamma", "team")
    organization.account("closed", "prod")
    client.close_account(AccountId=organization.accounts["closed"])
    return organization


def settings_for(proxy: FaultProxy, state_dir: Path | None = None, **organization: Any) -> Settings:
    return Settings(
        aws={
            "endpoint_url": proxy.url,
            "total_max_attempts": 1,
            "connect_timeout_seconds": 1,
            "read_timeout_seconds": 5,
            "organization": {
                "role_name": ROLE,
                "regions": ["us-east-1"],
                "exclude_accounts": [MANAGEMENT],
                **organization,
            },
        },
        refresh={"interval_seconds": 0.3, "initial_retry_seconds": 0.2},
        state_dir=state_dir,
    )


def accounts_served(served: dict[str, dict[str, Any]]) -> set[str]:
    return {
        entity["metadata"]["labels"]["ecr-catalog.io/account"]
        for entity in served.values()
        if entity["spec"].get("type") == "ecr-repository"
    }


async def readiness(client: httpx.AsyncClient) -> dict[str, Any]:
    body: dict[str, Any] = (await client.get("/readyz")).json()
    return body


async def sources_healthy(client: httpx.AsyncClient, accounts: set[str]) -> bool:
    body = await readiness(client)
    return accounts <= {s["account"] for s in body["sources"] if s["healthy"]}


async def sources_read(client: httpx.AsyncClient, accounts: set[str]) -> bool:
    """Every one of ``accounts`` read, and a snapshot with them published."""
    if not await sources_healthy(client, accounts):
        return False
    response = await client.get("/entities.json")
    return response.status_code == 200 and accounts <= accounts_served(
        {e["metadata"]["name"]: e for e in response.json()["items"]}
    )


async def test_every_active_account_of_the_organisation_is_read(
    org: Org, proxy: FaultProxy
) -> None:
    active = {org.accounts[name] for name in ("alpha", "beta", "gamma")}
    async with serving(settings_for(proxy)) as client:
        await until_true(lambda: sources_read(client, active), "every active account read")
        served = await entities(client)
        body = await readiness(client)
    assert accounts_served(served) == active
    # Names as for an explicit target: moving an account into discovery renames nothing.
    alpha = org.accounts["alpha"]
    assert f"alpha--app-0.us-east-1.{alpha}" in served
    assert f"ecr-{alpha}-us-east-1" in served
    assert body["discovery"]["accounts"] == 3 and body["discovery"]["last_error"] is None
    # The suspended account is not read at all.
    assert org.accounts["closed"] not in {s["account"] for s in body["sources"]}


async def test_one_ou_is_read_recursively(org: Org, proxy: FaultProxy) -> None:
    settings = settings_for(proxy, organizational_units=[org.units["prod"]])
    wanted = {org.accounts["alpha"], org.accounts["gamma"]}
    async with serving(settings) as client:
        await until_true(lambda: sources_read(client, wanted), "the OU's accounts read")
        served = await entities(client)
    assert accounts_served(served) == wanted


async def test_include_and_exclude(org: Org, proxy: FaultProxy) -> None:
    alpha, beta, gamma = (org.accounts[name] for name in ("alpha", "beta", "gamma"))
    settings = settings_for(proxy, include_accounts=[alpha, beta], exclude_accounts=[beta])
    async with serving(settings) as client:
        await until_true(lambda: sources_read(client, {alpha}), "alpha read")
        served = await entities(client)
        listed = {s["account"] for s in (await readiness(client))["sources"]}
    assert accounts_served(served) == {alpha}
    assert listed == {alpha} and gamma not in listed


async def test_an_account_whose_role_cannot_be_assumed_fails_alone(
    org: Org, proxy: FaultProxy
) -> None:
    proxy.set(deny_assume_roles=[org.role("beta")])
    others = {org.accounts["alpha"], org.accounts["gamma"]}
    async with serving(settings_for(proxy)) as client:
        await until_true(lambda: sources_healthy(client, others), "the other accounts read")

        async def beta_failing() -> str | None:
            for status in (await readiness(client))["sources"]:
                if status["account"] == org.accounts["beta"] and status["last_error"]:
                    return str(status["last_error"])
            return None

        error = await until_true(beta_failing, "beta's failure on /readyz")

        async def alpha_served() -> httpx.Response | None:
            # A read's status is set when it ends; its data is served once the refresh that
            # read it has published.
            url = f"/sources/{org.accounts['alpha']}/us-east-1/entities.yaml"
            response = await client.get(url)
            return response if response.status_code == 200 else None

        alpha = await until_true(alpha_served, "alpha served on its own URL")
        beta = await client.get(f"/sources/{org.accounts['beta']}/us-east-1/entities.yaml")
        single = await client.get("/entities.yaml")
    assert "AssumeRole" in error and org.role("beta") in error and "AccessDenied" in error
    assert org.accounts["beta"] in error
    # The others are served on their own URLs; the single URL waits for beta's first read.
    assert alpha.status_code == 200 and "alpha--app-0" in alpha.text
    assert beta.status_code == 503 and single.status_code == 503


async def test_a_restart_while_organizations_is_down_reads_every_saved_account(
    org: Org, proxy: FaultProxy, tmp_path: Path
) -> None:
    active = {org.accounts[name] for name in ("alpha", "beta", "gamma")}
    async with serving(settings_for(proxy, state_dir=tmp_path)) as client:
        await until_true(lambda: sources_read(client, active), "every account read")
        before = await entities(client)
    assert (tmp_path / "organization" / "roster.json").is_file()
    proxy.set(unavailable_targets=[ORGANIZATIONS])
    async with serving(settings_for(proxy, state_dir=tmp_path)) as client:
        await until_true(lambda: sources_read(client, active), "every saved account read again")

        async def discovery_failed() -> dict[str, Any] | None:
            discovery = (await readiness(client))["discovery"]
            return discovery if discovery and discovery["last_error"] else None

        discovery = await until_true(discovery_failed, "the failed discovery on /readyz")
        after = await entities(client)
        metrics = (await client.get("/metrics")).text
    assert set(after) == set(before)
    assert discovery["accounts"] == 3 and "ServiceUnavailable" in discovery["last_error"]
    assert 'ecr_catalog_discoveries_total{outcome="failed"}' in metrics
    assert proxy.stats()["injected"]["unavailable"] >= 1


async def test_a_corrupt_roster_is_set_aside_and_the_organisation_discovered_again(
    org: Org, proxy: FaultProxy, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    roster = tmp_path / "organization" / "roster.json"
    roster.parent.mkdir()
    # Deeper than Python's json module recurses: once a RecursionError that stopped start-up.
    roster.write_bytes(b"[" * 100_000)
    active = {org.accounts[name] for name in ("alpha", "beta", "gamma")}
    async with serving(settings_for(proxy, state_dir=tmp_path)) as client:
        await until_true(lambda: sources_read(client, active), "every account read")
    assert (tmp_path / "organization" / "roster.corrupt").read_bytes() == b"[" * 100_000
    assert f"organisation roster {roster} is unreadable and set aside" in caplog.text
    assert Roster.from_json(roster.read_bytes()).accounts == tuple(sorted(active))


async def test_organizations_down_later_keeps_every_account(org: Org, proxy: FaultProxy) -> None:
    active = {org.accounts[name] for name in ("alpha", "beta", "gamma")}
    async with serving(settings_for(proxy, rediscover_seconds=0.2)) as client:
        await until_true(lambda: sources_read(client, active), "every account read")
        proxy.set(unavailable_targets=[ORGANIZATIONS])

        async def failures() -> int:
            discovery = (await readiness(client))["discovery"]
            return int(discovery["failures"]) if discovery["failures"] >= 2 else 0

        await until_true(failures, "two failed discoveries")
        assert accounts_served(await entities(client)) == active


async def test_a_new_account_arrives_and_a_moved_one_leaves_after_two_discoveries(
    org: Org, proxy: FaultProxy, caplog: pytest.LogCaptureFixture
) -> None:
    settings = settings_for(
        proxy, organizational_units=[org.units["prod"], org.units["dev"]], rediscover_seconds=0.5
    )
    async with serving(settings) as client:
        await until_true(
            lambda: sources_read(client, {org.accounts[n] for n in ("alpha", "beta", "gamma")}),
            "the accounts read",
        )
        delta = org.account("delta", "dev", repositories=3)
        await until_true(lambda: sources_read(client, {delta}), "the new account read")
        assert delta in accounts_served(await entities(client))

        caplog.set_level(logging.INFO)
        beta = org.accounts["beta"]
        org.client.move_account(
            AccountId=beta,
            SourceParentId=org.units["dev"],
            DestinationParentId=org.units["parking"],
        )

        async def leaving() -> bool:
            return beta in (await readiness(client))["discovery"]["leaving"]

        await until_true(leaving, "beta missed once")
        # Missed once: still read and served.
        assert beta in accounts_served(await entities(client))

        async def gone() -> bool:
            return beta not in accounts_served(await entities(client))

        await until_true(gone, "beta gone after the second discovery")
    assert (
        f"account {beta} left the organisation: 1 source(s) and 3 entities leave the catalog"
        in caplog.text
    )


async def test_an_account_also_configured_as_a_target_is_read_once_with_its_settings(
    org: Org, proxy: FaultProxy
) -> None:
    alpha, beta = org.accounts["alpha"], org.accounts["beta"]
    settings = settings_for(proxy)
    settings = Settings(
        aws={
            **settings.aws.model_dump(exclude={"targets"}),
            # The explicit target reads alpha in two regions; discovery alone reads one.
            "targets": [
                {
                    "role_arn": org.role("alpha"),
                    "account_id": alpha,
                    "regions": ["us-east-1", "eu-west-1"],
                }
            ],
        },
        refresh=settings.refresh.model_dump(),
    )
    async with serving(settings) as client:
        await until_true(lambda: sources_read(client, {alpha, beta}), "alpha and beta read")
        listed = [(s["account"], s["region"]) for s in (await readiness(client))["sources"]]
    assert sorted(s for s in listed if s[0] == alpha) == [
        (alpha, "eu-west-1"),
        (alpha, "us-east-1"),
    ]
    assert [s for s in listed if s[0] == beta] == [(beta, "us-east-1")]


async def test_enabled_regions_come_from_each_account_and_one_pool_serves_a_region() -> None:
    """The fake ECR: three member accounts over two regions; ``regions: ["enabled"]``."""
    fake, url = start_fake_ecr("--accounts", "3", "--regions", "2", "--repositories", "4")
    try:
        settings = Settings(
            aws={
                "endpoint_url": url,
                "total_max_attempts": 1,
                "organization": {"role_name": ROLE, "regions": ["enabled"]},
            },
            refresh={"interval_seconds": 30},
        )
        members = {f"{100_000_000_000 + n}" for n in (1, 2, 3)}
        async with serving(settings) as client:
            await until_true(lambda: sources_read(client, members), "every member read")
            body = await readiness(client)
        stats = httpx.get(f"{url}/__stats__").json()  # noqa: ASYNC210 - the server is over
    finally:
        stop_process(fake)
    regions = {(s["account"], s["region"]) for s in body["sources"] if s["account"] in members}
    assert regions == {(a, r) for a in members for r in ("us-east-1", "eu-west-1")}
    # One ListRegions and one AssumeRole per account, whatever its number of regions.
    assert stats["calls"]["account:ListRegions"] == 4  # the management account is listed too
    assert stats["calls"]["sts:AssumeRole"] == 4


async def test_the_accounts_are_listed_through_the_management_role(
    org: Org, proxy: FaultProxy
) -> None:
    management = f"arn:aws:iam::{MANAGEMENT}:role/ecr-catalog-organization"
    proxy.set(deny_assume_roles=[management])
    active = {org.accounts[name] for name in ("alpha", "beta", "gamma")}
    async with serving(settings_for(proxy, management_role_arn=management)) as client:

        async def discovery_error() -> str | None:
            discovery = (await readiness(client))["discovery"]
            return discovery["last_error"] if discovery else None

        error = await until_true(discovery_error, "the refused management role")
        refused = await client.get("/entities.json")
        body = await readiness(client)
    # Listing goes through the role, so a refused role lists nothing: never an empty 200.
    assert "AssumeRole" in error and "AccessDenied" in error and management in error
    assert refused.status_code == 503
    assert body["unresolved_targets"] == [
        f"cannot tell which accounts the organisation has: {error}"
    ]
    proxy.set(deny_assume_roles=[])
    async with serving(settings_for(proxy, management_role_arn=management)) as client:
        await until_true(lambda: sources_read(client, active), "every account read")
