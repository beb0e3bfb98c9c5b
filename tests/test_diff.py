"""`ecr-catalog diff`: the live catalog against the old committed file, before migrating."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from service.diff import OldCatalogUnreadable, diff_catalogs, read_catalog_documents

from .support import GOLDEN, MotoServer
from .test_cli import config, run_cli  # noqa: F401  (the fixture)

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


def test_diff_command_against_a_registry(config: Path, moto: MotoServer, tmp_path: Path) -> None:  # noqa: F811
    result = run_cli("diff", str(OLD), "--config", str(config), "--format", "json")
    assert result.returncode == 1, result.stderr
    diff = json.loads(result.stdout)
    renamed = {r["ref"]: r["renamed_to"] for r in diff["removed"]}
    assert renamed == {
        "resource:default/alpha-api": "resource:default/alpha--api.us-east-1.123456789012",
        "resource:default/retired-repo": None,
    }
    assert "domain:default/delivery" in diff["added"]
    assert "system:default/container-registry" in diff["added"]
    changed = {c["ref"]: c["fields"] for c in diff["changed"]}
    assert "spec.system" in changed["component:default/ecr-registry"]
    text = run_cli("diff", str(OLD), "--config", str(config))
    assert text.returncode == 1
    assert (
        b"renamed: same repository as resource:default/alpha--api.us-east-1.123456789012"
        in text.stdout
    )
    broken = tmp_path / "broken.yaml"
    broken.write_text("kind: [", encoding="utf-8")
    failed = run_cli("diff", str(broken), "--config", str(config))
    assert failed.returncode == 2 and b"not valid YAML" in failed.stderr
    missing = run_cli("diff", str(tmp_path / "nope.yaml"), "--config", str(config))
    assert missing.returncode == 2 and b"cannot read" in missing.stderr
