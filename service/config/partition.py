"""The ``partition`` section: which part of the fleet this process reads and serves.

A fleet of N processes (a StatefulSet's pods) splits the sources between them; each process is
told N and its own index, or takes the index from its host name's ordinal, as a StatefulSet
names its pods (``ecr-catalog-2`` is index 2).
"""

from __future__ import annotations

import os
import re
import socket
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator

from ..errors import ConfigError
from .base import Strict, check_url

__all__ = ["MAX_PARTITIONS", "PartitionSettings", "host_name", "ordinal_of", "partition_url"]

# More partitions than this is a typo, not a fleet: each one is a process of its own.
MAX_PARTITIONS = 1024
INDEX_PLACEHOLDER = "{index}"
# A StatefulSet's pod name: the set's name, a hyphen, and the ordinal.
_ORDINAL = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?-(0|[1-9][0-9]{0,5})$")


def ordinal_of(hostname: str) -> int | None:
    """The ordinal a StatefulSet pod's host name ends in (``ecr-catalog-2`` → 2); else None.

    Only the first label of a fully qualified name counts, as a pod's host name is its own.
    """
    found = _ORDINAL.fullmatch(hostname.split(".", 1)[0].lower())
    return None if found is None else int(found.group(2))


def partition_url(template: str, index: int) -> str:
    """Where partition ``index`` is reached: ``template`` with ``{index}`` replaced, no slash
    at the end. A plain replacement, never ``str.format``: the template is configuration."""
    return template.replace(INDEX_PLACEHOLDER, str(index)).rstrip("/")


def host_name() -> str:
    """This host's name: ``HOSTNAME``, which Kubernetes sets to the pod's name in every
    container, else the system's."""
    return os.environ.get("HOSTNAME") or socket.gethostname()


class PartitionSettings(Strict):
    """This process's part of a fleet of ``count`` (docs/partitions.md)."""

    count: int = Field(default=1, ge=1, le=MAX_PARTITIONS)
    """The StatefulSet's replicas; 1 is a single process that reads and serves everything."""
    index: int | None = Field(default=None, ge=0)
    """This process's index in ``0..count-1``; unset: the ordinal of the host name
    (``ecr-catalog-2`` is 2)."""
    url_template: str | None = Field(default=None, max_length=2048)
    """How partition i is reached by Backstage, with ``{index}`` for i, e.g.
    ``http://ecr-catalog-{index}.ecr-catalog-headless.ecr-catalog.svc.cluster.local:8080``.
    Required when ``count`` is over 1."""
    # The sources' Locations are named at it, so that their URLs, and with them Backstage's
    # ownership of their entities, never change with the count.
    fleet_url: str | None = Field(default=None, max_length=2048)
    """The URL that reaches any partition (a Service over every pod of the StatefulSet); a
    partition redirects to the owner what another serves. None: partition 0's URL."""

    @field_validator("url_template")
    @classmethod
    def _is_a_url_template(cls, template: str | None) -> str | None:
        if template is None:
            return None
        what = "partition.url_template"
        if INDEX_PLACEHOLDER not in template:
            raise ValueError(f"{what} must hold {INDEX_PLACEHOLDER}, where each index goes")
        if any(c in template.replace(INDEX_PLACEHOLDER, "") for c in "{}"):
            raise ValueError(f"{what} may hold no placeholder but {INDEX_PLACEHOLDER}")
        example = partition_url(template, 0)
        check_url(example, what)
        parts = urlsplit(example)
        if parts.query or parts.fragment or "@" in parts.netloc:
            raise ValueError(f"{what} must be a plain URL: no query, fragment or credentials")
        return template

    @field_validator("fleet_url")
    @classmethod
    def _is_a_plain_url(cls, url: str | None) -> str | None:
        if url is None:
            return None
        what = "partition.fleet_url"
        parts = urlsplit(check_url(url, what))
        if parts.query or parts.fragment or "@" in parts.netloc:
            raise ValueError(f"{what} must be a plain URL: no query, fragment or credentials")
        return url.rstrip("/")

    @model_validator(mode="after")
    def _index_in_range(self) -> PartitionSettings:
        if self.index is not None and self.index >= self.count:
            raise ValueError(
                f"partition.index {self.index} is outside 0..{self.count - 1} "
                f"for partition.count {self.count}"
            )
        if self.count > 1 and self.url_template is None:
            # Partition 0's root Location names every partition's URL.
            raise ValueError(
                "partition.url_template is required when partition.count is more than 1, "
                "e.g. http://ecr-catalog-{index}.ecr-catalog-headless.ecr-catalog.svc.cluster.local"
            )
        return self

    @property
    def own_index(self) -> int:
        """This process's index: the one given, else the ordinal of the host name.

        Asked by ``serve`` only: the other commands read every source as one process, so a
        fleet's configuration works for them on any host. Raises ConfigError when the host
        name gives no index in ``0..count-1``.
        """
        if self.index is not None:
            return self.index
        if self.count == 1:
            return 0
        hostname = host_name()
        ordinal = ordinal_of(hostname)
        if ordinal is None:
            raise ConfigError(
                f"partition.index is not set and the host name {hostname!r} ends in no ordinal "
                "(as a StatefulSet's pod ecr-catalog-2 does): set partition.index "
                "(ECR_CATALOG_PARTITION__INDEX)"
            )
        if ordinal >= self.count:
            raise ConfigError(
                f"the host name {hostname!r} gives partition index {ordinal}, outside "
                f"0..{self.count - 1} for partition.count {self.count}: set partition.count to "
                "the StatefulSet's replicas"
            )
        return ordinal
