"""ECR's answers turned into our records: pure functions of the JSON each call returns.

No I/O: the reader (``reader.py``) makes the calls and hands their answers here. A "not there"
answer (no lifecycle policy, no scan) is a state, not a failure; an answer without the field
every well-formed answer has is an error, never an empty registry.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from .. import jsontext
from ..errors import EcrError
from ..model import (
    FINDINGS_AVAILABLE,
    FINDINGS_PENDING,
    FINDINGS_UNAVAILABLE,
    ImageSummary,
    LatestImage,
    LifecyclePolicy,
    RegistryRecord,
    RepositoryRecord,
    ScanningRule,
)

__all__ = [
    "Findings",
    "ImageSummariser",
    "check_shape",
    "findings_of_detail",
    "findings_of_scan",
    "lifecycle_policy",
    "registry_record",
    "repository_record",
    "scanned",
]

# "Not there" answers that are normal states, not failures.
NO_LIFECYCLE_POLICY = "LifecyclePolicyNotFoundException"
NO_SCAN = "ScanNotFoundException"
# Answers after which the latest image's findings cannot be had, now or later: the role may
# not read them (cross-account enhanced findings cannot be: containers-roadmap#2541), or the
# image cannot be scanned.
FINDINGS_REFUSED = frozenset(
    {
        "AccessDeniedException",
        "ImageNotFoundException",
        "UnsupportedImageTypeException",
        "ValidationException",
    }
)
REPOSITORY_GONE = "RepositoryNotFoundException"
# What every well-formed answer holds. botocore turns an unparseable 200 body into
# {"message": <body>} instead of failing, and a page without its list would read as "no
# repositories": that must be an error, never an answer.
REQUIRED_KEYS = {
    "describe_repositories": "repositories",
    "describe_images": "imageDetails",
    "list_tags_for_resource": "tags",
    "describe_registry": "registryId",
    "get_registry_scanning_configuration": "registryId",
    "get_lifecycle_policy": "lifecyclePolicyText",
    "get_caller_identity": "Account",
}
MALFORMED = "MalformedResponse"


def _parse_time(value: object) -> datetime | None:
    # botocore hands over datetimes; ECR's JSON itself carries epoch seconds, taken as well.
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, UTC)
    if isinstance(value, datetime):
        # botocore hands over local-time datetimes: UTC, as the epoch seconds would give.
        return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    return None


def _latest_key(detail: Mapping[str, Any]) -> tuple[datetime, bool, str]:
    pushed = _parse_time(detail.get("imagePushedAt")) or datetime.min.replace(tzinfo=UTC)
    # ECR does not sort; among images pushed in the same second prefer a tagged one (a
    # multi-arch index over its untagged children), then the digest, for a stable answer.
    return pushed, bool(detail.get("imageTags")), str(detail.get("imageDigest", ""))


class ImageSummariser:
    """A repository's image summary, fed one DescribeImages page at a time.

    Only the latest image's detail and two figures are kept between pages: a repository of
    any size costs one page of memory, never all of it (docs/benchmarks.md, "Memory per
    repository").
    """

    def __init__(self) -> None:
        self.count = 0
        self._latest: Mapping[str, Any] | None = None
        self._latest_key: tuple[datetime, bool, str] | None = None
        self._last_pulled: datetime | None = None

    def add(self, details: Iterable[Mapping[str, Any]]) -> None:
        for detail in details:
            self.count += 1
            key = _latest_key(detail)
            if self._latest_key is None or key > self._latest_key:
                self._latest, self._latest_key = detail, key
            pulled = _parse_time(detail.get("lastRecordedPullTime"))
            if pulled is not None and (self._last_pulled is None or pulled > self._last_pulled):
                self._last_pulled = pulled

    @property
    def latest_detail(self) -> Mapping[str, Any] | None:
        return self._latest

    def summary(self, findings: Findings | None = None) -> ImageSummary:
        """The summary; ``findings`` replaces what the latest image's detail says of its scan."""
        latest = self._latest
        if latest is None or self._latest_key is None:
            return ImageSummary(image_count=0, latest=None, last_pulled_at=self._last_pulled)
        findings = findings or findings_of_detail(latest)
        return ImageSummary(
            image_count=self.count,
            latest=LatestImage(
                digest=str(latest.get("imageDigest", "")),
                tags=tuple(sorted(latest.get("imageTags") or ())),
                pushed_at=self._latest_key[0],
                size_bytes=latest.get("imageSizeInBytes"),
                finding_counts=findings.counts,
                last_pulled_at=_parse_time(latest.get("lastRecordedPullTime")),
                findings=findings.status,
                scan_status=findings.scan_status,
            ),
            last_pulled_at=self._last_pulled,
        )


@dataclass(frozen=True)
class Findings:
    """What is known of the latest image's scan: counts by severity, and whether they hold."""

    status: str
    counts: tuple[tuple[str, int], ...] = ()
    scan_status: str | None = None


def _counts(found: Mapping[str, Any] | None) -> tuple[tuple[str, int], ...]:
    counts = (found or {}).get("findingSeverityCounts") or {}
    return tuple(sorted((str(k), int(v)) for k, v in counts.items() if int(v) > 0))


# DescribeImageScanFindings' imageScanStatus.status, by what it means for the counts.
SCAN_DONE = frozenset({"COMPLETE", "ACTIVE"})
SCAN_PENDING = frozenset({"IN_PROGRESS", "PENDING"})


def findings_of_detail(detail: Mapping[str, Any]) -> Findings:
    """What an ImageDetail says of its scan; basic scanning puts a summary there."""
    status = (detail.get("imageScanStatus") or {}).get("status")
    summary = detail.get("imageScanFindingsSummary")
    if summary is not None:
        return Findings(FINDINGS_AVAILABLE, _counts(summary), status or "COMPLETE")
    if status in SCAN_PENDING:
        return Findings(FINDINGS_PENDING, (), status)
    return Findings(FINDINGS_UNAVAILABLE, (), status)


def findings_of_scan(response: Mapping[str, Any]) -> Findings:
    """What DescribeImageScanFindings says (enhanced results included)."""
    status = str((response.get("imageScanStatus") or {}).get("status") or "") or None
    if status in SCAN_DONE:
        return Findings(FINDINGS_AVAILABLE, _counts(response.get("imageScanFindings")), status)
    if status in SCAN_PENDING:
        return Findings(FINDINGS_PENDING, (), status)
    return Findings(FINDINGS_UNAVAILABLE, (), status)


def scanned(raw: Mapping[str, Any], registry: RegistryRecord) -> bool:
    """Whether a scan of the repository's new images is configured: its own or the registry's."""
    if registry.scan_type == "ENHANCED" or (raw.get("imageScanningConfiguration") or {}).get(
        "scanOnPush"
    ):
        return True
    name = str(raw["repositoryName"])
    return any(rule.frequency != "MANUAL" and rule.covers(name) for rule in registry.scanning_rules)


def check_shape(response: Mapping[str, Any], operation: str, account: str, region: str) -> None:
    key = REQUIRED_KEYS.get(operation)
    if key is not None and key not in response:
        raise EcrError(account, region, operation, MALFORMED, f"the answer has no {key!r}")


def lifecycle_policy(response: Mapping[str, Any]) -> LifecyclePolicy:
    """A GetLifecyclePolicy answer's policy; one whose rules cannot be read is ``unparseable``.

    The text comes from the endpoint as it is: anything but an object with a list of rules
    (not JSON, nested past the parser's depth bound, another shape) is a fact of this one
    repository, never an error that would fail the whole source's read.
    """
    try:
        document = jsontext.loads(response.get("lifecyclePolicyText") or "{}")
    except ValueError:
        return LifecyclePolicy(present=True, rule_count=None)
    rules = (document.get("rules") or []) if isinstance(document, dict) else None
    if not isinstance(rules, list):
        return LifecyclePolicy(present=True, rule_count=None)
    return LifecyclePolicy(present=True, rule_count=len(rules))


def _replication_destinations(response: Mapping[str, Any], own_account: str) -> tuple[str, ...]:
    destinations: set[str] = set()
    for rule in (response.get("replicationConfiguration") or {}).get("rules") or ():
        for destination in rule.get("destinations") or ():
            region = destination.get("region", "")
            registry = destination.get("registryId", own_account)
            destinations.add(region if registry == own_account else f"{region}@{registry}")
    return tuple(sorted(destinations))


def registry_record(
    registry: Mapping[str, Any], scanning_answer: Mapping[str, Any], own_account: str
) -> RegistryRecord:
    """A registry's record from DescribeRegistry and GetRegistryScanningConfiguration."""
    scanning = scanning_answer.get("scanningConfiguration") or {}
    return RegistryRecord(
        replication_destinations=_replication_destinations(registry, own_account),
        scan_type=scanning.get("scanType"),
        scanning_rules=tuple(
            ScanningRule(
                frequency=str(rule.get("scanFrequency", "")),
                filters=tuple(
                    str(item.get("filter", ""))
                    for item in rule.get("repositoryFilters") or ()
                    if item.get("filterType", "WILDCARD") == "WILDCARD"
                ),
            )
            for rule in scanning.get("rules") or ()
        ),
    )


def repository_record(
    raw: Mapping[str, Any],
    tags: tuple[tuple[str, str], ...],
    images: ImageSummary,
    lifecycle: LifecyclePolicy,
) -> RepositoryRecord:
    """A repository's record from its DescribeRepositories entry and its own calls' answers."""
    scanning = raw.get("imageScanningConfiguration") or {}
    return RepositoryRecord(
        name=str(raw["repositoryName"]),
        arn=str(raw["repositoryArn"]),
        created_at=_parse_time(raw.get("createdAt")),
        tag_mutability=raw.get("imageTagMutability"),
        encryption_type=(raw.get("encryptionConfiguration") or {}).get("encryptionType"),
        scan_on_push=scanning.get("scanOnPush"),
        tags=tags,
        images=images,
        lifecycle_policy=lifecycle,
    )
