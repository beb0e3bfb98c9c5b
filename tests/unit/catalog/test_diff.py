"""`ecr-catalog diff`: the live catalog against the old committed file, before migrating."""

from __future__ import annotations

import copy
import hashlib
import re

import pytest
import yaml

from service.catalog.diff import diff_catalogs
from service.catalog.oldfile import read_catalog_documents
from service.config import CatalogSettings
from service.errors import CatalogUnreadable as OldCatalogUnreadable

from ...catalog_build import build_catalog
from ...records import repository, source
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


def test_the_report_says_each_ref_in_text_and_json() -> None:
    arn = "arn:aws:ecr:us-east-1:123456789012:repository/team/api"
    old = [resource("team-api", **{"example.com/repo": arn}), resource("kept"), resource("gone")]
    changed = resource("kept")
    changed["spec"]["owner"] = "team-b"
    changed["spec"]["type"] = "other"
    new = [
        resource("team--api.us-east-1.123456789012", **{"amazonaws.com/arn": arn}),
        changed,
        resource("brand-new"),
    ]
    diff = diff_catalogs(old, new)
    assert not diff.empty
    assert diff.as_dict() == {
        "added": [
            "resource:default/brand-new",
            "resource:default/team--api.us-east-1.123456789012",
        ],
        "removed": [
            {"ref": "resource:default/gone", "renamed_to": None},
            {
                "ref": "resource:default/team-api",
                "renamed_to": "resource:default/team--api.us-east-1.123456789012",
            },
        ],
        "changed": [{"ref": "resource:default/kept", "fields": ["spec.owner", "spec.type"]}],
        "unchanged": 0,
    }
    assert list(diff.lines()) == [
        "added (2):",
        "  + resource:default/brand-new",
        "  + resource:default/team--api.us-east-1.123456789012",
        "removed (2):",
        "  - resource:default/gone",
        "  - resource:default/team-api  (renamed: same repository as "
        "resource:default/team--api.us-east-1.123456789012)",
        "changed (1):",
        "  ~ resource:default/kept: spec.owner, spec.type",
        "2 added, 2 removed (1 of them renamed), 1 changed, 0 unchanged",
    ]


def test_what_backstage_adds_itself_is_no_difference() -> None:
    stored = resource("api", **{"backstage.io/managed-by-location": "url:x", "team": "a"})
    stored["metadata"].update(uid="1", etag="e", generation=3, namespace="default")
    stored["status"] = {"items": []}
    stored["relations"] = [{"type": "ownedBy"}]
    bare = resource("api", team="a")
    only_managed = resource("b", **{"backstage.io/managed-by-origin-location": "url:y"})
    diff = diff_catalogs([stored, only_managed], [bare, resource("b")])
    assert diff.empty and diff.changed == () and diff.unchanged == 2
    assert (
        list(diff.lines())[-1] == "0 added, 0 removed (0 of them renamed), 0 changed, 2 unchanged"
    )


def test_a_namespace_and_lists_compare_as_backstage_reads_them() -> None:
    old = resource("api")
    old["metadata"]["namespace"] = "Ops"
    old["metadata"]["tags"] = ["a", "b"]
    new = resource("API")
    new["metadata"]["namespace"] = "ops"
    new["metadata"]["tags"] = ["b", "a"]
    diff = diff_catalogs([old], [new])
    # One ref (refs ignore case); the list is compared whole, its order included.
    assert [(c.ref, c.fields) for c in diff.changed] == [
        ("resource:ops/api", ("metadata.name", "metadata.namespace", "metadata.tags"))
    ]


@pytest.mark.parametrize(
    "key", ["amazonaws.com/arn", "example.com/repository-arn", "x/repository-uri", "x/repository"]
)
def test_a_rename_is_found_by_any_identifying_annotation_ignoring_case(key: str) -> None:
    value = "ARN:aws:ecr:us-east-1:123456789012:repository/Team/API"
    old = [resource("old-name", anything=value.lower())]
    new = [resource("new-name", **{key: value}), resource("other", **{"x/unrelated": value})]
    diff = diff_catalogs(old, new)
    assert diff.renamed == {"resource:default/old-name": "resource:default/new-name"}


def test_an_annotation_that_identifies_nothing_finds_no_rename() -> None:
    old = [resource("old-name", note="shared text")]
    new = [resource("new-name", **{"x/unrelated": "shared text", "x/arn": ""})]
    assert diff_catalogs(old, new).renamed == {}


def test_empty_documents_are_skipped_and_a_bad_one_is_named_by_its_place() -> None:
    text = "---\n---\nkind: Resource\nmetadata: {name: a}\n---\nkind: Resource\nmetadata: []\n"
    with pytest.raises(OldCatalogUnreadable, match=r"^document 2 of old.yaml is not an entity$"):
        read_catalog_documents(text, "old.yaml")
    good = read_catalog_documents("---\n---\nkind: Resource\nmetadata: {name: a}\n", "old.yaml")
    assert good == [{"kind": "Resource", "metadata": {"name": "a"}}]
    with pytest.raises(OldCatalogUnreadable, match=r"^document 1 of f.yaml has no kind or name$"):
        read_catalog_documents("kind: Resource\nmetadata: {name: ''}\n", "f.yaml")
    with pytest.raises(OldCatalogUnreadable, match=r"^f.yaml is not valid YAML: "):
        read_catalog_documents("a: [1", "f.yaml")


def test_what_only_one_side_has_and_keys_in_another_order_are_seen_for_what_they_are() -> None:
    link = {"url": "https://x.example", "title": "X"}
    old = resource("api")
    old["metadata"]["links"] = [link]
    # An old file's YAML may hold a date, which JSON has no type for.
    old["metadata"]["created"] = yaml.safe_load("2026-01-09")
    new = resource("api")
    new["metadata"]["links"] = [{"title": "X", "url": "https://x.example"}]
    new["metadata"]["created"] = yaml.safe_load("2026-01-09")
    new["metadata"]["title"] = "API"  # only in the new one
    diff = diff_catalogs([old], [new])
    assert [(c.ref, c.fields) for c in diff.changed] == [
        ("resource:default/api", ("metadata.title",))
    ]


def test_every_shortened_name_of_before_issue_23_is_reported_as_renamed() -> None:
    """The upgrade note's promise: only shortened names change, and diff pairs each by ARN."""
    long_names = ["payments-service-production-images-long-name", "Odd Name", "x/" + "y" * 70]
    records = source(repository("team-a/api"), *(repository(name) for name in long_names))
    new = list(build_catalog([records], CatalogSettings()).entities)
    old = copy.deepcopy(new)
    renamed_to = {}
    for entity in old:
        title = entity["metadata"].get("title")
        if title in long_names:
            # Backstage compares refs, and diff reports them, in lower case.
            renamed_to[f"resource:default/{_old_name(title)}".lower()] = (
                f"resource:default/{entity['metadata']['name']}".lower()
            )
            entity["metadata"]["name"] = _old_name(title)
    assert "resource:default/payments-service-production-ima-7c3d37f8.us-east-1.123456789012" in (
        renamed_to
    )
    diff = diff_catalogs(old, new)
    assert diff.renamed == renamed_to and set(diff.removed) == set(renamed_to)
    assert set(diff.added) == set(renamed_to.values())
    assert diff.changed == () and diff.unchanged == len(new) - len(long_names)


def _old_name(repository_name: str) -> str:
    """How naming.py shortened a name before issue 23: `<head>-<8 hex>`, no marker."""
    suffix = ".us-east-1.123456789012"
    digest = hashlib.sha256(f"123456789012/us-east-1/{repository_name}".encode()).hexdigest()[:8]
    room = 63 - len(suffix) - len(digest) - 1
    head = re.sub(r"[^A-Za-z0-9._-]+", "-", repository_name.replace("/", "--"))[:room]
    head = head.strip("-_.")
    return f"{head}-{digest}{suffix}" if head else f"{digest}{suffix}"


def test_refs_compare_in_their_full_form_with_each_fields_default_kind() -> None:
    """As Backstage reads them (names.REF_FIELDS): only what it would relate differently is a
    change."""
    old = resource("api")
    old["spec"].update(
        owner="platform",
        system="Container-Registry",
        dependsOn=["resource:x", "Resource:default/y"],
        dependencyOf=["component:shop/checkout"],
    )
    new = resource("api")
    new["spec"].update(
        owner="group:default/platform",
        system="system:default/container-registry",
        dependsOn=["resource:default/y", "resource:default/x"],
        dependencyOf=["component:shop/checkout"],
    )
    assert diff_catalogs([old], [new]).unchanged == 1
    # Another kind, namespace or name is a change; so is a user where a group was.
    for field, value in [
        ("owner", "user:platform"),
        ("owner", "group:ops/platform"),
        ("system", "other"),
        ("dependsOn", ["resource:x", "component:y"]),
    ]:
        changed = resource("api")
        changed["spec"].update(new["spec"], **{field: value})
        diff = diff_catalogs([old], [changed])
        assert [c.fields for c in diff.changed] == [(f"spec.{field}",)], field


def test_a_ref_without_a_namespace_is_in_its_entitys_namespace() -> None:
    old = resource("api")
    old["metadata"]["namespace"] = "shop"
    old["spec"]["owner"] = "team-a"
    new = resource("api")
    new["metadata"]["namespace"] = "shop"
    new["spec"]["owner"] = "group:shop/team-a"
    assert diff_catalogs([old], [new]).unchanged == 1
    new["spec"]["owner"] = "group:default/team-a"
    assert [c.fields for c in diff_catalogs([old], [new]).changed] == [("spec.owner",)]


def test_the_default_kinds_are_those_of_each_kind_of_entity() -> None:
    system = {"kind": "System", "metadata": {"name": "s"}, "spec": {"owner": "o", "domain": "d"}}
    full = {
        "kind": "System",
        "metadata": {"name": "s"},
        "spec": {"owner": "group:default/o", "domain": "domain:default/d"},
    }
    assert diff_catalogs([system], [full]).unchanged == 1
    component = {"kind": "Component", "metadata": {"name": "c"}, "spec": {"subcomponentOf": "p"}}
    full_component = {
        "kind": "Component",
        "metadata": {"name": "c"},
        "spec": {"subcomponentOf": "component:default/p"},
    }
    assert diff_catalogs([component], [full_component]).unchanged == 1
    # dependsOn has no default kind: a bare name does not parse, and is compared as written.
    bare = resource("r")
    bare["spec"]["dependsOn"] = ["x"]
    kinded = resource("r")
    kinded["spec"]["dependsOn"] = ["resource:default/x"]
    assert [c.fields for c in diff_catalogs([bare], [kinded]).changed] == [("spec.dependsOn",)]


def test_renames_are_found_by_uri_with_a_tag_and_by_arn_in_any_case() -> None:
    uri = "123456789012.dkr.ecr.us-east-1.amazonaws.com/team/api:1.2"
    old = [
        resource("by-uri", image=uri),
        resource("by-arn", x="ARN:AWS:ECR:us-east-1:123456789012:repository/team/web"),
    ]
    new = [
        resource(
            "team--api.us-east-1.123456789012",
            **{"ecr-catalog.io/repository-uri": uri.removesuffix(":1.2")},
        ),
        resource(
            "team--web.us-east-1.123456789012",
            **{"amazonaws.com/arn": "arn:aws:ecr:us-east-1:123456789012:repository/team/web"},
        ),
    ]
    assert diff_catalogs(old, new).renamed == {
        "resource:default/by-uri": "resource:default/team--api.us-east-1.123456789012",
        "resource:default/by-arn": "resource:default/team--web.us-east-1.123456789012",
    }
