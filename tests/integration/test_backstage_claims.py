"""Claims saved in ``state_dir`` outlive a restart while Backstage is unreachable."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from service.backstage.claims import CLAIMS_FILE, claims_from_json, claims_to_json
from service.catalog.claims import Claimer, ClaimIndex
from service.demo import DEMO_ACCOUNT, DemoRepository, seed_registry

from ..support import MotoServer, free_port, spawn_service, stop_process, wait_until

REF = f"resource:default/claimed--api.us-east-1.{DEMO_ACCOUNT}"
CLAIMS = ClaimIndex.of(
    [
        Claimer("component:default/zeta", "group:default/team-z", ("claimed/api",)),
        Claimer(
            "component:shop/alpha",
            "group:shop/team-a",
            (f"arn:aws:ecr:us-east-1:{DEMO_ACCOUNT}:repository/claimed/api",),
        ),
    ]
)


def test_the_claims_file_round_trips_and_refuses_anything_else() -> None:
    at = datetime(2026, 12, 2, 3, 0, tzinfo=UTC)
    assert claims_from_json(claims_to_json(CLAIMS, at)) == (CLAIMS, at)
    for bad in (b"null", b"[]", b'{"format": 2}', b"{", claims_to_json(CLAIMS, at)[:-2]):
        with pytest.raises(ValueError):
            claims_from_json(bad)
    naive = claims_to_json(CLAIMS, at).replace(b"+00:00", b"")
    with pytest.raises(ValueError, match="time zone"):
        claims_from_json(naive)


def test_a_restart_with_backstage_down_builds_with_the_saved_claims(
    moto: MotoServer, tmp_path: Path
) -> None:
    seed_registry(moto.url, [DemoRepository(name="claimed/api", region="us-east-1")])
    state = tmp_path / "state"
    (state / CLAIMS_FILE).parent.mkdir(parents=True)
    (state / CLAIMS_FILE).write_bytes(claims_to_json(CLAIMS, datetime.now(UTC)))
    config = {
        "aws": {
            "endpoint_url": moto.url,
            "targets": [{"regions": ["us-east-1"], "account_id": DEMO_ACCOUNT}],
        },
        "state_dir": str(state),
        # Nothing listens there: every call to Backstage fails.
        "backstage": {"base_url": f"http://127.0.0.1:{free_port()}", "token": "secret-token"},
    }
    service = spawn_service(tmp_path, config)
    try:
        wait_until(
            lambda: httpx.get(f"{service.url}/readyz").status_code == 200, "ready", timeout=60
        )
        items = httpx.get(f"{service.url}/entities.json").json()["items"]
        (repo,) = [e for e in items if f"resource:default/{e['metadata']['name']}" == REF]
        # Both claimers depend on it; they disagree on the owner, so neither gives it.
        assert repo["spec"]["dependencyOf"] == ["component:default/zeta", "component:shop/alpha"]
        assert repo["spec"]["owner"] == "platform-team"
        readiness = wait_until(
            lambda: (
                (r := httpx.get(f"{service.url}/readyz").json())["backstage"]["claims"][
                    "last_error"
                ]
                and r
            ),
            "a failed claims read reported",
        )
        claims = readiness["backstage"]["claims"]
        assert claims["claiming_entities"] == 2 and claims["claimed_repositories"] == 1
        (conflict,) = claims["conflicts"]
        assert "owners disagree, so owner platform-team (catalog.owner)" in conflict
        assert "no answer" in claims["last_error"]
        # The token is never echoed, in /readyz or in the log.
        assert "secret-token" not in httpx.get(f"{service.url}/readyz").text
        assert "secret-token" not in (tmp_path / "service.log").read_text()
        # The file is kept: a failed read replaces nothing.
        assert claims_from_json((state / CLAIMS_FILE).read_bytes())[0] == CLAIMS
    finally:
        stop_process(service.process)
