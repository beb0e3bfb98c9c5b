"""Inputs that must break nothing but themselves, against a real `serve` process.

The fake ECR (tests/faults/fake_ecr.py) serves what no conforming endpoint would: a lifecycle policy
nested 5,000 deep. Requests come as a client inside the cluster would send them: deep JSON
events, control characters for the logs, raw HEAD requests.
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from ..ecr_events import ACCOUNT, TOKEN, image_action, sns
from ..support import ServiceProcess, spawn_service, start_fake_ecr, stop_process
from .test_reader import TWO_RULES

DEEP_POLICY = "[" * 5_000 + "]" * 5_000
FORGED = "\n2026-01-01 00:00:00,000 CRITICAL service: forged\x1b[31m"


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServiceProcess, Path]]:
    tmp = tmp_path_factory.mktemp("hostile-inputs")
    spec = [
        {"name": "team/odd", "region": "us-east-1", "lifecycle": DEEP_POLICY},
        {"name": "team/web", "region": "us-east-1", "lifecycle": TWO_RULES},
    ]
    data = tmp / "data.json"
    data.write_text(json.dumps({"repositories": spec}))
    fake, fake_url = start_fake_ecr("--data", str(data))
    config = {
        "aws": {
            "endpoint_url": fake_url,
            "total_max_attempts": 2,
            "targets": [{"regions": ["us-east-1"], "account_id": ACCOUNT}],
        },
        "refresh": {"interval_seconds": 600},
        "events": {"token": TOKEN, "debounce_seconds": 60},
    }
    try:
        spawned = spawn_service(tmp / "service", config)
        try:
            deadline = time.monotonic() + 60
            while httpx.get(f"{spawned.url}/readyz").status_code != 200:
                assert time.monotonic() < deadline, "the service never became ready"
                time.sleep(0.1)
            yield spawned, tmp / "service" / "service.log"
        finally:
            stop_process(spawned.process)
    finally:
        stop_process(fake)


def annotations_of(url: str, name: str) -> dict[str, str]:
    documents = yaml.safe_load_all(httpx.get(f"{url}/entities.yaml").text)
    entity = next(d for d in documents if d["metadata"]["name"] == name)
    return dict(entity["metadata"]["annotations"])


def test_an_unparseable_lifecycle_policy_fails_only_its_own_fact(
    service: tuple[ServiceProcess, Path],
) -> None:
    url = service[0].url
    readiness = httpx.get(f"{url}/readyz").json()
    assert readiness["complete"] and all(s["healthy"] for s in readiness["sources"])
    odd = annotations_of(url, f"team--odd.us-east-1.{ACCOUNT}")
    assert odd["ecr-catalog.io/lifecycle-policy"] == "unparseable"
    assert "ecr-catalog.io/lifecycle-rule-count" not in odd
    assert "lifecycle-policy" in odd["ecr-catalog.io/posture-unknown"]
    web = annotations_of(url, f"team--web.us-east-1.{ACCOUNT}")
    assert web["ecr-catalog.io/lifecycle-policy"] == "true"
    assert web["ecr-catalog.io/lifecycle-rule-count"] == "2"


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 100_000 + b"]" * 100_000,
        json.dumps({"Type": "Notification", "Message": "[" * 50_000}).encode(),
    ],
    ids=["body-100k-deep", "sns-message-50k-deep"],
)
def test_deep_json_events_get_400(service: tuple[ServiceProcess, Path], body: bytes) -> None:
    response = httpx.post(
        f"{service[0].url}/events/ecr",
        content=body,
        headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
    )
    assert response.status_code == 400
    assert "nested too deeply" in response.json()["detail"]
    assert httpx.get(f"{service[0].url}/healthz").status_code == 200


def test_control_characters_in_an_event_forge_no_log_line(
    service: tuple[ServiceProcess, Path],
) -> None:
    url, log = service[0].url, service[1]
    # A known source, so that the event is logged with its repository name.
    for body in (image_action(f"team/web{FORGED}"), sns(image_action(f"team/odd{FORGED}"))):
        response = httpx.post(
            f"{url}/events/ecr", json=body, headers={"Authorization": f"Bearer {TOKEN}"}
        )
        assert response.status_code == 202
    deadline = time.monotonic() + 10
    while log.read_text(errors="replace").count("CRITICAL service: forged") < 2:
        assert time.monotonic() < deadline, "the events were not logged"
        time.sleep(0.1)
    text = log.read_bytes()
    assert b"\x1b" not in text
    lines = text.decode().splitlines()
    assert not [line for line in lines if line.startswith("2026-01-01")]
    assert sum("team/web\\n2026-01-01 00:00:00,000 CRITICAL" in line for line in lines) == 1


def raw(port: int, request: bytes) -> bytes:
    """Everything the server sends until it closes the connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        connection.sendall(request)
        received = b""
        while chunk := connection.recv(65536):
            received += chunk
    return received


def head_and_get(port: int, target: str, accept: str) -> tuple[bytes, bytes, bytes]:
    """The raw answer to HEAD, and the head and body of the answer to GET."""
    request = f" {target} HTTP/1.1\r\nHost: x\r\nAccept: {accept}\r\nConnection: close\r\n\r\n"
    head = raw(port, b"HEAD" + request.encode())
    get_head, _, get_body = raw(port, b"GET" + request.encode()).partition(b"\r\n\r\n")
    return head, get_head, get_body


def header_lines(block: bytes) -> set[bytes]:
    # The date and age may tick between the two requests; /metrics counts them.
    lines = set(block.split(b"\r\n"))
    return {line for line in lines if not line.lower().startswith((b"date:", b"age:"))}


@pytest.mark.parametrize(
    ("target", "accept"),
    [
        ("/healthz", "*/*"),
        ("/readyz", "*/*"),
        ("/entities.yaml", "*/*"),
        ("/", "text/html"),
        (f"/entities/resource/default/team--web.us-east-1.{ACCOUNT}", "text/html"),
        ("/metrics", "*/*"),
    ],
)
def test_head_over_raw_http_has_gets_headers_and_no_body(
    service: tuple[ServiceProcess, Path], target: str, accept: str
) -> None:
    head, get_head, get_body = head_and_get(service[0].port, target, accept)
    assert head.startswith(b"HTTP/1.1 200 ")
    # Nothing after the blank line that ends the head: no body at all.
    assert head.endswith(b"\r\n\r\n") and head.count(b"\r\n\r\n") == 1
    head_block = head[: -len(b"\r\n\r\n")]
    if target == "/metrics":
        names = {line.split(b":")[0].lower() for line in header_lines(head_block)}
        assert names == {line.split(b":")[0].lower() for line in header_lines(get_head)}
    else:
        assert header_lines(head_block) == header_lines(get_head)
        assert f"content-length: {len(get_body)}".encode() in head_block.lower()
    assert b"x-content-type-options: nosniff" in head_block.lower()
    policy = b"content-security-policy: default-src 'none'"
    assert (policy in head_block.lower()) == (accept == "text/html")


def events_answered(url: str) -> dict[str, float]:
    """How many /events/ecr requests got each status so far."""
    text = httpx.get(f"{url}/metrics").text
    found = re.findall(
        r'^ecr_catalog_http_requests_total\{route="/events/ecr",status="(\d+)"\} (\S+)$', text, re.M
    )
    return {status: float(count) for status, count in found}


@pytest.mark.parametrize(
    "cut",
    [
        # A body shorter than its Content-Length, then the connection closed.
        b'Content-Length: 1000\r\n\r\n{"detail',
        # A chunked body whose chunk size is not hex.
        b"Transfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n",
    ],
)
def test_a_sender_that_goes_away_mid_body_is_no_server_error(
    service: tuple[ServiceProcess, Path], cut: bytes
) -> None:
    spawned, log = service
    before = events_answered(spawned.url)
    request = (
        b"POST /events/ecr HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        + f"Authorization: Bearer {TOKEN}\r\n".encode()
        + cut
    )
    with socket.create_connection(("127.0.0.1", spawned.port), timeout=10) as connection:
        connection.sendall(request)
        connection.shutdown(socket.SHUT_WR)
        while connection.recv(65536):
            pass
    # The request is counted once its handling ends: as our 400, never as a 500.
    deadline = time.monotonic() + 10
    while sum(events_answered(spawned.url).values()) == sum(before.values()):
        assert time.monotonic() < deadline, "the request was never counted"
        time.sleep(0.1)
    after = events_answered(spawned.url)
    assert after.get("500", 0) == before.get("500", 0)
    assert after["400"] == before.get("400", 0) + 1
    assert "Exception in ASGI application" not in log.read_text(errors="replace")


def test_the_service_process_is_still_serving(service: tuple[ServiceProcess, Path]) -> None:
    process: subprocess.Popen[bytes] = service[0].process
    assert process.poll() is None
    assert httpx.get(f"{service[0].url}/entities.yaml").status_code == 200
