"""The claims reader: how it pages through Backstage, what it keeps, and when it lets go.

Backstage's catalog API is stood in for by httpx's MockTransport, answering `by-query` as the
catalog backend does (cursor pagination: a next page is asked for with the cursor, the limit
and the fields, never the filter); the real thing is in tests/e2e/backstage.
"""

from __future__ import annotations

import json
from typing import Any

import httpx

from service.backstage.claims import ClaimsReader
from service.backstage.client import BackstageClient
from service.catalog.claims import claim_filters
from service.catalog.entities import FOREIGN_ANNOTATIONS
from service.config import BackstageSettings

ARN_KEY = "aws.amazon.com/amazon-ecr-arn"
NAMES_KEY = "ecr-catalog.io/repositories"


def entity(name: str, annotations: dict[str, str], owner: str = "team-a") -> dict[str, Any]:
    return {
        "kind": "Component",
        "metadata": {"name": name, "namespace": "default", "annotations": annotations},
        "spec": {"owner": owner},
    }


OURS = {
    "kind": "Resource",
    "metadata": {
        "name": "api.us-east-1.123456789012",
        "annotations": {ARN_KEY: "arn:x", "ecr-catalog.io/repository-uri": "x"},
    },
}


class FakeCatalog:
    def __init__(self, pages: list[list[dict[str, Any]]], status: int = 200) -> None:
        self.pages = pages
        self.status = status
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.status != 200:
            return httpx.Response(self.status)
        cursor = request.url.params.get("cursor")
        index = int(cursor) if cursor else 0
        info = {"nextCursor": str(index + 1)} if index + 1 < len(self.pages) else {}
        body = {"items": self.pages[index], "totalItems": 0, "pageInfo": info}
        return httpx.Response(200, content=json.dumps(body))


def reader_for(catalog: FakeCatalog) -> ClaimsReader:
    settings = BackstageSettings(base_url="http://backstage", token="t0ken")
    client = BackstageClient(settings, transport=httpx.MockTransport(catalog))
    return ClaimsReader(client, settings, "ecr-catalog.io")


def test_the_filters_leave_the_services_own_resources_out() -> None:
    filters = claim_filters([ARN_KEY, NAMES_KEY], FOREIGN_ANNOTATIONS)
    # The awslabs key is on every repository this service serves: asked for by claiming kind.
    assert filters == [
        f"kind=component,metadata.annotations.{ARN_KEY}",
        f"kind=system,metadata.annotations.{ARN_KEY}",
        f"kind=api,metadata.annotations.{ARN_KEY}",
        f"metadata.annotations.{NAMES_KEY}",
    ]


async def test_every_page_is_read_and_only_claimers_are_kept() -> None:
    catalog = FakeCatalog(
        [
            [entity("a", {ARN_KEY: "arn:aws:ecr:us-east-1:1:repository/x"}), OURS],
            [entity("b", {NAMES_KEY: "x, y"}), entity("c", {NAMES_KEY: " "})],
        ]
    )
    reader = reader_for(catalog)
    await reader.read()
    refs = [c.ref for c in reader.claims.claimers]
    assert refs == ["component:default/a", "component:default/b"]
    assert reader.skipped == 1 and reader.last_error is None
    first, second = catalog.requests
    assert first.url.params.get_list("filter") == claim_filters(
        [ARN_KEY, NAMES_KEY], FOREIGN_ANNOTATIONS
    )
    assert first.headers["authorization"] == "Bearer t0ken"
    # The next page: the cursor, the limit and the fields, never the filter.
    assert second.url.params.get("cursor") == "1"
    assert second.url.params.get_list("filter") == []
    assert second.url.params.get("fields") == first.url.params.get("fields")
    assert second.url.params.get("limit") == first.url.params.get("limit")


async def test_a_failed_read_keeps_the_last_claims() -> None:
    catalog = FakeCatalog([[entity("a", {NAMES_KEY: "x"})]])
    reader = reader_for(catalog)
    await reader.read()
    kept = reader.claims
    catalog.status = 503
    await reader.read()
    assert reader.claims == kept
    assert reader.last_error is not None and "HTTP 503" in reader.last_error


async def test_every_claim_gone_at_once_is_believed_at_the_second_read() -> None:
    catalog = FakeCatalog([[entity("a", {NAMES_KEY: "x"})]])
    reader = reader_for(catalog)
    await reader.read()
    kept = reader.claims
    catalog.pages = [[]]
    await reader.read()
    assert reader.claims == kept
    assert reader.last_error is not None and "next read agrees" in reader.last_error
    await reader.read()
    assert not reader.claims and reader.last_error is None


async def test_a_change_of_claims_is_told_once_and_equal_claims_are_not() -> None:
    catalog = FakeCatalog([[entity("a", {NAMES_KEY: "x"})]])
    reader = reader_for(catalog)
    told: list[int] = []
    reader.on_change = lambda: told.append(len(reader.claims.claimers))
    await reader.read()
    assert told == [1]
    await reader.read()
    assert told == [1]
