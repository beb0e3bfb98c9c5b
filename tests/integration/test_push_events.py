"""A push made visible within seconds by its event, in a service process reading moto."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import yaml

from service.demo import DemoRepository, _manifest, seed_registry

from ..ecr_events import ACCOUNT, TOKEN, image_action
from ..support import MotoServer, spawn_service, stop_process


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
        ecr = moto.ecr("us-east-1")
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
