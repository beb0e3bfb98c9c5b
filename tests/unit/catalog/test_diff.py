"""`ecr-catalog diff`: the live catalog against the old committed file, before migrating."""

from __future__ import annotations

import pytest

from service.catalog.diff import diff_catalogs, read_catalog_documents
from service.errors import CatalogUnreadable as OldCatalogUnreadable

from ...support import GOLDEN

OLD = GOLDEN / "ecr-registry.old.yaml"


def resource(name: str, **annotations: str) -> dict:
    metadata: dict = {"name": name}
    if annotations:
        metadata["annotations"] = annotations
    return {
        "apiVersion": "backstage.io/v1alpha1",
        "kind": "Resource",
        "metadata": metadata,
        "spec": {"type": "ecr-repository", "owner": "team-a"},
    }


def test_refs_decide_added_removed_changed_and_renamed() -> None:
    arn = "arn:aws:ecr:us-east-1:123456789012:repository/team/api"
    old = [
        resource("team-api", **{"example.com/repo": arn}),
        resource("same", **{"backstage.io/managed-by-location": "url:x"}),
        dict(resource("owner-moved"), relations=[{"type": "ownedBy"}]),
        resource("gone"),
    ]
    moved = resource("owner-moved")
    moved["spec"]["owner"] = "team-b"
    new = [
        resource("team--api.us-east-1.123456789012", **{"amazonaws.com/arn": arn}),
        resource("Same"),
        moved,
        resource("brand-new"),
    ]
    diff = diff_catalogs(old, new)
    assert diff.added == (
        "resource:default/brand-new",
        "resource:default/team--api.us-east-1.123456789012",
    )
    assert diff.removed == ("resource:default/gone", "resource:default/team-api")
    assert diff.renamed == {
        "resource:default/team-api": "resource:default/team--api.us-east-1.123456789012"
    }
    # Backstage's own fields (relations, managed-by annotations) are not differences; a name
    # that only changes case keeps its ref (refs are case-insensitive) and is a change.
    assert [(c.ref, c.fields) for c in diff.changed] == [
        ("resource:default/owner-moved", ("spec.owner",)),
        ("resource:default/same", ("metadata.name",)),
    ]
    assert diff.unchanged == 0


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("a: [1", "not valid YAML"),
        ("- 1\n- 2\n", "not an entity"),
        ("kind: X\nmetadata: {}\n", "no kind or name"),
    ],
)
def test_an_unreadable_old_file_is_named(text: str, words: str) -> None:
    with pytest.raises(OldCatalogUnreadable, match=words):
        read_catalog_documents(text, "old.yaml")
