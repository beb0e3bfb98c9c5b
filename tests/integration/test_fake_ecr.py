"""Contract: bench/fake_ecr.py and a moto server give the service the same entities."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import boto3
import botocore.config
import httpx
import pytest
import yaml
from botocore.exceptions import ClientError

from service.demo import DEMO_ACCOUNT, DemoRepository, seed_registry

from ..support import MotoServer, command_env, start_fake_ecr, stop_process
from .test_reader import TWO_RULES

DATA = [
    DemoRepository(
        name="team-a/api",
        region="us-east-1",
        tags={"owner": "team-a", "component": "api", "team": "a", "description": "The API"},
        images=(("v1",), ("v2", "latest"), ()),
        lifecycle_policy=TWO_RULES,
    ),
    DemoRepository(name="team-b/web", region="us-east-1", tags={"Owner": "user:jdoe"}),
    DemoRepository(name="shared/nginx", region="eu-west-1", images=(("1.27", "stable"),)),
    DemoRepository(name="shared/nginx", region="us-east-1", tags={"backstage.io/tags": "edge"}),
    DemoRepository(name="bare", region="eu-west-1", images=((), ())),
]
# What neither side can make equal: moto stamps images and repositories with the current time
# (to the second, so which image is "latest" is a tie it breaks by digest) and derives digests
# and sizes from manifests. The posture follows from the creation time too (the stale check:
# the fake's repositories are from 2023, moto's from now); catalog/posture's tests judge it.
VOLATILE = (
    "created-at",
    "/posture",
    "/posture-failures",
    "/posture-unknown",
    "latest-image-digest",
    "latest-image-pushed-at",
    "latest-image-size-bytes",
    "latest-image-tags",
)


def render(endpoint: str, tmp: Path) -> list[dict[str, Any]]:
    config = tmp / f"config-{len(list(tmp.glob('config-*')))}.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "aws": {
                    "endpoint_url": endpoint,
                    "total_max_attempts": 2,
                    "targets": [
                        {"regions": ["us-east-1", "eu-west-1"], "account_id": DEMO_ACCOUNT}
                    ],
                }
            }
        )
    )
    result = subprocess.run(
        [sys.executable, "-m", "service.cli", "render", "--config", str(config)],
        env=command_env(),
        capture_output=True,
        check=True,
        timeout=120,
    )
    documents = list(yaml.safe_load_all(result.stdout))
    for document in documents:
        annotations = document["metadata"].get("annotations", {})
        for key in [k for k in annotations if k.endswith(VOLATILE)]:
            del annotations[key]
    return documents


def test_fake_and_moto_give_the_same_entities(moto: MotoServer, tmp_path: Path) -> None:
    seed_registry(moto.url, DATA)
    spec = [
        {
            "name": r.name,
            "region": r.region,
            "tags": r.tags,
            "images": [list(tags) for tags in r.images],
            "lifecycle": r.lifecycle_policy,
        }
        for r in DATA
    ]
    data_file = tmp_path / "data.json"
    # seed_registry sets the demo's replication rule; the fake is told the same.
    replication = {"us-east-1": [{"region": "eu-west-1", "registryId": DEMO_ACCOUNT}]}
    data_file.write_text(json.dumps({"repositories": spec, "replication": replication}))
    fake, fake_url = start_fake_ecr("--data", str(data_file))
    try:
        from_fake = render(fake_url, tmp_path)
    finally:
        stop_process(fake)
    from_moto = render(moto.url, tmp_path)
    assert len(from_fake) == 3 + 2 + len(DATA)
    for fake_entity, moto_entity in zip(from_fake, from_moto, strict=True):
        assert fake_entity == moto_entity


def test_the_fake_pages_and_throttles_like_ecr() -> None:
    fake, url = start_fake_ecr("--regions", "1", "--repositories", "2500")
    try:
        ecr = boto3.client(
            "ecr",
            region_name="us-east-1",
            endpoint_url=url,
            aws_access_key_id="x",
            aws_secret_access_key="y",
            config=botocore.config.Config(retries={"total_max_attempts": 1}),
        )
        pages = list(
            ecr.get_paginator("describe_repositories").paginate(PaginationConfig={"PageSize": 1000})
        )
        assert [len(p["repositories"]) for p in pages] == [1000, 1000, 500]
        assert httpx.get(f"{url}/__stats__").json()["calls"]["DescribeRepositories"] == 3
        httpx.post(f"{url}/__config__", json={"rate": 1, "burst": 1})
        ecr.describe_registry()
        with pytest.raises(ClientError) as caught:
            ecr.describe_registry()
        assert caught.value.response["Error"]["Code"] == "ThrottlingException"
    finally:
        stop_process(fake)
