"""The pure transform: ECR records in, Backstage entities out, with their annotation keys.

No I/O and no settings lookups: the caller passes the CatalogSettings value it wants applied,
so every function here is a plain function of its arguments and the tests need only fixtures.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime

from ..config import CatalogSettings, PostureSettings
from ..instants import iso
from ..model import Entity, RepositoryRecord, SourceId, SourceRecords
from .claims import Claimer, ClaimIndex
from .naming import (
    console_link,
    console_url,
    registry_entity_name,
    registry_uri,
    repository_entity_name,
    sanitize_label_key,
    sanitize_label_value,
)
from .posture import FAIL, UNKNOWN, assess
from .validate import (
    EntityRef,
    is_valid_label_key,
    is_valid_tag,
    parse_entity_ref,
)

__all__ = [
    "API_VERSION",
    "FOREIGN_ANNOTATIONS",
    "REPOSITORY_ORIGIN",
    "EntityBuilder",
]

API_VERSION = "backstage.io/v1alpha1"

# Annotations read by plugins other than ours (see README, "Entity model").
AWS_ARN = "amazonaws.com/arn"  # Backstage's AWS catalog module
AWS_ACCOUNT_ID = "amazonaws.com/account-id"  # Backstage's AWS catalog module
ROADIE_ECR_REPOSITORY_ARN = "amazonaws.com/ecr-repository-arn"  # Roadie's ECR provider
# The awslabs ECR plugin's image tab. Its sibling `aws.amazon.com/amazon-ecr-tags` is never set:
# with both present the plugin shows nothing.
AWSLABS_ECR_ARN = "aws.amazon.com/amazon-ecr-arn"
VIEW_URL = "backstage.io/view-url"
# The annotations of other plugins that this service's own entities carry.
FOREIGN_ANNOTATIONS = (
    AWS_ARN,
    AWS_ACCOUNT_ID,
    ROADIE_ECR_REPOSITORY_ARN,
    AWSLABS_ECR_ARN,
    VIEW_URL,
)

REGISTRY_RESOURCE_TYPE = "container-registry"
# Roadie's convention, so that its provider and this service can run side by side.
REPOSITORY_RESOURCE_TYPE = "ecr-repository"
COMPONENT_TYPE = "service"

_LIST_SEPARATORS = re.compile(r"[,\s]+")

# Origins of repository entities are their ARNs; everything else is structural.
REPOSITORY_ORIGIN = "arn:"


class _TagReader:
    """A repository's ECR tags, looked up case-insensitively; the first of clashing keys wins."""

    def __init__(self, tags: Iterable[tuple[str, str]]) -> None:
        self._by_key: dict[str, tuple[str, str]] = {}
        for key, value in sorted(tags):
            self._by_key.setdefault(key.lower(), (key, value))

    def first(self, keys: Sequence[str]) -> tuple[str, str] | None:
        for key in keys:
            found = self._by_key.get(key.lower())
            if found is not None:
                return found
        return None

    def matching(self, keys: Sequence[str]) -> list[tuple[str, str]]:
        wanted = {key.lower() for key in keys}
        return [pair for lowered, pair in sorted(self._by_key.items()) if lowered in wanted]


class EntityBuilder:
    """Builds each entity of the catalog from records (``plan.plan_catalog`` orders them)."""

    def __init__(
        self,
        options: CatalogSettings,
        stale_since: Mapping[SourceId, datetime],
        claims: ClaimIndex,
        own_refs: frozenset[str],
        posture: tuple[PostureSettings, date] | None = None,
    ) -> None:
        self.options = options
        self.posture = posture
        self.stale_since = stale_since
        self.claims = claims
        self.own_refs = own_refs
        self.repairs: list[str] = []
        self.claim_conflicts: list[str] = []
        self.claimed: set[str] = set()
        self.namespace = options.namespace
        self.prefix = options.annotation_prefix

    def _ref(self, kind: str, name: str) -> str:
        return f"{kind}:{self.namespace}/{name}"

    def _envelope(self, kind: str, metadata: Entity, spec: Entity) -> Entity:
        return {
            "apiVersion": API_VERSION,
            "kind": kind,
            "metadata": {"name": metadata.pop("name"), "namespace": self.namespace, **metadata},
            "spec": spec,
        }

    def domain(self) -> Entity:
        return self._envelope(
            "Domain",
            {
                "name": self.options.domain,
                "description": "Software delivery: build, publish, deploy.",
            },
            {"owner": self.options.owner},
        )

    def system(self) -> Entity:
        return self._envelope(
            "System",
            {
                "name": self.options.system,
                "description": "The AWS ECR container registry and its repositories (ADR-0132).",
            },
            {"owner": self.options.owner, "domain": self.options.domain},
        )

    def component(self, registry_names: Sequence[str]) -> Entity:
        return self._envelope(
            "Component",
            {"name": self.options.component, "description": "AWS Elastic Container Registry."},
            {
                "type": COMPONENT_TYPE,
                "lifecycle": self.options.component_lifecycle,
                "owner": self.options.owner,
                "system": self.options.system,
                "dependsOn": [self._ref("resource", name) for name in sorted(registry_names)],
            },
        )

    def registry(self, records: SourceRecords) -> Entity:
        source, registry, p = records.source, records.registry, self.prefix
        console = console_url(source, records.partition)
        annotations = {
            AWS_ACCOUNT_ID: source.account_id,
            f"{p}/region": source.region,
            f"{p}/partition": records.partition.name,
            f"{p}/registry-uri": registry_uri(source, records.partition),
            f"{p}/replication": ",".join(registry.replication_destinations) or "none",
            f"{p}/scan-type": registry.scan_type or "unknown",
            **({VIEW_URL: console} if console else {}),
            **self._freshness(source),
        }
        metadata: Entity = {
            "name": registry_entity_name(source),
            "title": f"ECR {source.account_id} {source.region}",
            "description": f"ECR registry of {source.account_id} in {source.region}.",
            "labels": self._source_labels(source),
            "annotations": dict(sorted(annotations.items())),
        }
        links = console_link(console)
        if links:
            metadata["links"] = links
        return self._envelope(
            "Resource",
            metadata,
            {
                "type": REGISTRY_RESOURCE_TYPE,
                "owner": self.options.owner,
                "system": self.options.system,
            },
        )

    def _freshness(self, source: SourceId) -> dict[str, str]:
        since = self.stale_since.get(source)
        return {} if since is None else {f"{self.prefix}/last-successful-read-at": iso(since)}

    def _source_labels(self, source: SourceId) -> dict[str, str]:
        return {f"{self.prefix}/account": source.account_id, f"{self.prefix}/region": source.region}

    def _owner(self, tags: _TagReader, origin: str, claimers: Sequence[Claimer]) -> str:
        """The owner tag, else the owner every claimer with one agrees on, else ``catalog.owner``.

        Anyone who can register a catalog file can claim: were one claimer to win a
        disagreement (the first by ref, say), whoever picks the winning ref would own the
        repository. So a disagreement gives no claimer the owner, and is reported.
        """
        found = tags.first(self.options.owner_tag_keys)
        if found is not None:
            ref = parse_entity_ref(
                found[1].strip(), default_kind="group", default_namespace=self.namespace
            )
            if ref is not None and ref.kind in ("group", "user"):
                return str(ref)
            self.repairs.append(f"{origin}: owner tag {found[0]!r} is not a group or user ref")
        owners = sorted({c.owner for c in claimers if c.owner is not None})
        if len(owners) == 1:
            return owners[0]
        if owners:
            others = ", ".join(f"{c.ref} ({c.owner})" for c in claimers if c.owner is not None)
            self.claim_conflicts.append(
                f"{origin}: claimed by {others}; owners disagree, so owner {self.options.owner}"
                " (catalog.owner)"
            )
        return self.options.owner

    def _dependency_of(
        self, tags: _TagReader, origin: str, claimers: Sequence[Claimer]
    ) -> list[str]:
        refs: set[EntityRef] = set()
        for claimer in claimers:
            ref = parse_entity_ref(claimer.ref, default_kind="component", default_namespace="")
            if ref is not None:
                refs.add(ref)
        for key, value in tags.matching(self.options.component_tag_keys):
            for item in filter(None, _LIST_SEPARATORS.split(value)):
                ref = parse_entity_ref(
                    item, default_kind="component", default_namespace=self.namespace
                )
                if ref is None or ref.kind != "component":
                    self.repairs.append(f"{origin}: component tag {key!r} value dropped")
                else:
                    refs.add(ref)
        return [str(ref) for ref in sorted(refs)]

    def _labels(self, source: SourceId, tags: _TagReader, origin: str) -> dict[str, str]:
        labels = self._source_labels(source)
        for key, value in tags.matching(self.options.label_tag_keys):
            label_key = sanitize_label_key(key)
            label_value = sanitize_label_value(value)
            if not is_valid_label_key(label_key) or label_key in labels:
                self.repairs.append(f"{origin}: tag {key!r} cannot become a label")
                continue
            if label_value != value:
                self.repairs.append(f"{origin}: label {label_key!r} value sanitised")
            labels[label_key] = label_value
        return dict(sorted(labels.items()))

    def _backstage_tags(self, tags: _TagReader, origin: str) -> list[str]:
        result: set[str] = set()
        for key, value in tags.matching(self.options.backstage_tags_tag_keys):
            for item in filter(None, _LIST_SEPARATORS.split(value.lower())):
                if is_valid_tag(item):
                    result.add(item)
                else:
                    self.repairs.append(f"{origin}: tag {key!r} item dropped")
        return sorted(result)

    def _repository_annotations(
        self, records: SourceRecords, repo: RepositoryRecord, console: str | None
    ) -> dict[str, str]:
        p, source = self.prefix, records.source
        annotations: dict[str, str] = {
            AWS_ARN: repo.arn,
            AWS_ACCOUNT_ID: source.account_id,
            ROADIE_ECR_REPOSITORY_ARN: repo.arn,
            AWSLABS_ECR_ARN: repo.arn,
            **({VIEW_URL: console} if console else {}),
            f"{p}/repository-uri": f"{registry_uri(source, records.partition)}/{repo.name}",
            f"{p}/image-count": str(repo.images.image_count),
            # true, false, or unparseable: set, but its rules could not be read.
            f"{p}/lifecycle-policy": "unparseable"
            if repo.lifecycle_policy.unparseable
            else str(repo.lifecycle_policy.present).lower(),
            **self._freshness(source),
        }
        rule_count = repo.lifecycle_policy.rule_count
        optional = {
            # Unknown for an unparseable policy: absent, never a made-up 0.
            f"{p}/lifecycle-rule-count": None if rule_count is None else str(rule_count),
            f"{p}/created-at": iso(repo.created_at),
            f"{p}/tag-mutability": repo.tag_mutability,
            f"{p}/encryption-type": repo.encryption_type,
            f"{p}/scan-on-push": None
            if repo.scan_on_push is None
            else str(repo.scan_on_push).lower(),
        }
        latest = repo.images.latest
        if latest is not None:
            optional |= {
                f"{p}/latest-image-digest": latest.digest,
                f"{p}/latest-image-tags": ",".join(latest.tags),
                f"{p}/latest-image-pushed-at": iso(latest.pushed_at),
                f"{p}/latest-image-size-bytes": (
                    None if latest.size_bytes is None else str(latest.size_bytes)
                ),
                f"{p}/latest-image-last-pulled-at": iso(latest.last_pulled_at),
                # Whether the counts below are the whole story: never silently absent.
                f"{p}/latest-image-findings": latest.findings,
                f"{p}/latest-image-scan-status": latest.scan_status,
            }
            for severity, count in latest.finding_counts:
                optional[f"{p}/latest-image-findings-{severity.lower()}"] = str(count)
        if repo.images.last_pulled_at is not None:
            optional[f"{p}/last-pulled-at"] = iso(repo.images.last_pulled_at)
        if self.posture is not None:
            posture = assess(repo, records.registry, *self.posture)
            optional |= {
                f"{p}/posture": posture.overall,
                f"{p}/posture-failures": ",".join(posture.named(FAIL)) or None,
                f"{p}/posture-unknown": ",".join(posture.named(UNKNOWN)) or None,
            }
        annotations |= {key: value for key, value in optional.items() if value is not None}
        return dict(sorted(annotations.items()))

    def repository(self, records: SourceRecords, repo: RepositoryRecord) -> Entity:
        source = records.source
        tags = _TagReader(repo.tags)
        origin = repo.arn
        console = console_url(source, records.partition, repo.name)
        metadata: Entity = {
            "name": repository_entity_name(source, repo.name),
            "title": repo.name,
        }
        description = tags.first(self.options.description_tag_keys)
        if description is not None and description[1].strip():
            metadata["description"] = description[1].strip()
        metadata["labels"] = self._labels(source, tags, origin)
        metadata["annotations"] = self._repository_annotations(records, repo, console)
        backstage_tags = self._backstage_tags(tags, origin)
        if backstage_tags:
            metadata["tags"] = backstage_tags
        links = console_link(console)
        if links:
            metadata["links"] = links
        claimers = self.claims.claimers_of(repo.arn, repo.name, self.own_refs)
        if claimers:
            self.claimed.add(repo.arn)
        spec: Entity = {
            "type": REPOSITORY_RESOURCE_TYPE,
            "owner": self._owner(tags, origin, claimers),
            "system": self.options.system,
            "dependsOn": [self._ref("resource", registry_entity_name(source))],
        }
        dependency_of = self._dependency_of(tags, origin, claimers)
        if dependency_of:
            spec["dependencyOf"] = dependency_of
        return self._envelope("Resource", metadata, spec)
