"""Each source's catalog, kept while its inputs are equal, and the snapshot they assemble.

Reuse is equality: a source whose SourceInputs equal the last ones keeps its SourceCatalog, and
a snapshot whose Assembly equals the last one is that snapshot. Most refreshes find nothing
new, so most build nothing. CPU work: the store runs ``build`` in a worker thread.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

from ..catalog.claims import ClaimIndex
from ..catalog.entities import core_refs
from ..catalog.inputs import SourceInputs
from ..catalog.naming import entity_name, registry_entity_name
from ..config import CatalogSettings, PostureSettings
from ..model import SourceId, SourceRecords
from ..reading import SourceListing
from .build import Assembly, assemble
from .source import SourceCatalog, build_source
from .types import Snapshot

__all__ = ["Catalogs"]


class _OwnRefs:
    """Whether a ref names one of the service's own entities, which never claim (no feedback
    loop). The names of every repository are worked out only if a claimer could be one."""

    def __init__(self, settings: CatalogSettings, records: Mapping[SourceId, SourceRecords]):
        self._settings = settings
        self._records = records
        self._refs: frozenset[str] | None = None

    def __call__(self, ref: str) -> bool:
        if self._refs is None:
            namespace, settings = self._settings.namespace, self._settings
            # A Domain or System defined elsewhere (not emitted) is not the service's own.
            refs = core_refs(settings)
            configured = settings.names
            for source, records in self._records.items():
                names = [registry_entity_name(source)]
                names += [
                    entity_name(source, repo.name, repo.arn, configured)
                    for repo in records.repositories
                ]
                refs.update(f"resource:{namespace}/{name}".lower() for name in names)
            self._refs = frozenset(refs)
        return ref in self._refs


class Catalogs:
    """The last catalog of each source and the last snapshot, with what they were built from."""

    def __init__(self) -> None:
        self._kept: dict[SourceId, SourceCatalog] = {}
        self._last: tuple[Assembly, Snapshot] | None = None

    @staticmethod
    def inputs(
        records: Mapping[SourceId, SourceRecords],
        settings: CatalogSettings,
        *,
        stale_since: Mapping[SourceId, datetime],
        claims: ClaimIndex,
        posture: PostureSettings | None,
        built_at: datetime,
    ) -> dict[SourceId, SourceInputs]:
        """The inputs of every source with records."""
        is_own = _OwnRefs(settings, records)
        # Judged on the build's day (UTC), so replicas agree all day long; a new day is a new
        # input, since it may make a repository stale.
        day = built_at.astimezone(UTC).date()
        return {
            source: SourceInputs.of(
                one,
                settings,
                stale_since=stale_since.get(source),
                claims=claims,
                is_own=is_own,
                posture=None if posture is None else (posture, day),
            )
            for source, one in sorted(records.items())
        }

    def build(
        self,
        listing: SourceListing,
        inputs: Mapping[SourceId, SourceInputs],
        settings: CatalogSettings,
        built_at: datetime,
        *,
        errors: Mapping[SourceId, str],
        refuse_any_rejection: bool = False,
    ) -> Snapshot:
        """The snapshot of these inputs; raises SnapshotRefused (build.assemble)."""
        catalogs = []
        for source, one in sorted(inputs.items()):
            kept = self._kept.get(source)
            catalogs.append(kept if kept is not None and kept.inputs == one else build_source(one))
        assembly = Assembly(
            listing,
            settings,
            tuple(catalogs),
            tuple(sorted((s, e) for s, e in errors.items() if s not in inputs)),
            refuse_any_rejection,
        )
        # Kept whatever the assembly says: each is a function of its inputs alone.
        self._kept = {catalog.source: catalog for catalog in catalogs}
        if self._last is not None and self._last[0] == assembly:
            return self._last[1]
        snapshot = assemble(assembly, built_at)
        self._last = (assembly, snapshot)
        return snapshot
