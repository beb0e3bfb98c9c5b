"""Claims: read, every ``interval_seconds``, the Backstage entities that claim repositories.

The read goes through Backstage's catalog API (``/entities/by-query``, filtered on the claim
annotations, page by page); what it finds replaces the store's claims only when every page
was read, so a Backstage outage or a failed page keeps the last claims. The claims are saved in
``state_dir`` (``backstage/claims.json``), so a restart while Backstage is down builds the same
catalog. The service's own entities carry a claim annotation themselves and are left out.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, TypeAdapter, ValidationError

from ..catalog.claims import (
    Claimer,
    ClaimIndex,
    claim_filters,
    claimer_of,
    claimer_problems,
    is_own_entity,
)
from ..catalog.entities import FOREIGN_ANNOTATIONS
from ..config import BackstageSettings
from ..errors import BackstageError
from ..instants import iso, time_problem
from ..model import STRICT
from ..snapshot.types import Snapshot
from ..statefiles import load_state_file, validation_problems, write_atomically
from .client import BackstageClient

__all__ = ["CLAIMS_FILE", "ClaimsReader", "claims_from_json", "claims_to_json"]

log = logging.getLogger(__name__)

CLAIMS_FILE = Path("backstage") / "claims.json"
# The most conflicts /readyz lists (the count is always whole).
LISTED = 100


@dataclass(frozen=True)
class _ClaimsFile:
    __pydantic_config__ = STRICT

    format: Annotated[int, Field(ge=1, le=1)]
    read_at: str
    claimers: tuple[Claimer, ...]


_CLAIMS_FILE = TypeAdapter(_ClaimsFile)


def claims_to_json(claims: ClaimIndex, read_at: datetime) -> bytes:
    return _CLAIMS_FILE.dump_json(
        _ClaimsFile(format=1, read_at=read_at.isoformat(), claimers=claims.claimers)
    )


def claims_from_json(data: bytes) -> tuple[ClaimIndex, datetime]:
    """What claims_to_json wrote; ValueError for anything else."""
    try:
        document = _CLAIMS_FILE.validate_json(data)
        read_at = datetime.fromisoformat(document.read_at)
    except ValidationError as exc:
        raise ValueError(validation_problems(exc)) from None
    problem = time_problem(read_at)
    if problem is not None:
        raise ValueError(f"read_at {problem}")
    problems = [problem for claimer in document.claimers for problem in claimer_problems(claimer)]
    if problems:
        raise ValueError("; ".join(problems[:3]))
    return ClaimIndex.of(document.claimers), read_at


@dataclass
class ClaimsReader:
    """Reads the claims on the interval and keeps the last good ones; a change is told to
    ``on_change`` (the store's ``claims_changed``), which builds with them at once."""

    client: BackstageClient
    settings: BackstageSettings
    annotation_prefix: str
    state_dir: Path | None = None
    # Counts each read's outcome (metrics): ok, failed.
    on_outcome: Callable[[str], None] = field(default=lambda _outcome: None)
    on_change: Callable[[], None] = field(default=lambda: None)
    # The Backstage entities that claim repositories, as last read.
    claims: ClaimIndex = field(default_factory=ClaimIndex)
    # The snapshot served now (published), for what the claims did in it.
    snapshot: Snapshot | None = None
    read_at: datetime | None = None
    last_error: str | None = None
    last_attempt_at: datetime | None = None
    skipped: int = 0
    # Reads in a row that found no claim while claims were held (see read()).
    _empty_reads: int = 0

    @property
    def _file(self) -> Path | None:
        return self.state_dir / CLAIMS_FILE if self.state_dir else None

    def load(self) -> None:
        """The claims the last run saved, if any; an unreadable file is set aside."""
        file = self._file
        saved = None if file is None else load_state_file(file, "claims file", claims_from_json)
        if saved is None:
            return
        claims, read_at = saved
        self._set(claims)
        self.read_at = read_at
        log.info(
            "claims: %d claiming entities saved before, read at %s",
            len(claims.claimers),
            iso(read_at),
        )

    async def read(self) -> None:
        """Read every claiming entity; on any failure keep the last claims."""
        self.last_attempt_at = datetime.now(UTC)
        keys = self.settings.claims.annotations
        claimers: list[Claimer] = []
        skipped = 0
        try:
            async for page in self.client.entities_matching(
                claim_filters(keys, FOREIGN_ANNOTATIONS)
            ):
                for entity in page:
                    if not isinstance(entity, dict) or is_own_entity(
                        entity, self.annotation_prefix
                    ):
                        continue
                    claimer = claimer_of(entity, keys)
                    if claimer is None:
                        skipped += 1
                    else:
                        claimers.append(claimer)
        except BackstageError as exc:
            self.last_error = str(exc)
            self.on_outcome("failed")
            log.warning("reading the claims failed, keeping the last ones: %s", exc)
            return
        claims = ClaimIndex.of(claimers)
        if not claims and self.claims and self._empty_reads == 0:
            # Every claim gone at once is more often a Backstage being re-ingested, or a token
            # that may no longer read, than every team unclaiming: the next read must agree.
            self._empty_reads = 1
            self.last_error = (
                f"the read found no claiming entity; keeping the last "
                f"{len(self.claims.claimers)} until the next read agrees"
            )
            self.on_outcome("failed")
            log.warning("claims: %s", self.last_error)
            return
        self._empty_reads = 0
        self.read_at, self.last_error, self.skipped = datetime.now(UTC), None, skipped
        self.on_outcome("ok")
        if self._set(claims):
            log.info("claims changed: %d claiming entities", len(claims.claimers))
        if self._file is not None:
            await asyncio.to_thread(self._save, claims, self.read_at)

    def _set(self, claims: ClaimIndex) -> bool:
        """Keep ``claims``; whether they changed (and ``on_change`` was told)."""
        if claims == self.claims:
            return False
        self.claims = claims
        self.on_change()
        return True

    def _save(self, claims: ClaimIndex, read_at: datetime) -> None:
        assert self._file is not None
        try:
            write_atomically(self._file, claims_to_json(claims, read_at))
        except OSError as exc:
            log.error("cannot save the claims in %s: %s", self._file, exc)

    async def run(self) -> None:
        while True:
            try:
                await self.read()
            except Exception:
                log.exception("reading the claims failed unexpectedly")
            await asyncio.sleep(self.settings.claims.interval_seconds)

    def as_dict(self) -> dict[str, Any]:
        """As /readyz shows it."""
        snapshot = self.snapshot
        return {
            "claiming_entities": len(self.claims.claimers),
            "claimed_repositories": snapshot.claimed if snapshot else 0,
            "conflict_count": len(snapshot.claim_conflicts) if snapshot else 0,
            "conflicts": list(snapshot.claim_conflicts[:LISTED]) if snapshot else [],
            "read_at": iso(self.read_at),
            "last_attempt_at": iso(self.last_attempt_at),
            "last_error": self.last_error,
            "entities_without_usable_claim": self.skipped,
        }
