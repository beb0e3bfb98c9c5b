"""The way back to Backstage: refresh requests after a change, and claims
(docs/backstage-both-ways.md). Both run in tasks of their own; neither is ever waited on by a
publish or a request, and a Backstage that is slow, failing or unreachable only shows on /readyz
and in the metrics."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from ..catalog.claims import ClaimIndex
from ..config import Settings
from ..snapshot.status import RefreshOutcome
from ..snapshot.types import Snapshot
from .claims import ClaimsReader
from .client import BackstageClient
from .push import RefreshPusher

__all__ = ["BackstageLink", "connected"]


@dataclass
class BackstageLink:
    """The pusher and the claims reader of one app: the store's Peer (snapshot.peers)."""

    base_url: str
    pusher: RefreshPusher
    reader: ClaimsReader

    def published(self, outcome: RefreshOutcome, snapshot: Snapshot | None) -> None:
        """A refresh ended: the pusher notes what changed, the reader what its claims did."""
        self.reader.snapshot = snapshot
        self.pusher.changed(outcome)

    def claims(self) -> ClaimIndex:
        return self.reader.claims

    def as_dict(self) -> dict[str, Any]:
        """As /readyz shows it."""
        return {
            "base_url": self.base_url,
            "refresh": self.pusher.as_dict(),
            "claims": self.reader.as_dict(),
        }


@asynccontextmanager
async def connected(
    settings: Settings,
    on_claims_changed: Callable[[], None],
    on_refresh_outcome: Callable[[str], None],
    on_claims_outcome: Callable[[str], None],
) -> AsyncIterator[BackstageLink | None]:
    """The link for the life of the app, or None while ``backstage.base_url`` is unset.

    The saved claims are loaded before this yields, so the first snapshot is built with them;
    a change of claims calls ``on_claims_changed`` (the store's ``claims_changed``).
    """
    if settings.backstage.base_url is None:
        yield None
        return
    client = BackstageClient(settings.backstage)
    link = BackstageLink(
        settings.backstage.base_url,
        RefreshPusher(client, settings.backstage, settings.catalog, on_outcome=on_refresh_outcome),
        ClaimsReader(
            client,
            settings.backstage,
            settings.catalog.annotation_prefix,
            settings.state_dir,
            on_outcome=on_claims_outcome,
            on_change=on_claims_changed,
        ),
    )
    link.reader.load()
    tasks = [
        asyncio.create_task(link.pusher.run(), name="ecr-catalog-backstage-push"),
        asyncio.create_task(link.reader.run(), name="ecr-catalog-backstage-claims"),
    ]
    try:
        yield link
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await client.aclose()
