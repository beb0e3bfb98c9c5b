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

A check that fails or is unknown carries why, in a sentence for people (``Posture.reasons``:
which setting, which severities and how many, since when), shown on the entity page and in
``/posture``.

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
    one that was not made, which never counts towards ``overall``; and, for each check that
    failed or is unknown, why, in a sentence for people (``reasons``)."""

    verdicts: tuple[tuple[str, str], ...]
    reasons: tuple[tuple[str, str], ...] = ()

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

    def reason(self, check: str) -> str | None:
        """Why ``check`` failed or is unknown; None for a pass or a check not made."""
        return dict(self.reasons).get(check)


# A check's answer: passed (True), failed (False) or unknown (None), and why it did not pass.
_Judged = tuple[bool | None, str]


def _scanning(repo: RepositoryRecord, registry: RegistryRecord) -> _Judged:
    rules = [rule for rule in registry.scanning_rules if rule.covers(repo.name)]
    if registry.scan_type == "ENHANCED":
        passed = any(rule.frequency in ("SCAN_ON_PUSH", "CONTINUOUS_SCAN") for rule in rules)
        return passed, "enhanced scanning, and no registry rule scans it on push or continuously"
    if repo.scan_on_push or any(rule.frequency == "SCAN_ON_PUSH" for rule in rules):
        return True, ""
    if registry.scan_type is None:
        return None, "the registry's scanning configuration is not known"
    if repo.scan_on_push is None:
        return None, "ECR did not say whether it is scanned on push"
    return False, "scan on push is off, and no registry rule scans it on push"


def _tag_immutability(repo: RepositoryRecord) -> _Judged:
    if repo.tag_mutability is None:
        return None, "ECR did not say whether its tags can be moved"
    return (
        repo.tag_mutability in _IMMUTABLE,
        f"tags are {repo.tag_mutability}: a tag can be moved to another image",
    )


def _lifecycle_policy(repo: RepositoryRecord) -> _Judged:
    policy = repo.lifecycle_policy
    if policy.unparseable:
        return None, "a lifecycle policy is set, but its rules cannot be read"
    return policy.present, "no lifecycle policy: no image ever expires"


def _encryption(repo: RepositoryRecord) -> _Judged:
    if repo.encryption_type is None:
        return None, "ECR did not say how it is encrypted"
    passed = repo.encryption_type in _KMS
    return passed, f"encrypted with {repo.encryption_type}, not KMS (posture.require_kms)"


def _latest_image(repo: RepositoryRecord, max_severity: str) -> _Judged:
    latest = repo.images.latest
    if latest is None:
        return None, "no image to judge"
    named = f"the latest image ({latest.tags[0] if latest.tags else latest.digest[:19]})"
    if latest.findings != FINDINGS_AVAILABLE:
        status = f", scan {latest.scan_status}" if latest.scan_status else ""
        return None, f"no scan findings for {named} ({latest.findings}{status})"
    at_or_above = SEVERITIES[SEVERITIES.index(max_severity) :]
    counts = {sev.upper(): count for sev, count in latest.finding_counts if count > 0}
    # The worst first: "2 CRITICAL, 1 HIGH".
    found = [(sev, counts[sev]) for sev in reversed(at_or_above) if sev in counts]
    plural = "s" if sum(count for _, count in found) > 1 else ""
    listed = ", ".join(f"{count} {sev}" for sev, count in found)
    return not found, (
        f"{named} has {listed} finding{plural}, at or above {max_severity} (posture.max_severity)"
    )


def _older(moment: datetime | None, days: int, today: date) -> bool | None:
    if moment is None:
        return None
    return moment.date() < today - timedelta(days=days)


def _idle(what: str, moment: datetime | None, days: int, setting: str) -> str:
    when = moment.date().isoformat() if moment else "never"
    return f"{what} {when}, more than {days} day{'s' if days != 1 else ''} ago ({setting})"


def _stale(repo: RepositoryRecord, settings: PostureSettings, today: date) -> _Judged:
    judged: list[_Judged] = []
    if settings.stale_pull_days is not None:
        days = settings.stale_pull_days
        # Never pulled: idle since it was created.
        pulled = repo.images.last_pulled_at
        since = pulled or repo.created_at
        what = "last pulled" if pulled else "never pulled; created"
        judged.append(
            (_older(since, days, today), _idle(what, since, days, "posture.stale_pull_days"))
        )
    if settings.stale_push_days is not None:
        days = settings.stale_push_days
        latest = repo.images.latest
        since = latest.pushed_at if latest is not None else repo.created_at
        what = "last pushed" if latest is not None else "nothing pushed; created"
        judged.append(
            (_older(since, days, today), _idle(what, since, days, "posture.stale_push_days"))
        )
    stale = [why for older, why in judged if older]
    if stale:
        return False, "; ".join(stale)
    if any(older is None for older, _ in judged):
        return None, "ECR did not say when it was last used or created"
    return True, ""


def _judge(
    name: str,
    repo: RepositoryRecord,
    registry: RegistryRecord,
    settings: PostureSettings,
    today: date,
) -> _Judged | None:
    """One check's answer; None for a check that is not made with these settings."""
    if name == "scanning":
        return _scanning(repo, registry)
    if name == "tag-immutability":
        return _tag_immutability(repo)
    if name == "lifecycle-policy":
        return _lifecycle_policy(repo)
    if name == "encryption":
        return _encryption(repo) if settings.require_kms else None
    if name == "latest-image":
        return _latest_image(repo, settings.max_severity)
    if settings.stale_pull_days is None and settings.stale_push_days is None:
        return None
    return _stale(repo, settings, today)


def assess(
    repo: RepositoryRecord, registry: RegistryRecord, settings: PostureSettings, today: date
) -> Posture:
    """The posture of one repository of a registry, with the reason for each check that did
    not pass."""
    checks: list[tuple[str, str]] = []
    reasons: list[tuple[str, str]] = []
    for name in settings.checks:
        judged = _judge(name, repo, registry, settings, today)
        if judged is None:
            checks.append((name, NOT_ASSESSED))
            continue
        passed, why = judged
        verdict = UNKNOWN if passed is None else PASS if passed else FAIL
        checks.append((name, verdict))
        if verdict != PASS:
            reasons.append((name, why))
    return Posture(tuple(checks), tuple(reasons))
