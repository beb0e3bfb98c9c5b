"""The aioboto3 reader, against a real moto server process and a fake that pages like ECR."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from service.aws.answers import ImageSummariser, lifecycle_policy


def test_latest_image_is_the_newest_push_and_carries_scan_findings() -> None:
    older = {
        "imageDigest": "sha256:old",
        "imageTags": ["v1"],
        "imagePushedAt": datetime(2026, 1, 1, tzinfo=UTC),
    }
    newer = {
        "imageDigest": "sha256:new",
        "imageTags": ["v2", "latest"],
        "imagePushedAt": datetime(2026, 1, 2, tzinfo=UTC),
        "imageSizeInBytes": 10,
        "imageScanFindingsSummary": {"findingSeverityCounts": {"HIGH": 2, "CRITICAL": 1}},
        "lastRecordedPullTime": datetime(2026, 1, 3, tzinfo=UTC),
    }
    child = {"imageDigest": "sha256:child", "imagePushedAt": datetime(2026, 1, 2, tzinfo=UTC)}
    summariser = ImageSummariser()
    summariser.add([older, child, newer])
    summary = summariser.summary()
    assert summary.image_count == 3
    assert summary.latest is not None
    assert summary.latest.digest == "sha256:new"
    assert summary.latest.tags == ("latest", "v2")
    assert summary.latest.finding_counts == (("CRITICAL", 1), ("HIGH", 2))
    assert summary.latest.last_pulled_at == datetime(2026, 1, 3, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "rules"),
    [
        ('{"rules": [{"rulePriority": 1}, {"rulePriority": 2}]}', 2),
        ('{"rules": []}', 0),
        ("", 0),
        # What only a non-conforming endpoint sends: a fact of the repository, never an error.
        pytest.param("[" * 5_000 + "]" * 5_000, None, id="array-5k-deep"),
        pytest.param('{"rules": ' * 5_000 + "[]" + "}" * 5_000, None, id="rules-5k-deep"),
        ("not json", None),
        ('["a", "list"]', None),
        ('{"rules": "a string"}', None),
    ],
)
def test_a_lifecycle_policy_that_cannot_be_read_is_unparseable(
    text: str, rules: int | None
) -> None:
    policy = lifecycle_policy({"lifecyclePolicyText": text})
    assert policy.present
    assert policy.rule_count == rules
    assert policy.unparseable is (rules is None)
