"""Replicas are independent and stateless, yet serve the same bytes: two service processes on
the same registry give byte-identical bodies and ETags, so Backstage's If-None-Match holds
whichever replica answers."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import yaml

from service.demo import DemoRepository, seed_registry

from ..support import MotoServer, spawn_service, stop_process, wait_until

ACCOUNT = "123456789012"
PATHS = ["/entities.yaml", "/entities.json", "/catalog-info.yaml", "/catalog/core.yaml"]


def wait_complete(url: str) -> None:
    wait_until(lambda: httpx.get(f"{url}/readyz").status_code == 200, f"{url} complete", 60)


def paths_of(url: str) -> list[str]:
    """Every path Backstage can read: the single URL, the core, each source and its shards."""
    root = yaml.safe_load(httpx.get(f"{url}/catalog-info.yaml").text)
    paths = list(PATHS)
    for target in root["spec"]["targets"][1:]:
        source_location = target.removeprefix(".")
        paths.append(source_location)
        nested = yaml.safe_load(httpx.get(url + source_location).text)
        base = source_location.rsplit("/", 1)[0]
        paths += [f"{base}/{t.removeprefix('./')}" for t in nested["spec"]["targets"]]
    return paths


def raw_answers(url: str, paths: list[str]) -> dict[tuple[str, str], tuple[int, str, bytes]]:
    """Status, ETag and the bytes on the wire (gzip left encoded) of each path and encoding."""
    answers = {}
    with httpx.Client() as client:
        for path in paths:
            for encoding in ("identity", "gzip"):
                headers = {"Accept-Encoding": encoding}
                with client.stream("GET", url + path, headers=headers) as response:
                    raw = b"".join(response.iter_raw())
                    answers[(path, encoding)] = (
                        response.status_code,
                        response.headers["etag"],
                        raw,
                    )
    return answers


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
        first = spawn_service(tmp_path / "replica-0", config)
        replicas.append(first)
        wait_complete(first.url)
        paths = paths_of(first.url)
        assert len(paths) > len(PATHS) + 2
        # Every body of the first replica is rendered (and gzipped) by these requests.
        answers = raw_answers(first.url, paths)
        rendered_by = time.monotonic()
        # gzip writes a time stamp in seconds: the second replica renders everything at least a
        # second later, so only a fixed (zero) time stamp can give the same bytes.
        time.sleep(max(0.0, rendered_by + 1.2 - time.monotonic()))
        second = spawn_service(tmp_path / "replica-1", config)
        replicas.append(second)
        wait_complete(second.url)
        assert raw_answers(second.url, paths) == answers
        encodings = {key[1]: answer for key, answer in answers.items() if key[0] == PATHS[0]}
        assert encodings["gzip"][2][:2] == b"\x1f\x8b", "the gzip body is sent encoded"
        assert encodings["gzip"][1] != encodings["identity"][1]
        for (path, encoding), (status, etag, _) in answers.items():
            assert status == 200, path
            # And each replica honours the other's ETag.
            revalidated = httpx.get(
                second.url + path, headers={"If-None-Match": etag, "Accept-Encoding": encoding}
            )
            assert revalidated.status_code == 304, (path, encoding)
    finally:
        for replica in replicas:
            stop_process(replica.process)
