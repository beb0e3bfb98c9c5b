"""The HTTP API, in-process: LifespanManager + httpx.AsyncClient over ASGITransport."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, nullcontext
from typing import Any

import httpx
import pytest
import yaml
from asgi_lifespan import LifespanManager

from service.config import Settings
from service.errors import EcrError
from service.web.app import create_app

from ...records import repository, source
from ...support import FakeReader, until_true

US = source(
    repository("team-a/api", tags={"owner": "team-a", "description": "Payments API"}),
    repository("team-b/web", tags={"owner": "user:jdoe"}),
)
EU = source(repository("shared/nginx", region="eu-west-1"), region="eu-west-1")


@asynccontextmanager
async def serving(
    reader: FakeReader, *, wait: bool = True, **sections: Any
) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(
        refresh={"interval_seconds": 3600, "initial_retry_seconds": 0.05}, **sections
    )
    app = create_app(settings, lambda _observer: nullcontext(reader))
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            if wait:
                await until_true(lambda: ready_status(client, 200), "a ready service", within=10)
            yield client


async def ready_status(client: httpx.AsyncClient, status: int) -> bool:
    return (await client.get("/readyz")).status_code == status


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with serving(FakeReader(US, EU)) as client:
        yield client


async def test_503_with_retry_after_before_the_first_snapshot() -> None:
    reader = FakeReader(US)
    reader.gate = asyncio.Event()
    async with serving(reader, wait=False) as client:
        for path in ("/entities.yaml", "/entities.json", "/entities", "/readyz"):
            response = await client.get(path)
            assert response.status_code == 503, path
        assert (await client.get("/entities.yaml")).headers["retry-after"] == "1"
        assert (await client.get("/healthz")).status_code == 200
        reader.gate.set()


async def test_failed_first_reads_never_give_an_empty_200() -> None:
    reader = FakeReader(US)
    reader.answers[US.source] = EcrError("1", "us-east-1", "op", "AccessDenied", "no")
    async with serving(reader, wait=False) as client:

        async def failed_once() -> bool:
            sources = (await client.get("/readyz")).json()["sources"]
            return bool(sources and sources[0]["last_error"])

        await until_true(failed_once, "a failed first read")
        response = await client.get("/entities.yaml")
        assert response.status_code == 503
        assert "AccessDenied" in response.json()["detail"]
        readiness = (await client.get("/readyz")).json()
        assert readiness["ready"] is False
        assert readiness["sources"][0]["last_error"].startswith("op in 1/us-east-1 failed")


async def test_yaml_is_multi_document_with_the_adr_entities(client: httpx.AsyncClient) -> None:
    response = await client.get("/entities.yaml")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/yaml")
    documents = list(yaml.safe_load_all(response.text))
    kinds = [d["kind"] for d in documents]
    assert kinds[:3] == ["Domain", "System", "Component"]
    assert kinds.count("Resource") == 5
    assert {d["spec"]["system"] for d in documents if d["kind"] == "Resource"} == {
        "container-registry"
    }


async def test_json_is_one_object_with_items(client: httpx.AsyncClient) -> None:
    response = await client.get("/entities.json")
    body = response.json()
    assert list(body) == ["items"]
    yaml_docs = list(yaml.safe_load_all((await client.get("/entities.yaml")).text))
    assert body["items"] == yaml_docs


async def test_if_none_match_gets_304_and_headers(client: httpx.AsyncClient) -> None:
    first = await client.get("/entities.yaml")
    etag = first.headers["etag"]
    assert etag.startswith('"') and not etag.startswith("W/")
    assert first.headers["cache-control"] == "no-cache"
    assert "age" in first.headers and "x-catalog-refreshed-at" in first.headers
    again = await client.get("/entities.yaml", headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["etag"] == etag
    listed = await client.get("/entities.yaml", headers={"If-None-Match": f'"x", W/{etag}'})
    assert listed.status_code == 304
    stale = await client.get("/entities.yaml", headers={"If-None-Match": '"stale"'})
    assert stale.status_code == 200


async def test_gzip_is_served_precompressed_with_its_own_etag(client: httpx.AsyncClient) -> None:
    plain = await client.get("/entities.yaml", headers={"Accept-Encoding": "identity"})
    zipped = await client.get("/entities.yaml", headers={"Accept-Encoding": "gzip, deflate"})
    assert zipped.headers["content-encoding"] == "gzip"
    assert zipped.content == plain.content  # httpx decodes it
    assert zipped.headers["etag"] != plain.headers["etag"]
    assert "accept-encoding" in zipped.headers["vary"].lower()
    for etag in (plain.headers["etag"], zipped.headers["etag"]):
        revalidated = await client.get(
            "/entities.yaml", headers={"Accept-Encoding": "gzip", "If-None-Match": etag}
        )
        assert revalidated.status_code == 304
    refused = await client.get("/entities.yaml", headers={"Accept-Encoding": "gzip;q=0"})
    assert "content-encoding" not in refused.headers
    as_json = await client.get("/entities.json", headers={"Accept-Encoding": "gzip"})
    assert as_json.headers["content-encoding"] == "gzip"
    assert as_json.json()["items"]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("kind=Resource", 5),
        ("kind=domain&kind=system", 2),
        ("type=ecr-repository", 3),
        ("owner=team-a", 1),
        ("owner=group:default/team-a", 1),
        ("owner=user:jdoe", 1),
        ("owner=platform-team", 6),
        ("region=eu-west-1", 2),
        ("account=123456789012&kind=resource", 5),
        ("name=team-a--api.us-east-1.123456789012", 1),
        ("q=PAYMENTS", 1),
        ("q=nginx&region=us-east-1", 0),
        ("kind=NoSuchKind", 0),
        ("owner=not a ref!", 0),
    ],
)
async def test_filters(client: httpx.AsyncClient, query: str, expected: int) -> None:
    as_json = await client.get(f"/entities.json?{query}")
    assert as_json.status_code == 200
    assert len(as_json.json()["items"]) == expected
    as_yaml = await client.get(f"/entities.yaml?{query}")
    assert len([d for d in yaml.safe_load_all(as_yaml.text) if d]) == expected
    negotiated = await client.get(f"/entities?{query}", headers={"Accept": "application/json"})
    assert negotiated.json() == as_json.json()


async def test_filtered_bodies_have_their_own_etag_and_304(client: httpx.AsyncClient) -> None:
    full = await client.get("/entities.yaml")
    filtered = await client.get("/entities.yaml?kind=Domain")
    assert filtered.headers["etag"] != full.headers["etag"]
    again = await client.get(
        "/entities.yaml?kind=Domain", headers={"If-None-Match": filtered.headers["etag"]}
    )
    assert again.status_code == 304


async def test_oversized_filters_are_refused(client: httpx.AsyncClient) -> None:
    # q is refused as every other filter is (it used to be the one single-valued filter).
    assert (await client.get("/entities.json?q=" + "x" * 300)).status_code == 400
    assert (await client.get("/entities.json?kind=" + "x" * 300)).status_code == 400
    many = "&".join(["kind=x"] * 21)
    assert (await client.get(f"/entities.json?{many}")).status_code == 422


@pytest.mark.parametrize(
    ("accept", "media"),
    [
        (None, "application/yaml"),
        ("*/*", "application/yaml"),
        ("application/json", "application/json"),
        ("application/yaml;q=0.5, application/json", "application/json"),
        ("application/json;q=0.1, text/yaml", "application/yaml"),
        ("text/html", "application/yaml"),
    ],
)
async def test_content_negotiation(
    client: httpx.AsyncClient, accept: str | None, media: str
) -> None:
    headers = {"Accept": accept} if accept else {}
    response = await client.get("/entities", headers=headers)
    assert response.headers["content-type"].startswith(media)
    assert "accept" in response.headers["vary"].lower()


async def test_one_entity_by_ref(client: httpx.AsyncClient) -> None:
    path = "/entities/resource/default/team-a--api.us-east-1.123456789012"
    as_yaml = await client.get(path)
    assert yaml.safe_load(as_yaml.text)["metadata"]["title"] == "team-a/api"
    as_json = await client.get(
        path.upper().replace("/ENTITIES/", "/entities/"), headers={"Accept": "application/json"}
    )
    assert as_json.json()["metadata"]["title"] == "team-a/api"
    again = await client.get(path, headers={"If-None-Match": as_yaml.headers["etag"]})
    assert again.status_code == 304


@pytest.mark.parametrize(
    "path",
    [
        "/entities/resource/default/missing",
        "/entities/resource/other/team-a--api.us-east-1.123456789012",
        "/entities/..%2F..%2Fetc/default/passwd",
    ],
)
async def test_unknown_entity_is_404(client: httpx.AsyncClient, path: str) -> None:
    assert (await client.get(path)).status_code == 404


async def test_readyz_reports_sources_and_counts(client: httpx.AsyncClient) -> None:
    body = (await client.get("/readyz")).json()
    assert body["ready"] is True
    assert body["snapshot"]["entities"] == {"component": 1, "domain": 1, "resource": 5, "system": 1}
    assert [(s["account"], s["region"], s["healthy"]) for s in body["sources"]] == [
        ("123456789012", "eu-west-1", True),
        ("123456789012", "us-east-1", True),
    ]
    assert body["last_refresh"]["published"] is True
    served = await client.get("/entities.yaml", headers={"Accept-Encoding": "identity"})
    assert body["snapshot"]["etag"] == served.headers["etag"]
    assert body["state"] is None


async def test_metrics_count_requests_by_route_template_and_status(
    client: httpx.AsyncClient,
) -> None:
    first = await client.get("/entities.yaml")
    await client.get("/entities.yaml", headers={"If-None-Match": first.headers["etag"]})
    await client.get("/entities/resource/default/nope")
    text = (await client.get("/metrics")).text
    assert 'ecr_catalog_http_requests_total{route="/entities.yaml",status="304"} 1.0' in text
    assert (
        'ecr_catalog_http_requests_total{route="/entities/{kind}/{namespace}/{name}",status="404"}'
        in text
    )
    assert 'ecr_catalog_entities{kind="resource"} 5.0' in text
    reads = 'ecr_catalog_source_reads_total{account="123456789012",outcome="success",'
    assert reads + 'region="us-east-1"} 1.0' in text


@pytest.mark.parametrize(
    ("accept", "html"),
    [
        ("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", True),
        ("*/*", False),
        (None, False),
        ("application/json, text/html", False),
        ("text/html;q=0.5, application/yaml", False),
        ("application/yaml;q=0.5, text/html", True),
    ],
)
async def test_pages_only_for_clients_that_prefer_html(
    client: httpx.AsyncClient, accept: str | None, html: bool
) -> None:
    headers = {"Accept": accept} if accept else {}
    response = await client.get(
        "/entities/resource/default/team-a--api.us-east-1.123456789012", headers=headers
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html") == html


async def test_the_operator_page_before_any_snapshot_says_why() -> None:
    reader = FakeReader(US)
    reader.gate = asyncio.Event()
    async with serving(reader, wait=False) as client:
        page = await client.get("/", headers={"Accept": "text/html"})
        assert page.status_code == 200 and "no snapshot yet" in page.text
        assert "etag" not in page.headers
        reader.gate.set()


async def test_the_operator_page_escapes_what_ecr_tags_hold() -> None:
    hostile = source(repository("x/api", tags={"description": "<script>alert(1)</script>"}))
    async with serving(FakeReader(hostile)) as client:
        page = await client.get(
            "/entities/resource/default/x--api.us-east-1.123456789012",
            headers={"Accept": "text/html"},
        )
        assert "<script>alert(1)</script>" not in page.text
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text


async def test_q_is_repeatable_like_every_filter_and_any_value_matches(
    client: httpx.AsyncClient,
) -> None:
    one = (await client.get("/entities.json?q=ecr-")).json()["items"]
    assert one
    both = await client.get("/entities.json?q=ecr-&q=no-such-text")
    # Either order: any value matches, so no value is dropped for another.
    assert both.json()["items"] == one
    assert (await client.get("/entities.json?q=no-such-text&q=ecr-")).json()["items"] == one
    assert (await client.get("/entities.json?q=no-such-text")).json()["items"] == []
