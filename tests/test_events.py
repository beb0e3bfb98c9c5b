"""POST /events/ecr: real EventBridge shapes, SNS wrapping, the token, and a push made visible
within seconds by a service process reading a moto server."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, nullcontext
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
import yaml
from asgi_lifespan import LifespanManager

from service.app import create_app
from service.config import Settings
from service.demo import DEMO_CREDENTIALS, DemoRepository, _manifest, seed_registry
from service.events import EventRejected, parse_event
from service.model import SourceId

from .records import repository, source
from .support import FakeReader, MotoServer, spawn_service, stop_process
from .test_sources import until

ACCOUNT = "123456789012"
TOKEN = "events-token-for-tests"


def image_action(repo: str, tag: str = "latest", action: str = "PUSH", **extra: Any) -> dict:
    # As documented for EventBridge ("ECR Image Action"), tagless pushes have "image-tag": "".
    return {
        "version": "0",
        "id": "13cde686-328b-6117-af20-0e5566167482",
        "detail-type": "ECR Image Action",
        "source": "aws.ecr",
        "account": ACCOUNT,
        "time": "2026-11-26T01:54:34Z",
        "region": "us-east-1",
        "resources": [],
        "detail": {
            "result": "SUCCESS",
            "repository-name": repo,
            "image-digest": "sha256:7f5b2640fe6fb4f46592dfd3410c4a79dac4f89e4782432e0378abcd1234",
            "action-type": action,
            "image-tag": tag,
            **extra,
        },
    }


def image_scan(repo: str) -> dict:
    return {
        "version": "0",
        "id": "85fc3613-e913-7fc4-a80c-a3753e4aa9ae",
        "detail-type": "ECR Image Scan",
        "source": "aws.ecr",
        "account": ACCOUNT,
        "time": "2026-11-26T02:36:48Z",
        "region": "us-east-1",
        "resources": [f"arn:aws:ecr:us-east-1:{ACCOUNT}:repository/{repo}"],
        "detail": {
            "scan-status": "COMPLETE",
            "repository-name": repo,
            "finding-severity-counts": {"CRITICAL": 10, "MEDIUM": 9},
            "image-digest": "sha256:7f5b2640fe6fb4f46592dfd3410c4a79dac4f89e4782432e0378abcd1234",
            "image-tags": [],
        },
    }


def sns(message: dict) -> dict:
    return {
        "Type": "Notification",
        "MessageId": "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324",
        "TopicArn": f"arn:aws:sns:us-east-1:{ACCOUNT}:ecr-events",
        "Message": json.dumps(message),
        "Timestamp": "2026-11-26T02:36:49.000Z",
        "SignatureVersion": "1",
    }


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        (image_action("team/api"), "push"),
        (image_action("team/api", tag=""), "push"),
        (image_action("team/api", action="DELETE"), "delete"),
        (image_scan("team/api"), "scan"),
        (sns(image_action("team/api", tag="")), "push"),
        (sns(image_scan("team/api")), "scan"),
    ],
)
def test_image_events_name_the_repository(body: dict, kind: str) -> None:
    verdict = parse_event(json.dumps(body).encode())
    assert verdict.event is not None
    assert verdict.event.source == SourceId(ACCOUNT, "us-east-1")
    assert verdict.event.repository == "team/api"
    assert verdict.event.kind == kind


def test_other_ecr_events_are_acknowledged_and_ignored() -> None:
    failed = image_action("team/api")
    failed["detail"]["result"] = "FAILURE"
    assert parse_event(json.dumps(failed).encode()).event is None
    replication = dict(image_action("team/api"), **{"detail-type": "ECR Replication Action"})
    verdict = parse_event(json.dumps(replication).encode())
    assert verdict.event is None and verdict.reason == "not an image event"


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        (b"{not json", 400, "not JSON"),
        (b"[1, 2]", 400, "not a JSON object"),
        (json.dumps(dict(image_action("a/b"), source="aws.s3")).encode(), 422, "source"),
        (json.dumps(dict(image_action("a/b"), account="12")).encode(), 422, "account"),
        (json.dumps(image_action("")).encode(), 422, "repository-name"),
        (json.dumps({"Type": "SubscriptionConfirmation"}).encode(), 400, "out of band"),
        (json.dumps({"Type": "Notification", "Message": "{"}).encode(), 400, "not JSON"),
    ],
)
def test_bad_bodies_get_a_clear_error(body: bytes, status: int, words: str) -> None:
    with pytest.raises(EventRejected) as caught:
        parse_event(body)
    assert caught.value.status == status
    assert words in caught.value.reason


US = source(repository("team/api"), repository("team/web"))


@asynccontextmanager
async def app_client(reader: FakeReader, **events: Any) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(events=events, refresh={"interval_seconds": 3600})
    app = create_app(settings, lambda _observer: nullcontext(reader))
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://svc") as client:
            yield client


async def ready(client: httpx.AsyncClient) -> bool:
    return (await client.get("/readyz")).status_code == 200


async def refreshed_and_idle(client: httpx.AsyncClient, reader: FakeReader, reads: int) -> bool:
    """``reads`` reads made, and no debounced refresh left to come."""
    pending = (await client.get("/readyz")).json()["refresh_pending"]
    return reader.reads >= reads and not pending


async def test_the_endpoint_is_off_without_a_token_and_checks_it_when_on() -> None:
    async with app_client(FakeReader(US)) as client:
        off = await client.post("/events/ecr", json=image_action("team/api"))
        assert off.status_code == 404
    reader = FakeReader(US)
    async with app_client(reader, token=TOKEN, debounce_seconds=60) as client:
        await until(lambda: ready(client))
        reads = reader.reads
        for headers in (
            {},
            {"Authorization": "Bearer not-the-token"},
            {"Authorization": f"Bearer {TOKEN}x"},
            {"Authorization": f"Basic {TOKEN}"},
            {"Authorization": f"Token {TOKEN}"},
            {"Authorization": TOKEN},
            {"Authorization": "Bearer"},
            {"Authorization": f"Bearer{TOKEN}"},
        ):
            response = await client.post(
                "/events/ecr", json=image_action("team/api"), headers=headers
            )
            assert response.status_code == 401, headers
            assert response.headers["www-authenticate"] == "Bearer"
        # Nothing was dropped from the cache, and no refresh was scheduled or run.
        assert reader.forgotten == []
        assert (await client.get("/readyz")).json()["refresh_pending"] is False
        assert reader.reads == reads
        accepted = await client.post(
            "/events/ecr",
            json=image_action("team/api"),
            headers={"Authorization": f"Bearer {TOKEN}"},
        )
        assert accepted.status_code == 202
        assert reader.forgotten == [(US.source, "team/api")]
        assert (await client.get("/readyz")).json()["refresh_pending"] is True


async def test_an_event_forgets_that_repository_and_triggers_one_debounced_refresh() -> None:
    reader = FakeReader(US)
    auth = {"Authorization": f"Bearer {TOKEN}"}
    async with app_client(reader, token=TOKEN, debounce_seconds=0.3) as client:
        await until(lambda: ready(client))
        reads = reader.reads
        for body in (
            image_action("team/api"),
            image_scan("team/api"),
            sns(image_action("team/web", tag="")),
        ):
            response = await client.post("/events/ecr", json=body, headers=auth)
            assert response.status_code == 202, response.text
            assert response.json()["accepted"] is True
        assert reader.forgotten == [
            (US.source, "team/api"),
            (US.source, "team/api"),
            (US.source, "team/web"),
        ]
        other = dict(image_action("x/y"), region="eu-west-1")
        ignored = await client.post("/events/ecr", json=other, headers=auth)
        assert ignored.status_code == 202 and ignored.json()["accepted"] is False
        big = await client.post("/events/ecr", content=b"x" * 300_000, headers=auth)
        assert big.status_code == 413
        # Three events inside the debounce window: one refresh, and then none is pending.
        await until(lambda: refreshed_and_idle(client, reader, reads + 1))
        assert reader.reads == reads + 1
        metrics = (await client.get("/metrics")).text
        assert (
            'ecr_catalog_events_total{detail_type="ECR Image Action",outcome="accepted"} 2.0'
            in metrics
        )


def latest_tags(url: str, name: str) -> str | None:
    documents = yaml.safe_load_all(httpx.get(f"{url}/entities.yaml").text)
    for entity in documents:
        if entity["metadata"]["name"] == name:
            return entity["metadata"]["annotations"].get("ecr-catalog.io/latest-image-tags")
    raise AssertionError(f"{name} is not served")


def test_a_pushed_image_shows_within_seconds_after_its_event(
    moto: MotoServer, tmp_path: Path
) -> None:
    seed_registry(
        moto.url, [DemoRepository(name="team/api", region="us-east-1", images=(("v1",),))]
    )
    config = {
        "aws": {
            "endpoint_url": moto.url,
            "targets": [{"regions": ["us-east-1"], "account_id": ACCOUNT}],
        },
        # Without the event, the push would show after 10 minutes at the earliest.
        "refresh": {"interval_seconds": 600},
        "cache": {"images_ttl_seconds": 600},
        "events": {"token": TOKEN, "debounce_seconds": 0.5},
    }
    service = spawn_service(tmp_path, config)
    try:
        deadline = time.monotonic() + 60
        while httpx.get(f"{service.url}/readyz").status_code != 200:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        name = f"team--api.us-east-1.{ACCOUNT}"
        assert latest_tags(service.url, name) == "v1"
        ecr = boto3.client(
            "ecr",
            region_name="us-east-1",
            endpoint_url=moto.url,
            aws_access_key_id=DEMO_CREDENTIALS[0],
            aws_secret_access_key=DEMO_CREDENTIALS[1],
        )
        # moto's timestamps have one-second resolution: a later second makes v2 the latest.
        time.sleep(1.1)
        ecr.put_image(
            repositoryName="team/api", imageManifest=_manifest("team/api", 7), imageTag="v2"
        )
        assert latest_tags(service.url, name) == "v1"
        pushed = time.monotonic()
        response = httpx.post(
            f"{service.url}/events/ecr",
            json=image_action("team/api", tag="v2"),
            headers={"Authorization": f"Bearer {TOKEN}"},
        )
        assert response.status_code == 202 and response.json()["repository_known"] is True
        while latest_tags(service.url, name) != "v2":
            assert time.monotonic() - pushed < 10, "the push did not show within 10 s"
            time.sleep(0.1)
        print(f"push visible {time.monotonic() - pushed:.2f} s after its event")
    finally:
        stop_process(service.process)
