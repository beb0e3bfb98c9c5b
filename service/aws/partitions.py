"""The AWS partition of a region: its name and DNS suffix from botocore's data, its console host.

botocore ships the partitions (``aws``, ``aws-cn``, ``aws-us-gov``, the ISO and sovereign ones)
with their regions, region patterns and DNS suffixes, and updates them with every release: a
region added there is known here without a change. The console's host is not in that data; the
three partitions with a public console are listed below (see docs/networks.md, "Partitions"), and
entities of any other partition simply carry no console links.
"""

from __future__ import annotations

import functools
import logging
from typing import Any

import botocore
import botocore.session
from botocore.exceptions import UnknownRegionError

from ..config.regions import KnownRegions
from ..model import Partition

__all__ = ["CONSOLE_HOSTS", "home_region", "known_regions", "partition_names", "partition_of"]

log = logging.getLogger(__name__)

CONSOLE_HOSTS = {
    "aws": "console.aws.amazon.com",
    "aws-cn": "console.amazonaws.cn",
    "aws-us-gov": "console.amazonaws-us-gov.com",
}
# What botocore itself assumes of a region it does not know.
DEFAULT_PARTITION = "aws"


@functools.cache
def _partition_data() -> list[dict[str, Any]]:
    data = botocore.session.get_session().get_data("partitions")
    return list(data["partitions"])


def _partitions() -> dict[str, dict[str, Any]]:
    return {entry["id"]: entry["outputs"] for entry in _partition_data()}


@functools.cache
def known_regions() -> KnownRegions:
    """Every region the installed botocore knows, in every partition: those with an ECR
    endpoint, and those of the partitions' own lists (which may name a region before ECR's
    endpoint data does, such as eusc-de-east-1), without their ``*-global`` pseudo-regions."""
    session = botocore.session.get_session()
    names = {
        region
        for partition in session.get_available_partitions()
        for region in session.get_available_regions("ecr", partition_name=partition)
    }
    for entry in _partition_data():
        names.update(name for name in entry.get("regions", {}) if not name.endswith("-global"))
    return KnownRegions(frozenset(names), f"botocore {botocore.__version__}")


@functools.cache
def partition_of(region: str) -> Partition:
    """The partition ``region`` belongs to, by botocore's partition data."""
    try:
        name = botocore.session.get_session().get_partition_for_region(region)
    except UnknownRegionError:
        log.warning(
            "botocore knows no partition of %s; taking it for %s", region, DEFAULT_PARTITION
        )
        name = DEFAULT_PARTITION
    outputs = _partitions()[name]
    return Partition(
        name=name, dns_suffix=str(outputs["dnsSuffix"]), console_host=CONSOLE_HOSTS.get(name)
    )


def partition_names() -> list[str]:
    """Every partition botocore knows."""
    return sorted(_partitions())


def home_region(partition: str) -> str:
    """The partition's own region for global services; raises ValueError for an unknown one."""
    outputs = _partitions().get(partition)
    if outputs is None:
        raise ValueError(f"unknown partition {partition!r}: one of {', '.join(partition_names())}")
    return str(outputs["implicitGlobalRegion"])
