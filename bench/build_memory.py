"""RSS of a cold build of 10,000 repositories in one process, and of a rebuild over it.

``python -m bench.build_memory``: synthetic records (5 regions × 2,000 repositories, tags,
latest image, lifecycle policy), built as the service builds them. RSS, not tracemalloc:
memory freed into the allocator's arenas but not returned counts, as it does for the service.
"""

from __future__ import annotations

import gc
from datetime import UTC, datetime
from pathlib import Path

from service.config import CatalogSettings
from service.model import LatestImage, LifecyclePolicy, RegistryRecord, SourceId, SourceRecords
from service.reading import SourceListing
from service.snapshot.catalogs import Catalogs
from tests.catalog_build import build_snapshot
from tests.faults.fake_ecr import REGION_NAMES
from tests.records import AWS, repository


def rss() -> str:
    megabytes = {
        name: int(value.split()[0]) // 1024
        for name, value in (
            line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines()
        )
        if name in ("VmRSS", "VmHWM")
    }
    return f"RSS {megabytes['VmRSS']} MB, peak {megabytes['VmHWM']} MB"


def synthetic_records(regions: int, per_region: int) -> dict[SourceId, SourceRecords]:
    records = {}
    for region in REGION_NAMES[:regions]:
        source = SourceId("123456789012", region)
        repositories = tuple(
            repository(
                f"team-{index % 20}/svc-{index:05d}",
                region=region,
                tags={"owner": f"team-{index % 20}", "team": "a", "environment": "prod"},
                latest=LatestImage(
                    digest=f"sha256:{index:064d}",
                    tags=("v1", "latest"),
                    pushed_at=datetime(2026, 1, 1, tzinfo=UTC),
                    size_bytes=123,
                    finding_counts=(("HIGH", 1),),
                ),
                lifecycle=LifecyclePolicy(True, 2),
            )
            for index in range(per_region)
        )
        records[source] = SourceRecords(
            source, AWS, RegistryRecord(), repositories, datetime.now(UTC)
        )
    return records


def main() -> None:
    print(f"{'imports':<28}{rss()}")
    records = synthetic_records(5, 2000)
    listing = SourceListing(tuple(sorted(records)))
    gc.collect()
    print(f"{'records of 10,000':<28}{rss()}")
    catalogs = Catalogs()
    now = datetime.now(UTC)
    build_snapshot(listing, records, {}, CatalogSettings(), now, catalogs=catalogs)
    gc.collect()
    print(f"{'built':<28}{rss()}")
    build_snapshot(listing, records, {}, CatalogSettings(), now, catalogs=catalogs)
    gc.collect()
    print(f"{'rebuilt, nothing changed':<28}{rss()}")


if __name__ == "__main__":
    main()
