"""Posture: each check passes, fails or is unknown, from the records alone."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime

import pytest

from service.catalog.posture import FAIL, PASS, UNKNOWN, assess
from service.config import PostureSettings
from service.model import ImageSummary, LatestImage, LifecyclePolicy, RegistryRecord, ScanningRule

from ...records import repository

TODAY = date(2026, 6, 1)
BASIC = RegistryRecord((), "BASIC")
ALL = PostureSettings(require_kms=True, stale_push_days=30)


def verdict(repo, registry=BASIC, settings=ALL, check: str = "") -> str:  # type: ignore[no-untyped-def]
    return dict(assess(repo, registry, settings, TODAY).checks)[check]


def image(**fields):  # type: ignore[no-untyped-def]
    base = LatestImage(
        digest="sha256:" + "ab" * 32,
        tags=("v1",),
        pushed_at=datetime(2026, 5, 30, tzinfo=UTC),
        size_bytes=1,
        finding_counts=(),
        findings="available",
    )
    return replace(base, **fields)


def with_images(latest: LatestImage | None, pulled: datetime | None = None):  # type: ignore[no-untyped-def]
    repo = repository("r")
    return replace(repo, images=ImageSummary(1 if latest else 0, latest, pulled))


@pytest.mark.parametrize(
    ("scan_on_push", "registry", "expected"),
    [
        (True, BASIC, PASS),
        (False, BASIC, FAIL),
        (None, BASIC, UNKNOWN),
        # A registry rule that covers the repository makes its own false no failure.
        (False, RegistryRecord((), "BASIC", (ScanningRule("SCAN_ON_PUSH", ("r*",)),)), PASS),
        (False, RegistryRecord((), "BASIC", (ScanningRule("SCAN_ON_PUSH", ("other*",)),)), FAIL),
        # Enhanced: only the rules count, continuous scanning included.
        (False, RegistryRecord((), "ENHANCED", (ScanningRule("CONTINUOUS_SCAN", ("*",)),)), PASS),
        (True, RegistryRecord((), "ENHANCED", ()), FAIL),
        (True, RegistryRecord((), "ENHANCED", (ScanningRule("MANUAL", ("*",)),)), FAIL),
    ],
)
def test_scanning_is_judged_with_the_registrys_rules(
    scan_on_push: bool | None, registry: RegistryRecord, expected: str
) -> None:
    repo = replace(repository("r"), scan_on_push=scan_on_push)
    assert verdict(repo, registry, check="scanning") == expected


@pytest.mark.parametrize(
    ("mutability", "expected"),
    [
        ("IMMUTABLE", PASS),
        ("IMMUTABLE_WITH_EXCLUSION", PASS),
        ("MUTABLE", FAIL),
        ("MUTABLE_WITH_EXCLUSION", FAIL),
        (None, UNKNOWN),
    ],
)
def test_tag_immutability(mutability: str | None, expected: str) -> None:
    repo = replace(repository("r"), tag_mutability=mutability)
    assert verdict(repo, check="tag-immutability") == expected


def test_lifecycle_policy_and_encryption() -> None:
    none = replace(repository("r"), lifecycle_policy=LifecyclePolicy(False))
    assert verdict(none, check="lifecycle-policy") == FAIL
    assert verdict(repository("r"), check="lifecycle-policy") == PASS
    # Set, but its rules could not be read: whether it expires anything is not known.
    unparseable = replace(repository("r"), lifecycle_policy=LifecyclePolicy(True, None))
    assert verdict(unparseable, check="lifecycle-policy") == UNKNOWN
    assert verdict(repository("r"), check="encryption") == FAIL  # AES256
    assert verdict(replace(repository("r"), encryption_type="KMS"), check="encryption") == PASS
    assert verdict(replace(repository("r"), encryption_type=None), check="encryption") == UNKNOWN
    # Without require_kms there is no encryption check at all.
    checks = dict(assess(repository("r"), BASIC, PostureSettings(), TODAY).checks)
    assert "encryption" not in checks


def test_latest_image_findings_against_the_threshold() -> None:
    high = with_images(image(finding_counts=(("HIGH", 1), ("LOW", 3))))
    low = with_images(image(finding_counts=(("LOW", 3), ("MEDIUM", 2))))
    assert verdict(high, check="latest-image") == FAIL
    assert verdict(low, check="latest-image") == PASS
    strict = PostureSettings(max_severity="medium")
    assert verdict(low, settings=strict, check="latest-image") == FAIL
    assert verdict(with_images(image(findings="pending")), check="latest-image") == UNKNOWN
    assert verdict(with_images(None), check="latest-image") == UNKNOWN


def test_stale_by_last_pull_and_by_last_push() -> None:
    recent = datetime(2026, 5, 1, tzinfo=UTC)
    old = datetime(2025, 12, 1, tzinfo=UTC)
    assert verdict(with_images(image(), pulled=recent), check="stale") == PASS
    assert verdict(with_images(image(), pulled=old), check="stale") == FAIL
    # Never pulled: idle since it was created (2025-03-01 in the records).
    assert verdict(with_images(image(), pulled=None), check="stale") == FAIL
    # Pulled lately, but nothing pushed for longer than stale_push_days.
    pushed_long_ago = image(pushed_at=datetime(2026, 3, 1, tzinfo=UTC))
    assert verdict(with_images(pushed_long_ago, pulled=recent), check="stale") == FAIL
    no_push_check = PostureSettings()
    assert (
        verdict(with_images(pushed_long_ago, recent), settings=no_push_check, check="stale") == PASS
    )
    unknown = replace(with_images(None), created_at=None)
    assert verdict(unknown, settings=no_push_check, check="stale") == UNKNOWN


def test_the_overall_verdict_and_the_configured_checks() -> None:
    only = PostureSettings(checks=["lifecycle-policy", "tag-immutability"])
    posture = assess(repository("r"), BASIC, only, TODAY)
    assert posture.checks == (("lifecycle-policy", PASS), ("tag-immutability", PASS))
    assert posture.overall == PASS
    mixed = assess(replace(repository("r"), tag_mutability=None), BASIC, only, TODAY)
    assert mixed.overall == UNKNOWN and mixed.named(UNKNOWN) == ("tag-immutability",)
    failing = assess(replace(repository("r"), tag_mutability="MUTABLE"), BASIC, only, TODAY)
    assert failing.overall == FAIL and failing.named(FAIL) == ("tag-immutability",)


def test_the_edges_of_each_threshold() -> None:
    enhanced_on_push = RegistryRecord((), "ENHANCED", (ScanningRule("SCAN_ON_PUSH", ("*",)),))
    assert verdict(repository("r"), enhanced_on_push, check="scanning") == PASS
    # A severity counted zero times is no finding.
    none_high = with_images(image(finding_counts=(("HIGH", 0), ("LOW", 2))))
    assert verdict(none_high, check="latest-image") == PASS
    # Pulled exactly stale_pull_days ago: not stale yet.
    settings = PostureSettings(stale_pull_days=30)
    edge = datetime(2026, 5, 2, 23, 59, tzinfo=UTC)  # TODAY - 30 days
    assert verdict(with_images(image(), pulled=edge), settings=settings, check="stale") == PASS


def test_stale_is_not_checked_without_a_threshold_and_the_rest_still_are() -> None:
    off = PostureSettings(checks=["stale", "lifecycle-policy"], stale_pull_days=None)
    assert assess(repository("r"), BASIC, off, TODAY).checks == (("lifecycle-policy", PASS),)
    push_only = PostureSettings(checks=["stale"], stale_pull_days=None, stale_push_days=30)
    assert [name for name, _ in assess(repository("r"), BASIC, push_only, TODAY).checks] == [
        "stale"
    ]


def reason(repo, registry=BASIC, settings=ALL, check: str = "") -> str | None:  # type: ignore[no-untyped-def]
    return assess(repo, registry, settings, TODAY).reason(check)


def test_a_failing_latest_image_says_which_severities_and_how_many() -> None:
    findings = (("LOW", 7), ("CRITICAL", 2), ("HIGH", 1), ("MEDIUM", 0))
    failing = with_images(image(finding_counts=findings))
    assert reason(failing, check="latest-image") == (
        "the latest image (v1) has 2 CRITICAL, 1 HIGH findings, at or above HIGH "
        "(posture.max_severity)"
    )
    one = with_images(image(tags=(), finding_counts=(("HIGH", 1),)))
    assert reason(one, check="latest-image") == (
        f"the latest image (sha256:{'ab' * 6}) has 1 HIGH finding, at or above HIGH "
        "(posture.max_severity)"
    )
    pending = with_images(image(findings="pending", scan_status="IN_PROGRESS"))
    assert reason(pending, check="latest-image") == (
        "no scan findings for the latest image (v1) (pending, scan IN_PROGRESS)"
    )
    assert reason(with_images(None), check="latest-image") == "no image to judge"
    # A pass has no reason.
    assert reason(with_images(image(finding_counts=(("LOW", 3),))), check="latest-image") is None


def test_each_check_that_does_not_pass_says_why() -> None:
    repo = repository("r")
    mutable = replace(repo, tag_mutability="MUTABLE", scan_on_push=False)
    assert reason(mutable, check="tag-immutability") == (
        "tags are MUTABLE: a tag can be moved to another image"
    )
    assert reason(mutable, check="scanning") == (
        "scan on push is off, and no registry rule scans it on push"
    )
    enhanced = RegistryRecord((), "ENHANCED", ())
    assert "enhanced scanning" in str(reason(repo, enhanced, check="scanning"))
    assert reason(replace(repo, scan_on_push=None), check="scanning") == (
        "ECR did not say whether it is scanned on push"
    )
    no_policy = replace(repo, lifecycle_policy=LifecyclePolicy(False))
    assert reason(no_policy, check="lifecycle-policy") == (
        "no lifecycle policy: no image ever expires"
    )
    assert reason(repo, check="encryption") == (
        "encrypted with AES256, not KMS (posture.require_kms)"
    )
    assert reason(replace(repo, tag_mutability=None), check="tag-immutability") == (
        "ECR did not say whether its tags can be moved"
    )


def test_stale_says_since_when_and_which_threshold() -> None:
    old = datetime(2025, 12, 1, tzinfo=UTC)
    pulled_long_ago = with_images(image(), pulled=old)
    settings = PostureSettings(stale_pull_days=90)
    assert reason(pulled_long_ago, settings=settings, check="stale") == (
        "last pulled 2025-12-01, more than 90 days ago (posture.stale_pull_days)"
    )
    never = with_images(image(), pulled=None)
    assert reason(never, settings=settings, check="stale") == (
        "never pulled; created 2025-03-01, more than 90 days ago (posture.stale_pull_days)"
    )
    both = PostureSettings(stale_pull_days=90, stale_push_days=30)
    pushed = with_images(image(pushed_at=datetime(2026, 3, 1, tzinfo=UTC)), pulled=old)
    assert reason(pushed, settings=both, check="stale") == (
        "last pulled 2025-12-01, more than 90 days ago (posture.stale_pull_days); "
        "last pushed 2026-03-01, more than 30 days ago (posture.stale_push_days)"
    )


def test_the_reasons_are_those_of_the_checks_that_did_not_pass() -> None:
    repo = replace(repository("r"), tag_mutability="MUTABLE")
    posture = assess(repo, BASIC, ALL, TODAY)
    not_passed = set(posture.named(FAIL)) | set(posture.named(UNKNOWN))
    assert {check for check, _ in posture.reasons} == not_passed
    assert all(why for _, why in posture.reasons)
