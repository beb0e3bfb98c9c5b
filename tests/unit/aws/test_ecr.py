"""One account's ECR calls: paging, pacing, the region's bound, our errors and the counts."""

from __future__ import annotations

import asyncio
import time
from types import SimpleNamespace
from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError
from botocore.hooks import HierarchicalEmitter

from service.aws.ecr import EcrClient
from service.errors import EcrError
from service.model import SourceId

ACCOUNT = "123456789012"
SOURCE = SourceId(ACCOUNT, "us-east-1")


class Counted:
    """A ReadObserver that keeps every AWS call it is told of."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, int]] = []

    def aws_call(self, operation: str, outcome: str, times: int = 1) -> None:
        self.calls.append((operation, outcome, times))

    def cache_lookup(self, kind: str, hit: bool, times: int = 1) -> None:
        pass


class FakeEcr:
    """Answers like aiobotocore's ECR client: methods by snake name, pages with nextToken."""

    def __init__(self, repositories: int = 0, failure: Exception | None = None) -> None:
        # botocore's own event emitter: the client registers on it as on a real client's.
        self.meta = SimpleNamespace(
            method_to_api_mapping={
                "describe_repositories": "DescribeRepositories",
                "list_tags_for_resource": "ListTagsForResource",
            },
            events=HierarchicalEmitter(),
        )
        self.items = [{"repositoryName": f"r{i}"} for i in range(repositories)]
        self.failure = failure
        self.calls: list[dict[str, Any]] = []
        self.sent_at: list[float] = []
        self.in_flight = self.most_in_flight = 0

    async def describe_repositories(self, **params: Any) -> dict[str, Any]:
        self.calls.append(params)
        start = int(params.get("nextToken", "0"))
        end = start + params["maxResults"]
        page: dict[str, Any] = {"repositories": self.items[start:end]}
        if end < len(self.items):
            page["nextToken"] = str(end)
        return page

    async def list_tags_for_resource(self, **params: Any) -> dict[str, Any]:
        self.sent_at.append(time.monotonic())
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            await asyncio.sleep(0.01)
            if isinstance(self.failure, ClientError):
                # As botocore does: needs-retry after each attempt, with the attempt's answer.
                answer = self.failure.response
                attempts = int(answer.get("ResponseMetadata", {}).get("RetryAttempts", 0)) + 1
                for _ in range(attempts):
                    self.meta.events.emit(
                        "needs-retry.ecr.ListTagsForResource",
                        response=(None, answer),
                        operation=SimpleNamespace(name="ListTagsForResource"),
                    )
            if self.failure is not None:
                raise self.failure
            return {"tags": [], "ResponseMetadata": {"RetryAttempts": 2}}
        finally:
            self.in_flight -= 1


def client_of(
    fake: FakeEcr, observer: Counted, slots: int = 4, rate: float | None = None
) -> EcrClient:
    async def opened() -> FakeEcr:
        return fake

    return EcrClient(opened, asyncio.Semaphore(slots), SOURCE, observer, "/ca.pem", rate)


async def test_pagination_follows_next_token_with_max_results_1000() -> None:
    fake = FakeEcr(repositories=2500)
    items = await client_of(fake, Counted()).every("describe_repositories", "repositories")
    assert len(items) == 2500
    assert [c.get("nextToken") for c in fake.calls] == [None, "1000", "2000"]
    assert {c["maxResults"] for c in fake.calls} == {1000}


async def test_calls_are_counted_by_aws_name_with_botocores_retries() -> None:
    observer = Counted()
    await client_of(FakeEcr(), observer).call("list_tags_for_resource", resourceArn="arn")
    assert observer.calls == [
        ("ListTagsForResource", "retried", 2),
        ("ListTagsForResource", "ok", 1),
    ]


async def test_a_throttle_that_outlasted_the_retries_is_our_error_and_counted() -> None:
    throttle = ClientError(
        {
            "Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"},
            "ResponseMetadata": {"RetryAttempts": 9},
        },
        "ListTagsForResource",
    )
    observer = Counted()
    client = client_of(FakeEcr(failure=throttle), observer)
    with pytest.raises(EcrError) as caught:
        await client.call("list_tags_for_resource", resourceArn="arn")
    assert (caught.value.account, caught.value.region) == (ACCOUNT, "us-east-1")
    assert caught.value.operation == "list_tags_for_resource"
    assert caught.value.code == "ThrottlingException" and caught.value.retries == 9
    # Each of the ten attempts was throttled; nine were retried; no outcome is counted twice.
    assert observer.calls == [
        *[("ListTagsForResource", "throttled", 1)] * 10,
        ("ListTagsForResource", "retried", 9),
    ]


async def test_no_answer_is_our_error_named_after_botocores_exception() -> None:
    failure = EndpointConnectionError(endpoint_url="http://127.0.0.1:9")
    observer = Counted()
    with pytest.raises(EcrError) as caught:
        await client_of(FakeEcr(failure=failure), observer).call("list_tags_for_resource")
    assert caught.value.code == "EndpointConnectionError"
    assert "http://127.0.0.1:9" in caught.value.detail
    assert observer.calls == [("ListTagsForResource", "EndpointConnectionError", 1)]


async def test_calls_in_flight_never_exceed_the_regions_slots() -> None:
    fake = FakeEcr()
    client = client_of(fake, Counted(), slots=3)
    await asyncio.gather(*(client.call("list_tags_for_resource") for _ in range(12)))
    assert fake.most_in_flight == 3


async def test_max_calls_per_second_spaces_the_calls_of_one_api() -> None:
    fake = FakeEcr()
    client = client_of(fake, Counted(), slots=16, rate=20)
    started = time.monotonic()
    await asyncio.gather(*(client.call("list_tags_for_resource") for _ in range(30)))
    # A bucket of 20 a second lets the first 20 go at once, then one every 50 ms.
    assert time.monotonic() - started >= 0.45
    assert fake.sent_at[-1] - fake.sent_at[19] >= 0.45


async def test_a_cancelled_call_keeps_its_slot_until_it_ends() -> None:
    # A cancelled caller stops waiting, but its call goes on (botocore is never cancelled
    # inside): the region's slot is the call's until it ends, so cancellations never let
    # more calls in flight than the slots.
    fake = FakeEcr()
    client = client_of(fake, Counted(), slots=2)
    for _ in range(3):
        callers = [asyncio.create_task(client.call("list_tags_for_resource")) for _ in range(2)]
        await asyncio.sleep(0.001)
        for caller in callers:
            caller.cancel()
        await asyncio.gather(*callers, return_exceptions=True)
    await asyncio.gather(*(client.call("list_tags_for_resource") for _ in range(4)))
    assert fake.most_in_flight == 2
    assert fake.in_flight == 0
