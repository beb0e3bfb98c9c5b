"""The Backstage files of deploy/backstage, merged into a real Backstage exactly as the docs say.

Each file is passed as one more ``--config`` after the team's own app-config, with one change:
the Service's cluster name becomes the loopback service's ``localhost:port`` (in the target and
the allow entry alike). The team's own config brings no location, no ``reading.allow`` and no
rules, so nothing but the shipped file can make Backstage read the catalog. Then, for a team
that has lists of its own, what the docs warn about and what they say to do instead.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from service.demo import DEMO_ACCOUNT, demo_repositories, seed_registry

from ...deployment import BOTH_WAYS, READING, load, rewritten_for
from ...support import start_moto, stop_process
from .harness import Backstage, Service, eventually, running_backstage, running_service

pytestmark = pytest.mark.backstage

VARIABLE = "ECR_CATALOG_BACKSTAGE_TOKEN"
TOKEN = "shipped-config-token-0c4f7a1e9b"
TEAM_COMPONENT = "component:default/team-own-service"


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    tmp = tmp_path_factory.mktemp("shipped-config")
    moto = start_moto()
    settings = {
        "aws": {
            "endpoint_url": moto.url,
            "total_max_attempts": 2,
            "targets": [{"regions": ["us-east-1", "eu-west-1"], "account_id": DEMO_ACCOUNT}],
        },
        "refresh": {"interval_seconds": 600, "initial_retry_seconds": 1},
    }
    try:
        seed_registry(moto.url, demo_repositories())
        with running_service(tmp, settings) as running:
            yield running
    finally:
        stop_process(moto.process)


def environment(**extra: str) -> dict[str, str]:
    """Backstage's environment: the test process's, without the token unless given."""
    return {k: v for k, v in os.environ.items() if k != VARIABLE} | extra


def loopback(service: Service) -> str:
    return f"localhost:{service.port}"


def ingests_everything(backstage: Backstage, service: Service) -> dict[str, dict[str, Any]]:
    served = service.served()
    assert len(served) == 5 + 26

    def complete() -> dict[str, dict[str, Any]] | None:
        ingested = backstage.ingested()
        return ingested if served.keys() <= ingested.keys() else None

    try:
        ingested = eventually(complete, 120, "Backstage to ingest every served entity")
    except AssertionError:
        missing = sorted(served.keys() - backstage.ingested().keys())
        raise AssertionError(f"missing: {missing}\n{backstage.log_tail()}") from None
    # One location, the shipped one, with no error on it.
    (location,) = backstage.locations()
    assert location["spec"]["target"] == f"http://{loopback(service)}/entities.yaml"
    assert location.get("status", {}).get("items", []) == []
    return ingested


def test_the_reading_file_starts_backstage_without_any_variable_and_ingests_the_catalog(
    service: Service, tmp_path: Path
) -> None:
    config = rewritten_for(READING, loopback(service), tmp_path)
    with running_backstage(
        tmp_path, service, "", app_configs=[config], env=environment()
    ) as backstage:
        ingests_everything(backstage, service)
        assert "NotAllowedError" not in backstage.log_text()


def test_the_both_ways_file_with_its_variable_lets_the_token_into_the_catalog(
    service: Service, tmp_path: Path
) -> None:
    configs = [rewritten_for(path, loopback(service), tmp_path) for path in (READING, BOTH_WAYS)]
    with running_backstage(
        tmp_path,
        service,
        "",
        app_configs=configs,
        env=environment(**{VARIABLE: TOKEN}),
        token=TOKEN,
    ) as backstage:
        ingested = ingests_everything(backstage, service)
        # What the service does with the token: read the catalog, ask for a refresh.
        some = next(ref for ref in ingested if ref.startswith("resource:"))
        backstage.refresh(some)
        url = f"{backstage.url}/api/catalog/entities"
        assert httpx.get(url, timeout=10).status_code == 401
        wrong = {"Authorization": f"Bearer {TOKEN}x"}
        assert httpx.get(url, timeout=10, headers=wrong).status_code == 401


def test_the_both_ways_file_without_its_variable_fails_the_catalog(
    service: Service, tmp_path: Path
) -> None:
    """Why the way back is a file of its own: without the variable, the catalog plugin fails
    at start-up (the process stays up and answers, with no catalog behind it)."""
    configs = [rewritten_for(path, loopback(service), tmp_path) for path in (READING, BOTH_WAYS)]
    with running_backstage(
        tmp_path,
        service,
        "",
        app_configs=configs,
        env=environment(),
        token=TOKEN,
        catalog_starts=False,
    ) as backstage:
        missing = "Missing required config value at 'backend.auth.externalAccess[0].options.token'"
        eventually(lambda: missing in backstage.log_text(), 60, "the start-up error")
        assert "Plugin 'catalog' startup failed" in backstage.log_text()
        response = httpx.get(f"{backstage.url}/api/catalog/entities", headers=backstage.headers)
        assert response.status_code == 404


def team_config(tmp_path: Path) -> dict[str, Any]:
    """A team's own app-config with lists of its own: a location and a reading.allow entry."""
    component = tmp_path / "team-own-service.yaml"
    component.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "backstage.io/v1alpha1",
                "kind": "Component",
                "metadata": {"name": "team-own-service"},
                "spec": {"type": "service", "lifecycle": "production", "owner": "team-a"},
            }
        )
    )
    return {
        "backend": {"reading": {"allow": [{"host": "git.team.invalid"}]}},
        "catalog": {"locations": [{"type": "file", "target": str(component)}]},
    }


def test_a_team_with_lists_of_its_own_copies_the_entries_into_them(
    service: Service, tmp_path: Path
) -> None:
    """As the docs say for a team whose app-config has its own lists: the file's list entries
    added to them. Both the team's location and ours are read."""
    team = team_config(tmp_path)
    shipped = load(rewritten_for(READING, loopback(service), tmp_path))
    team["backend"]["reading"]["allow"] += shipped["backend"]["reading"]["allow"]
    team["catalog"]["locations"] += shipped["catalog"]["locations"]
    merged = tmp_path / "app-config.team.yaml"
    merged.write_text(yaml.safe_dump(team))
    with running_backstage(
        tmp_path, service, "", app_configs=[merged], env=environment()
    ) as backstage:
        served = service.served()
        eventually(
            lambda: served.keys() | {TEAM_COMPONENT} <= backstage.ingested().keys(),
            120,
            "Backstage to ingest the team's component and the catalog",
        )


def test_the_file_as_a_later_config_replaces_a_teams_own_lists(
    service: Service, tmp_path: Path
) -> None:
    """What the docs warn about: Backstage merges config files key by key, but a list in a
    later file replaces the earlier list whole. The team's own location is gone."""
    team = tmp_path / "app-config.team.yaml"
    team.write_text(yaml.safe_dump(team_config(tmp_path)))
    config = rewritten_for(READING, loopback(service), tmp_path)
    with running_backstage(
        tmp_path, service, "", app_configs=[team, config], env=environment()
    ) as backstage:
        ingested = ingests_everything(backstage, service)
        assert TEAM_COMPONENT not in ingested
        targets = [location["spec"]["target"] for location in backstage.locations()]
        assert not any(target.endswith("team-own-service.yaml") for target in targets)
