"""A source whose read suddenly loses most of its repositories, against a real `serve`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import yaml

from service.demo import DemoRepository, seed_registry

from ..support import (
    MotoServer,
    moto_service_config,
    spawn_service,
    stop_process,
    wait_healthy_sources,
    wait_until,
)

TOKEN = "confirm-removals-token"
SOURCE = "123456789012/us-east-1"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def repository_names(url: str) -> set[str]:
    response = httpx.get(f"{url}/entities.yaml")
    assert response.status_code == 200
    documents = list(yaml.safe_load_all(response.text))
    return {d["metadata"]["name"] for d in documents if "--" in d["metadata"]["name"]}


def hold_of(url: str) -> dict[str, Any] | None:
    sources = httpx.get(f"{url}/readyz").json()["sources"]
    hold: dict[str, Any] | None = sources[0]["removal_hold"]
    return hold


def test_a_read_that_loses_most_repositories_is_held_until_confirmed(
    moto: MotoServer, tmp_path: Path
) -> None:
    names = [f"team/r{i:02d}" for i in range(12)]
    seed_registry(moto.url, [DemoRepository(name=n, region="us-east-1") for n in names])
    config = moto_service_config(
        moto.url,
        ["us-east-1"],
        refresh={"interval_seconds": 0.5, "initial_retry_seconds": 0.2},
        server={"refresh_token": TOKEN, "refresh_min_interval_seconds": 0},
        state_dir=str(tmp_path / "state"),
    )
    service = spawn_service(tmp_path, config)
    try:
        wait_healthy_sources(service.url)
        before = repository_names(service.url)
        assert len(before) == 12
        etag = httpx.get(f"{service.url}/entities.yaml").headers["etag"]
        # Nothing is held yet: a confirmation is refused, and says so.
        refused = httpx.post(f"{service.url}/refresh?confirm_removals={SOURCE}", headers=AUTH)
        assert refused.status_code == 409 and SOURCE in refused.json()["detail"]

        # 11 of 12 disappear from the listing, as when DescribeRepositories is denied a path.
        ecr = moto.ecr("us-east-1")
        for name in names[1:]:
            ecr.delete_repository(repositoryName=name, force=True)
        hold = wait_until(
            lambda: hold_of(service.url), "the removal to be held", timeout=30, every=0.2
        )
        assert (hold["would_remove"], hold["served"], hold["read"]) == (11, 12, 1)
        # Later reads change nothing: the same 200, the same ETag, every entity still listed.
        reads = httpx.get(f"{service.url}/readyz").json()["sources"][0]["last_attempt_at"]
        wait_until(
            lambda: (
                httpx.get(f"{service.url}/readyz").json()["sources"][0]["last_attempt_at"] != reads
            ),
            "another read",
            timeout=30,
            every=0.2,
        )
        answer = httpx.get(f"{service.url}/entities.yaml")
        assert answer.status_code == 200 and answer.headers["etag"] == etag
        assert repository_names(service.url) == before
        metrics = httpx.get(f"{service.url}/metrics").text
        assert (
            'ecr_catalog_source_removals_held{account="123456789012",region="us-east-1"} 11.0'
            in metrics
        )
        assert "Removals held" in httpx.get(f"{service.url}/").text

        # The confirmation takes the refresh token, and a well-formed source.
        unauthorized = httpx.post(f"{service.url}/refresh?confirm_removals={SOURCE}")
        assert unauthorized.status_code == 401
        malformed = httpx.post(f"{service.url}/refresh?confirm_removals=us-east-1", headers=AUTH)
        assert malformed.status_code == 400
        confirmed = httpx.post(f"{service.url}/refresh?confirm_removals={SOURCE}", headers=AUTH)
        assert confirmed.status_code == 202, confirmed.text
        wait_until(
            lambda: len(repository_names(service.url)) == 1,
            "the removal to apply",
            timeout=30,
            every=0.2,
        )
        assert hold_of(service.url) is None
    finally:
        stop_process(service.process)
