"""The reader in its own process: the same answers as in-process, deltas, failures, a lost child."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest

from service.demo import DEMO_CREDENTIALS, DemoRepository, _manifest, seed_registry
from service.ecr import EcrError, StaticCredentials
from service.model import SourceId
from service.reader_process import ReaderProcess

from .support import (
    FaultProxy,
    MotoServer,
    moto_reader,
    moto_service_config,
    moto_settings,
    spawn_service,
    stop_process,
    until_true,
    wait_healthy_sources,
)

US = SourceId("123456789012", "us-east-1")
EU = SourceId("123456789012", "eu-west-1")


class CountingObserver:
    def __init__(self) -> None:
        self.calls: Counter[tuple[str, str]] = Counter()
        self.lookups: Counter[tuple[str, bool]] = Counter()

    def aws_call(self, operation: str, outcome: str, times: int = 1) -> None:
        self.calls[operation, outcome] += times

    def cache_lookup(self, kind: str, hit: bool, times: int = 1) -> None:
        self.lookups[kind, hit] += times


def seed(moto: MotoServer, count: int, region: str = "us-east-1") -> None:
    seed_registry(
        moto.url,
        [
            DemoRepository(
                name=f"team/app-{index:02d}",
                region=region,
                tags={"owner": "team-a"},
                images=(("v1",), ("v2", "latest")),
            )
            for index in range(count)
        ],
    )


def reader_process(url: str, regions: list[str], **aws: Any) -> ReaderProcess:
    settings = moto_settings(url, regions, **aws)
    return ReaderProcess(settings.reader_settings(), StaticCredentials(*DEMO_CREDENTIALS))


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead too; /proc tells them apart.
    return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0] != "Z"


async def test_answers_like_the_reader_in_process_and_reports_its_calls(moto: MotoServer) -> None:
    seed(moto, 12)
    async with moto_reader(moto_settings(moto.url, ["us-east-1"])) as local:
        await local.list_sources()
        expected = await local.read_source(US)
    observer = CountingObserver()
    async with reader_process(moto.url, ["us-east-1"]).attached(observer) as reader:
        assert (await reader.list_sources()).sources == (US,)
        records = await reader.read_source(US)
    assert records.repositories == expected.repositories
    assert records.registry == expected.registry
    assert records.skipped == expected.skipped
    # Every per-repository call the child made was reported to this process's observer.
    for operation in ("ListTagsForResource", "DescribeImages"):
        assert observer.calls[operation, "ok"] == 12
    assert observer.lookups["images", False] == 12


async def test_an_unchanged_read_hands_back_the_same_objects_and_a_change_only_itself(
    moto: MotoServer,
) -> None:
    seed(moto, 5)
    process = reader_process(moto.url, ["us-east-1"])
    async with process.attached(None) as reader:
        await reader.list_sources()
        first = await reader.read_source(US)
        second = await reader.read_source(US)
        # The store tells "nothing changed" by identity and then builds nothing.
        assert second.repositories is first.repositories
        assert second.read_at >= first.read_at

        ecr = moto.ecr("us-east-1")
        ecr.create_repository(repositoryName="team/new")
        ecr.delete_repository(repositoryName="team/app-00", force=True)
        ecr.put_image(
            repositoryName="team/app-01", imageManifest=_manifest("team/app-01", 9), imageTag="v3"
        )
        assert await reader.forget_images(US, "team/app-01")
        assert not await reader.forget_images(US, "no/such-repository")
        third = await reader.read_source(US)
    names = [r.name for r in third.repositories]
    assert names == ["team/app-01", "team/app-02", "team/app-03", "team/app-04", "team/new"]
    before = {r.name: r for r in first.repositories}
    after = {r.name: r for r in third.repositories}
    for name in ("team/app-02", "team/app-03", "team/app-04"):
        assert after[name] is before[name]
    assert after["team/app-01"].images.image_count == 3
    assert before["team/app-01"].images.image_count == 2


async def test_an_aws_error_arrives_whole_and_other_sources_still_read(
    moto: MotoServer, proxy: FaultProxy
) -> None:
    seed(moto, 2)
    seed(moto, 3, region="eu-west-1")
    proxy.set(deny_regions=["eu-west-1"])
    async with reader_process(proxy.url, ["us-east-1", "eu-west-1"]).attached(None) as reader:
        listing = await reader.list_sources()
        assert set(listing.sources) == {US, EU}
        with pytest.raises(EcrError) as denied:
            await reader.read_source(EU)
        assert (denied.value.account, denied.value.region) == ("123456789012", "eu-west-1")
        assert denied.value.code == "AccessDeniedException"
        assert len((await reader.read_source(US)).repositories) == 2


async def test_a_lost_child_fails_the_reads_waiting_on_it_and_the_next_call_starts_another(
    moto: MotoServer, proxy: FaultProxy
) -> None:
    seed(moto, 4)
    process = reader_process(proxy.url, ["us-east-1"])
    async with process.attached(None) as reader:
        await reader.list_sources()
        first = await reader.read_source(US)
        lost_pid = process.pid
        assert lost_pid is not None
        proxy.set(latency_ms=3000)
        listed = proxy.stats()["calls"]["DescribeRepositories"]
        waiting = asyncio.create_task(reader.read_source(US))
        # The child is inside its read: the proxy holds its listing call for 3 s.
        await until_true(
            lambda: proxy.stats()["calls"]["DescribeRepositories"] > listed, "the child's read"
        )
        os.kill(lost_pid, signal.SIGKILL)
        with pytest.raises(EcrError) as lost:
            await asyncio.wait_for(waiting, 10)
        assert lost.value.code == "ReaderLost"
        assert (lost.value.account, lost.value.region) == ("123456789012", "us-east-1")

        proxy.clear()
        await reader.list_sources()
        again = await reader.read_source(US)
        assert process.pid not in (None, lost_pid)
        assert again.repositories == first.repositories
        new_pid = process.pid
    assert new_pid is not None
    # Closing waits for the child to end (and reaps it).
    assert not alive(new_pid), "closing the reader left its process running"


def test_the_service_keeps_serving_when_its_reader_process_dies(
    moto: MotoServer, tmp_path: Path
) -> None:
    seed(moto, 3)
    config = moto_service_config(moto.url, ["us-east-1"], refresh={"interval_seconds": 1})
    service = spawn_service(tmp_path, config)
    try:
        ready = wait_healthy_sources(service.url)
        etag = httpx.get(f"{service.url}/entities.yaml").headers["etag"]
        (child,) = children(service.process.pid)
        os.kill(child, signal.SIGKILL)
        # Until the next refresh starts another reader, the catalog is served as it was.
        kept = httpx.get(f"{service.url}/entities.yaml")
        assert kept.status_code == 200 and kept.headers["etag"] == etag

        moto.ecr("us-east-1").create_repository(repositoryName="team/after")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            body = httpx.get(f"{service.url}/entities.yaml")
            assert body.status_code == 200, body.text
            if "team/after" in body.text:
                break
            time.sleep(0.2)
        else:
            pytest.fail("the service never read ECR again after its reader process died")
        (replacement,) = children(service.process.pid)
        assert replacement != child
        assert wait_healthy_sources(service.url)["sources"][0]["healthy"]
        assert ready["complete"]
    finally:
        stop_process(service.process)
    log = (tmp_path / "service.log").read_text()
    assert "reader process" in log


def children(pid: int) -> list[int]:
    return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


async def test_the_child_reads_without_importing_pydantic(moto: MotoServer) -> None:
    # Its settings arrive as plain data (ReaderSettings): pydantic would cost it ~12 MB.
    seed(moto, 2)
    process = reader_process(moto.url, ["us-east-1"])
    async with process.attached(None) as reader:
        await reader.list_sources()
        assert len((await reader.read_source(US)).repositories) == 2
        assert process.pid is not None
        mapped = await asyncio.to_thread(Path(f"/proc/{process.pid}/maps").read_text)
    assert "aiohttp" in mapped  # the files of the child's own compiled modules are listed
    assert "pydantic" not in mapped
