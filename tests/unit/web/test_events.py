"""POST /events/ecr: real EventBridge shapes, SNS wrapping, the token, and a push made visible
within seconds by a service process reading a moto server."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, nullcontext
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager

from service.config import Settings
from service.errors import EventRejected
from service.model import SourceId
from service.web.app import create_app
from service.web.events import parse_event

from ...ecr_events import ACCOUNT, TOKEN, image_action, image_scan, sns
from ...records import repository, source
from ...support import FakeReader, until_true


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
        # Past the parser's depth bound: refused as bad JSON, never a RecursionError.
        pytest.param(
            b"[" * 100_000 + b"]" * 100_000, 400, "nested too deeply", id="array-100k-deep"
        ),
        pytest.param(
            b'{"a":' * 5_000 + b"1" + b"}" * 5_000, 400, "nested too deeply", id="object-5k-deep"
        ),
        pytest.param(
            json.dumps({"Type": "Notification", "Message": "[" * 50_000 + "]" * 50_000}).encode(),
            400,
            "SNS Message is not JSON: nested too deeply",
            id="sns-message-50k-deep",
        ),
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
        await until_true(lambda: ready(client), "the app ready")
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
        await until_true(lambda: ready(client), "the app ready")
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
        await until_true(lambda: refreshed_and_idle(client, reader, reads + 1), "one refresh")
        assert reader.reads == reads + 1
        metrics = (await client.get("/metrics")).text
        assert (
            'ecr_catalog_events_total{detail_type="ECR Image Action",outcome="accepted"} 2.0'
            in metrics
        )


async def test_bodies_nested_too_deeply_get_400_not_500() -> None:
    deep = b"[" * 100_000 + b"]" * 100_000
    deep_sns = json.dumps({"Type": "Notification", "Message": "[" * 50_000}).encode()
    auth = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    async with app_client(FakeReader(US), token=TOKEN) as client:
        for body in (deep, deep_sns):
            response = await client.post("/events/ecr", content=body, headers=auth)
            assert response.status_code == 400
            assert "nested too deeply" in response.json()["detail"]


async def test_detail_types_from_bodies_never_grow_the_metric_labels() -> None:
    auth = {"Authorization": f"Bearer {TOKEN}"}
    async with app_client(FakeReader(US), token=TOKEN) as client:
        await until_true(lambda: ready(client), "the app ready")
        accepted = await client.post("/events/ecr", json=image_action("team/api"), headers=auth)
        assert accepted.status_code == 202
        before = len((await client.get("/metrics")).content)
        for i in range(1000):
            # Distinct, long, and with control bytes: each would otherwise be a label of its own.
            body = dict(image_action("team/api"), **{"detail-type": f"Evil {i}\x1b[31m\n" * 20})
            response = await client.post("/events/ecr", json=body, headers=auth)
            assert response.status_code == 202
        metrics = (await client.get("/metrics")).content
        assert len(metrics) < before + 1000
        assert not any(byte < 0x20 and byte != 0x0A for byte in metrics)
        text = metrics.decode()
        assert 'ecr_catalog_events_total{detail_type="other",outcome="ignored"} 1000.0' in text
        assert (
            'ecr_catalog_events_total{detail_type="ECR Image Action",outcome="accepted"} 1.0'
            in text
        )
