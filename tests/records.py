"""Hand-built ECR records for the pure tests."""

from __future__ import annotations

from datetime import UTC, datetime

from service.model import (
    ImageSummary,
    LatestImage,
    LifecyclePolicy,
    Partition,
    RegistryRecord,
    RepositoryRecord,
    SourceId,
    SourceRecords,
)

ACCOUNT = "123456789012"
READ_AT = datetime(2026, 1, 9, 12, 0, tzinfo=UTC)
AWS = Partition("aws", "amazonaws.com", "console.aws.amazon.com")


def repository(
    name: str,
    *,
    region: str = "us-east-1",
    account: str = ACCOUNT,
    tags: dict[str, str] | None = None,
    image_count: int = 2,
    latest: LatestImage | None = None,
    lifecycle: LifecyclePolicy | None = None,
) -> RepositoryRecord:
    arn = f"arn:aws:ecr:{region}:{account}:repository/{name}"
    return RepositoryRecord(
        name=name,
        arn=arn,
        created_at=datetime(2025, 3, 1, 8, 30, tzinfo=UTC),
        tag_mutability="IMMUTABLE",
        encryption_type="AES256",
        scan_on_push=False,
        tags=tuple(sorted((tags or {}).items())),
        images=ImageSummary(
            image_count=image_count,
            latest=latest
            if latest is not None or image_count == 0
            else LatestImage(
                digest="sha256:" + "ab" * 32,
                tags=("latest", "v1.2.3"),
                pushed_at=datetime(2026, 1, 8, 17, 45, 12, tzinfo=UTC),
                size_bytes=52_428_800,
                finding_counts=(("CRITICAL", 1), ("HIGH", 4)),
                last_pulled_at=datetime(2026, 1, 9, 6, 0, tzinfo=UTC),
                findings="available",
                scan_status="COMPLETE",
            ),
            last_pulled_at=None if image_count == 0 else datetime(2026, 1, 9, 6, 0, tzinfo=UTC),
        ),
        lifecycle_policy=lifecycle or LifecyclePolicy(present=True, rule_count=2),
    )


def source(
    *repositories: RepositoryRecord,
    region: str = "us-east-1",
    account: str = ACCOUNT,
    registry: RegistryRecord | None = None,
    partition: Partition = AWS,
) -> SourceRecords:
    return SourceRecords(
        source=SourceId(account, region),
        partition=partition,
        registry=registry or RegistryRecord(("eu-west-1",), "BASIC"),
        repositories=tuple(repositories),
        read_at=READ_AT,
    )
