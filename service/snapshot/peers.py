"""What the store tells and asks of the way back to Backstage, declared beside the store.

The store knows no pusher and no claims reader (service.backstage), only this: it reports
each refresh to a Peer, and asks it for the claims at each build. Neither side holds the
other; a Peer that wants a build with new claims calls the callback it was given.
"""

from __future__ import annotations

from typing import Protocol

from ..catalog.claims import ClaimIndex
from .status import RefreshOutcome
from .types import Snapshot

__all__ = ["Peer"]


class Peer(Protocol):
    """Subscribes to "published" and provides "claims"."""

    def published(self, outcome: RefreshOutcome, snapshot: Snapshot | None) -> None:
        """A refresh ended (``outcome``); ``snapshot`` is the one served now. Never blocks."""

    def claims(self) -> ClaimIndex:
        """The Backstage entities that claim repositories, as last read."""
