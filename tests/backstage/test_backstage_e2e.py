"""End to end with a real Backstage catalog backend reading ecr-catalog as a `type: url` location.

Three real processes on loopback: a moto server (the ECR), `ecr-catalog serve`, and
@backstage/plugin-catalog-backend started by tests/backstage/backend.js. Backstage drops an
entity that fails validation without saying so over HTTP, so what was served is compared with
what was ingested, ref by ref. The tests run in file order: the last two delete a repository
and then stop the ECR.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
import yaml

from service.demo import DEMO_ACCOUNT, DemoRepository, demo_repositories, seed_registry

from ..support import (
    MotoServer,
    command_env,
    free_port,
    start_moto,
    stop_process,
    wait_for_http,
)

pytestmark = pytest.mark.backstage

HARNESS = Path(__file__).parent
T = TypeVar("T")

_HOSTILE_HEAD = "hostile/" + "/".join(["segment-" + "n" * 40] * 4) + "/"
HOSTILE_NAME = _HOSTILE_HEAD + "z" * (256 - len(_HOSTILE_HEAD))
HOSTILE = DemoRepository(
    name=HOSTILE_NAME,
    region="us-east-1",
    tags={
        "owner": "group:default/../x",
        "Owner": "team-z",
        "description": "line1\nline2\n---\nkey: value # not a comment ünï 🐳",
        "team": "---",
        "Team": "Ünïcödé 🐳 team",
        "environment": "x" * 256,
        "component": "",
        "backstage.io/tags": "Good, bad tag!, ok-1, 🐳, 1e3",
        "cost-center": "1e3",
        "project": "a: b",
    },
    images=(("1e3", "0o17"), ()),
)
DELETED = "team-b/checkout-web"


def eventually(check: Callable[[], T | None], timeout: float, what: str) -> T:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(1)


@dataclass
class Stack:
    moto: MotoServer
    service_url: str
    backstage_url: str
    backstage_log: Path

    def served(self) -> dict[str, dict[str, Any]]:
        items = httpx.get(f"{self.service_url}/entities.json", timeout=10).json()["items"]
        return {ref_of(entity): entity for entity in items}

    def ingested(self) -> dict[str, dict[str, Any]]:
        response = httpx.get(f"{self.backstage_url}/api/catalog/entities", timeout=10)
        response.raise_for_status()
        return {ref_of(e): e for e in response.json() if e["kind"] != "Location"}

    def locations(self) -> list[dict[str, Any]]:
        response = httpx.get(
            f"{self.backstage_url}/api/catalog/entities",
            params={"filter": "kind=location"},
            timeout=10,
        )
        result: list[dict[str, Any]] = response.json()
        return result

    def metric(self, route: str, status: str) -> float:
        text = httpx.get(f"{self.service_url}/metrics", timeout=10).text
        prefix = f'ecr_catalog_http_requests_total{{route="{route}",status="{status}"}} '
        for line in text.splitlines():
            if line.startswith(prefix):
                return float(line[len(prefix) :])
        return 0.0


def ref_of(entity: dict[str, Any]) -> str:
    metadata = entity["metadata"]
    return f"{entity['kind']}:{metadata.get('namespace', 'default')}/{metadata['name']}".lower()


def _start_backstage(tmp: Path, service_port: int) -> tuple[subprocess.Popen[bytes], str, Path]:
    if not (HARNESS / "node_modules" / "@backstage" / "plugin-catalog-backend").is_dir():
        pytest.fail("the Backstage harness is not installed: run `make backstage-deps`")
    node = shutil.which("node")
    assert node, "node is required for the Backstage end-to-end test"
    port = free_port()
    config = {
        "app": {"baseUrl": "http://localhost:3000"},
        "backend": {
            "baseUrl": f"http://127.0.0.1:{port}",
            "listen": {"host": "127.0.0.1", "port": port},
            "database": {"client": "better-sqlite3", "connection": ":memory:"},
            # The hostname must match the location URL's exactly, port included.
            "reading": {"allow": [{"host": f"localhost:{service_port}"}]},
            # Test only: lets plain HTTP read /api/catalog/entities.
            "auth": {"dangerouslyDisableDefaultAuthPolicy": True},
        },
        "events": {"useEventBus": "never"},
        "catalog": {
            "processingInterval": {"seconds": 5},
            "rules": [{"allow": ["Domain", "System", "Component", "Resource", "Location"]}],
            "locations": [
                {"type": "url", "target": f"http://localhost:{service_port}/entities.yaml"}
            ],
        },
    }
    config_path = tmp / "app-config.yaml"
    config_path.write_text(yaml.safe_dump(config), encoding="utf-8")
    log_path = tmp / "backstage.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [node, "backend.js", "--config", str(config_path)],
            cwd=HARNESS,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    return process, f"http://127.0.0.1:{port}", log_path


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("backstage")
    moto = start_moto()
    processes: list[subprocess.Popen[bytes]] = [moto.process]
    try:
        seed_registry(moto.url, [*demo_repositories(), HOSTILE])
        service_port = free_port()
        config = tmp / "ecr-catalog.yaml"
        config.write_text(
            yaml.safe_dump(
                {
                    "aws": {
                        "endpoint_url": moto.url,
                        "total_max_attempts": 2,
                        "connect_timeout_seconds": 1,
                        "read_timeout_seconds": 5,
                        "targets": [
                            {"regions": ["us-east-1", "eu-west-1"], "account_id": DEMO_ACCOUNT}
                        ],
                    },
                    "refresh": {"interval_seconds": 2, "initial_retry_seconds": 1},
                }
            ),
            encoding="utf-8",
        )
        with (tmp / "service.log").open("wb") as log:
            service = subprocess.Popen(
                [sys.executable, "-m", "service.cli", "serve", "--config", str(config)]
                + ["--port", str(service_port)],
                env=command_env(),
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        processes.append(service)
        service_url = f"http://127.0.0.1:{service_port}"
        wait_for_http(f"{service_url}/healthz")
        eventually(
            lambda: httpx.get(f"{service_url}/readyz").status_code == 200, 60, "ecr-catalog ready"
        )
        backstage, backstage_url, log_path = _start_backstage(tmp, service_port)
        processes.append(backstage)
        wait_for_http(f"{backstage_url}/api/catalog/entities", timeout=120)
        yield Stack(moto, service_url, backstage_url, log_path)
    finally:
        for process in reversed(processes):
            if process.poll() is None:
                stop_process(process)


def test_everything_served_is_ingested_with_its_relations(stack: Stack) -> None:
    served = stack.served()
    assert len(served) == 5 + 26

    def complete() -> dict[str, dict[str, Any]] | None:
        ingested = stack.ingested()
        return ingested if served.keys() <= ingested.keys() else None

    try:
        ingested = eventually(complete, 120, "Backstage to ingest every served entity")
    except AssertionError:
        missing = sorted(served.keys() - stack.ingested().keys())
        log = stack.backstage_log.read_text(errors="replace")[-4000:]
        raise AssertionError(f"missing from Backstage: {missing}\n{log}") from None
    assert sorted(ingested) == sorted(served)
    assert [loc.get("status", {}).get("items", []) for loc in stack.locations()] == [[]]

    def relations(ref: str) -> set[tuple[str, str]]:
        return {(r["type"], r["targetRef"]) for r in ingested[ref]["relations"]}

    repository = "resource:default/team-a--payments-api.us-east-1.123456789012"
    assert relations(repository) >= {
        ("partOf", "system:default/container-registry"),
        ("ownedBy", "group:default/team-a"),
        ("dependsOn", "resource:default/ecr-123456789012-us-east-1"),
        ("dependencyOf", "component:default/payments-api"),
    }
    assert ("partOf", "domain:default/delivery") in relations("system:default/container-registry")
    assert ("dependsOn", "resource:default/ecr-123456789012-eu-west-1") in relations(
        "component:default/ecr-registry"
    )


def test_backstage_validator_accepts_every_served_entity(stack: Stack) -> None:
    location = f"url:{stack.service_url}/entities.yaml"
    for ref, entity in stack.served().items():
        response = httpx.post(
            f"{stack.backstage_url}/api/catalog/validate-entity",
            json={"entity": entity, "location": location},
            timeout=10,
        )
        assert response.status_code == 200, (ref, response.text)


def test_hostile_repository_is_repaired_and_blocks_nothing(stack: Stack) -> None:
    served = stack.served()
    (hostile,) = [e for e in served.values() if e["metadata"].get("title") == HOSTILE_NAME]
    assert len(HOSTILE_NAME) == 256
    ingested = stack.ingested()[ref_of(hostile)]
    assert ingested["spec"]["owner"] == "group:default/team-z"
    assert ingested["metadata"]["description"] == HOSTILE.tags["description"]
    assert ingested["metadata"]["tags"] == ["1e3", "bad", "good", "ok-1"]
    annotations = ingested["metadata"]["annotations"]
    # Strings a YAML 1.2 parser would read as numbers arrive as strings.
    assert annotations["ecr-catalog.io/latest-image-tags"] == "0o17,1e3"
    assert all(isinstance(value, str) for value in annotations.values())
    labels = ingested["metadata"]["labels"]
    assert labels["cost-center"] == "1e3"
    assert labels["team"] == "n-c-d-team"
    assert labels["environment"] == "x" * 63
    assert labels["project"] == "a-b"


def test_backstage_polls_are_answered_with_304(stack: Stack) -> None:
    eventually(
        lambda: stack.metric("/entities.yaml", "304") >= 2, 60, "Backstage polls answered 304"
    )
    assert stack.metric("/entities.yaml", "200") >= 1


def test_a_deleted_repository_disappears_from_backstage(stack: Stack) -> None:
    stack.moto.ecr("us-east-1").delete_repository(repositoryName=DELETED, force=True)
    ref = "resource:default/team-b--checkout-web.us-east-1.123456789012"
    assert ref in stack.ingested()
    eventually(lambda: ref not in stack.served(), 30, "the service to drop the repository")
    # Orphans are deleted by a cleanup task that runs every 30 s.
    eventually(lambda: ref not in stack.ingested(), 120, "Backstage to delete the repository")
    assert len(stack.ingested()) == len(stack.served())


def test_an_ecr_outage_removes_nothing_from_backstage(stack: Stack) -> None:
    before = set(stack.ingested())
    stop_process(stack.moto.process)

    def stale() -> bool:
        sources = httpx.get(f"{stack.service_url}/readyz").json()["sources"]
        return all(source["last_error"] for source in sources)

    eventually(stale, 60, "the service to see the outage")
    # Longer than one orphan-cleanup period, with Backstage polling every 5-7.5 s.
    deadline = time.monotonic() + 40
    while time.monotonic() < deadline:
        assert set(stack.ingested()) == before
        response = httpx.get(f"{stack.service_url}/entities.yaml")
        assert response.status_code == 200
        time.sleep(2)
