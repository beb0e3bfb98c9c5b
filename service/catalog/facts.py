"""The typed facts the transform learns about each entity, beside the entity itself. Pure.

Facts are values (STYLE.md, habit 18): the index the filters read, the posture verdicts, the
repairs and the claims travel from the transform to the snapshot, the pages and the metrics as
these fields, never as annotation strings to be parsed back. The annotations are rendered from
them (catalog.annotations).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..model import Entity, SourceId
from ..names import parse_entity_ref
from .posture import FAIL, UNKNOWN, Posture
from .validate import entity_ref

__all__ = ["EntityFacts", "facts_of"]


@dataclass(frozen=True, slots=True)
class EntityFacts:
    """What is known of one entity: the fields the filters look at, and what the build found."""

    ref: str
    kind: str
    type: str | None
    # The owner as a full ref (``group:default/team-a``), the form the filters compare.
    owner: str | None
    account: str | None
    region: str | None
    name: str
    search_text: str
    # A repository's verdict on every configured check (catalog.posture); None without posture.
    verdicts: Posture | None = None
    # What was repaired on the way ("<repository ARN>: <what>").
    repairs: tuple[str, ...] = ()
    # Whether a Backstage entity claims it, and why no claimer's owner was taken, if so.
    claimed: bool = False
    claim_conflict: str | None = None

    @property
    def posture(self) -> str | None:
        """The overall verdict, or None for an entity that is not judged."""
        return None if self.verdicts is None else self.verdicts.overall

    @property
    def posture_failures(self) -> tuple[str, ...]:
        return () if self.verdicts is None else self.verdicts.named(FAIL)

    @property
    def posture_unknown(self) -> tuple[str, ...]:
        return () if self.verdicts is None else self.verdicts.named(UNKNOWN)


def _owner_key(owner: object, namespace: str) -> str | None:
    ref = parse_entity_ref(owner, default_kind="group", default_namespace=namespace)
    return str(ref) if ref else None


def facts_of(
    entity: Entity,
    source: SourceId | None,
    *,
    verdicts: Posture | None = None,
    repairs: tuple[str, ...] = (),
    claimed: bool = False,
    claim_conflict: str | None = None,
) -> EntityFacts:
    """The facts of an entity just built for ``source`` (None: the catalog's own entities)."""
    metadata = entity["metadata"]
    spec = entity.get("spec", {})
    namespace = metadata.get("namespace", "default")
    text = " ".join(str(metadata.get(key, "")) for key in ("name", "title", "description")).lower()
    return EntityFacts(
        ref=str(entity_ref(entity)),
        kind=str(entity["kind"]).lower(),
        type=str(spec["type"]).lower() if "type" in spec else None,
        owner=_owner_key(spec.get("owner"), namespace),
        account=None if source is None else source.account_id,
        region=None if source is None else source.region,
        name=str(metadata["name"]).lower(),
        search_text=text,
        verdicts=verdicts,
        repairs=repairs,
        claimed=claimed,
        claim_conflict=claim_conflict,
    )
