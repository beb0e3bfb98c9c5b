"""Settings: the one configuration object, loaded from a YAML file and ``ECR_CATALOG_*`` variables.

Precedence, highest first: explicit arguments, environment variables, the YAML file, defaults.
Everything is validated here, at startup, so a bad file fails before any AWS call is made.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal, Self
from urllib.parse import urlsplit

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    InitSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from .model import SourceId
from .reading import ReaderSettings, ReadTarget
from .validate import parse_entity_ref

__all__ = [
    "AwsSettings",
    "CacheSettings",
    "CatalogSettings",
    "ConfigError",
    "EventsSettings",
    "RefreshSettings",
    "ServerSettings",
    "Settings",
    "TargetSettings",
    "load_settings",
]

ENV_PREFIX = "ECR_CATALOG_"
CONFIG_ENV_VAR = "ECR_CATALOG_CONFIG"

# Every partition's regions: us-east-1, cn-north-1, us-gov-west-1, us-isob-east-1, eusc-de-east-1.
_REGION = re.compile(r"^[a-z]{2,4}(-[a-z]+)+-\d{1,2}$")
_ACCOUNT = re.compile(r"^\d{12}$")
_ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]{1,512}$")
# Backstage's entity-name rule; configured names are checked against it up front.
_ENTITY_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


class ConfigError(Exception):
    """The configuration file cannot be read or parsed."""


class _Strict(BaseModel):
    # A misspelt key is an error, not a silently ignored default.
    model_config = ConfigDict(extra="forbid", frozen=True)


class TargetSettings(_Strict):
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
        for region in regions:
            if not _REGION.match(region):
                raise ValueError(f"{region!r} is not an AWS region name (e.g. us-east-1)")
        if len(set(regions)) != len(regions):
            raise ValueError("regions are listed more than once")
        return regions

    @field_validator("account_id")
    @classmethod
    def _account_is_twelve_digits(cls, account_id: str | None) -> str | None:
        if account_id is not None and not _ACCOUNT.match(account_id):
            raise ValueError(f"{account_id!r} is not a 12-digit AWS account id")
        return account_id

    @field_validator("role_arn")
    @classmethod
    def _role_arn_is_an_iam_role(cls, role_arn: str | None) -> str | None:
        if role_arn is not None and not _ROLE_ARN.match(role_arn):
            raise ValueError(f"{role_arn!r} is not an IAM role ARN")
        return role_arn


def _check_url(url: str, what: str, schemes: tuple[str, ...] = ("http", "https")) -> str:
    parts = urlsplit(url)
    if parts.scheme not in schemes or not parts.hostname:
        raise ValueError(f"{what} must be an {' or '.join(schemes)} URL with a host")
    return url


class AwsSettings(_Strict):
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
    # lean: ECR's JSON protocol through service/wire.py; botocore: every ECR call through
    # aiobotocore itself, for any environment the lean client does not cover.
    client: Literal["lean", "botocore"] = "lean"
    targets: list[TargetSettings] = Field(default_factory=list)
    max_pool_connections: int = Field(default=10, ge=1, le=256)
    # Kept no larger than the pool: requests are signed before they wait for a connection,
    # so more in flight than the pool holds ends in "Signature expired" (aiobotocore #662).
    concurrency: int = Field(default=10, ge=1, le=256)
    # Counts every request, the first included.
    total_max_attempts: int = Field(default=10, ge=1, le=50)
    # A ceiling of our own per API and region, below the account's throttling point: ECR's
    # quotas are shared with the CI pipelines that push and pull, and a catalog that runs into
    # them takes their headroom. None leaves pacing to the adaptive limiter alone.
    max_calls_per_second: float | None = Field(default=None, gt=0)
    connect_timeout_seconds: float = Field(default=5.0, gt=0)
    read_timeout_seconds: float = Field(default=20.0, gt=0)
    # `serve` reads ECR in a child process (service/reader_process.py), so that refreshes take
    # no time from serving; false reads on the serving loop, in one process.
    reader_process: bool = True

    @field_validator("endpoint_url")
    @classmethod
    def _endpoint_is_a_url(cls, url: str | None) -> str | None:
        return None if url is None else _check_url(url, "aws.endpoint_url")

    @field_validator("endpoint_urls")
    @classmethod
    def _endpoints_are_urls(cls, urls: dict[str, str]) -> dict[str, str]:
        for service, url in urls.items():
            _check_url(url, f"aws.endpoint_urls.{service}")
        return urls

    @field_validator("proxies")
    @classmethod
    def _proxies_are_urls(cls, proxies: dict[str, str] | None) -> dict[str, str] | None:
        for scheme, url in (proxies or {}).items():
            # The message never repeats the URL: it may hold a password.
            _check_url(url, f"aws.proxies.{scheme}")
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
        """The configured targets, or one ambient target in AWS_REGION / AWS_DEFAULT_REGION."""
        if self.targets:
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
        return any(
            source.region in target.regions
            and (target.account_id is None or target.account_id == source.account_id)
            for target in targets
        )


class CatalogSettings(_Strict):
    """Names and conventions of the entities; the defaults follow ADR-0132."""

    namespace: str = "default"
    owner: str = "platform-team"
    domain: str = "delivery"
    system: str = "container-registry"
    component: str = "ecr-registry"
    component_lifecycle: str = "production"
    annotation_prefix: str = "ecr-catalog.io"
    owner_tag_keys: list[str] = Field(default_factory=lambda: ["backstage.io/owner", "owner"])
    component_tag_keys: list[str] = Field(
        default_factory=lambda: ["backstage.io/component", "component"]
    )
    description_tag_keys: list[str] = Field(default_factory=lambda: ["description"])
    backstage_tags_tag_keys: list[str] = Field(default_factory=lambda: ["backstage.io/tags"])
    label_tag_keys: list[str] = Field(
        default_factory=lambda: ["team", "environment", "env", "cost-center", "project"]
    )
    # Most entities per shard URL of a source (see README, "One URL or many").
    shard_size: int = Field(default=1000, ge=10, le=100_000)

    @field_validator("owner")
    @classmethod
    def _is_owner_ref(cls, owner: str) -> str:
        ref = parse_entity_ref(owner, default_kind="group", default_namespace="default")
        if ref is None or ref.kind not in ("group", "user"):
            raise ValueError(f"{owner!r} is not a group or user entity ref")
        return owner

    @field_validator("domain", "system", "component")
    @classmethod
    def _is_entity_name(cls, name: str) -> str:
        if len(name) > 63 or not _ENTITY_NAME.match(name):
            raise ValueError(f"{name!r} is not a valid Backstage entity name")
        return name

    @field_validator("namespace")
    @classmethod
    def _is_dns_label(cls, namespace: str) -> str:
        if len(namespace) > 63 or not re.match(r"^[a-z0-9]+(-[a-z0-9]+)*$", namespace):
            raise ValueError(f"{namespace!r} is not a valid Backstage namespace")
        return namespace

    @field_validator("annotation_prefix")
    @classmethod
    def _is_dns_subdomain(cls, prefix: str) -> str:
        if len(prefix) > 253 or not _DNS_SUBDOMAIN.match(prefix):
            raise ValueError(f"{prefix!r} is not a lower-case DNS subdomain")
        return prefix


class CacheSettings(_Strict):
    """How long each kind of ECR answer is reused; the repository list is read every refresh."""

    images_ttl_seconds: float = Field(default=600, ge=0)
    tags_ttl_seconds: float = Field(default=3600, ge=0)
    lifecycle_policy_ttl_seconds: float = Field(default=21600, ge=0)
    registry_ttl_seconds: float = Field(default=21600, ge=0)
    # The latest image's scan findings, when DescribeImages does not carry them (enhanced
    # scanning); by digest, so a new latest image is read at once.
    findings_ttl_seconds: float = Field(default=3600, ge=0)
    # Each entry lives ttl * (1 - jitter * random()), so entries cached together expire apart.
    jitter: float = Field(default=0.1, ge=0, lt=1)
    max_entries: int = Field(default=200_000, ge=100)


class RefreshSettings(_Strict):
    """The background refresh."""

    interval_seconds: float = Field(default=60, gt=0)
    # A refresh that runs longer is abandoned, so a hung source cannot hold the lock for ever.
    deadline_seconds: float = Field(default=120, gt=0)
    # Until the first snapshot exists, failed reads are retried sooner than the interval.
    initial_retry_seconds: float = Field(default=5, gt=0)


class ServerSettings(_Strict):
    """The HTTP listener."""

    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    # POST /refresh is off (404) unless a token is set; callers send it as a Bearer token.
    refresh_token: SecretStr | None = None
    # At most one forced refresh per this many seconds; more get 429.
    refresh_min_interval_seconds: float = Field(default=10, ge=0)
    # Longer request targets (path and query) get 414 before any routing.
    max_url_length: int = Field(default=8192, ge=256)
    # Larger header blocks get 431.
    max_header_bytes: int = Field(default=16384, ge=1024)


class EventsSettings(_Strict):
    """POST /events/ecr: ECR push, delete and scan events from EventBridge."""

    # The endpoint is off (404) unless a token is set; EventBridge's connection sends it as
    # ``Authorization: Bearer <token>``.
    token: SecretStr | None = None
    # Events within this many seconds of each other share one refresh.
    debounce_seconds: float = Field(default=2.0, ge=0, le=300)
    # Larger bodies get 413; an EventBridge event is at most 256 KB.
    max_body_bytes: int = Field(default=262_144, ge=1024, le=1_048_576)


class Settings(BaseSettings):
    """All of the service's configuration."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        extra="forbid",
        frozen=True,
    )

    aws: AwsSettings = Field(default_factory=AwsSettings)
    catalog: CatalogSettings = Field(default_factory=CatalogSettings)
    cache: CacheSettings = Field(default_factory=CacheSettings)
    refresh: RefreshSettings = Field(default_factory=RefreshSettings)
    server: ServerSettings = Field(default_factory=ServerSettings)
    events: EventsSettings = Field(default_factory=EventsSettings)
    # "json" writes one JSON object per log line, for log shippers; "text" is for people.
    log_format: Literal["text", "json"] = "text"
    # Where each source's last good data is kept across restarts; None keeps it in memory only.
    state_dir: Path | None = None

    def reader_settings(self, environ: dict[str, str] | None = None) -> ReaderSettings:
        """The ECR reader's part, as plain data; raises ConfigError when no region is known."""
        targets = tuple(
            ReadTarget(
                regions=tuple(target.regions),
                account_id=target.account_id,
                role_arn=target.role_arn,
                external_id=target.external_id.get_secret_value() if target.external_id else None,
                session_name=target.session_name,
            )
            for target in self.aws.resolved_targets(environ)
        )
        aws = self.aws.model_dump(exclude={"targets", "reader_process", "ca_bundle"})
        return ReaderSettings(
            targets=targets,
            ca_bundle=str(self.aws.ca_bundle) if self.aws.ca_bundle else None,
            **aws,
            **self.cache.model_dump(),
            log_format=self.log_format,
        )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # No .env or secrets-dir reading: the file and the environment are the whole story.
        return init_settings, env_settings


class _FileSource(InitSettingsSource):
    """The YAML file's contents, ranked below the environment."""


def _read_config_file(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror or exc}") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping at the top level")
    return data


def load_settings(
    config_file: Path | None = None,
    environ: dict[str, str] | None = None,
    **overrides: Any,
) -> Settings:
    """Build Settings from the config file (``--config`` or ECR_CATALOG_CONFIG) and environment.

    Raises ConfigError for an unreadable file and pydantic.ValidationError for bad values.
    """
    env = os.environ if environ is None else environ
    if config_file is None and env.get(CONFIG_ENV_VAR):
        config_file = Path(env[CONFIG_ENV_VAR])
    file_data = _read_config_file(config_file) if config_file is not None else {}

    class _FileBackedSettings(Settings):
        @classmethod
        def settings_customise_sources(
            cls,
            settings_cls: type[BaseSettings],
            init_settings: PydanticBaseSettingsSource,
            env_settings: PydanticBaseSettingsSource,
            dotenv_settings: PydanticBaseSettingsSource,
            file_secret_settings: PydanticBaseSettingsSource,
        ) -> tuple[PydanticBaseSettingsSource, ...]:
            return init_settings, env_settings, _FileSource(settings_cls, file_data)

    loaded = _FileBackedSettings(**overrides)
    return Settings.model_validate(loaded.model_dump())
