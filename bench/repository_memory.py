"""Peak memory of reading one repository of 50,000 images, above the reader's baseline.

``python -m bench.repository_memory [--hold]``: the fake ECR answers real-sized pages (1,000
image details of ~700 bytes of JSON each, several tags and a scan summary). The reader first
reads a region of one 1,000-image repository (one full page: the baseline, with every code
path warm), then the region of the 50,000-image one. ``--hold`` keeps every page before
summarising, as the reader did before it summarised page by page, for comparison.
Prints one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path
from typing import Any

from service.aws.answers import ImageSummariser
from service.aws.reader import AwsEcrReader
from service.config import Settings
from service.reading import StaticCredentials
from tests.faults.fake_ecr import REGION_NAMES
from tests.support import start_fake_ecr, stop_process

IMAGES = 50_000


def peak_rss() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM")


async def measure(url: str, hold: bool) -> dict[str, Any]:
    regions = REGION_NAMES[:2]
    settings = Settings(
        aws={
            "endpoint_url": url,
            "targets": [{"regions": regions, "account_id": "123456789012"}],
        }
    )
    async with AwsEcrReader.open(
        settings.aws, settings.cache, StaticCredentials("x", "y")
    ) as reader:
        first, second = sorted((await reader.list_sources()).sources, key=lambda s: s.region)
        small, huge = (second, first) if first.region == regions[0] else (first, second)
        await reader.read_source(small)
        baseline = peak_rss()
        if hold:
            # The comparison needs the raw pages, which only the reader's region client has.
            region = reader._regions[huge]
            held = [
                page
                async for page in region.pages(
                    "describe_images", "imageDetails", repositoryName="huge/ci-builds"
                )
            ]
            summariser = ImageSummariser()
            for page in held:
                summariser.add(page)
            count = summariser.summary().image_count
        else:
            records = await reader.read_source(huge)
            count = max(r.images.image_count for r in records.repositories)
        after = peak_rss()
    return {
        "images": count,
        "baseline_mb": baseline / 1e6,
        "peak_mb": after / 1e6,
        "above_baseline_mb": (after - baseline) / 1e6,
        "held_pages": hold,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hold", action="store_true", help="hold every page (the old way)")
    args = parser.parse_args()
    fake, url = start_fake_ecr(
        "--regions",
        "2",
        "--repositories",
        "2",
        "--images",
        "1000",
        "--huge-repository",
        str(IMAGES),
    )
    try:
        print(json.dumps(asyncio.run(measure(url, args.hold))))
    finally:
        stop_process(fake)


if __name__ == "__main__":
    main()
