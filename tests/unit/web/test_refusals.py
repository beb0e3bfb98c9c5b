"""Refusals in the format asked for: unknown query parameters are a 400 naming the known ones, and
a browser gets a page for a missing entity or path while API clients keep JSON."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
import yaml

from service.config import Settings
from service.web.filters import FILTER_PARAMETERS
from service.web.negotiation import error_format

from ...records import ACCOUNT, repository, source
from ...support import FakeReader, in_process

BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
ENTITY = f"/entities/resource/default/team-a--api.us-east-1.{ACCOUNT}"
KNOWN = ", ".join(FILTER_PARAMETERS)


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(refresh={"interval_seconds": 3600, "initial_retry_seconds": 0.05})
    reader = FakeReader(source(repository("team-a/api", tags={"owner": "team-a"})))
    async with in_process(settings, reader) as (client, _):
        yield client


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        (None, "json"),
        ("*/*", "json"),
        ("application/json", "json"),
        ("application/yaml", "yaml"),
        ("application/json, application/yaml;q=0.5", "json"),
        ("text/yaml, */*", "yaml"),
        (BROWSER, "html"),
        ("text/html;q=0.1, application/json", "json"),
    ],
)
def test_the_format_of_a_refusal(accept: str | None, expected: str) -> None:
    assert error_format(accept) == expected


@pytest.mark.parametrize("path", ["/entities.yaml", "/entities.json", "/entities", "/posture"])
async def test_a_misspelt_filter_is_a_400_naming_the_known_ones(
    client: httpx.AsyncClient, path: str
) -> None:
    everything = await client.get(path)
    assert everything.status_code == 200
    response = await client.get(f"{path}?ower=team-a")
    assert response.status_code == 400
    detail = response.json()["detail"]
    assert detail == (
        f"unknown query parameter 'ower' (did you mean 'owner'?); the known ones are {KNOWN}"
    )
    # The right spelling still filters.
    assert (await client.get(f"{path}?owner=team-a")).status_code == 200


async def test_the_operator_page_takes_the_filters_and_page(client: httpx.AsyncClient) -> None:
    assert (await client.get("/?owner=team-a&page=1&q=")).status_code == 200
    response = await client.get("/?pgae=2")
    assert response.status_code == 400
    assert "'pgae' (did you mean 'page'?)" in response.json()["detail"]
    assert response.json()["detail"].endswith(f"the known ones are {KNOWN}, page")


@pytest.mark.parametrize(
    "path",
    [
        ENTITY,
        "/catalog-info.yaml",
        "/catalog/core.yaml",
        f"/sources/{ACCOUNT}/us-east-1/catalog-info.yaml",
        f"/sources/{ACCOUNT}/us-east-1/entities.yaml",
    ],
)
async def test_urls_that_take_no_parameter_refuse_any(client: httpx.AsyncClient, path: str) -> None:
    assert (await client.get(path)).status_code == 200
    response = await client.get(f"{path}?owner=team-a")
    assert response.status_code == 400
    assert response.json()["detail"] == "unknown query parameter 'owner'; this URL takes none"


async def test_what_is_echoed_back_is_bounded_and_visible(client: httpx.AsyncClient) -> None:
    # As many as the request's bound (server.max_url_length) lets through.
    query = "&".join(f"p{i:04d}=v" for i in range(1000))
    response = await client.get(f"/entities.json?{query}")
    assert response.status_code == 400
    detail = response.json()["detail"]
    assert "'p0000', 'p0001', 'p0002', 'p0003', 'p0004', and 995 more" in detail
    assert len(response.content) < 300
    long = await client.get(f"/entities.json?{'x' * 7000}=1&%E2%80%AEevil%1B=1")
    detail = long.json()["detail"]
    assert "'" + "x" * 40 + "…'" in detail and "x" * 41 not in detail
    # A bidirectional override and an escape sequence are shown, never applied.
    assert "\\u202eevil\\x1b" in detail and "\u202e" not in detail and "\x1b" not in detail


async def test_a_refusal_is_yaml_to_a_client_that_asks_for_yaml(client: httpx.AsyncClient) -> None:
    response = await client.get("/entities.yaml?ower=x", headers={"Accept": "application/yaml"})
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("application/yaml")
    assert "did you mean 'owner'" in yaml.safe_load(response.text)["detail"]
    assert response.headers["vary"] == "Accept"


async def test_a_browser_gets_pages_for_a_missing_entity_and_an_unknown_path(
    client: httpx.AsyncClient,
) -> None:
    for path in (ENTITY + "-gone", "/no/such/page", "/entities.yaml?ower=x"):
        page = await client.get(path, headers={"Accept": BROWSER})
        assert page.status_code in (404, 400), path
        assert page.headers["content-type"] == "text/html; charset=utf-8"
        assert page.headers["vary"] == "Accept"
        # The pages' policy: nothing but our own inline style.
        assert "default-src 'none'" in page.headers["content-security-policy"]
        assert f'<h2 id="error">{page.status_code} ' in page.text
        assert '<a href="/#entities">' in page.text
    # API clients, curl and Backstage (*/*) keep JSON.
    for accept in ("*/*", "application/json", None):
        headers = {"Accept": accept} if accept else {}
        for path, detail in ((ENTITY + "-gone", "no such entity"), ("/no/such", "Not Found")):
            answer = await client.get(path, headers=headers)
            assert answer.status_code == 404
            assert answer.json() == {"detail": detail}
            assert answer.headers["vary"] == "Accept"


async def test_the_error_page_escapes_what_it_shows(client: httpx.AsyncClient) -> None:
    page = await client.get(
        "/entities.json?%3Cscript%3Ealert(1)%3C/script%3E=1", headers={"Accept": BROWSER}
    )
    assert page.status_code == 400
    assert "<script>alert" not in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
