"""What every response shares: HEAD on every GET route, nosniff, and the pages' CSP."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import re
from collections.abc import AsyncIterator
from contextlib import nullcontext
from typing import Any

import httpx
import pytest

from service.config import Settings
from service.web.app import create_app

from ...records import ACCOUNT, repository, source
from ...support import FakeReader
from .test_routes import EU, US, serving

# A value for each path parameter of every route: a route with a new one fails here until it
# is given one, so no GET route goes untested.
PATH_PARAMETERS = {
    "kind": "resource",
    "namespace": "default",
    "name": "team-a--api.us-east-1.123456789012",
    "account": ACCOUNT,
    "region": "us-east-1",
    "count": "1",
    "index": "0",
}
# What may differ between two requests in a row: the seconds since the refresh, and the
# metrics, which count the first request.
VOLATILE = {"age"}
COUNTS_REQUESTS = {"/metrics"}
HTML = {"Accept": "text/html"}


# Routes of a fleet of partitions only (docs/partitions.md): asked of partition 0.
FLEET_ONLY = {
    "/partitions/0/catalog-info.yaml",
    "/partitions/0/entities.yaml",
    "/partitions.yaml",
}
FLEET = {"count": 2, "index": 0, "url_template": "http://ecr-catalog-{index}.test"}


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with serving(FakeReader(US, EU)) as client:
        yield client


@pytest.fixture
async def first_partition() -> AsyncIterator[httpx.AsyncClient]:
    async with serving(FakeReader(US, EU), partition=FLEET) as client:
        yield client


def get_paths(schema: dict[str, Any]) -> list[str]:
    """Every GET route of the app, its path parameters filled in."""
    paths = [path for path, operations in schema["paths"].items() if "get" in operations]
    return [re.sub(r"{(\w+)}", lambda m: PATH_PARAMETERS[m.group(1)], path) for path in paths]


def compared(response: httpx.Response, path: str) -> dict[str, str]:
    skip = VOLATILE | ({"content-length"} if path in COUNTS_REQUESTS else set())
    return {k: v for k, v in response.headers.items() if k not in skip}


async def test_head_answers_every_get_route_with_its_headers_and_no_body(
    client: httpx.AsyncClient, first_partition: httpx.AsyncClient
) -> None:
    paths = get_paths((await client.get("/openapi.json")).json())
    assert {"/", "/healthz", "/readyz", "/entities.yaml", "/metrics"} <= set(paths)
    assert FLEET_ONLY <= set(paths)
    # The spec's route is Starlette's, which answered HEAD already.
    for path in [*paths, "/openapi.json"]:
        asked = first_partition if path in FLEET_ONLY else client
        for headers in ({}, HTML, {"Accept-Encoding": "gzip"}):
            got = await asked.get(path, headers=headers)
            head = await asked.head(path, headers=headers)
            assert got.status_code == 200, (path, headers, got.text[:200])
            assert head.status_code == 200, (path, headers)
            assert head.content == b"", path
            assert compared(head, path) == compared(got, path), (path, headers)
            if path not in COUNTS_REQUESTS and "content-encoding" not in got.headers:
                assert int(head.headers["content-length"]) == len(got.content), path


async def test_head_revalidates_like_get_and_is_405_where_get_is(
    client: httpx.AsyncClient,
) -> None:
    # The poll answers HEAD too, 304 included.
    etag = (await client.head("/entities.yaml")).headers["etag"]
    assert (await client.head("/entities.yaml", headers={"If-None-Match": etag})).status_code == 304
    refresh = await client.head("/refresh")
    assert refresh.status_code == (await client.get("/refresh")).status_code == 405
    assert refresh.headers["allow"] == "POST" and refresh.content == b""
    assert (await client.head("/no-such-page")).status_code == 404


def csp_hash(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


def assert_page_policy(response: httpx.Response) -> None:
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["x-content-type-options"] == "nosniff"
    policy = dict(
        directive.strip().split(" ", 1)
        for directive in response.headers["content-security-policy"].split(";")
    )
    assert policy["default-src"] == "'none'"
    assert policy["frame-ancestors"] == "'none'"
    assert policy["base-uri"] == "'none'" and policy["form-action"] == "'self'"
    # The page's inline style and script are exactly what the policy's hashes allow.
    for tag, directive in (("style", "style-src"), ("script", "script-src")):
        for inline in re.findall(rf"<{tag}>(.*?)</{tag}>", response.text, re.DOTALL):
            assert policy[directive] == csp_hash(inline), tag
    assert "<style>" in response.text and "style=" not in response.text


async def test_every_page_carries_the_content_security_policy(client: httpx.AsyncClient) -> None:
    paths = get_paths((await client.get("/openapi.json")).json())
    pages = [
        path
        for path in paths
        if path not in FLEET_ONLY
        and (await client.get(path, headers=HTML)).headers["content-type"].startswith("text/html")
    ]
    assert pages == ["/", "/entities/resource/default/team-a--api.us-east-1.123456789012"]
    # A single process has no fleet routes: a browser gets the HTML 404, with the policy too.
    for path in FLEET_ONLY:
        missing = await client.get(path, headers=HTML)
        assert missing.status_code == 404
        assert_page_policy(missing)
    for path in pages:
        assert_page_policy(await client.get(path, headers=HTML))
        assert_page_policy(await client.get(path + "?owner=team-a", headers=HTML))
    index = await client.get("/", headers=HTML)
    assert "<script>" in index.text


async def test_the_page_before_any_snapshot_carries_it_too() -> None:
    reader = FakeReader(US)
    reader.gate = asyncio.Event()
    async with serving(reader, wait=False) as client:
        assert_page_policy(await client.get("/", headers=HTML))
        reader.gate.set()


@pytest.mark.parametrize(
    ("method", "path", "headers"),
    [
        ("GET", "/entities.yaml", {}),  # the poll
        ("GET", "/entities.json?owner=team-a", {}),
        ("GET", "/readyz", {}),
        ("GET", "/metrics", {}),
        ("GET", "/entities/resource/default/nothing", {}),  # 404
        ("GET", "/refresh", {}),  # 405
        ("POST", "/refresh", {}),  # 404: off without a token
        pytest.param("GET", "/entities.yaml?q=" + "x" * 20_000, {}, id="414-before-routing"),
    ],
)
async def test_every_response_says_nosniff_and_only_pages_carry_the_policy(
    client: httpx.AsyncClient, method: str, path: str, headers: dict[str, str]
) -> None:
    response = await client.request(method, path, headers=headers)
    assert response.headers["x-content-type-options"] == "nosniff", response.status_code
    assert "content-security-policy" not in response.headers


async def test_pages_show_bidirectional_controls_as_escapes() -> None:
    rlo = "\u202e"
    hostile = source(
        repository(
            "x/api",
            tags={"description": f"safe {rlo}gnp.exe", "backstage.io/tags": "a"},
        ),
        # The marks reorder too, and ESC or a vertical tab would hide what follows.
        repository("x/marks", tags={"description": "rlm\u200f alm\u061c esc\x1b[2J vt\x0bend"}),
    )
    async with serving(FakeReader(hostile)) as client:
        entity = await client.get(
            "/entities/resource/default/x--api.us-east-1.123456789012", headers=HTML
        )
        index = await client.get("/?q=gnp", headers=HTML)
        data = await client.get("/entities.json")
    for page in (entity, index):
        assert page.status_code == 200
        for control in [*map(chr, range(0x202A, 0x202F)), *map(chr, range(0x2066, 0x206A))]:
            assert control not in page.text
    # In the facts table and in the YAML alike.
    assert entity.text.count("safe \\u202egnp.exe") >= 2
    async with serving(FakeReader(hostile)) as client:
        marks = await client.get(
            "/entities/resource/default/x--marks.us-east-1.123456789012", headers=HTML
        )
    assert marks.status_code == 200
    for hidden in ("\u200f", "\u061c", "\x1b", "\x0b"):
        assert hidden not in marks.text
    assert "rlm\\u200f alm\\u061c esc\\x1b[2J vt\\x0bend" in marks.text
    # The YAML block keeps its lines: white space is shown as the white space it is.
    assert "\n" in marks.text and "\\n" not in marks.text
    # The data itself is served as it is: only what a browser displays is escaped.
    descriptions = [item["metadata"].get("description") for item in data.json()["items"]]
    assert f"safe {rlo}gnp.exe" in descriptions


async def test_an_unhandled_error_says_nosniff_too() -> None:
    # Starlette's error handling answers it outside the app's middleware.
    settings = Settings(refresh={"interval_seconds": 3600})
    app = create_app(settings, lambda _observer: nullcontext(FakeReader(US)))

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("boom")

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        response = await client.get("/boom")
    assert response.status_code == 500
    assert response.headers["x-content-type-options"] == "nosniff"


async def test_no_documentation_page_loads_scripts_from_a_cdn(client: httpx.AsyncClient) -> None:
    # Swagger UI and ReDoc fetch their scripts from a public CDN, which the pages' policy
    # (script-src by hash) would refuse; the spec is served as data instead.
    for path in ("/docs", "/redoc"):
        assert (await client.get(path, headers=HTML)).status_code == 404
    assert (await client.get("/openapi.json")).json()["info"]["title"] == "ecr-catalog"
