"""The migration guide's switch, done to a real Backstage: from the committed file to the URL
location in one config change, with nothing left orphaned and nothing owned by two locations.

Backstage first ingests the old committed file (tests/golden/ecr-registry.old.yaml, the sync
script's shape) from a `type: file` location, then restarts on the same database with that
location replaced by ecr-catalog's URL, as a deploy of the new app-config would. On the way it
shows what the guide warns against: both locations at once make every shared ref conflict.
With the names `ecr-catalog names-from` prints from the old file, a ref another catalog file
uses keeps its relation across the switch.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from service.demo import DEMO_ACCOUNT, DemoRepository, seed_registry

from ...support import GOLDEN, MotoServer, command_env
from .harness import eventually, running_backstage, running_service

pytestmark = pytest.mark.backstage

ORPHAN = "backstage.io/orphan"
COMPONENT = "component:default/ecr-registry"


def test_switching_from_the_committed_file_in_one_config_change(
    moto: MotoServer, tmp_path: Path
) -> None:
    seed_registry(
        moto.url,
        [
            DemoRepository(name="alpha/api", region="us-east-1", tags={"owner": "alpha"}),
            DemoRepository(name="beta/web", region="us-east-1"),
        ],
    )
    settings = {
        "aws": {
            "endpoint_url": moto.url,
            "targets": [{"regions": ["us-east-1"], "account_id": DEMO_ACCOUNT}],
        },
        "refresh": {"interval_seconds": 5},
    }
    old_file = tmp_path / "ecr-registry.yaml"
    old_file.write_text((GOLDEN / "ecr-registry.old.yaml").read_text(), encoding="utf-8")
    database = tmp_path / "db"
    database.mkdir()
    with running_service(tmp_path, settings) as service:
        served = set(service.served())
        url = f"http://localhost:{service.port}/entities.yaml"

        with running_backstage(
            tmp_path,
            service,
            "",
            locations=[{"type": "file", "target": str(old_file)}],
            database_dir=database,
        ) as before:
            old = eventually(
                lambda: (found := before.ingested()) and len(found) == 3 and found,
                120,
                "the old file ingested",
            )
        assert old[COMPONENT]["spec"]["system"] == "audio-playback"
        # The restart below finds this run's catalog: it is kept in files, not in memory.
        assert (database / "catalog.sqlite").stat().st_size > 0, sorted(database.iterdir())
        assert {"resource:default/alpha-api", "resource:default/retired-repo"} <= set(old)

        # What the guide warns against: the new location added beside the old one. Every ref
        # both emit conflicts, and the old file keeps it.
        with running_backstage(
            tmp_path,
            service,
            "",
            locations=[{"type": "file", "target": str(old_file)}, {"type": "url", "target": url}],
            database_dir=database,
        ) as both:
            eventually(
                lambda: (
                    "conflicting entityRef" in both.log_text()
                    and set(both.ingested()) >= served - {COMPONENT}
                ),
                120,
                "the URL location's new refs ingested and a conflict reported",
            )
            assert both.ingested()[COMPONENT]["spec"]["system"] == "audio-playback"

        with running_backstage(
            tmp_path, service, "", locations=[{"type": "url", "target": url}], database_dir=database
        ) as after:
            started = time.monotonic()
            samples: list[tuple[float, dict[str, dict[str, Any]]]] = []

            def switched() -> bool:
                ingested = after.ingested()
                samples.append((time.monotonic() - started, ingested))
                component = ingested.get(COMPONENT)
                return (
                    set(ingested) == served
                    and component is not None
                    and component["spec"]["system"] == "container-registry"
                )

            eventually(switched, 180, "the URL location's entities to replace the old file's")
            # The whole log of this run: a conflict at any time is a failure, not only a late one.
            log = after.log_text()

    # Never an orphan: the old location's entities were deleted with it, not left behind.
    orphans = {
        ref
        for _, ingested in samples
        for ref, entity in ingested.items()
        if (entity["metadata"].get("annotations") or {}).get(ORPHAN)
    }
    assert not orphans, orphans
    final = samples[-1][1]
    assert "resource:default/alpha-api" not in final
    assert "resource:default/retired-repo" not in final
    # The surviving ref now belongs to the new location alone.
    annotations = final[COMPONENT]["metadata"]["annotations"]
    assert annotations["backstage.io/managed-by-location"] == f"url:{url}"
    assert "conflicting entityRef" not in log
    absent = [t for t, ingested in samples if COMPONENT not in ingested]
    print(
        f"switched after {samples[-1][0]:.1f} s; {COMPONENT} absent for "
        f"{len(absent)} of {len(samples)} one-second samples"
    )


# Another team's catalog file, which stays: a Component that depends on the repository by the
# name the old file gave it, and the System the registry belongs to, defined there.
ELSEWHERE = """\
apiVersion: backstage.io/v1alpha1
kind: Component
metadata: {name: checkout}
spec:
  type: service
  lifecycle: production
  owner: team-shop
  system: audio-playback
  dependsOn: [resource:default/alpha-api]
---
apiVersion: backstage.io/v1alpha1
kind: System
metadata: {name: audio-playback}
spec: {owner: team-media, domain: media}
---
apiVersion: backstage.io/v1alpha1
kind: Domain
metadata: {name: media}
spec: {owner: team-media}
"""
CHECKOUT = "component:default/checkout"
ALPHA = "resource:default/alpha-api"


def _relations(entity: dict[str, Any] | None) -> set[tuple[str, str]]:
    return {(r["type"], r["targetRef"]) for r in (entity or {}).get("relations", [])}


def test_a_ref_another_file_uses_survives_the_switch_with_the_names_names_from_prints(
    moto: MotoServer, tmp_path: Path
) -> None:
    """The guide's migration, names included: names-from on the old file, its output in the
    config, the System left to the catalog file that defines it, and the location switched.
    Another file's dependsOn: resource:default/alpha-api never dangles."""
    seed_registry(
        moto.url,
        [
            DemoRepository(name="alpha/api", region="us-east-1", tags={"owner": "alpha"}),
            DemoRepository(name="beta/web", region="us-east-1"),
        ],
    )
    aws = {
        "endpoint_url": moto.url,
        "targets": [{"regions": ["us-east-1"], "account_id": DEMO_ACCOUNT}],
    }
    old_file = tmp_path / "ecr-registry.yaml"
    old_file.write_text((GOLDEN / "ecr-registry.old.yaml").read_text(), encoding="utf-8")
    elsewhere = tmp_path / "shop.yaml"
    elsewhere.write_text(ELSEWHERE, encoding="utf-8")
    config = tmp_path / "names-config.yaml"
    config.write_text(yaml.safe_dump({"aws": aws}), encoding="utf-8")
    printed = subprocess.run(
        [sys.executable, "-m", "service.cli", "names-from", str(old_file), "--config", str(config)],
        env=command_env(),
        capture_output=True,
        timeout=120,
        check=True,
    )
    names = yaml.safe_load(printed.stdout)["catalog"]["names"]
    assert names == {f"arn:aws:ecr:us-east-1:{DEMO_ACCOUNT}:repository/alpha/api": "alpha-api"}
    settings = {
        "aws": aws,
        "catalog": {"names": names, "system": "audio-playback", "emit_system": False},
        "refresh": {"interval_seconds": 5},
    }
    database = tmp_path / "db"
    database.mkdir()
    file_locations = [
        {"type": "file", "target": str(old_file)},
        {"type": "file", "target": str(elsewhere)},
    ]
    with running_service(tmp_path / "service", settings) as service:
        served = set(service.served())
        assert ALPHA in served and "system:default/audio-playback" not in served
        url = f"http://localhost:{service.port}/entities.yaml"
        with running_backstage(
            tmp_path, service, "", locations=file_locations, database_dir=database
        ) as before:
            eventually(
                lambda: ("dependencyOf", CHECKOUT) in _relations(before.entity(ALPHA)),
                120,
                "the old file and the shop's file ingested and related",
            )
        with running_backstage(
            tmp_path,
            service,
            "",
            locations=[file_locations[1], {"type": "url", "target": url}],
            database_dir=database,
        ) as after:

            def switched() -> dict[str, Any] | None:
                alpha = after.entity(ALPHA)
                managed = (alpha or {}).get("metadata", {}).get("annotations", {})
                if managed.get("backstage.io/managed-by-location") != f"url:{url}":
                    return None
                if after.entity("resource:default/retired-repo") is not None:
                    return None
                return alpha

            alpha = eventually(switched, 180, "alpha-api served by the URL location")
            checkout = after.entity(CHECKOUT)
            component = after.entity(COMPONENT)
            ingested = after.ingested()
            log = after.log_text()

    # Both ends of the relation hold: the Component's dependsOn and the Resource's dependencyOf.
    assert ("dependsOn", ALPHA) in _relations(checkout)
    assert ("dependencyOf", CHECKOUT) in _relations(alpha)
    assert alpha["metadata"]["annotations"]["amazonaws.com/arn"].endswith("repository/alpha/api")
    # No ref the shop's file uses dangles (its owners are groups no file here defines).
    for kind, target in _relations(checkout):
        assert kind == "ownedBy" or target in ingested, target
    # The System comes from the shop's file alone, and the registry still belongs to it.
    assert ("partOf", "system:default/audio-playback") in _relations(component)
    system = ingested["system:default/audio-playback"]
    assert system["metadata"]["annotations"]["backstage.io/managed-by-location"] == (
        f"file:{elsewhere}"
    )
    assert "domain:default/delivery" in ingested
    assert "conflicting entityRef" not in log
