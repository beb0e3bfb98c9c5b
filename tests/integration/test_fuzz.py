"""Fuzzing the API against the committed openapi/openapi.yaml over real HTTP; hostile cases."""

from __future__ import annotations

import sys
from collections.abc import Iterator

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import checks

from ..support import OPENAPI, command_env, start_announcing, stop_process, wait_until

schema = schemathesis.openapi.from_path(OPENAPI)
# Valid requests, as the schema describes them; malformed ones are the hand-written cases below.
# (Schemathesis' negative mode calls a query value an "object" that is a plain string on the
# wire, and then insists the API refuse it.)
schema.config.generation.update(modes=[schemathesis.GenerationMode.POSITIVE])
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_headers_conformance,
    checks.response_schema_conformance,
]


@pytest.fixture(scope="module")
def demo_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`ecr-catalog serve --demo` as a process: the embedded moto, real HTTP on loopback."""
    process, port = start_announcing(
        [sys.executable, "-m", "service.cli", "serve", "--demo", "--port", "0"],
        tmp_path_factory.mktemp("fuzz") / "serve.log",
        "ecr-catalog serve --demo",
        env=command_env(),
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: httpx.get(f"{url}/readyz").status_code == 200, "the demo ready", 60)
        yield url
    finally:
        stop_process(process)


@schema.parametrize()
@settings(
    max_examples=25,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
def test_api_conforms_to_its_schema_and_never_errors(
    case: schemathesis.Case, demo_url: str
) -> None:
    case.call_and_validate(base_url=demo_url)


def raw_get(url: str, target: str, headers: dict[str, str] | None = None) -> httpx.Response:
    # httpx would normalise some of these targets; send them byte for byte.
    with httpx.Client(base_url=url, timeout=10) as client:
        request = client.build_request("GET", "/", headers=headers)
        request.url = request.url.copy_with(raw_path=target.encode("latin-1"))
        return client.send(request)


@pytest.mark.parametrize(
    "target",
    [
        "/entities.json?%%%%",
        "/entities.json?kind=%ZZ&owner=%",
        "/entities.json?&&&=&==&kind",
        "/entities.json?kind=" + "%00" * 50,
        "/entities.json?q=%F0%9F%90%B3%C3%A9%E2%80%AE",
        "/entities.json?owner=group:default/../../x&owner=:::&owner=a/b/c",
        "/entities.json?" + "&".join(f"p{i}=v" for i in range(500)),
        "/entities.yaml?kind=resource;drop table",
        "/entities/%00/%00/%00",
        "/entities/resource/default/" + "x" * 2000,
        "/entities/../../etc/passwd",
        "/entities/resource/..%2F..%2F/passwd",
        "/entities/resource/default/..%2f..%2fetc%2fpasswd",
        "/entities/resource/%2e%2e/%2e%2e",
        "/sources/../../etc/passwd/entities.yaml",
        "/sources/123456789012/us-east-1/shards/-1/0.yaml",
        "/sources/123456789012/us-east-1/shards/99999999999999999999/0.yaml",
        "/sources/123456789012/us-east-1/shards/1/99.yaml",
        "//entities.yaml",
        "/entities.yaml/",
        "/" + "a/" * 3000,
    ],
)
def test_malformed_and_hostile_targets_never_cause_a_server_error(
    demo_url: str, target: str
) -> None:
    response = raw_get(demo_url, target)
    assert response.status_code < 500, (target, response.status_code, response.text[:200])
    if response.status_code == 200:
        assert response.headers["content-type"].startswith(("application/json", "application/yaml"))


def test_unknown_filter_values_give_an_empty_result(demo_url: str) -> None:
    for query in ("kind=Nothing", "region=mars-1", "account=000000000000", "type=%F0%9F%90%B3"):
        response = httpx.get(f"{demo_url}/entities.json?{query}")
        assert response.status_code == 200
        assert response.json() == {"items": []}


def test_traversal_cannot_reach_outside_the_catalog(demo_url: str) -> None:
    for target in ("/entities/../../etc/passwd", "/entities/resource/..%2F..%2Fetc/passwd"):
        response = raw_get(demo_url, target)
        assert response.status_code == 404
        assert "root:" not in response.text


def test_huge_if_none_match_and_accept_headers_are_harmless(demo_url: str) -> None:
    etag = httpx.get(f"{demo_url}/entities.yaml").headers["etag"]
    many_tags = ", ".join(f'"{i:040x}"' for i in range(200)) + f", {etag}"
    assert len(many_tags) > 8192
    # Too long to be worth parsing: treated as not matching, a full 200.
    assert (
        httpx.get(f"{demo_url}/entities.yaml", headers={"If-None-Match": many_tags}).status_code
        == 200
    )
    some_tags = ", ".join(f'"{i:040x}"' for i in range(50)) + f", {etag}"
    assert (
        httpx.get(f"{demo_url}/entities.yaml", headers={"If-None-Match": some_tags}).status_code
        == 304
    )
    accept = ", ".join(f"application/x-{i};q=0.{i % 10}" for i in range(300)) + ", application/json"
    response = httpx.get(f"{demo_url}/entities", headers={"Accept": accept})
    assert response.status_code == 200
    # Entries past the 64th are not considered, so JSON's late mention does not count.
    assert response.headers["content-type"].startswith("application/yaml")


def test_oversized_headers_and_targets_are_refused_not_crashed(demo_url: str) -> None:
    response = raw_get(demo_url, "/entities.json?q=" + "x" * 10_000)
    assert response.status_code == 414
    try:
        huge = httpx.get(f"{demo_url}/entities.yaml", headers={"X-Filler": "y" * 70_000})
    except (httpx.RemoteProtocolError, httpx.ReadError):
        # The parser's bound (h11's incomplete-event limit) closed the connection while the
        # head was still being sent: refused, which is fine.
        pass
    else:
        # 431 from our own check, or h11's 400 for a head past its bound.
        assert huge.status_code in (400, 431)
    assert httpx.get(f"{demo_url}/healthz").status_code == 200
