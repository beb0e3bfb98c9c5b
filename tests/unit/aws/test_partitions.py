"""The aioboto3 reader, against a real moto server process and a fake that pages like ECR."""

from __future__ import annotations

import logging
from dataclasses import replace

import pytest

from service.aws.partitions import partition_of
from service.aws.reader import AwsEcrReader
from service.catalog.validate import entity_problems
from service.config import CatalogSettings, Settings
from service.reading import StaticCredentials

from ...catalog_build import build_catalog
from ...records import repository, source


def test_a_partition_without_a_public_console_gets_no_console_links() -> None:
    partition = partition_of("us-iso-east-1")
    assert (partition.name, partition.dns_suffix, partition.console_host) == (
        "aws-iso",
        "c2s.ic.gov",
        None,
    )
    records = source(repository("app", region="us-iso-east-1"), region="us-iso-east-1")
    records = replace(records, partition=partition)
    entities = build_catalog([records], CatalogSettings()).entities
    registry, repo = (
        next(e for e in entities if e["spec"].get("type") == kind)
        for kind in ("container-registry", "ecr-repository")
    )
    for entity in (registry, repo):
        assert "links" not in entity["metadata"]
        assert "backstage.io/view-url" not in entity["metadata"]["annotations"]
        assert entity_problems(entity) == []
    uri = repo["metadata"]["annotations"]["ecr-catalog.io/repository-uri"]
    assert uri == "123456789012.dkr.ecr.us-iso-east-1.c2s.ic.gov/app"


async def test_the_url_of_each_call_is_the_one_botocore_would_use(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import boto3

    cases: list[tuple[str, dict[str, str]]] = [
        ("us-east-1", {}),
        ("us-east-1", {"AWS_USE_FIPS_ENDPOINT": "true"}),
        ("eu-west-1", {"AWS_USE_DUALSTACK_ENDPOINT": "true"}),
        ("us-gov-west-1", {}),
        ("cn-north-1", {}),
        ("us-east-1", {"AWS_ENDPOINT_URL_ECR": "https://vpce-1.ecr.example.internal"}),
        ("us-east-1", {"AWS_ENDPOINT_URL": "http://127.0.0.1:9"}),
    ]
    for region, env in cases:
        for name in ("AWS_USE_FIPS_ENDPOINT", "AWS_USE_DUALSTACK_ENDPOINT"):
            monkeypatch.delenv(name, raising=False)
        for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_ECR"):
            monkeypatch.delenv(name, raising=False)
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        expected = boto3.client(
            "ecr", region_name=region, aws_access_key_id="x", aws_secret_access_key="y"
        ).meta.endpoint_url
        settings = Settings(aws={"targets": [{"regions": [region], "account_id": "123456789012"}]})
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="service.aws.clients"):
            async with AwsEcrReader.open(settings.aws, settings.cache, StaticCredentials("x", "y")):
                pass
        assert f"ECR in {region}: {expected}" in caplog.messages, (region, env)
