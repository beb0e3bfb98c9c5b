"""Both ways with a real Backstage: refresh requests after a push, and claims from a Component.

Backstage runs with its default auth policy on and one static external-access token for the
catalog plugin only (docs/backstage-both-ways.md); the service is configured only through the
``backstage:`` keys. Backstage processes its locations at its own default interval (100-150 s),
as in production, so a push that arrives sooner arrived because the service asked (and the
metric says it did). The tests run in file order: the last stops Backstage.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from pydantic import SecretStr

from service.backstage.client import BackstageClient
from service.config import BackstageSettings
from service.demo import DEMO_ACCOUNT, DemoRepository, _manifest, seed_registry

from ...ecr_events import TOKEN as EVENTS_TOKEN
from ...ecr_events import image_action
from ...support import MotoServer, free_port, start_moto, stop_process
from .harness import Backstage, Service, eventually, running_backstage, running_service

pytestmark = pytest.mark.backstage

TOKEN = "backstage-static-token-for-the-ecr-catalog-tests"
CLAIMED = "claimed/api"
PUSHED = "pushed/web"
CLAIMED_REF = f"resource:default/claimed--api.us-east-1.{DEMO_ACCOUNT}"
PUSHED_REF = f"resource:default/pushed--web.us-east-1.{DEMO_ACCOUNT}"
COMPONENT_REF = "component:default/claims-demo"
CLAIMED_ARN = f"arn:aws:ecr:us-east-1:{DEMO_ACCOUNT}:repository/{CLAIMED}"
DIGEST = "ecr-catalog.io/latest-image-digest"


@dataclass
class Stack:
    moto: MotoServer
    service: Service
    backstage: Backstage
    component_file: Path
    ecr: Any


def component(annotations: dict[str, str]) -> str:
    return yaml.safe_dump(
        {
            "apiVersion": "backstage.io/v1alpha1",
            "kind": "Component",
            "metadata": {"name": "claims-demo", "annotations": annotations},
            "spec": {"type": "service", "lifecycle": "production", "owner": "team-claims"},
        }
    )


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with both_ways(tmp_path_factory.mktemp("both-ways")) as running:
        yield running


@contextmanager
def both_ways(tmp: Path, refresh_on_change: bool = True) -> Iterator[Stack]:
    """moto, the service and Backstage, connected both ways (also what `make bench` times)."""
    moto = start_moto()
    backstage_port = free_port()
    component_file = tmp / "claims-demo.yaml"
    component_file.write_text(component({"aws.amazon.com/amazon-ecr-arn": CLAIMED_ARN}))
    settings = {
        "aws": {
            "endpoint_url": moto.url,
            "total_max_attempts": 2,
            "targets": [{"regions": ["us-east-1"], "account_id": DEMO_ACCOUNT}],
        },
        # Pushes arrive by their events; the interval would be minutes away.
        "refresh": {"interval_seconds": 600, "initial_retry_seconds": 1},
        "events": {"token": EVENTS_TOKEN, "debounce_seconds": 0.2},
        "state_dir": str(tmp / "state"),
        "backstage": {
            "base_url": f"http://127.0.0.1:{backstage_port}",
            "token": TOKEN,
            "refresh_on_change": refresh_on_change,
            "refresh_min_interval_seconds": 1,
            "claims": {"interval_seconds": 5},
        },
    }
    try:
        seed_registry(
            moto.url,
            [
                DemoRepository(name=CLAIMED, region="us-east-1", images=(("v1",),)),
                DemoRepository(
                    name=PUSHED, region="us-east-1", tags={"owner": "team-web"}, images=(("v1",),)
                ),
            ],
        )
        ecr = moto.ecr("us-east-1")
        with (
            running_service(tmp, settings) as service,
            running_backstage(
                tmp,
                service,
                "/entities.yaml",
                locations=[
                    {"type": "url", "target": f"http://localhost:{service.port}/entities.yaml"},
                    {"type": "file", "target": str(component_file)},
                ],
                port=backstage_port,
                token=TOKEN,
                # Backstage's own interval, as in production.
                processing_seconds=None,
            ) as backstage,
        ):
            yield Stack(moto, service, backstage, component_file, ecr)
    finally:
        if moto.process.poll() is None:
            stop_process(moto.process)


def push_and_wait(stack: Stack, index: int, timeout: float = 200) -> float:
    """Push an image and post its event; the seconds until Backstage's API has its digest."""
    # moto's timestamps have one-second resolution: a later second makes it the latest.
    time.sleep(1.1)
    tag = f"v{index + 2}"
    answer = stack.ecr.put_image(
        repositoryName=PUSHED, imageManifest=_manifest(PUSHED, 100 + index), imageTag=tag
    )
    digest = answer["image"]["imageId"]["imageDigest"]
    pushed = time.monotonic()
    response = httpx.post(
        f"{stack.service.url}/events/ecr",
        json=image_action(PUSHED, tag=tag),
        headers={"Authorization": f"Bearer {EVENTS_TOKEN}"},
        timeout=10,
    )
    assert response.status_code == 202
    eventually(
        lambda: (
            (e := stack.backstage.entity(PUSHED_REF))
            and e["metadata"]["annotations"].get(DIGEST) == digest
        ),
        timeout,
        f"push {index + 1} in Backstage's catalog",
        every=0.2,
    )
    return time.monotonic() - pushed


def refresh_outcomes(service: Service) -> dict[str, float]:
    text = httpx.get(f"{service.url}/metrics", timeout=10).text
    prefix = 'ecr_catalog_backstage_refresh_total{outcome="'
    return {
        line[len(prefix) :].split('"', 1)[0]: float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith(prefix)
    }


def relations(entity: dict[str, Any], kind: str) -> set[str]:
    return {r["targetRef"] for r in entity.get("relations", []) if r["type"] == kind}


def test_without_the_token_backstage_refuses_and_with_it_answers(stack: Stack) -> None:
    bare = httpx.get(f"{stack.backstage.url}/api/catalog/entities", timeout=10)
    assert bare.status_code == 401
    eventually(lambda: stack.backstage.entity(PUSHED_REF), 60, "the catalog ingested")


class RecordingTransport(httpx.AsyncHTTPTransport):
    """A real transport that keeps the query of every request it sends."""

    def __init__(self) -> None:
        super().__init__()
        self.queries: list[list[tuple[str, str]]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.queries.append(list(request.url.params.multi_items()))
        return await super().handle_async_request(request)


async def test_the_claims_query_pages_through_backstage_by_its_cursor(stack: Stack) -> None:
    """Page after page of a real Backstage, each next page asked for by its cursor alone."""
    eventually(lambda: stack.backstage.entity(CLAIMED_REF), 60, "the catalog ingested")
    transport = RecordingTransport()
    client = BackstageClient(
        BackstageSettings(base_url=stack.backstage.url, token=SecretStr(TOKEN)), transport
    )
    # Two filters, as the claims query has: the cursor must carry both.
    filters = ["kind=resource", "kind=component"]

    def refs(pages: list[list[Any]]) -> list[str]:
        return sorted(
            f"{e['kind']}:{e['metadata'].get('namespace', 'default')}/{e['metadata']['name']}"
            for page in pages
            for e in page
        )

    try:
        # Backstage may still be ingesting between two reads: until two agree.
        for _ in range(20):
            transport.queries.clear()
            whole = [page async for page in client.entities_matching(filters)]
            paged = [page async for page in client.entities_matching(filters, page_size=2)]
            if refs(paged) == refs(whole):
                break
            await asyncio.sleep(1)
    finally:
        await client.aclose()
    assert len(whole) == 1 and len(paged) >= 3 and all(len(page) <= 2 for page in paged)
    assert refs(paged) == refs(whole)
    assert {"Component:default/claims-demo", "Component:default/ecr-registry"} <= set(refs(whole))
    assert f"Resource:default/{CLAIMED_REF.split('/', 1)[1]}" in refs(whole)
    # The first page names the filters; every later one only the cursor, fields and size.
    first, *later = transport.queries[1:]
    assert [value for key, value in first if key == "filter"] == filters
    assert later and all(
        {key for key, _ in query} == {"cursor", "fields", "limit"} for query in later
    )


def test_a_claiming_component_gives_its_owner_and_relations_to_an_untagged_repository(
    stack: Stack,
) -> None:
    def linked() -> dict[str, Any] | None:
        resource = stack.backstage.entity(CLAIMED_REF)
        if resource is None or resource["spec"]["owner"] != "group:default/team-claims":
            return None
        return resource if COMPONENT_REF in relations(resource, "dependencyOf") else None

    resource = eventually(linked, 90, "the claimed repository owned and linked in Backstage")
    assert resource["spec"]["dependencyOf"] == [COMPONENT_REF]
    assert "group:default/team-claims" in relations(resource, "ownedBy")
    component_entity = eventually(
        lambda: (
            (e := stack.backstage.entity(COMPONENT_REF))
            and CLAIMED_REF in relations(e, "dependsOn")
            and e
        ),
        60,
        "the Component's relations showing the repository",
    )
    assert CLAIMED_REF in relations(component_entity, "dependsOn")
    # A repository whose owner tag is set keeps it: the tag comes first.
    assert stack.backstage.entity(PUSHED_REF)["spec"]["owner"] == "group:default/team-web"
    claims = stack.service.readiness()["backstage"]["claims"]
    assert claims["claiming_entities"] == 1 and claims["claimed_repositories"] == 1
    assert claims["last_error"] is None


def test_a_push_reaches_backstage_well_before_its_processing_interval(stack: Stack) -> None:
    timings = [push_and_wait(stack, index) for index in range(5)]
    print(
        "push to Backstage's catalog API, seconds: "
        + ", ".join(f"{t:.1f}" for t in timings)
        + f"; p50 {statistics.median(timings):.1f}"
    )
    outcomes = refresh_outcomes(stack.service)
    assert outcomes.get("ok", 0) >= 5, outcomes
    refresh = stack.service.readiness()["backstage"]["refresh"]
    assert refresh["mode"] == "one" and refresh["last_outcome"] == "ok"


def test_a_claim_removed_in_backstage_goes_at_the_next_read(stack: Stack) -> None:
    stack.component_file.write_text(component({}))
    # What a person's "refresh" button does; otherwise Backstage reads the file in 100-150 s.
    stack.backstage.refresh(COMPONENT_REF)

    def unlinked() -> dict[str, Any] | None:
        resource = stack.backstage.entity(CLAIMED_REF)
        if resource is None or "dependencyOf" in resource["spec"]:
            return None
        return resource

    resource = eventually(unlinked, 90, "the claim gone from the repository in Backstage")
    # No claim and no owner tag: catalog.owner, as configured.
    assert resource["spec"]["owner"] == "platform-team"
    assert stack.service.readiness()["backstage"]["claims"]["claiming_entities"] == 0
    # Claim it again, for the last test: the claims must outlive Backstage.
    stack.component_file.write_text(component({"ecr-catalog.io/repositories": CLAIMED}))
    stack.backstage.refresh(COMPONENT_REF)
    eventually(
        lambda: (
            (e := stack.backstage.entity(CLAIMED_REF))
            and e["spec"].get("dependencyOf") == [COMPONENT_REF]
        ),
        90,
        "the claim by name back in Backstage",
    )


def test_with_backstage_stopped_the_service_serves_publishes_and_keeps_its_claims(
    stack: Stack,
) -> None:
    stack.backstage.stop()
    before = refresh_outcomes(stack.service).get("failed", 0)
    etag = httpx.get(f"{stack.service.url}/entities.yaml", timeout=10).headers["etag"]
    time.sleep(1.1)
    stack.ecr.put_image(repositoryName=PUSHED, imageManifest=_manifest(PUSHED, 200), imageTag="v99")
    response = httpx.post(
        f"{stack.service.url}/events/ecr",
        json=image_action(PUSHED, tag="v99"),
        headers={"Authorization": f"Bearer {EVENTS_TOKEN}"},
        timeout=10,
    )
    assert response.status_code == 202
    eventually(
        lambda: httpx.get(f"{stack.service.url}/entities.yaml", timeout=10).headers["etag"] != etag,
        30,
        "the push published with Backstage down",
    )
    eventually(
        lambda: refresh_outcomes(stack.service).get("failed", 0) > before,
        30,
        "the failed refresh counted",
    )
    # The claims outlive Backstage: still in what is served, and the claims reads fail.
    served = stack.service.served()[CLAIMED_REF]
    assert served["spec"]["dependencyOf"] == [COMPONENT_REF]
    assert served["spec"]["owner"] == "group:default/team-claims"
    eventually(
        lambda: stack.service.readiness()["backstage"]["claims"]["last_error"],
        30,
        "a failed claims read reported",
    )
    readiness = stack.service.readiness()
    assert readiness["ready"] and readiness["backstage"]["claims"]["claiming_entities"] == 1
