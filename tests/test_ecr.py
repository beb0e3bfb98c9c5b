"""The aioboto3 reader, against a real moto server process and a fake that pages like ECR."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from service.demo import DemoRepository, seed_registry
from service.ecr import EcrError, _RegionClient, summarize_images
from service.model import SourceId

from .support import FaultProxy, MotoServer, moto_reader, moto_settings

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


class PagingClient:
    """Answers like ECR: at most maxResults items a page, with nextToken."""

    def __init__(self, items: list[dict[str, Any]]) -> None:
        self.items = items
        self.calls: list[dict[str, Any]] = []

    async def call(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        assert operation == "DescribeRepositories"
        self.calls.append(params)
        start = int(params.get("nextToken", "0"))
        end = start + params["maxResults"]
        page: dict[str, Any] = {"repositories": self.items[start:end]}
        if end < len(self.items):
            page["nextToken"] = str(end)
        return page


async def test_pagination_follows_next_token_with_max_results_1000() -> None:
    client = PagingClient([{"repositoryName": f"r{i}"} for i in range(2500)])
    region = _RegionClient(client, 4, "123456789012", "us-east-1")
    items = await region.pages("describe_repositories", "repositories")
    assert len(items) == 2500
    assert [c.get("nextToken") for c in client.calls] == [None, "1000", "2000"]
    assert {c["maxResults"] for c in client.calls} == {1000}


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
        assert reader.tags_cache.hits >= 1
        assert second.repositories[0].tags == (("k", "v"),)
        # Unchanged: the very object of the first read, which lets the store skip a rebuild.
        assert second.repositories[0] is first.repositories[0]
        reader.tags_cache.discard("arn:aws:ecr:us-east-1:123456789012:repository/app")
        changed = await reader.read_source(US)
        assert changed.repositories[0].tags == (("k", "changed"),)
        assert changed.repositories[0] is not first.repositories[0]
        moto.ecr("us-east-1").delete_repository(repositoryName="app", force=True)
        third = await reader.read_source(US)
    assert third.repositories == ()
    assert reader.tags_cache.keys() == []


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
    summary = summarize_images([older, child, newer])
    assert summary.image_count == 3
    assert summary.latest is not None
    assert summary.latest.digest == "sha256:new"
    assert summary.latest.tags == ("latest", "v2")
    assert summary.latest.finding_counts == (("CRITICAL", 1), ("HIGH", 2))
    assert summary.latest.last_pulled_at == datetime(2026, 1, 3, tzinfo=UTC)


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
            assert caught.value.code in ("MalformedResponse", "UnicodeDecodeError")
