"""The annotations of registry and repository entities, rendered from records and facts. Pure.

The keys other plugins read are constants here (as Backstage's AWS module keeps them in
``constants.ts``); this service's own keys carry the configured prefix.
"""

from __future__ import annotations

from datetime import datetime

from ..instants import iso
from ..model import RepositoryRecord
from .inputs import SourceInputs
from .naming import registry_uri
from .posture import FAIL, UNKNOWN, Posture

__all__ = [
    "AWSLABS_ECR_ARN",
    "AWS_ACCOUNT_ID",
    "AWS_ARN",
    "FOREIGN_ANNOTATIONS",
    "ROADIE_ECR_REPOSITORY_ARN",
    "VIEW_URL",
    "registry_annotations",
    "repository_annotations",
]

# Annotations read by plugins other than ours (see docs/entities.md).
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


def _freshness(prefix: str, stale_since: datetime | None) -> dict[str, str]:
    return {} if stale_since is None else {f"{prefix}/last-successful-read-at": iso(stale_since)}


def registry_annotations(
    inputs: SourceInputs, prefix: str, console: str | None, stale_since: datetime | None
) -> dict[str, str]:
    """A registry's annotations, sorted by key."""
    source, registry, p = inputs.source, inputs.registry, prefix
    annotations = {
        AWS_ACCOUNT_ID: source.account_id,
        f"{p}/region": source.region,
        f"{p}/partition": inputs.partition.name,
        f"{p}/registry-uri": registry_uri(source, inputs.partition),
        f"{p}/replication": ",".join(registry.replication_destinations) or "none",
        f"{p}/scan-type": registry.scan_type or "unknown",
        **({VIEW_URL: console} if console else {}),
        **_freshness(p, stale_since),
    }
    return dict(sorted(annotations.items()))


def _posture_annotations(p: str, verdicts: Posture | None) -> dict[str, str | None]:
    """The overall verdict and the checks failed and unknown; a check not assessed is in none."""
    if verdicts is None:
        return {}
    return {
        f"{p}/posture": verdicts.overall,
        f"{p}/posture-failures": ",".join(verdicts.named(FAIL)) or None,
        f"{p}/posture-unknown": ",".join(verdicts.named(UNKNOWN)) or None,
    }


def _latest_image(p: str, repo: RepositoryRecord) -> dict[str, str | None]:
    latest = repo.images.latest
    if latest is None:
        return {}
    found: dict[str, str | None] = {
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
        found[f"{p}/latest-image-findings-{severity.lower()}"] = str(count)
    return found


def repository_annotations(
    inputs: SourceInputs,
    repo: RepositoryRecord,
    prefix: str,
    console: str | None,
    stale_since: datetime | None,
    verdicts: Posture | None,
) -> dict[str, str]:
    """A repository's annotations, sorted by key; a fact that is not known is left out."""
    p, source = prefix, inputs.source
    annotations: dict[str, str] = {
        AWS_ARN: repo.arn,
        AWS_ACCOUNT_ID: source.account_id,
        ROADIE_ECR_REPOSITORY_ARN: repo.arn,
        AWSLABS_ECR_ARN: repo.arn,
        **({VIEW_URL: console} if console else {}),
        f"{p}/repository-uri": f"{registry_uri(source, inputs.partition)}/{repo.name}",
        f"{p}/image-count": str(repo.images.image_count),
        # true, false, or unparseable: set, but its rules could not be read.
        f"{p}/lifecycle-policy": "unparseable"
        if repo.lifecycle_policy.unparseable
        else str(repo.lifecycle_policy.present).lower(),
        **_freshness(p, stale_since),
    }
    rule_count = repo.lifecycle_policy.rule_count
    optional = {
        # Unknown for an unparseable policy: absent, never a made-up 0.
        f"{p}/lifecycle-rule-count": None if rule_count is None else str(rule_count),
        f"{p}/created-at": iso(repo.created_at),
        f"{p}/tag-mutability": repo.tag_mutability,
        f"{p}/encryption-type": repo.encryption_type,
        f"{p}/scan-on-push": None if repo.scan_on_push is None else str(repo.scan_on_push).lower(),
        **_latest_image(p, repo),
    }
    if repo.images.last_pulled_at is not None:
        optional[f"{p}/last-pulled-at"] = iso(repo.images.last_pulled_at)
    optional |= _posture_annotations(p, verdicts)
    annotations |= {key: value for key, value in optional.items() if value is not None}
    return dict(sorted(annotations.items()))
