"""A fleet of partitions in one test process: each serves its own sources, partition 0 the
core and the root Locations, and together they serve what one process does."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from typing import Any

import httpx
import pytest
import yaml

from service.model import SourceRecords
from service.ownership import owner_of

from ...records import repository, source
from ...support import FakeReader
from ..web.test_routes import serving

COUNT = 3
TEMPLATE = "http://ecr-catalog-{index}.headless:8080"
RECORDS = [
    source(
        repository(f"team-{n}/api", region=region, account=account),
        repository(f"team-{n}/web", region=region, account=account),
        region=region,
        account=account,
    )
    for n, (account, region) in enumerate(
        (f"{100_000_000_000 + a:012d}", region)
        for a in range(1, 5)
        for region in ("us-east-1", "eu-west-1", "ap-southeast-2")
    )
]


def documents(body: str) -> list[Any]:
    return [d for d in yaml.safe_load_all(body) if d]


def refs(body: str) -> set[str]:
    return {f"{d['kind']}:default/{d['metadata']['name']}".lower() for d in documents(body)}


@pytest.fixture
async def fleet() -> AsyncIterator[list[httpx.AsyncClient]]:
    async with AsyncExitStack() as stack:
        yield [
            await stack.enter_async_context(
                serving(
                    FakeReader(*RECORDS),
                    partition={"count": COUNT, "index": index, "url_template": TEMPLATE},
                )
            )
            for index in range(COUNT)
        ]


def owned(index: int) -> list[SourceRecords]:
    return [r for r in RECORDS if owner_of(r.source, COUNT) == index]


async def test_the_union_of_the_partitions_is_the_single_process(
    fleet: list[httpx.AsyncClient],
) -> None:
    async with serving(FakeReader(*RECORDS)) as single:
        alone = documents((await single.get("/entities.yaml")).text)
    parts = [
        documents((await p.get(f"/partitions/{i}/entities.yaml")).text) for i, p in enumerate(fleet)
    ]
    union = sorted((d for part in parts for d in part), key=lambda d: str(d["metadata"]))
    # Entity for entity, byte for byte of each entity's data; and no entity twice.
    assert union == sorted(alone, key=lambda d: str(d["metadata"]))
    assert all(len(owned(i)) for i in range(COUNT)), "every partition owns a source here"


async def test_only_partition_0_serves_the_core_and_the_root(
    fleet: list[httpx.AsyncClient],
) -> None:
    core = {"domain:default/delivery", "system:default/container-registry"}
    for index, partition in enumerate(fleet):
        served = refs((await partition.get(f"/partitions/{index}/entities.yaml")).text)
        # The catalog's own URL never holds one partition's part: that would be a 200
        # without the other partitions' entities, which Backstage would delete.
        for whole in ("/entities.yaml", "/entities.json", "/entities"):
            assert (await partition.get(whole)).status_code == 404, (index, whole)
        elsewhere = await partition.get(f"/partitions/{(index + 1) % COUNT}/entities.yaml")
        assert elsewhere.status_code == 307
        assert elsewhere.headers["location"].endswith(
            f"/partitions/{(index + 1) % COUNT}/entities.yaml"
        )
        assert (core <= served) == (index == 0)
        assert ("component:default/ecr-registry" in served) == (index == 0)
        for path in ("/catalog/core.yaml", "/catalog-info.yaml", "/partitions.yaml"):
            response = await partition.get(path)
            if index == 0:
                assert response.status_code == 200, path
            else:
                # Served by partition 0 alone: the others send the reader there.
                assert response.status_code == 307, (index, path)
                assert response.headers["location"] == f"http://ecr-catalog-0.headless:8080{path}"
    component = documents((await fleet[0].get("/catalog/core.yaml")).text)[2]
    # The Component depends on every source's registry, the other partitions' included.
    assert len(component["spec"]["dependsOn"]) == len(RECORDS)


async def test_partition_0s_root_names_every_partitions_root(
    fleet: list[httpx.AsyncClient],
) -> None:
    root = documents((await fleet[0].get("/catalog-info.yaml")).text)[0]
    assert root["metadata"]["name"] == "ecr-catalog"
    assert root["spec"]["targets"] == [
        "./catalog/core.yaml",
        *(
            f"http://ecr-catalog-{i}.headless:8080/partitions/{i}/catalog-info.yaml"
            for i in range(3)
        ),
    ]
    one_url = documents((await fleet[0].get("/partitions.yaml")).text)[0]
    assert one_url["spec"]["targets"] == [
        f"http://ecr-catalog-{i}.headless:8080/partitions/{i}/entities.yaml" for i in range(3)
    ]
    for index, partition in enumerate(fleet):
        response = await partition.get(f"/partitions/{index}/catalog-info.yaml")
        location = documents(response.text)[0]
        assert location["metadata"]["name"] == f"ecr-catalog-partition-{index}"
        # At the fleet's stable URL (partition 0's here), whichever partition owns them.
        assert location["spec"]["targets"] == [
            f"http://ecr-catalog-0.headless:8080/sources/{s.account_id}/{s.region}/catalog-info.yaml"
            for s in sorted(r.source for r in owned(index))
        ]
        # Revalidated like every other URL; another partition's root is not served here.
        etag = response.headers["etag"]
        again = await partition.get(
            f"/partitions/{index}/catalog-info.yaml", headers={"If-None-Match": etag}
        )
        assert again.status_code == 304
        other = (index + 1) % COUNT
        elsewhere = await partition.get(f"/partitions/{other}/catalog-info.yaml")
        assert elsewhere.status_code == 307
        assert elsewhere.headers["location"] == (
            f"http://ecr-catalog-{other}.headless:8080/partitions/{other}/catalog-info.yaml"
        )
        assert (await partition.get("/partitions/3/catalog-info.yaml")).status_code == 404


async def test_a_partition_serves_its_own_sources_and_sends_the_others_to_their_owner(
    fleet: list[httpx.AsyncClient],
) -> None:
    for index, partition in enumerate(fleet):
        for record in RECORDS:
            base = f"/sources/{record.source.account_id}/{record.source.region}"
            owner = owner_of(record.source, COUNT)
            for rest in ("catalog-info.yaml", "entities.yaml", "shards/1/0.yaml"):
                response = await partition.get(f"{base}/{rest}")
                if owner == index:
                    assert response.status_code == 200
                else:
                    assert response.status_code == 307
                    assert response.headers["location"] == (
                        f"http://ecr-catalog-{owner}.headless:8080{base}/{rest}"
                    )
        # A source the fleet does not have is no partition's.
        assert (
            await partition.get("/sources/999999999999/us-east-1/entities.yaml")
        ).status_code == 404


async def test_the_fleet_url_names_the_sources_when_it_is_set() -> None:
    partition = {
        "count": 2,
        "index": 1,
        "url_template": TEMPLATE,
        "fleet_url": "http://ecr-catalog.ecr-catalog.svc:8080/",
    }
    async with serving(FakeReader(*RECORDS), partition=partition) as client:
        location = documents((await client.get("/partitions/1/catalog-info.yaml")).text)[0]
    assert location["spec"]["targets"]
    assert all(
        t.startswith("http://ecr-catalog.ecr-catalog.svc:8080/sources/")
        for t in location["spec"]["targets"]
    )


async def test_a_single_process_has_no_partition_urls() -> None:
    async with serving(FakeReader(*RECORDS[:2])) as single:
        assert (await single.get("/partitions/0/catalog-info.yaml")).status_code == 404
        assert (await single.get("/partitions.yaml")).status_code == 404
        assert (await single.get("/catalog-info.yaml")).status_code == 200
