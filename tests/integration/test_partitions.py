"""A fleet of three `serve` processes (partition.count 3, indexes 0-2) on loopback, and one
single process, over the same 12 sources of the fake ECR's organisation, each process behind a
counting proxy of its own: every source is read by exactly one partition, only partition 0
serves the core, and together they serve exactly what the single process does."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from service.aws.reader import AwsEcrReader
from service.config import AwsSettings, CacheSettings
from service.demo import DEMO_CREDENTIALS
from service.model import SourceId
from service.ownership import owner_of
from service.reading import StaticCredentials

from ..support import (
    FaultProxy,
    ServiceProcess,
    free_port,
    run_cli,
    spawn_service,
    start_fake_ecr,
    start_proxy,
    stop_process,
    wait_healthy_sources,
)

COUNT = 3
MANAGEMENT = "123456789012"
MEMBERS = [f"{100_000_000_000 + n}" for n in range(1, 5)]
REGIONS = ["us-east-1", "eu-west-1", "us-west-2"]
SOURCES = sorted(SourceId(account, region) for account in MEMBERS for region in REGIONS)
CORE = {"domain:default/delivery", "system:default/container-registry"}
COMPONENT = "component:default/ecr-registry"
# Each partition listens on its own loopback address and the same port, so that one template
# names every partition, as the headless Service's DNS names do in a cluster.
HOSTS = [f"127.0.0.1{index}" for index in range(COUNT)]


@dataclass
class Fleet:
    partitions: list[ServiceProcess]
    proxies: list[FaultProxy]
    single: ServiceProcess
    single_proxy: FaultProxy
    template: str


def config(proxy: FaultProxy, **sections: Any) -> dict[str, Any]:
    """12 sources: the organisation's four member accounts (its management account holds no
    repositories and is left out) in three regions, read through ``proxy``."""
    return {
        "aws": {
            "endpoint_url": proxy.url,
            "total_max_attempts": 2,
            "organization": {
                "role_name": "ecr-catalog-reader",
                "regions": REGIONS,
                "exclude_accounts": [MANAGEMENT],
            },
        },
        # One read per source for the whole test: the counts below are of that one.
        "refresh": {"interval_seconds": 3600, "initial_retry_seconds": 0.5},
        **sections,
    }


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    tmp = tmp_path_factory.mktemp("partitions")
    fake, url = start_fake_ecr(
        "--accounts", str(len(MEMBERS)), "--regions", "3", "--repositories", "6", "--images", "2"
    )
    proxies = [start_proxy(url) for _ in range(COUNT + 1)]
    processes: list[ServiceProcess] = []
    try:
        port = free_port()
        template = f"http://127.0.0.1{{index}}:{port}"
        for index, host in enumerate(HOSTS):
            partition = {"count": COUNT, "index": index, "url_template": template}
            processes.append(
                spawn_service(
                    tmp / f"partition-{index}",
                    config(proxies[index], partition=partition, state_dir=str(tmp / f"s{index}")),
                    host=host,
                    port=port,
                )
            )
        single = spawn_service(tmp / "single", config(proxies[COUNT]))
        processes.append(single)
        for process in processes:
            wait_healthy_sources(process.url, timeout=60)
        yield Fleet(processes[:COUNT], proxies[:COUNT], single, proxies[COUNT], template)
    finally:
        for process in processes:
            stop_process(process.process)
        for proxy in proxies:
            stop_process(proxy.process)
        stop_process(fake)


def documents(url: str) -> list[dict[str, Any]]:
    # Redirects followed, as Backstage's reader does: a source's URL names the fleet's.
    response = httpx.get(url, timeout=10, follow_redirects=True)
    assert response.status_code == 200, (url, response.text)
    return [d for d in yaml.safe_load_all(response.text) if d]


def ref_of(entity: dict[str, Any]) -> str:
    return f"{entity['kind']}:default/{entity['metadata']['name']}".lower()


def reads(proxy: FaultProxy) -> dict[SourceId, Counter[str]]:
    """ECR calls through ``proxy`` by source: the fake ECR's assumed-role keys name the account."""
    found = {}
    for key, operations in proxy.stats()["by_signer"].items():
        signer, region = key.split("/")
        assert signer.startswith("ASIA"), key
        found[SourceId(signer.removeprefix("ASIA"), region)] = Counter(operations)
    return found


def test_every_source_is_read_by_exactly_one_partition_its_owner(fleet: Fleet) -> None:
    read = [reads(proxy) for proxy in fleet.proxies]
    for index, by_source in enumerate(read):
        assert set(by_source) == {s for s in SOURCES if owner_of(s, COUNT) == index}
        assert by_source, f"partition {index} owns a source here"
        # One read: one listing and one registry read per source.
        for operations in by_source.values():
            assert operations["DescribeRepositories"] == 1
            assert operations["DescribeRegistry"] == 1
    assert sorted(s for by_source in read for s in by_source) == SOURCES
    for index, partition in enumerate(fleet.partitions):
        readiness = httpx.get(f"{partition.url}/readyz", timeout=10).json()
        assert readiness["partition"] == {"index": index, "count": COUNT, "fleet": len(SOURCES)}
        assert len(readiness["sources"]) == len(read[index])
    assert "partition" not in httpx.get(f"{fleet.single.url}/readyz", timeout=10).json()
    # Together, exactly the AWS calls of the single process, operation for operation.
    fleet_calls = sum((sum(r.values(), Counter()) for r in read), Counter())
    single_calls = sum(reads(fleet.single_proxy).values(), Counter())
    assert fleet_calls == single_calls
    assert fleet_calls["DescribeImages"] == 24


def test_only_partition_0_serves_the_domain_system_and_component(fleet: Fleet) -> None:
    for index, partition in enumerate(fleet.partitions):
        served = {ref_of(e) for e in documents(f"{partition.url}/partitions/{index}/entities.yaml")}
        core = CORE | {COMPONENT}
        assert (core & served) == (core if index == 0 else set()), index
        for path in ("/catalog/core.yaml", "/catalog-info.yaml", "/partitions.yaml"):
            status = httpx.get(partition.url + path, timeout=10).status_code
            # Partition 0's alone: the others redirect there.
            assert status == (200 if index == 0 else 307), (index, path)
    component = next(
        e
        for e in documents(f"{fleet.partitions[0].url}/catalog/core.yaml")
        if e["kind"] == "Component"
    )
    # Every source of the fleet, the other partitions' included.
    assert len(component["spec"]["dependsOn"]) == len(SOURCES)


def test_the_union_of_the_partitions_equals_the_single_process(fleet: Fleet) -> None:
    single = httpx.get(f"{fleet.single.url}/entities.json", timeout=10).json()["items"]
    parts = [
        documents(f"{p.url}/partitions/{i}/entities.yaml") for i, p in enumerate(fleet.partitions)
    ]
    union = [entity for part in parts for entity in part]
    assert len(union) == len({ref_of(e) for e in union}), "no entity served twice"
    assert sorted(union, key=ref_of) == sorted(single, key=ref_of)
    assert len(single) == 3 + 12 + 24


def test_each_partition_answers_304_to_its_own_etag(fleet: Fleet) -> None:
    for index, partition in enumerate(fleet.partitions):
        root = yaml.safe_load(
            httpx.get(f"{partition.url}/partitions/{index}/catalog-info.yaml").text
        )
        source_location = httpx.URL(root["spec"]["targets"][0]).path
        for path in (
            f"/partitions/{index}/entities.yaml",
            f"/partitions/{index}/catalog-info.yaml",
            source_location,
        ):
            for encoding in ("identity", "gzip"):
                headers = {"Accept-Encoding": encoding}
                first = httpx.get(partition.url + path, headers=headers, timeout=10)
                assert first.status_code == 200, (index, path)
                again = httpx.get(
                    partition.url + path,
                    headers={**headers, "If-None-Match": first.headers["etag"]},
                    timeout=10,
                )
                assert again.status_code == 304, (index, path, encoding)
                assert again.content == b""


def test_partition_0s_root_location_lists_the_three_partitions_root_locations(
    fleet: Fleet,
) -> None:
    (root,) = documents(f"{fleet.partitions[0].url}/catalog-info.yaml")
    targets = root["spec"]["targets"]
    assert targets[0] == "./catalog/core.yaml"
    assert targets[1:] == [
        f"{p.url}/partitions/{index}/catalog-info.yaml" for index, p in enumerate(fleet.partitions)
    ]
    listed = []
    first = fleet.partitions[0].url
    for index, target in enumerate(targets[1:]):
        (location,) = documents(target)
        assert location["metadata"]["name"] == f"ecr-catalog-partition-{index}"
        for source_target in location["spec"]["targets"]:
            # Every source's Location is named at partition 0's URL (no partition.fleet_url
            # here), whichever partition owns it; partition 0 sends the reader to the owner.
            assert source_target.startswith(f"{first}/sources/")
            (source_location,) = documents(source_target)
            listed.append(source_location["metadata"]["name"])
    assert sorted(listed) == sorted(f"ecr-catalog-{s.account_id}-{s.region}" for s in SOURCES)


def test_a_source_url_on_another_partition_redirects_to_its_owner_and_revalidates(
    fleet: Fleet,
) -> None:
    first = fleet.partitions[0].url
    elsewhere = next(s for s in SOURCES if owner_of(s, COUNT) != 0)
    owner = fleet.partitions[owner_of(elsewhere, COUNT)].url
    path = f"/sources/{elsewhere.account_id}/{elsewhere.region}/shards/1/0.yaml"
    redirect = httpx.get(first + path, timeout=10)
    assert redirect.status_code == 307
    assert redirect.headers["location"] == owner + path
    served = httpx.get(first + path, timeout=10, follow_redirects=True)
    assert served.status_code == 200 and len(documents(owner + path)) == 3
    # Backstage sends If-None-Match again on each hop: the owner answers 304 to its ETag.
    revalidated = httpx.get(
        first + path,
        headers={"If-None-Match": served.headers["etag"]},
        timeout=10,
        follow_redirects=True,
    )
    assert revalidated.status_code == 304


def test_an_index_outside_the_fleet_or_no_ordinal_exits_2(tmp_path: Path) -> None:
    template = "http://ecr-catalog-{index}.ecr-catalog-headless:8080"
    path = tmp_path / "config.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "aws": {"targets": [{"regions": ["us-east-1"]}]},
                "partition": {"count": 3, "url_template": template},
            }
        ),
        encoding="utf-8",
    )
    for hostname, extra, message in [
        ("ecr-catalog-1", {"ECR_CATALOG_PARTITION__INDEX": "3"}, "partition.index 3 is outside"),
        ("ecr-catalog-5", {}, "host name 'ecr-catalog-5' gives partition index 5, outside 0..2"),
        ("laptop", {}, "host name 'laptop' ends in no ordinal"),
    ]:
        done = run_cli(
            "serve", "--config", str(path), "--port", "0", env={"HOSTNAME": hostname, **extra}
        )
        assert done.returncode == 2, done.stderr
        assert message in done.stderr
    # A command that reads every source as one process works on any host with the fleet's
    # configuration: an operator's laptop rendering what the fleet serves.
    rendered = run_cli(
        "render", "--demo", "--config", str(path), env={"HOSTNAME": "laptop"}, timeout=120
    )
    assert rendered.returncode == 0, rendered.stderr
    assert "kind: Domain" in rendered.stdout


async def test_the_partitions_share_the_organisations_pace() -> None:
    """Every partition discovers the organisation on its own, at 1/count of
    organization.calls_per_second: 61 accounts are 4 pages of ListAccounts."""
    fake, url = start_fake_ecr("--accounts", "60", "--regions", "1", "--repositories", "1")
    try:
        aws = AwsSettings(
            endpoint_url=url,
            organization={"regions": ["us-east-1"], "calls_per_second": 8},
        )
        taken = {}
        for partitions in (1, 4):
            async with AwsEcrReader.open(
                aws, CacheSettings(), StaticCredentials(*DEMO_CREDENTIALS), partitions=partitions
            ) as reader:
                started = time.monotonic()
                listing = await reader.list_sources()
                taken[partitions] = time.monotonic() - started
            assert len(listing.sources) == 61
        stats = httpx.get(f"{url}/__stats__").json()  # noqa: ASYNC210 - the server is over
    finally:
        stop_process(fake)
    assert stats["calls"]["organizations:ListAccounts"] == 8
    # At 2 a second (8 / 4), the 4 pages wait at least 1.5 s: a burst of 2, then one per 0.5 s.
    assert taken[4] >= 1.4
    assert taken[1] < taken[4]


def test_before_the_fleet_is_listed_another_partitions_source_is_try_again(
    tmp_path: Path,
) -> None:
    """A partition restarted from its saved data, while the organisation cannot be discovered
    (every AWS call hangs), serves its own sources and answers 503 for a source it cannot yet
    tell the owner of: never a 404, which would say the source does not exist."""
    fake, url = start_fake_ecr(
        "--accounts", str(len(MEMBERS)), "--regions", "3", "--repositories", "2"
    )
    proxy = start_proxy(url)
    port = free_port()
    partition = {"count": COUNT, "index": 1, "url_template": f"http://127.0.0.1{{index}}:{port}"}
    settings = config(proxy, partition=partition, state_dir=str(tmp_path / "state"))
    mine = next(s for s in SOURCES if owner_of(s, COUNT) == 1)
    other = next(s for s in SOURCES if owner_of(s, COUNT) == 2)

    def shard(source: SourceId) -> str:
        return f"/sources/{source.account_id}/{source.region}/shards/1/0.yaml"

    process = spawn_service(tmp_path / "first", settings, host=HOSTS[1], port=port)
    try:
        wait_healthy_sources(process.url, timeout=60)
        assert httpx.get(process.url + shard(other), timeout=10).status_code == 307
    finally:
        stop_process(process.process)
    proxy.set(hang_rate=1.0, hang_seconds=120)
    process = spawn_service(tmp_path / "again", settings, host=HOSTS[1], port=port)
    try:
        unknown = httpx.get(process.url + shard(other), timeout=10)
        assert unknown.status_code == 503, unknown.text
        assert "not listed yet" in unknown.text
        assert int(unknown.headers["retry-after"]) >= 1
        assert {d["kind"] for d in documents(process.url + shard(mine))} >= {"Resource"}
    finally:
        stop_process(process.process)
        stop_process(proxy.process)
        stop_process(fake)
