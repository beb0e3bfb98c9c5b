"""End to end with a real Backstage catalog backend reading ecr-catalog as a `type: url` location.

Three real processes on loopback: a moto server (the ECR), `ecr-catalog serve`, and
@backstage/plugin-catalog-backend started by tests/backstage/backend.js. Backstage drops an
entity that fails validation without saying so over HTTP, so what was served is compared with
what was ingested, ref by ref. The tests run in file order: the last two delete a repository
and then stop the ECR.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from service.demo import DEMO_ACCOUNT, HOSTILE, HOSTILE_NAME, demo_repositories, seed_registry

from ...support import MotoServer, start_moto, stop_process
from .harness import Backstage, Service, eventually, ref_of, running_backstage, running_service

pytestmark = pytest.mark.backstage


DELETED = "team-b/checkout-web"


@dataclass
class Stack:
    moto: MotoServer
    service: Service
    backstage: Backstage


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("backstage")
    moto = start_moto()
    settings = {
        "aws": {
            "endpoint_url": moto.url,
            "total_max_attempts": 2,
            "connect_timeout_seconds": 1,
            "read_timeout_seconds": 5,
            "targets": [{"regions": ["us-east-1", "eu-west-1"], "account_id": DEMO_ACCOUNT}],
        },
        "refresh": {"interval_seconds": 2, "initial_retry_seconds": 1},
    }
    try:
        seed_registry(moto.url, demo_repositories())
        with (
            running_service(tmp, settings) as service,
            running_backstage(tmp, service, "/entities.yaml") as backstage,
        ):
            yield Stack(moto, service, backstage)
    finally:
        if moto.process.poll() is None:
            stop_process(moto.process)


def test_everything_served_is_ingested_with_its_relations(stack: Stack) -> None:
    served = stack.service.served()
    assert len(served) == 5 + 26

    def complete() -> dict[str, dict[str, Any]] | None:
        ingested = stack.backstage.ingested()
        return ingested if served.keys() <= ingested.keys() else None

    try:
        ingested = eventually(complete, 120, "Backstage to ingest every served entity")
    except AssertionError:
        missing = sorted(served.keys() - stack.backstage.ingested().keys())
        raise AssertionError(f"missing: {missing}\n{stack.backstage.log_tail()}") from None
    assert sorted(ingested) == sorted(served)
    assert [loc.get("status", {}).get("items", []) for loc in stack.backstage.locations()] == [[]]

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
    location = f"url:{stack.service.url}/entities.yaml"
    for ref, entity in stack.service.served().items():
        response = httpx.post(
            f"{stack.backstage.url}/api/catalog/validate-entity",
            json={"entity": entity, "location": location},
            timeout=10,
        )
        assert response.status_code == 200, (ref, response.text)


def test_hostile_repository_is_repaired_and_blocks_nothing(stack: Stack) -> None:
    served = stack.service.served()
    (hostile,) = [e for e in served.values() if e["metadata"].get("title") == HOSTILE_NAME]
    assert len(HOSTILE_NAME) == 256
    ingested = stack.backstage.ingested()[ref_of(hostile)]
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
        lambda: stack.service.metric("/entities.yaml", "304") >= 2,
        60,
        "Backstage polls answered 304",
    )
    assert stack.service.metric("/entities.yaml", "200") >= 1


def test_a_deleted_repository_disappears_from_backstage(stack: Stack) -> None:
    stack.moto.ecr("us-east-1").delete_repository(repositoryName=DELETED, force=True)
    ref = "resource:default/team-b--checkout-web.us-east-1.123456789012"
    assert ref in stack.backstage.ingested()
    eventually(lambda: ref not in stack.service.served(), 30, "the service to drop the repository")
    # Orphans are deleted by a cleanup task that runs every 30 s.
    eventually(
        lambda: ref not in stack.backstage.ingested(), 120, "Backstage to delete the repository"
    )
    assert len(stack.backstage.ingested()) == len(stack.service.served())


def test_an_ecr_outage_removes_nothing_from_backstage(stack: Stack) -> None:
    before = set(stack.backstage.ingested())
    stop_process(stack.moto.process)

    def stale() -> bool:
        return all(source["last_error"] for source in stack.service.readiness()["sources"])

    eventually(stale, 60, "the service to see the outage")
    # Longer than one orphan-cleanup period, with Backstage polling every 5-7.5 s.
    deadline = time.monotonic() + 40
    while time.monotonic() < deadline:
        assert set(stack.backstage.ingested()) == before
        response = httpx.get(f"{stack.service.url}/entities.yaml")
        assert response.status_code == 200
        time.sleep(2)
