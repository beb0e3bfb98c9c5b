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
