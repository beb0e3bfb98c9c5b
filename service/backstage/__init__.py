"""The way back to Backstage: refresh requests after a change, and claims (README, "Connected to
Backstage both ways"). Both run in tasks of their own; neither is ever waited on by a publish
or a request, and a Backstage that is slow, failing or unreachable only shows on /readyz and in
the metrics."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from ..config import Settings
from ..snapshot.store import SnapshotStore
from .claims import ClaimsReader
from .client import BackstageClient
from .push import RefreshPusher

__all__ = ["BackstageLink", "connected"]


@dataclass
class BackstageLink:
    """The pusher and the claims reader of one app."""

    base_url: str
    pusher: RefreshPusher
    claims: ClaimsReader

    def as_dict(self) -> dict[str, Any]:
        """As /readyz shows it."""
        return {
            "base_url": self.base_url,
            "refresh": self.pusher.as_dict(),
            "claims": self.claims.as_dict(),
        }


@asynccontextmanager
async def connected(
    settings: Settings,
    store: SnapshotStore,
    on_refresh_outcome: Callable[[str], None],
    on_claims_outcome: Callable[[str], None],
) -> AsyncIterator[BackstageLink | None]:
    """The link for the life of the app, or None while ``backstage.base_url`` is unset.

    The saved claims are loaded before this yields, so the first snapshot is built with them.
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
            store,
            settings.state_dir,
            on_outcome=on_claims_outcome,
        ),
    )
    link.claims.load()
    tasks = [
        asyncio.create_task(link.pusher.run(), name="ecr-catalog-backstage-push"),
        asyncio.create_task(link.claims.run(), name="ecr-catalog-backstage-claims"),
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
