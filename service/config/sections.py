"""The sections of the settings other than ``aws``: catalog, cache, refresh, server, events."""

from __future__ import annotations

from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator

from ..names import (
    is_valid_dns_subdomain,
    is_valid_entity_name,
    is_valid_namespace,
    parse_entity_ref,
)
from .base import Strict, check_url
from .names import MAX_CONFIGURED_NAMES, check_configured_names

__all__ = [
    "BackstageSettings",
    "CacheSettings",
    "ClaimsSettings",
    "CatalogSettings",
    "EventsSettings",
    "POSTURE_CHECKS",
    "PostureSettings",
    "RefreshSettings",
    "SEVERITIES",
    "ServerSettings",
]


class CatalogSettings(Strict):
    """Names and conventions of the entities."""

    namespace: str = "default"
    owner: str = "platform-team"
    domain: str = "delivery"
    system: str = "container-registry"
    component: str = "ecr-registry"
    component_lifecycle: str = "production"
    # false: the Domain (or the System) is defined elsewhere, by another catalog file: the
    # service still refers to it by the name above, and emits no entity of its own for it.
    emit_domain: bool = True
    emit_system: bool = True
    domain_description: str = Field(
        default="Software delivery: build, publish, deploy.", min_length=1, max_length=1000
    )
    system_description: str = Field(
        default="The AWS ECR container registry and its repositories.",
        min_length=1,
        max_length=1000,
    )
    component_description: str = Field(
        default="AWS Elastic Container Registry.", min_length=1, max_length=1000
    )
    # Repository ARN -> entity name: the names other catalog files already use for single
    # repositories (`ecr-catalog names-from`); every other repository keeps its generated name.
    names: dict[str, str] = Field(default_factory=dict, max_length=MAX_CONFIGURED_NAMES)
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
    # A successful read that would remove more than this share of a source's repositories,
    # and at least max_removal_min of them, is held (service/snapshot/removals.py): Backstage
    # deletes what a 200 leaves out, and such a drop is more often a permissions change (an
    # SCP, a changed read role) than a real mass deletion. 100 turns the hold off.
    max_removal_percent: float = Field(default=50, ge=0, le=100)
    max_removal_min: int = Field(default=10, ge=1)
    # A held removal is applied after this long without an operator's confirmation: a day
    # leaves time for the alert to be seen.
    removal_hold_hours: float = Field(default=24, gt=0, le=24 * 365)

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
        if not is_valid_entity_name(name):
            raise ValueError(f"{name!r} is not a valid Backstage entity name")
        return name

    @field_validator("names")
    @classmethod
    def _are_names(cls, names: dict[str, str]) -> dict[str, str]:
        check_configured_names(names)
        return names

    @field_validator("namespace")
    @classmethod
    def _is_dns_label(cls, namespace: str) -> str:
        if not is_valid_namespace(namespace):
            raise ValueError(f"{namespace!r} is not a valid Backstage namespace")
        return namespace

    @field_validator("annotation_prefix")
    @classmethod
    def _is_dns_subdomain(cls, prefix: str) -> str:
        if not is_valid_dns_subdomain(prefix):
            raise ValueError(f"{prefix!r} is not a lower-case DNS subdomain")
        return prefix


class CacheSettings(Strict):
    """How long each kind of ECR answer is reused."""

    # The repository list of a source: by default read every refresh. A fleet of small
    # registries is mostly listings; a few minutes here makes them a fraction of its calls,
    # and push events and forced refreshes still list at once (see README, "Fleets").
    repositories_ttl_seconds: float = Field(default=0, ge=0)
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


class RefreshSettings(Strict):
    """The background refresh."""

    interval_seconds: float = Field(default=60, gt=0)
    # A refresh that runs longer is abandoned, so a hung source cannot hold the lock for ever.
    deadline_seconds: float = Field(default=120, gt=0)
    # Until the first snapshot exists, failed reads are retried sooner than the interval.
    initial_retry_seconds: float = Field(default=5, gt=0)


class ServerSettings(Strict):
    """The HTTP listener."""

    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    # POST /refresh is off (404) unless a token is set; callers send it as a Bearer token.
    refresh_token: SecretStr | None = None
    # At most one forced refresh per this many seconds; more get 429.
    refresh_min_interval_seconds: float = Field(default=10, ge=0)
    # Longer request targets (path and query) get 414 before any routing.
    max_url_length: int = Field(default=8192, ge=256)
    # Larger header blocks get 431. With max_url_length, also bounds how much of an unfinished
    # request head the parser holds (service/web/server.py).
    max_header_bytes: int = Field(default=16384, ge=1024)
    # The filtered bodies kept for reuse, in bytes, across snapshots; 0 keeps none.
    filtered_cache_bytes: int = Field(default=32_000_000, ge=0)
    # The filtered bodies being sent, in bytes, beyond one: a client that never reads holds its
    # body until it goes away, so past this a new filtered view answers 503 until some are sent.
    filtered_sending_bytes: int = Field(default=64_000_000, ge=0)


class EventsSettings(Strict):
    """POST /events/ecr: ECR push, delete and scan events from EventBridge."""

    # The endpoint is off (404) unless a token is set; EventBridge's connection sends it as
    # ``Authorization: Bearer <token>``.
    token: SecretStr | None = None
    # Events within this many seconds of each other share one refresh.
    debounce_seconds: float = Field(default=2.0, ge=0, le=300)
    # Larger bodies get 413; an EventBridge event is at most 256 KB.
    max_body_bytes: int = Field(default=262_144, ge=1024, le=1_048_576)


class ClaimsSettings(Strict):
    """Which Backstage entities claim repositories, and how often they are read."""

    # Each value: comma-separated repository ARNs (matched exactly) or names (in every source).
    annotations: list[str] = Field(
        default_factory=lambda: ["aws.amazon.com/amazon-ecr-arn", "ecr-catalog.io/repositories"]
    )
    interval_seconds: float = Field(default=300, ge=5)

    @field_validator("annotations")
    @classmethod
    def _are_annotation_keys(cls, keys: list[str]) -> list[str]:
        for key in keys:
            # Backstage's catalog filters match keys in lower case; a key with "=" or ","
            # cannot be put in a filter at all.
            if not key or key != key.strip() or any(c in key for c in "=,&") or key != key.lower():
                raise ValueError(f"{key!r} is not a lower-case annotation key a filter can name")
        return keys


class BackstageSettings(Strict):
    """The way back to Backstage: refresh requests after a change, and claims (README,
    "Connected to Backstage both ways"). Off while ``base_url`` is unset."""

    base_url: str | None = None
    # A static external-access token (backend.auth.externalAccess); sent as a Bearer token.
    token: SecretStr | None = None
    refresh_on_change: bool = True
    refresh_min_interval_seconds: float = Field(default=5, ge=0)
    claims: ClaimsSettings = Field(default_factory=ClaimsSettings)

    @field_validator("base_url")
    @classmethod
    def _is_url(cls, url: str | None) -> str | None:
        if url is None:
            return None
        if "@" in urlsplit(url).netloc:
            # It is shown on /readyz and the operator page: credentials go in ``token``.
            raise ValueError("backstage.base_url must not hold credentials; set backstage.token")
        return check_url(url, "backstage.base_url").rstrip("/")

    @field_validator("token")
    @classmethod
    def _is_header_safe(cls, token: SecretStr | None) -> SecretStr | None:
        if token is None:
            return None
        # A Secret mounted from a file often ends in a newline; an HTTP library that refuses
        # the header would quote it in its error.
        value = token.get_secret_value().strip()
        if not value or any(c.isspace() or not c.isprintable() for c in value):
            raise ValueError("backstage.token must be one word of printable characters")
        return SecretStr(value)


POSTURE_CHECKS = (
    "scanning",
    "tag-immutability",
    "lifecycle-policy",
    "encryption",
    "latest-image",
    "stale",
)
SEVERITIES = ("INFORMATIONAL", "LOW", "MEDIUM", "HIGH", "CRITICAL")


class PostureSettings(Strict):
    """Which posture checks each repository gets, and their thresholds (README, "Posture")."""

    checks: list[str] = Field(default_factory=lambda: list(POSTURE_CHECKS))
    # The encryption check passes only KMS; without this it is not made at all.
    require_kms: bool = False
    # The latest image fails at a finding of this severity or above.
    max_severity: str = "HIGH"
    # Stale: nobody has pulled in this many days (null: not checked) ...
    stale_pull_days: int | None = Field(default=90, ge=1)
    # ... or nobody has pushed in this many days (null: not checked).
    stale_push_days: int | None = Field(default=None, ge=1)

    @field_validator("checks")
    @classmethod
    def _are_checks(cls, checks: list[str]) -> list[str]:
        unknown = [check for check in checks if check not in POSTURE_CHECKS]
        if unknown:
            raise ValueError(f"unknown check(s) {unknown}; the checks are {list(POSTURE_CHECKS)}")
        return checks

    @field_validator("max_severity")
    @classmethod
    def _is_severity(cls, severity: str) -> str:
        if severity.upper() not in SEVERITIES:
            raise ValueError(f"{severity!r} is not one of {list(SEVERITIES)}")
        return severity.upper()
