"""A real Backstage configured with partition 0's root Location only, over a fleet of
partitions: it ingests every entity with no error; then the fleet goes from 2 partitions to 3,
and Backstage ends with every entity, each moved source listed by its new partition's root, no
entity ever changing the URL it comes from, and no conflict once it has settled. How long each
entity was missing during the move is measured and printed.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import yaml

from service.model import SourceId
from service.ownership import owner_of

from ...support import (
    ServiceProcess,
    free_port,
    spawn_service,
    start_fake_ecr,
    stop_process,
    wait_healthy_sources,
)
from .harness import Backstage, Service, eventually, ref_of, running_backstage

pytestmark = pytest.mark.backstage

MANAGEMENT = "123456789012"
MEMBERS = [f"{100_000_000_000 + n}" for n in range(1, 5)]
REGIONS = ["us-east-1", "eu-west-1", "us-west-2"]
SOURCES = sorted(SourceId(account, region) for account in MEMBERS for region in REGIONS)
# Backstage's orphan cleanup runs every 30 s; with a 5 s processing interval, a move settles
# within a minute or two.
SETTLE_SECONDS = 45
CONFLICT = "conflicting entityRef"


def host(index: int) -> str:
    return f"127.0.0.1{index}"


@dataclass
class Fleet:
    tmp: Path
    fake_url: str
    port: int
    processes: dict[int, ServiceProcess] = field(default_factory=dict)
    # partition.fleet_url: None is partition 0's URL.
    fleet_url: str | None = None

    @property
    def template(self) -> str:
        return f"http://127.0.0.1{{index}}:{self.port}"

    def start(self, count: int, indexes: list[int]) -> None:
        """Partitions ``indexes`` of ``count``, each with its own state directory."""
        for index in indexes:
            config = {
                "aws": {
                    "endpoint_url": self.fake_url,
                    "total_max_attempts": 2,
                    "organization": {
                        "role_name": "ecr-catalog-reader",
                        "regions": REGIONS,
                        "exclude_accounts": [MANAGEMENT],
                    },
                },
                "refresh": {"interval_seconds": 5, "initial_retry_seconds": 0.5},
                "state_dir": str(self.tmp / f"state-{index}"),
                "partition": {
                    "count": count,
                    "index": index,
                    "url_template": self.template,
                    "fleet_url": self.fleet_url,
                },
            }
            self.processes[index] = spawn_service(
                self.tmp / f"partition-{index}-of-{count}", config, host=host(index), port=self.port
            )
        for index in indexes:
            wait_healthy_sources(self.processes[index].url, timeout=60)

    def stop(self) -> None:
        for process in self.processes.values():
            stop_process(process.process)
        self.processes.clear()

    def served(self) -> set[str]:
        """Every entity ref the partitions serve, Locations left out."""
        refs = set()
        for index, process in self.processes.items():
            url = f"{process.url}/partitions/{index}/entities.yaml"
            items = [d for d in yaml.safe_load_all(httpx.get(url, timeout=10).text) if d]
            refs |= {ref_of(entity) for entity in items}
        return refs


@pytest.fixture
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    tmp = tmp_path_factory.mktemp("backstage-partitions")
    fake, url = start_fake_ecr(
        "--accounts", str(len(MEMBERS)), "--regions", "3", "--repositories", "6", "--images", "1"
    )
    fleet = Fleet(tmp, url, free_port())
    try:
        yield fleet
    finally:
        fleet.stop()
        stop_process(fake)


def source_of(ref: str) -> SourceId | None:
    """The source of a registry (``ecr-<account>-<region>``) or repository
    (``<name>.<region>.<account>``) Resource; None for the core."""
    for source in SOURCES:
        registry = f"resource:default/ecr-{source.account_id}-{source.region}"
        if ref == registry or ref.endswith(f".{source.region}.{source.account_id}"):
            return source
    return None


def processing_errors(backstage: Backstage) -> list[str]:
    """Every error Backstage keeps on an entity (a Location's failed read, a refused entity)."""
    return [
        f"{ref_of(entity)}: {item.get('message')}"
        for entity in backstage.entities()
        for item in entity.get("status", {}).get("items", [])
        if item.get("level") == "error"
    ]


class Watch(threading.Thread):
    """Polls Backstage and records, for each expected entity, how long it was missing."""

    def __init__(self, backstage: Backstage, expected: set[str]) -> None:
        super().__init__(daemon=True)
        self.backstage, self.expected = backstage, expected
        self.missing_since: dict[str, float] = {}
        self.longest: dict[str, float] = {}
        self.polls = 0
        self.halt = threading.Event()

    def run(self) -> None:
        while not self.halt.is_set():
            try:
                present = set(self.backstage.ingested())
            except httpx.HTTPError:
                continue
            now = time.monotonic()
            self.polls += 1
            for ref in self.expected:
                if ref not in present:
                    self.missing_since.setdefault(ref, now)
                elif ref in self.missing_since:
                    gap = now - self.missing_since.pop(ref)
                    self.longest[ref] = max(gap, self.longest.get(ref, 0.0))
            time.sleep(0.25)

    def stop(self) -> dict[str, float]:
        self.halt.set()
        self.join(timeout=30)
        now = time.monotonic()
        still = {ref: now - since for ref, since in self.missing_since.items()}
        return {**self.longest, **still}


def origins(backstage: Backstage) -> dict[str, str]:
    """The URL each entity came from (Locations included): Backstage's owner of its ref."""
    return {
        ref_of(entity): entity["metadata"]["annotations"]["backstage.io/managed-by-location"]
        for entity in backstage.entities()
    }


def everything_without_errors(
    backstage: Backstage,
    expected: set[str],
    what: str,
    placed: Callable[[], bool] = lambda: True,
) -> None:
    def done() -> bool:
        present = expected <= set(backstage.ingested())
        return present and not processing_errors(backstage) and placed()

    try:
        eventually(done, 240, what)
    except AssertionError:
        missing = sorted(expected - set(backstage.ingested()))
        raise AssertionError(
            f"{what}: missing {missing}; errors {processing_errors(backstage)}\n"
            f"{backstage.log_tail()}"
        ) from None


def move_to_three(fleet: Fleet, order: str) -> None:
    """From 2 partitions to 3: ``together``, every pod restarted at once (as deleting them
    all does); ``rolling``, as a StatefulSet's rolling update does it: the new pod first, then
    each old one in reverse order, each once the one before is ready."""
    if order == "together":
        fleet.stop()
        fleet.start(3, [2, 1, 0])
        return
    fleet.start(3, [2])
    for index in (1, 0):
        stop_process(fleet.processes.pop(index).process)
        fleet.start(3, [index])


@pytest.mark.parametrize(
    ("order", "entry"),
    [
        ("together", 0),
        ("rolling", 0),
        # As through a Service that picked partition 1: fleet_url and Backstage's one location
        # name partition 1, which redirects the root and the core to partition 0.
        ("together", 1),
    ],
)
def test_partition_0s_root_alone_ingests_every_entity_and_survives_going_to_three(
    fleet: Fleet, tmp_path: Path, order: str, entry: int
) -> None:
    entry_url = f"http://{host(entry)}:{fleet.port}"
    if entry:
        fleet.fleet_url = entry_url
    fleet.start(2, [0, 1])
    expected = fleet.served()
    assert len(expected) == 3 + 12 + 24
    with running_backstage(
        tmp_path,
        Service(entry_url, fleet.port),
        "/catalog-info.yaml",
        locations=[{"type": "url", "target": f"{entry_url}/catalog-info.yaml"}],
        allow=[f"{host(index)}:{fleet.port}" for index in range(3)],
    ) as backstage:
        everything_without_errors(backstage, expected, "Backstage to ingest the 2 partitions")
        assert set(backstage.ingested()) == expected
        moved = {s for s in SOURCES if owner_of(s, 3) == 2}
        assert moved and all(owner_of(s, 2) != 2 for s in moved)

        # 2 -> 3: every partition restarts with count 3 (the old ones on their own volumes).
        before = origins(backstage)
        watch = Watch(backstage, expected)
        watch.start()
        moving_at = time.monotonic()
        move_to_three(fleet, order)
        assert fleet.served() == expected
        # Settled: Backstage has read partition 0's new root, and partition 2's, and every
        # entity is there with no error on any Location.
        everything_without_errors(
            backstage,
            expected,
            "Backstage to settle on 3 partitions",
            lambda: backstage.entity("location:default/ecr-catalog-partition-2") is not None,
        )
        settled_at = time.monotonic()
        log_before = backstage.log_text()
        time.sleep(SETTLE_SECONDS)
        gaps = watch.stop()
        after = backstage.log_text()[len(log_before) :]

        assert set(backstage.ingested()) == expected
        assert not processing_errors(backstage)
        assert CONFLICT not in after, after[-3000:]
        # A source's URLs do not depend on its owner: every entity, the moved sources'
        # included, still comes from the URL it came from before the move.
        now = origins(backstage)
        assert {r: now[r] for r in expected} == {r: before[r] for r in expected}
        moved_refs = {ref for ref in expected if source_of(ref) in moved}
        longest = max(gaps.values(), default=0.0)
        worst = sorted(((round(g, 1), r) for r, g in gaps.items()), reverse=True)[:3]
        print(
            f"\n2 -> 3 partitions ({order}, Backstage reading partition {entry}): settled "
            f"{settled_at - moving_at:.1f} s after the restart; "
            f"{len(gaps)} of {len(expected)} entities were missing at some point, "
            f"{len(set(gaps) & moved_refs)} of the {len(moved_refs)} of moved sources; the "
            f"longest for {longest:.1f} s ({watch.polls} polls); the longest three: {worst}"
        )
