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
    """The Backstage namespace of every entity served."""
    owner: str = "platform-team"
    """The default owner, a group or user ref; a repository's owner tag or its claimers win."""
    domain: str = "delivery"
    """The name of the Domain entity."""
    system: str = "container-registry"
    """The name of the System entity, which every registry and repository is part of."""
    component: str = "ecr-registry"
    """The name of the Component entity of ECR itself."""
    component_lifecycle: str = "production"
    """The Component's ``spec.lifecycle``."""
    emit_domain: bool = True
    """false: the Domain is defined elsewhere, by another catalog file. The service still
    refers to it by ``catalog.domain`` and emits no entity of its own for it."""
    emit_system: bool = True
    """false: the System is defined elsewhere, by another catalog file. The service still
    refers to it by ``catalog.system`` and emits no entity of its own for it."""
    domain_description: str = Field(
        default="Software delivery: build, publish, deploy.", min_length=1, max_length=1000
    )
    """The Domain's ``metadata.description``."""
    system_description: str = Field(
        default="The AWS ECR container registry and its repositories.",
        min_length=1,
        max_length=1000,
    )
    """The System's ``metadata.description``."""
    component_description: str = Field(
        default="AWS Elastic Container Registry.", min_length=1, max_length=1000
    )
    """The Component's ``metadata.description``."""
    names: dict[str, str] = Field(default_factory=dict, max_length=MAX_CONFIGURED_NAMES)
    """Repository ARN -> entity name: the names other catalog files already use for single
    repositories (print them with ``ecr-catalog names-from``); every other repository keeps
    its generated name. Checked at start-up: valid names, none given twice."""
    annotation_prefix: str = "ecr-catalog.io"
    """The prefix of this service's own annotations and labels, a lower-case DNS subdomain."""
    owner_tag_keys: list[str] = Field(default_factory=lambda: ["backstage.io/owner", "owner"])
    """Repository tags whose value becomes ``spec.owner`` (matched case-insensitively; the
    first present wins)."""
    component_tag_keys: list[str] = Field(
        default_factory=lambda: ["backstage.io/component", "component"]
    )
    """Repository tags naming Components (comma- or space-separated) the repository is a
    ``dependencyOf``."""
    description_tag_keys: list[str] = Field(default_factory=lambda: ["description"])
    """Repository tags whose value becomes ``metadata.description``."""
    backstage_tags_tag_keys: list[str] = Field(default_factory=lambda: ["backstage.io/tags"])
    """Repository tags holding Backstage tags (comma- or space-separated; invalid ones are
    dropped)."""
    label_tag_keys: list[str] = Field(
        default_factory=lambda: ["team", "environment", "env", "cost-center", "project"]
    )
    """Repository tags that become labels, key and value sanitised to Backstage's rules."""
    shard_size: int = Field(default=1000, ge=10, le=100_000)
    """Most entities per shard URL of a source, in the many-URL mode (``/catalog-info.yaml``)."""
    # Backstage deletes what a 200 leaves out, and such a drop is more often a permissions
    # change (an SCP, a changed read role) than a real mass deletion (service/snapshot/removals.py).
    max_removal_percent: float = Field(default=50, ge=0, le=100)
    """A successful read that would remove more than this share (in percent) of a source's
    repositories, and at least ``max_removal_min`` of them, is held; 100 turns the hold off."""
    max_removal_min: int = Field(default=10, ge=1)
    """The fewest removals a held read has (see ``max_removal_percent``)."""
    removal_hold_hours: float = Field(default=24, gt=0, le=24 * 365)
    """A held removal not confirmed by an operator is applied after this long: a day leaves
    time for the alert to be seen."""

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

    repositories_ttl_seconds: float = Field(default=0, ge=0)
    """Each source's repository list; 0 reads it every refresh. A fleet of small registries is
    mostly listings: 300 makes them a fraction of its calls, and push events and forced
    refreshes still list at once."""
    images_ttl_seconds: float = Field(default=600, ge=0)
    """Each repository's image summary (DescribeImages)."""
    tags_ttl_seconds: float = Field(default=3600, ge=0)
    """Each repository's tags (ListTagsForResource)."""
    lifecycle_policy_ttl_seconds: float = Field(default=21600, ge=0)
    """Each repository's lifecycle policy (GetLifecyclePolicy)."""
    registry_ttl_seconds: float = Field(default=21600, ge=0)
    """Each registry's settings (DescribeRegistry, GetRegistryScanningConfiguration)."""
    findings_ttl_seconds: float = Field(default=3600, ge=0)
    """The latest image's scan findings when DescribeImages does not carry them (enhanced
    scanning); by digest, so a new latest image is read at once."""
    jitter: float = Field(default=0.1, ge=0, lt=1)
    """Each entry lives ``ttl * (1 - jitter * random())``, so entries cached together expire
    apart."""
    max_entries: int = Field(default=200_000, ge=100)
    """The most entries each cache holds."""


class RefreshSettings(Strict):
    """The background refresh."""

    interval_seconds: float = Field(default=60, gt=0)
    """Seconds between refreshes (reads of every source)."""
    deadline_seconds: float = Field(default=120, gt=0)
    """A source whose read takes longer is left behind for this round and keeps its last good
    data, so a hung source cannot hold the refresh for ever."""
    initial_retry_seconds: float = Field(default=5, gt=0)
    """Until the first snapshot exists, failed reads are retried this soon."""


class ServerSettings(Strict):
    """The HTTP listener."""

    host: str = "127.0.0.1"
    """The listen address; ``--host`` overrides it (the image sets ``0.0.0.0``)."""
    port: int = Field(default=8080, ge=0, le=65535)
    """The listen port; ``--port`` overrides it."""
    refresh_token: SecretStr | None = None
    """Enables ``POST /refresh`` (off, 404, while unset); callers send it as a Bearer token."""
    refresh_min_interval_seconds: float = Field(default=10, ge=0)
    """At most one forced refresh per this many seconds; more get 429."""
    max_url_length: int = Field(default=8192, ge=256)
    """Longer request targets (path and query) get 414 before any routing."""
    # With max_url_length, also bounds how much of an unfinished request head the parser holds
    # (service/web/server.py).
    max_header_bytes: int = Field(default=16384, ge=1024)
    """Larger header blocks get 431."""
    filtered_cache_bytes: int = Field(default=32_000_000, ge=0)
    """The filtered bodies kept for reuse, in bytes, across snapshots; 0 keeps none."""
    # A client that never reads holds its body until it goes away.
    filtered_sending_bytes: int = Field(default=64_000_000, ge=0)
    """The filtered bodies being sent at once, in bytes, beyond one; past it a new filtered
    view answers 503 with Retry-After until some are sent."""


class EventsSettings(Strict):
    """POST /events/ecr: ECR push, delete and scan events from EventBridge."""

    token: SecretStr | None = None
    """Enables ``POST /events/ecr`` (off, 404, while unset); EventBridge's connection sends it
    as ``Authorization: Bearer <token>``."""
    debounce_seconds: float = Field(default=2.0, ge=0, le=300)
    """Events within this many seconds of each other share one refresh."""
    max_body_bytes: int = Field(default=262_144, ge=1024, le=1_048_576)
    """Larger bodies get 413; an EventBridge event is at most 256 KB."""


class ClaimsSettings(Strict):
    """Which Backstage entities claim repositories, and how often they are read."""

    annotations: list[str] = Field(
        default_factory=lambda: ["aws.amazon.com/amazon-ecr-arn", "ecr-catalog.io/repositories"]
    )
    """The annotations that claim repositories; each value holds comma-separated repository
    ARNs (matched exactly) or names (matched in every source)."""
    interval_seconds: float = Field(default=300, ge=5)
    """Seconds between reads of the claims from Backstage's catalog API."""

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
    """The way back to Backstage: refresh requests after a change, and claims (docs:
    backstage-both-ways.md). Off while ``base_url`` is unset."""

    base_url: str | None = None
    """Backstage's backend, e.g. ``http://backstage-backend:7007``; the way back is off while
    unset. No credentials: it is shown on ``/readyz``."""
    token: SecretStr | None = None
    """A static external-access token (Backstage's ``backend.auth.externalAccess``), sent as a
    Bearer token. A secret: never logged or shown."""
    refresh_on_change: bool = True
    """After a publish that changed entities, ask Backstage to refresh them."""
    refresh_min_interval_seconds: float = Field(default=5, ge=0)
    """At most one refresh request per entity per this many seconds."""
    claims: ClaimsSettings = Field(default_factory=ClaimsSettings)
    """Which Backstage entities claim repositories, and how often they are read."""

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
    """Which posture checks each repository gets, and their thresholds (docs: posture.md)."""

    checks: list[str] = Field(default_factory=lambda: list(POSTURE_CHECKS))
    """The checks made, of ``scanning``, ``tag-immutability``, ``lifecycle-policy``,
    ``encryption``, ``latest-image``, ``stale``."""
    require_kms: bool = False
    """Makes the encryption check, which passes only KMS; without it the check is not made."""
    max_severity: str = "HIGH"
    """The latest image fails at a finding of this severity or above (``INFORMATIONAL``,
    ``LOW``, ``MEDIUM``, ``HIGH``, ``CRITICAL``)."""
    stale_pull_days: int | None = Field(default=90, ge=1)
    """Stale: nobody has pulled in this many days (null: not checked) ..."""
    stale_push_days: int | None = Field(default=None, ge=1)
    """... or nobody has pushed in this many days (null: not checked)."""

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
