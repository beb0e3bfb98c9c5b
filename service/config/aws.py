"""The ``aws`` section: targets, network, clients, retries."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Literal, Self

from pydantic import Field, SecretStr, field_validator, model_validator

from ..errors import ConfigError
from ..model import SourceId
from .base import ACCOUNT, REGION, ROLE_ARN, Strict, check_url

__all__ = ["ENABLED_REGIONS", "AwsSettings", "OrganizationSettings", "TargetSettings"]

# organization.regions: ["enabled"] reads each account's enabled regions (account:ListRegions).
ENABLED_REGIONS = "enabled"
_OU = re.compile(r"^(ou-[0-9a-z]{4,32}-[a-z0-9]{8,32}|r-[0-9a-z]{4,32})$")
_ROLE_NAME = re.compile(r"^[\w+=,.@-]{1,64}$", re.ASCII)
_SESSION_NAME = re.compile(r"^[\w+=,.@-]{2,64}$", re.ASCII)


def _regions_check(regions: list[str]) -> list[str]:
    for region in regions:
        if not REGION.fullmatch(region):
            raise ValueError(f"{region!r} is not an AWS region name (e.g. us-east-1)")
    if len(set(regions)) != len(regions):
        raise ValueError("regions are listed more than once")
    return regions


def _accounts_check(accounts: list[str]) -> list[str]:
    for account in accounts:
        if not ACCOUNT.fullmatch(account):
            raise ValueError(f"{account!r} is not a 12-digit AWS account id")
    return accounts


class TargetSettings(Strict):
    """One set of credentials (ambient, or an assumed role) and the regions read with it."""

    regions: list[str] = Field(min_length=1)
    account_id: str | None = None
    role_arn: str | None = None
    # Treated as a secret: never logged or shown.
    external_id: SecretStr | None = None
    session_name: str = "ecr-catalog"

    @field_validator("regions")
    @classmethod
    def _regions_look_like_regions(cls, regions: list[str]) -> list[str]:
        return _regions_check(regions)

    @field_validator("account_id")
    @classmethod
    def _account_is_twelve_digits(cls, account_id: str | None) -> str | None:
        if account_id is not None:
            _accounts_check([account_id])
        return account_id

    @field_validator("role_arn")
    @classmethod
    def _role_arn_is_an_iam_role(cls, role_arn: str | None) -> str | None:
        if role_arn is not None and not ROLE_ARN.fullmatch(role_arn):
            raise ValueError(f"{role_arn!r} is not an IAM role ARN")
        return role_arn


class OrganizationSettings(Strict):
    """Every account of an AWS Organization, discovered and read with one role in each."""

    # Assumed in each member account: arn:<partition>:iam::<id>:role/<role_name>.
    role_name: str = "ecr-catalog-reader"
    external_id: SecretStr | None = None
    session_name: str = "ecr-catalog"
    # Or ["enabled"]: each account's enabled regions (account:ListRegions).
    regions: list[str] = Field(min_length=1)
    # Only accounts under these OUs, recursively; empty: the whole organisation.
    organizational_units: list[str] = Field(default_factory=list)
    include_accounts: list[str] = Field(default_factory=list)
    exclude_accounts: list[str] = Field(default_factory=list)
    # Assumed to call organizations:ListAccounts (the management or a delegated administrator
    # account); None: the service's own credentials.
    management_role_arn: str | None = None
    rediscover_seconds: float = Field(default=3600, gt=0)
    # Organizations calls (ListAccounts pages, ...) per second, at most, for the whole fleet:
    # each of partition.count partitions discovers on its own, at its share of this. AWS
    # throttles them at about 9 a second per organisation, whoever calls.
    calls_per_second: float = Field(default=8, gt=0, le=100)

    @field_validator("regions")
    @classmethod
    def _regions_or_enabled(cls, regions: list[str]) -> list[str]:
        if regions == [ENABLED_REGIONS]:
            return regions
        return _regions_check(regions)

    @field_validator("organizational_units")
    @classmethod
    def _are_ou_ids(cls, units: list[str]) -> list[str]:
        for unit in units:
            if not _OU.fullmatch(unit):
                raise ValueError(f"{unit!r} is not an OU id (ou-…) or a root id (r-…)")
        return units

    @field_validator("include_accounts", "exclude_accounts")
    @classmethod
    def _are_accounts(cls, accounts: list[str]) -> list[str]:
        return _accounts_check(accounts)

    @field_validator("role_name")
    @classmethod
    def _is_role_name(cls, name: str) -> str:
        if not _ROLE_NAME.fullmatch(name):
            raise ValueError(f"{name!r} is not an IAM role name")
        return name

    @field_validator("session_name")
    @classmethod
    def _is_session_name(cls, name: str) -> str:
        if not _SESSION_NAME.fullmatch(name):
            raise ValueError(f"{name!r} is not a role session name (2-64 of [\\w+=,.@-])")
        return name

    @field_validator("management_role_arn")
    @classmethod
    def _management_role_is_a_role(cls, role_arn: str | None) -> str | None:
        if role_arn is not None and not ROLE_ARN.fullmatch(role_arn):
            raise ValueError(f"{role_arn!r} is not an IAM role ARN")
        return role_arn

    @property
    def enabled_regions(self) -> bool:
        """Whether each account's enabled regions are read, rather than a fixed list."""
        return self.regions == [ENABLED_REGIONS]

    def wants(self, account: str) -> bool:
        """Whether the include and exclude lists let ``account`` be read."""
        if self.include_accounts and account not in self.include_accounts:
            return False
        return account not in self.exclude_accounts


class AwsSettings(Strict):
    """How the service reaches ECR."""

    # Every AWS service (ECR and STS) at one URL: moto, LocalStack. AWS_ENDPOINT_URL also works.
    endpoint_url: str | None = None
    # One URL per service, e.g. an ECR VPC interface endpoint; beats endpoint_url for its
    # service. AWS_ENDPOINT_URL_ECR and AWS_ENDPOINT_URL_STS also work, as in botocore.
    endpoint_urls: dict[Literal["ecr", "sts"], str] = Field(default_factory=dict)
    # Scheme to proxy URL, as botocore's Config(proxies=...) takes it; replaces HTTP_PROXY,
    # HTTPS_PROXY and NO_PROXY for every AWS call. May hold credentials: kept out of reprs.
    proxies: dict[Literal["http", "https"], str] | None = Field(default=None, repr=False)
    # The CA bundle to trust for every AWS call; otherwise what botocore would use
    # (AWS_CA_BUNDLE, then ca_bundle in the AWS config profile, then its own bundle).
    ca_bundle: Path | None = None
    targets: list[TargetSettings] = Field(default_factory=list)
    # Every account of an AWS Organization (see README, "Every account in the organisation").
    organization: OrganizationSettings | None = None
    # STS calls (AssumeRole for each discovered account) per second, at most.
    sts_calls_per_second: float = Field(default=20, gt=0)
    max_pool_connections: int = Field(default=32, ge=1, le=256)
    # Calls in flight per region. A read is bound by latency until ECR throttles, and then by
    # botocore's adaptive rate limiter, not by how many wait: so enough to hide the latency.
    # Kept no larger than the pool: requests are signed before they wait for a connection,
    # so more in flight than the pool holds ends in "Signature expired" (aiobotocore #662).
    concurrency: int = Field(default=32, ge=1, le=256)
    # Counts every request, the first included.
    total_max_attempts: int = Field(default=10, ge=1, le=50)
    # A ceiling of our own per API and region, below the account's throttling point: ECR's
    # quotas are shared with the CI pipelines that push and pull, and a catalog that runs into
    # them takes their headroom. None leaves pacing to botocore's adaptive limiter alone.
    max_calls_per_second: float | None = Field(default=None, gt=0)
    connect_timeout_seconds: float = Field(default=5.0, gt=0)
    read_timeout_seconds: float = Field(default=20.0, gt=0)

    @field_validator("endpoint_url")
    @classmethod
    def _endpoint_is_a_url(cls, url: str | None) -> str | None:
        return None if url is None else check_url(url, "aws.endpoint_url")

    @field_validator("endpoint_urls")
    @classmethod
    def _endpoints_are_urls(cls, urls: dict[str, str]) -> dict[str, str]:
        for service, url in urls.items():
            check_url(url, f"aws.endpoint_urls.{service}")
        return urls

    @field_validator("proxies")
    @classmethod
    def _proxies_are_urls(cls, proxies: dict[str, str] | None) -> dict[str, str] | None:
        for scheme, url in (proxies or {}).items():
            # The message never repeats the URL: it may hold a password.
            check_url(url, f"aws.proxies.{scheme}")
        return proxies

    @field_validator("ca_bundle")
    @classmethod
    def _ca_bundle_is_a_file(cls, path: Path | None) -> Path | None:
        if path is not None and not path.is_file():
            raise ValueError(f"{path} is not a readable file of CA certificates")
        return path

    @model_validator(mode="after")
    def _concurrency_fits_the_pool(self) -> Self:
        if self.concurrency > self.max_pool_connections:
            raise ValueError(
                f"concurrency ({self.concurrency}) must not exceed "
                f"max_pool_connections ({self.max_pool_connections})"
            )
        return self

    def resolved_targets(self, environ: dict[str, str] | None = None) -> list[TargetSettings]:
        """The configured targets; with neither targets nor an organization, one ambient
        target in AWS_REGION / AWS_DEFAULT_REGION."""
        if self.targets or self.organization is not None:
            return self.targets
        env = os.environ if environ is None else environ
        region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION")
        if not region:
            raise ConfigError(
                "no ECR region configured: set aws.targets in the config file, "
                "or AWS_REGION / AWS_DEFAULT_REGION"
            )
        return [TargetSettings(regions=[region])]

    def may_read(self, source: SourceId) -> bool:
        """Whether a target could name ``source``: its region, and its account if configured.

        Saved data of anything else belongs to a source that is no longer configured.
        """
        try:
            targets = self.resolved_targets()
        except ConfigError:
            return False
        organization = self.organization
        if organization is not None and (
            organization.enabled_regions or source.region in organization.regions
        ):
            return organization.wants(source.account_id)
        return any(
            source.region in target.regions
            and (target.account_id is None or target.account_id == source.account_id)
            for target in targets
        )
