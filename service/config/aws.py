"""The ``aws`` section: targets, network, clients, retries."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Literal, Self

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator

from ..errors import ConfigError
from ..model import SourceId
from .base import REGION, ROLE_ARN, AccountId, Strict, check_url

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


class TargetSettings(Strict):
    """One set of credentials (ambient, or an assumed role) and the regions read with it."""

    regions: list[str] = Field(min_length=1)
    """The regions read with these credentials, e.g. ``[us-east-1, eu-west-1]``."""
    account_id: AccountId | None = None
    """The account, as a quoted string of 12 digits. Checked against sts:GetCallerIdentity;
    when set, the sources are named even while STS is unreachable."""
    role_arn: str | None = None
    """A role to assume for this target (another account's read role); none: the ambient
    credentials (IRSA, Pod Identity, the instance role, ``AWS_*`` variables)."""
    external_id: SecretStr | None = None
    """The external id the role's trust policy requires. A secret: never logged or shown."""
    session_name: str = "ecr-catalog"
    """The role session name, as CloudTrail shows it."""

    @field_validator("regions")
    @classmethod
    def _regions_look_like_regions(cls, regions: list[str]) -> list[str]:
        return _regions_check(regions)

    @field_validator("role_arn")
    @classmethod
    def _role_arn_is_an_iam_role(cls, role_arn: str | None) -> str | None:
        if role_arn is not None and not ROLE_ARN.fullmatch(role_arn):
            raise ValueError(f"{role_arn!r} is not an IAM role ARN")
        return role_arn


class OrganizationSettings(Strict):
    """Every account of an AWS Organization, discovered and read with one role in each."""

    role_name: str = "ecr-catalog-reader"
    """The role assumed in each member account: ``arn:<partition>:iam::<id>:role/<role_name>``."""
    external_id: SecretStr | None = None
    """The external id the member roles' trust policy requires (the StackSet's ExternalId)."""
    session_name: str = "ecr-catalog"
    """The role session name, as CloudTrail shows it."""
    regions: list[str] = Field(min_length=1)
    """The regions read in every account, or ``["enabled"]``: each account's enabled regions
    (account:ListRegions)."""
    organizational_units: list[str] = Field(default_factory=list)
    """Only accounts under these OU ids (or root ids), recursively; empty: the whole
    organisation."""
    include_accounts: list[AccountId] = Field(default_factory=list)
    """Only these account ids; empty: every account."""
    exclude_accounts: list[AccountId] = Field(default_factory=list)
    """Account ids never read."""
    management_role_arn: str | None = None
    """A role assumed to list the accounts (in the management or a delegated administrator
    account); none: the service's own credentials."""
    rediscover_seconds: float = Field(default=3600, gt=0)
    """How often the accounts are listed again; ``POST /refresh`` also rediscovers at once."""
    calls_per_second: float = Field(default=8, gt=0, le=100)
    """Organizations calls (ListAccounts pages, ...) per second, at most, for the whole fleet:
    each of ``partition.count`` partitions discovers on its own, at its share of this. AWS
    throttles them at about 9 a second per organisation, whoever calls."""

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

    endpoint_url: str | None = None
    """Every AWS service (ECR and STS) at one URL: moto, LocalStack. ``AWS_ENDPOINT_URL`` also
    works."""
    endpoint_urls: dict[Literal["ecr", "sts"], str] = Field(default_factory=dict)
    """One URL per service (``ecr``, ``sts``), e.g. an ECR VPC interface endpoint; beats
    ``endpoint_url`` for its service. ``AWS_ENDPOINT_URL_ECR`` and ``AWS_ENDPOINT_URL_STS``
    also work, as in botocore."""
    # May hold credentials: kept out of reprs.
    proxies: dict[Literal["http", "https"], str] | None = Field(default=None, repr=False)
    """Scheme (``http``, ``https``) to proxy URL, as botocore's ``Config(proxies=...)`` takes
    it; replaces ``HTTP_PROXY``, ``HTTPS_PROXY`` and ``NO_PROXY`` for every AWS call. Its
    credentials are never logged or shown."""
    ca_bundle: Path | None = None
    """The CA bundle to trust for every AWS call; none: what botocore would use
    (``AWS_CA_BUNDLE``, then ``ca_bundle`` in the AWS config profile, then its own bundle)."""
    targets: list[TargetSettings] = Field(default_factory=list)
    """Sets of credentials and the regions read with each. With neither targets nor an
    organization: the ambient credentials in ``AWS_REGION`` / ``AWS_DEFAULT_REGION``."""
    extra_regions: list[str] = Field(default_factory=list)
    """Regions to take as known beside those of the installed botocore, whose list of regions
    is checked at start-up: for a region newer than it (e.g. ``[xx-newregion-1]``)."""
    organization: OrganizationSettings | None = None
    """Every account of an AWS Organization, discovered; off when absent."""
    sts_calls_per_second: float = Field(default=20, gt=0)
    """STS calls (AssumeRole for each discovered account) per second, at most."""
    max_pool_connections: int = Field(default=32, ge=1, le=256)
    """HTTP connections per AWS client."""
    # A read is bound by latency until ECR throttles, and then by botocore's adaptive rate
    # limiter, not by how many wait: so enough to hide the latency. Kept no larger than the
    # pool: requests are signed before they wait for a connection, so more in flight than the
    # pool holds ends in "Signature expired" (aiobotocore #662).
    concurrency: int = Field(default=32, ge=1, le=256)
    """AWS calls in flight per region; must not exceed ``max_pool_connections``."""
    total_max_attempts: int = Field(default=10, ge=1, le=50)
    """Attempts per AWS call in botocore's adaptive retry mode, the first included."""
    # ECR's quotas are shared with the CI pipelines that push and pull, and a catalog that runs
    # into them takes their headroom.
    max_calls_per_second: float | None = Field(default=None, gt=0)
    """A ceiling of our own per API and region, below the account's throttling point; none
    leaves pacing to botocore's adaptive rate limiter alone."""
    connect_timeout_seconds: float = Field(default=5.0, gt=0)
    """Seconds to open a connection to AWS."""
    read_timeout_seconds: float = Field(default=20.0, gt=0)
    """Seconds to wait for an AWS answer before the attempt counts as failed."""

    @field_validator("extra_regions")
    @classmethod
    def _extra_regions_look_like_regions(cls, regions: list[str]) -> list[str]:
        return _regions_check(regions)

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
        try:
            return [TargetSettings(regions=[region])]
        except ValidationError:
            raise ConfigError(
                f"environment: AWS_REGION / AWS_DEFAULT_REGION: {region!r} is not "
                "an AWS region name (e.g. us-east-1)"
            ) from None

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
