"""The migration guide's switch, done to a real Backstage: from the committed file to the URL
location in one config change, with nothing left orphaned and nothing owned by two locations.

Backstage first ingests the old committed file (tests/golden/ecr-registry.old.yaml, the sync
script's shape) from a `type: file` location, then restarts on the same database with that
location replaced by ecr-catalog's URL, as a deploy of the new app-config would. On the way it
shows what the guide warns against: both locations at once make every shared ref conflict.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from service.demo import DEMO_ACCOUNT, DemoRepository, seed_registry

from ...support import GOLDEN, MotoServer
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
