"""The aioboto3 reader, against a real moto server process and a fake that pages like ECR."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from service.catalog.validate import entity_problems
from service.config import CacheSettings, CatalogSettings
from service.demo import DemoRepository, demo_repositories, seed_registry
from service.errors import EcrError
from service.model import ScanningRule, SourceId

from ..catalog_build import build_catalog
from ..support import (
    FaultProxy,
    MotoServer,
    moto_reader,
    moto_settings,
    start_fake_ecr,
    stop_process,
)

NOW = datetime(2026, 1, 1, tzinfo=UTC)

US = SourceId("123456789012", "us-east-1")
TWO_RULES = json.dumps(
    {
        "rules": [
            {
                "rulePriority": priority,
                "selection": {
                    "tagStatus": "any",
                    "countType": "imageCountMoreThan",
                    "countNumber": 9,
                },
                "action": {"type": "expire"},
            }
            for priority in (1, 2)
        ]
    }
)


async def test_reads_repositories_tags_images_and_policies(moto: MotoServer) -> None:
    seed_registry(
        moto.url,
        [
            DemoRepository(
                name="team-a/api",
                region="us-east-1",
                tags={"owner": "team-a", "team": "a"},
                images=(("v1", "latest"), (), ("v0",)),
                lifecycle_policy=TWO_RULES,
                tag_mutability="IMMUTABLE",
                scan_on_push=True,
            ),
            DemoRepository(name="bare", region="us-east-1"),
        ],
    )
    async with moto_reader(moto_settings(moto.url, ["us-east-1"])) as reader:
        assert (await reader.list_sources()).sources == (US,)
        records = await reader.read_source(US)
    assert records.registry.replication_destinations == ("eu-west-1",)
    assert [r.name for r in records.repositories] == ["bare", "team-a/api"]
    bare, api = records.repositories
    assert api.tags == (("owner", "team-a"), ("team", "a"))
    assert api.images.image_count == 3
    assert api.images.latest is not None
    assert api.lifecycle_policy.present and api.lifecycle_policy.rule_count == 2
    assert api.tag_mutability == "IMMUTABLE" and api.scan_on_push is True
    assert api.arn == "arn:aws:ecr:us-east-1:123456789012:repository/team-a/api"
    assert bare.images.image_count == 0 and bare.images.latest is None
    assert not bare.lifecycle_policy.present


async def test_tagless_images_count_and_have_no_tags(moto: MotoServer) -> None:
    seed_registry(moto.url, [DemoRepository(name="untagged", region="us-east-1", images=((), ()))])
    async with moto_reader(moto_settings(moto.url, ["us-east-1"])) as reader:
        await reader.list_sources()
        (repo,) = (await reader.read_source(US)).repositories
    assert repo.images.image_count == 2
    assert repo.images.latest is not None and repo.images.latest.tags == ()


async def test_more_than_a_thousand_repositories_are_all_read(moto: MotoServer) -> None:
    ecr = moto.ecr("us-east-1")
    for index in range(1005):
        ecr.create_repository(repositoryName=f"bulk/repo-{index:04d}")
    async with moto_reader(moto_settings(moto.url, ["us-east-1"])) as reader:
        await reader.list_sources()
        records = await reader.read_source(US)
    assert len(records.repositories) == 1005


async def test_errors_name_account_region_and_operation(moto: MotoServer) -> None:
    settings = moto_settings("http://127.0.0.1:9", ["eu-west-1"], total_max_attempts=1)
    async with moto_reader(settings) as reader:
        await reader.list_sources()
        with pytest.raises(EcrError) as caught:
            await reader.read_source(SourceId("123456789012", "eu-west-1"))
    assert caught.value.account == "123456789012"
    assert caught.value.region == "eu-west-1"
    assert caught.value.operation == "describe_registry"
    assert "123456789012/eu-west-1" in str(caught.value)


async def test_account_is_resolved_through_sts_when_not_configured(moto: MotoServer) -> None:
    settings = moto_settings(moto.url, ["us-east-1"])
    ambient = settings.model_copy(
        update={
            "aws": settings.aws.model_copy(
                update={
                    "targets": [settings.aws.targets[0].model_copy(update={"account_id": None})]
                }
            )
        }
    )
    async with moto_reader(ambient) as reader:
        assert (await reader.list_sources()).sources == (US,)


async def test_repeated_reads_reuse_cached_answers(moto: MotoServer) -> None:
    seed_registry(moto.url, [DemoRepository(name="app", region="us-east-1", tags={"k": "v"})])
    async with moto_reader(moto_settings(moto.url, ["us-east-1"])) as reader:
        await reader.list_sources()
        first = await reader.read_source(US)
        moto.ecr("us-east-1").tag_resource(
            resourceArn="arn:aws:ecr:us-east-1:123456789012:repository/app",
            tags=[{"Key": "k", "Value": "changed"}],
        )
        second = await reader.read_source(US)
        assert reader.repositories.tags_cache.hits >= 1
        assert second.repositories[0].tags == (("k", "v"),)
        # Unchanged: a record equal to the first read's, which lets the store skip a rebuild.
        assert second.repositories[0] == first.repositories[0]
        reader.repositories.tags_cache.discard("arn:aws:ecr:us-east-1:123456789012:repository/app")
        changed = await reader.read_source(US)
        assert changed.repositories[0].tags == (("k", "changed"),)
        assert changed.repositories[0] != first.repositories[0]
        moto.ecr("us-east-1").delete_repository(repositoryName="app", force=True)
        third = await reader.read_source(US)
    assert third.repositories == ()
    assert reader.repositories.tags_cache.keys() == []


async def test_a_garbled_page_is_an_error_not_an_empty_registry(
    moto: MotoServer, proxy: FaultProxy
) -> None:
    seed_registry(moto.url, [DemoRepository(name="kept", region="us-east-1")])
    async with moto_reader(moto_settings(proxy.url, ["us-east-1"], total_max_attempts=1)) as reader:
        await reader.list_sources()
        assert len((await reader.read_source(US)).repositories) == 1
        # botocore answers an unparseable 200 body with {"message": ...}: that must not read
        # as a registry without repositories.
        for fault in ({"garbage_rate": 1.0}, {"truncate_rate": 1.0}):
            proxy.set(**fault)
            with pytest.raises(EcrError) as caught:
                await reader.read_source(US)
            assert caught.value.code == "MalformedResponse"


@pytest.mark.parametrize(
    ("region", "arn", "suffix", "console"),
    [
        ("cn-north-1", "arn:aws-cn:", "amazonaws.com.cn", "cn-north-1.console.amazonaws.cn"),
        (
            "us-gov-west-1",
            "arn:aws-us-gov:",
            "amazonaws.com",
            "us-gov-west-1.console.amazonaws-us-gov.com",
        ),
        ("us-east-1", "arn:aws:", "amazonaws.com", "us-east-1.console.aws.amazon.com"),
    ],
)
async def test_every_partition_gets_its_own_arns_hosts_and_console(
    moto: MotoServer, region: str, arn: str, suffix: str, console: str
) -> None:
    seed_registry(moto.url, [DemoRepository(name="team/app", region=region, images=(("v1",),))])
    async with moto_reader(moto_settings(moto.url, [region])) as reader:
        (source,) = (await reader.list_sources()).sources
        records = await reader.read_source(source)
    build = build_catalog([records], CatalogSettings())
    registry, repository = (e for e in build.entities if e["kind"] == "Resource")
    host = f"123456789012.dkr.ecr.{region}.{suffix}"
    assert registry["metadata"]["annotations"]["ecr-catalog.io/registry-uri"] == host
    assert registry["metadata"]["annotations"]["ecr-catalog.io/partition"] == arn[4:-1]
    assert registry["metadata"]["links"][0]["url"].startswith(f"https://{console}/ecr/")
    annotations = repository["metadata"]["annotations"]
    assert annotations["amazonaws.com/arn"] == f"{arn}ecr:{region}:123456789012:repository/team/app"
    assert annotations["ecr-catalog.io/repository-uri"] == f"{host}/team/app"
    view = f"https://{console}/ecr/repositories/private/123456789012/team/app?region={region}"
    assert annotations["backstage.io/view-url"] == view
    assert repository["metadata"]["links"] == [
        {"url": view, "title": "AWS console", "icon": "cloud"}
    ]
    assert entity_problems(repository) == [] and entity_problems(registry) == []


async def test_the_demo_registry_is_read_with_its_scan_findings(moto: MotoServer) -> None:
    # The demo scans the api repositories' images, with findings set through moto's API.
    seed_registry(moto.url, demo_repositories())
    async with moto_reader(moto_settings(moto.url, ["us-east-1", "eu-west-1"])) as reader:
        sources = (await reader.list_sources()).sources
        read = [await reader.read_source(s) for s in sources]
    repositories = [r for records in read for r in records.repositories]
    assert len(repositories) == len(demo_repositories())
    clean = next(r for r in repositories if r.name == "team-a/payments-api")
    assert clean.images.latest is not None
    assert clean.images.latest.findings == "available"
    assert clean.images.latest.finding_counts == ()
    critical = next(r for r in repositories if r.name == "team-b/checkout-api")
    assert critical.images.latest is not None and critical.images.latest.findings == "available"
    assert dict(critical.images.latest.finding_counts) == {"CRITICAL": 1, "HIGH": 3, "MEDIUM": 7}


async def test_a_repository_of_50000_images_is_summarised_page_by_page() -> None:
    fake, url = start_fake_ecr(
        "--regions", "1", "--repositories", "0", "--huge-repository", "50000"
    )
    try:
        settings = moto_settings(url, ["us-east-1"])
        async with moto_reader(settings) as reader:
            (source_id,) = (await reader.list_sources()).sources
            (huge,) = (await reader.read_source(source_id)).repositories
        async with httpx.AsyncClient() as client:
            calls = (await client.get(f"{url}/__stats__")).json()["calls"]
    finally:
        stop_process(fake)
    assert huge.name == "huge/ci-builds" and huge.images.image_count == 50_000
    assert huge.images.latest is not None
    assert huge.images.latest.tags == (
        "build-149999",
        "sha-" + huge.images.latest.digest[7:19],
        "v1.499.99",
    )
    assert huge.images.latest.pushed_at == datetime.fromtimestamp(
        1_760_000_000 + 49_999 * 3600, UTC
    )
    assert huge.images.last_pulled_at == huge.images.latest.pushed_at + timedelta(hours=2)
    assert huge.images.latest.findings == "available"
    assert huge.images.latest.finding_counts == (
        ("CRITICAL", 1),
        ("HIGH", 5),
        ("LOW", 5),
        ("MEDIUM", 2),
    )
    assert calls["DescribeImages"] == 50


async def test_under_enhanced_scanning_findings_come_from_the_latest_image_once() -> None:
    fake, url = start_fake_ecr("--regions", "1", "--repositories", "6", "--enhanced")
    try:
        async with moto_reader(moto_settings(url, ["us-east-1"])) as reader:
            (source_id,) = (await reader.list_sources()).sources
            first = await reader.read_source(source_id)
            # The images are read again; the latest digests are the same: no new findings call.
            for repository_record in first.repositories:
                reader.repositories.images_cache.discard(repository_record.arn)
            second = await reader.read_source(source_id)
        async with httpx.AsyncClient() as client:
            calls = (await client.get(f"{url}/__stats__")).json()["calls"]
    finally:
        stop_process(fake)
    assert first.registry.scan_type == "ENHANCED"
    assert first.registry.scanning_rules == (ScanningRule("CONTINUOUS_SCAN", ("*",)),)
    assert calls["DescribeImageScanFindings"] == 6
    assert calls["DescribeImages"] == 12
    for record in first.repositories:
        latest = record.images.latest
        assert latest is not None and latest.findings == "available"
        assert latest.scan_status == "ACTIVE"
        assert dict(latest.finding_counts)["MEDIUM"] == 2
    assert second.repositories == first.repositories


async def test_findings_that_cannot_be_had_say_so(moto: MotoServer, proxy: FaultProxy) -> None:
    seed_registry(
        moto.url,
        [
            DemoRepository(
                name="scanned-on-push", region="us-east-1", images=(("v1",),), scan_on_push=True
            ),
            DemoRepository(name="never-scanned", region="us-east-1", images=(("v1",),)),
        ],
    )
    async with moto_reader(moto_settings(proxy.url, ["us-east-1"])) as reader:
        await reader.list_sources()
        records = await reader.read_source(US)
        statuses = {
            r.name: r.images.latest.findings for r in records.repositories if r.images.latest
        }
        assert statuses == {"scanned-on-push": "pending", "never-scanned": "unavailable"}
        proxy.set(deny_operations=["DescribeImageScanFindings"])
        for record in records.repositories:
            reader.repositories.images_cache.discard(record.arn)
        for key in reader.repositories.findings_cache.keys():
            reader.repositories.findings_cache.discard(key)
        denied = await reader.read_source(US)
    assert [r.images.latest.findings for r in denied.repositories if r.images.latest] == [
        "unavailable",
        "unavailable",
    ]
    assert proxy.stats()["injected"]["access_denied"] == 2


async def test_a_read_cancelled_while_throttled_leaves_the_source_readable() -> None:
    """The refresh deadline cancels a late read. Cancelled while botocore's adaptive limiter
    holds its calls back (the fake ECR throttles past 15 calls a second), the read must not
    leave the client unusable: a later read of the same source completes."""
    fake, url = start_fake_ecr(
        "--regions", "1", "--repositories", "40", "--rate", "4", "--latency-ms", "20"
    )
    try:
        settings = moto_settings(url, ["us-east-1"], total_max_attempts=5)
        # Nothing cached: every read makes every call, so each one is throttled.
        uncached = {f"{kind}_ttl_seconds": 0 for kind in ("images", "tags", "lifecycle_policy")}
        settings = settings.model_copy(update={"cache": CacheSettings(**uncached)})
        async with moto_reader(settings) as reader:
            (source_id,) = (await reader.list_sources()).sources
            for _ in range(25):
                read = asyncio.create_task(reader.read_source(source_id))
                await asyncio.sleep(0.4)
                read.cancel()
                ended, _ = await asyncio.wait({read}, timeout=30)
                assert ended, "a cancelled read never ended"
            records = await asyncio.wait_for(reader.read_source(source_id), timeout=90)
    finally:
        stop_process(fake)
    assert len(records.repositories) == 40
