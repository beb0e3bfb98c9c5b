"""Replicas are independent and stateless, yet serve the same bytes: two service processes on
the same registry give byte-identical bodies and ETags, so Backstage's If-None-Match holds
whichever replica answers."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import yaml

from service.demo import DemoRepository, seed_registry

from .support import MotoServer, spawn_service, stop_process

ACCOUNT = "123456789012"
PATHS = ["/entities.yaml", "/entities.json", "/catalog-info.yaml", "/catalog/core.yaml"]


def wait_complete(url: str) -> None:
    deadline = time.monotonic() + 60
    while httpx.get(f"{url}/readyz").status_code != 200:
        assert time.monotonic() < deadline, "never ready"
        time.sleep(0.1)


def test_two_replicas_serve_identical_bodies_and_etags(moto: MotoServer, tmp_path: Path) -> None:
    seed_registry(
        moto.url,
        [
            DemoRepository(name=f"team-{i % 3}/svc-{i}", region=region, tags={"team": f"t{i % 3}"})
            for i, region in enumerate(["us-east-1", "eu-west-1"] * 6)
        ],
    )
    config = {
        "aws": {
            "endpoint_url": moto.url,
            "targets": [{"regions": ["us-east-1", "eu-west-1"], "account_id": ACCOUNT}],
        },
        "catalog": {"shard_size": 10},
    }
    replicas = []
    try:
        for index in range(2):
            workdir = tmp_path / f"replica-{index}"
            workdir.mkdir()
            replicas.append(spawn_service(workdir, config))
        for replica in replicas:
            wait_complete(replica.url)
        root = yaml.safe_load(httpx.get(f"{replicas[0].url}/catalog-info.yaml").text)
        paths = list(PATHS)
        for target in root["spec"]["targets"][1:]:
            source_location = target.removeprefix(".")
            paths.append(source_location)
            nested = yaml.safe_load(httpx.get(replicas[0].url + source_location).text)
            base = source_location.rsplit("/", 1)[0]
            paths += [f"{base}/{t.removeprefix('./')}" for t in nested["spec"]["targets"]]
        assert len(paths) > len(PATHS) + 2
        for path in paths:
            for encoding in ("identity", "gzip"):
                answers = [
                    httpx.get(r.url + path, headers={"Accept-Encoding": encoding}) for r in replicas
                ]
                assert [a.status_code for a in answers] == [200, 200], path
                first, second = answers
                assert first.content == second.content, path
                assert first.headers["etag"] == second.headers["etag"], path
                # And each replica honours the other's ETag.
                revalidated = httpx.get(
                    replicas[1].url + path,
                    headers={"If-None-Match": first.headers["etag"], "Accept-Encoding": encoding},
                )
                assert revalidated.status_code == 304, path
    finally:
        for replica in replicas:
            stop_process(replica.process)
