"""A partition's reader: lists every source of the fleet, and reads only its own.

It wraps the reader of the whole configuration (``service.aws``), so that every partition
lists the same sources (the configured targets, and the organisation's accounts from its own
discovery) and decides alone, by rendezvous hashing, which of them are its to read.
"""

from __future__ import annotations

from dataclasses import replace

from ..model import SourceId, SourceRecords
from ..ownership import FleetSources, Partitioning
from ..reading import EcrReader, SourceListing

__all__ = ["OwnedSources"]


class OwnedSources:
    """An EcrReader that lists only this partition's sources, with the fleet's beside them."""

    def __init__(self, reader: EcrReader, partitioning: Partitioning) -> None:
        self._reader = reader
        self.partitioning = partitioning

    async def list_sources(self, rediscover: bool = False) -> SourceListing:
        listing = await self._reader.list_sources(rediscover=rediscover)
        partitioning = self.partitioning
        return replace(
            listing,
            sources=partitioning.own(listing.sources),
            refused=tuple((s, why) for s, why in listing.refused if partitioning.owns(s)),
            fleet=FleetSources(partitioning, listing.sources),
        )

    async def read_source(self, source: SourceId) -> SourceRecords:
        return await self._reader.read_source(source)

    async def forget_images(self, source: SourceId, repository: str) -> bool:
        # An event about another partition's source: not ours to read again.
        if not self.partitioning.owns(source):
            return False
        return await self._reader.forget_images(source, repository)
