"""Posture: the questions platform teams ask of each repository, answered from its record. Pure.

Each check passes, fails, or is unknown (ECR did not say, or there is nothing to judge):

* ``scanning``: scan on push is in effect. Under basic scanning a repository's own
  ``scanOnPush`` or a registry ``SCAN_ON_PUSH`` rule whose filter matches it; under enhanced
  scanning only the registry's rules count (ECR ignores the repository's flag then), on push or
  continuous. AWS FSBP ECR.1.
* ``tag-immutability``: ``IMMUTABLE`` or ``IMMUTABLE_WITH_EXCLUSION``. ECR.2.
* ``lifecycle-policy``: a lifecycle policy is set. ECR.3. Unknown when the endpoint returned a
  policy whose rules cannot be read (``unparseable``): whether it expires anything is not known.
* ``encryption``: KMS (``KMS``, ``KMS_DSSE``); made only with ``require_kms``.
* ``latest-image``: the latest image has no finding at ``max_severity`` or above.
* ``stale`` (made when either threshold is set): somebody pulled within ``stale_pull_days``
  (a repository never pulled counts from its creation), and, with ``stale_push_days``,
  somebody pushed within that. The last pull is ECR's ``lastRecordedPullTime``, read by
  DescribeImages; nothing here calls BatchGetImage, which would itself count as a pull.

A configured check that is not made (``encryption`` without ``require_kms``, ``stale`` with
neither threshold) is *not assessed*: kept apart from the verdicts, so that nothing downstream
mistakes it for a pass.

Days are counted from ``today`` (the build's date, UTC), so every replica gives the same verdict
on the same day.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from ..config import PostureSettings
from ..config.sections import SEVERITIES
from ..model import FINDINGS_AVAILABLE, RegistryRecord, RepositoryRecord

__all__ = ["FAIL", "NOT_ASSESSED", "PASS", "UNKNOWN", "Posture", "assess"]

PASS, FAIL, UNKNOWN = "pass", "fail", "unknown"
NOT_ASSESSED = "not assessed"
_IMMUTABLE = ("IMMUTABLE", "IMMUTABLE_WITH_EXCLUSION")
_KMS = ("KMS", "KMS_DSSE")


@dataclass(frozen=True)
class Posture:
    """Every configured check, in the configured order, with its verdict: ``not assessed`` for
    one that was not made, which never counts towards ``overall``."""

    verdicts: tuple[tuple[str, str], ...]

    @property
    def checks(self) -> tuple[tuple[str, str], ...]:
        """The checks made, with their verdicts."""
        return tuple(check for check in self.verdicts if check[1] != NOT_ASSESSED)

    @property
    def overall(self) -> str:
        """fail if any check fails, else unknown if any is unknown, else pass."""
        verdicts = {verdict for _, verdict in self.checks}
        return FAIL if FAIL in verdicts else UNKNOWN if UNKNOWN in verdicts else PASS

    def named(self, verdict: str) -> tuple[str, ...]:
        """The checks with ``verdict``."""
        return tuple(name for name, given in self.checks if given == verdict)


def _verdict(passed: bool | None) -> str:
    return UNKNOWN if passed is None else PASS if passed else FAIL


def _scanning(repo: RepositoryRecord, registry: RegistryRecord) -> bool | None:
    rules = [rule for rule in registry.scanning_rules if rule.covers(repo.name)]
    if registry.scan_type == "ENHANCED":
        return any(rule.frequency in ("SCAN_ON_PUSH", "CONTINUOUS_SCAN") for rule in rules)
    if repo.scan_on_push or any(rule.frequency == "SCAN_ON_PUSH" for rule in rules):
        return True
    if repo.scan_on_push is None or registry.scan_type is None:
        return None
    return False


def _latest_image(repo: RepositoryRecord, max_severity: str) -> bool | None:
    latest = repo.images.latest
    if latest is None or latest.findings != FINDINGS_AVAILABLE:
        return None
    at_or_above = set(SEVERITIES[SEVERITIES.index(max_severity) :])
    return not any(count > 0 and sev.upper() in at_or_above for sev, count in latest.finding_counts)


def _older(moment: datetime | None, days: int, today: date) -> bool | None:
    if moment is None:
        return None
    return moment.date() < today - timedelta(days=days)


def _stale(repo: RepositoryRecord, settings: PostureSettings, today: date) -> bool | None:
    verdicts: list[bool | None] = []
    if settings.stale_pull_days is not None:
        # Never pulled: idle since it was created.
        since = repo.images.last_pulled_at or repo.created_at
        verdicts.append(_older(since, settings.stale_pull_days, today))
    if settings.stale_push_days is not None:
        latest = repo.images.latest
        since = latest.pushed_at if latest is not None else repo.created_at
        verdicts.append(_older(since, settings.stale_push_days, today))
    if any(verdicts):
        return False
    return None if None in verdicts else True


def assess(
    repo: RepositoryRecord, registry: RegistryRecord, settings: PostureSettings, today: date
) -> Posture:
    """The posture of one repository of a registry."""
    checks: list[tuple[str, str]] = []
    for name in settings.checks:
        if name == "scanning":
            passed = _scanning(repo, registry)
        elif name == "tag-immutability":
            passed = None if repo.tag_mutability is None else repo.tag_mutability in _IMMUTABLE
        elif name == "lifecycle-policy":
            policy = repo.lifecycle_policy
            passed = None if policy.unparseable else policy.present
        elif name == "encryption":
            if not settings.require_kms:
                checks.append((name, NOT_ASSESSED))
                continue
            passed = None if repo.encryption_type is None else repo.encryption_type in _KMS
        elif name == "latest-image":
            passed = _latest_image(repo, settings.max_severity)
        else:
            if settings.stale_pull_days is None and settings.stale_push_days is None:
                checks.append((name, NOT_ASSESSED))
                continue
            passed = _stale(repo, settings, today)
        checks.append((name, _verdict(passed)))
    return Posture(tuple(checks))
