"""Start-up from saved data: what the last run saved is served, marked stale, until AWS answers.

A source whose saved data cannot be served any more is set aside, and start-up goes on without
it, as without a corrupt file (issue 18).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from ..errors import SnapshotRefused
from ..model import SourceId
from ..ownership import FleetSources, Partitioning
from ..reading import SourceListing
from .persist import StateDir
from .status import NOT_READ_SINCE_RESTART, SAVED_DATA_SET_ASIDE, SourceStatus

if TYPE_CHECKING:
    from .store import SnapshotStore

__all__ = ["serve_saved"]

log = logging.getLogger(__name__)


async def serve_saved(
    store: SnapshotStore, wanted: Callable[[SourceId], bool], fleet: Partitioning | None = None
) -> None:
    """Serve what the last run saved, marked stale, before AWS has answered anything.

    Only sources that are ``wanted`` (still configured) are loaded; see StateDir.load. A
    partition of a ``fleet`` does not know the fleet's other sources yet: what names them all
    waits for the first listing (snapshot.partitioned).
    """
    if store.state is None:
        return
    loaded = await store.kept.load(store.state, wanted)
    for source in loaded.unreadable:
        store.statuses[source] = SourceStatus(source, last_error=SAVED_DATA_SET_ASIDE)
    for records in loaded.records:
        store.statuses[records.source] = SourceStatus(
            records.source,
            last_success_at=records.read_at,
            last_error=NOT_READ_SINCE_RESTART,
            repositories=len(records.repositories),
        )
    if loaded.records:
        log.info("loaded saved data of %d source(s) from %s", len(loaded.records), store.state.path)
        await _publish_saved(store, store.state, set(loaded.unreadable), fleet)


async def _publish_saved(
    store: SnapshotStore, state: StateDir, unreadable: set[SourceId], fleet: Partitioning | None
) -> None:
    """Publish what was loaded; a source whose saved data is refused is set aside instead.

    A file can hold records of the right form whose values no entity may carry (edited by
    hand, say): an earlier run served every entity of what it saved, so a source with an
    entity that is refused now is set aside, and start-up goes on without it as without a
    corrupt file. Sources set aside stay listed, without data, so that until they are read
    again nothing is served as complete without their entities (which Backstage would then
    delete). A refusal that names no source is the settings' own (the Domain, System or
    Component), which every refresh will report too.
    """
    while store.kept.records:
        try:
            listed = tuple(sorted(set(store.kept.records) | unreadable))
            known = None if fleet is None else FleetSources(fleet, None)
            await store.publish(SourceListing(listed, fleet=known), refuse_any_rejection=True)
            return
        except SnapshotRefused as exc:
            blamed = [source for source in exc.sources if source in store.kept.records]
            reason: object = f"its data cannot be served: {exc}"
            if not blamed:
                log.error("the saved data cannot be served: %s", exc)
                return
        except Exception as exc:
            # Whatever else the saved data makes a build do, a crash loop would be worse.
            log.exception("building from the saved data failed; setting it all aside")
            blamed, reason = list(store.kept.records), f"building from it failed: {exc!r}"
        for source in blamed:
            del store.kept.records[source]
            store.statuses[source] = SourceStatus(source, last_error=SAVED_DATA_SET_ASIDE)
            unreadable.add(source)
            state.set_aside(source, reason)
