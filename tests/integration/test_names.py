"""Issue 23's takeover, tried on a real `serve` process reading a moto server."""

from __future__ import annotations

from pathlib import Path

import httpx

from service.demo import DEMO_ACCOUNT, DemoRepository, seed_registry

from ..support import (
    MotoServer,
    moto_service_config,
    spawn_service,
    stop_process,
    wait_healthy_sources,
)

VICTIM = "payments-service-production-images-long-name"
# Exactly what the victim was served as before: a plain name that took its entity over.
ATTACKER = "payments-service-production-ima-7c3d37f8"


def test_a_hashed_and_a_plain_name_are_two_entities_each_with_its_owner(
    moto: MotoServer, tmp_path: Path
) -> None:
    seed_registry(
        moto.url,
        [
            DemoRepository(name=VICTIM, region="us-east-1", tags={"owner": "team-payments"}),
            DemoRepository(
                name=ATTACKER, region="us-east-1", tags={"owner": "group:default/attackers"}
            ),
        ],
    )
    service = spawn_service(tmp_path, moto_service_config(moto.url, ["us-east-1"]))
    try:
        readiness = wait_healthy_sources(service.url)
        assert readiness["snapshot"]["rejected"] == []
        response = httpx.get(f"{service.url}/entities.json")
        assert response.status_code == 200
        by_title = {
            e["metadata"]["title"]: e
            for e in response.json()["items"]
            if e["spec"].get("type") == "ecr-repository"
        }
        victim, attacker = by_title[VICTIM], by_title[ATTACKER]
        assert victim["metadata"]["name"].lower() != attacker["metadata"]["name"].lower()
        assert "_-" in victim["metadata"]["name"]
        assert attacker["metadata"]["name"] == f"{ATTACKER}.us-east-1.{DEMO_ACCOUNT}"
        assert victim["spec"]["owner"] == "group:default/team-payments"
        assert attacker["spec"]["owner"] == "group:default/attackers"
        for entity, name in ((victim, VICTIM), (attacker, ATTACKER)):
            arn = f"arn:aws:ecr:us-east-1:{DEMO_ACCOUNT}:repository/{name}"
            assert entity["metadata"]["annotations"]["amazonaws.com/arn"] == arn
    finally:
        stop_process(service.process)
