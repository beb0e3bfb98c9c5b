"""Backstage's entity rules."""

from __future__ import annotations

import copy
import logging
from typing import Any

import pytest

from service.catalog import build_catalog
from service.config import CatalogSettings
from service.snapshot import log_rejections
from service.validate import (
    entity_problems,
    is_valid_annotation_key,
    is_valid_entity_name,
    is_valid_label_value,
    is_valid_tag,
    parse_entity_ref,
    validate_entities,
)

from .records import repository, source

VALID: dict[str, Any] = {
    "apiVersion": "backstage.io/v1alpha1",
    "kind": "Resource",
    "metadata": {
        "name": "team-a--api.us-east-1.123456789012",
        "namespace": "default",
        "labels": {"ecr-catalog.io/region": "us-east-1", "empty": ""},
        "annotations": {"amazonaws.com/arn": "arn:aws:ecr:us-east-1:1:repository/x"},
        "tags": ["java", "c++", "team:a"],
        "links": [{"url": "https://example.com/x"}],
    },
    "spec": {
        "type": "ecr-repository",
        "owner": "team-a",
        "system": "container-registry",
        "dependsOn": ["resource:default/ecr-123456789012-us-east-1"],
        "dependencyOf": ["component:payments"],
    },
}


def with_change(path: str, value: Any) -> dict[str, Any]:
    entity = copy.deepcopy(VALID)
    *parents, leaf = path.split(".")
    target = entity
    for key in parents:
        target = target[key]
    if value is KeyError:
        del target[leaf]
    else:
        target[leaf] = value
    return entity


def test_a_valid_entity_has_no_problems() -> None:
    assert entity_problems(VALID) == []


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("relations", []),
        ("status", {}),
        ("apiVersion", "v1"),
        ("kind", "Not A Kind"),
        ("metadata.name", "a" * 64),
        ("metadata.name", "team-a/api"),
        ("metadata.name", "-leading"),
        ("metadata.name", ""),
        ("metadata.namespace", "Default"),
        ("metadata.uid", "123"),
        ("metadata.etag", "abc"),
        ("metadata.labels", {"bad key!": "x"}),
        ("metadata.labels", {"ok": "bad value!"}),
        ("metadata.labels", {"Upper.Case/name": "x"}),
        ("metadata.annotations", {"x": 1}),
        ("metadata.annotations", {"x": True}),
        ("metadata.annotations", {"backstage.io/managed-by-location": "url:x"}),
        ("metadata.annotations", {"a/b/c": "x"}),
        ("metadata.tags", ["Upper"]),
        ("metadata.tags", ["with space"]),
        ("metadata.tags", ["a--b"]),
        ("metadata.tags", ["x" * 64]),
        ("metadata.links", [{"url": "not a url"}]),
        ("metadata.links", [{"title": "no url"}]),
        ("spec.owner", KeyError),
        ("spec.type", KeyError),
        ("spec.owner", "group:default/../x"),
        ("spec.dependsOn", ["ecr-123456789012-us-east-1"]),
        ("spec.dependencyOf", ["payments"]),
        ("spec.dependsOn", "resource:x"),
    ],
)
def test_rule_breaks_are_reported(path: str, value: Any) -> None:
    assert entity_problems(with_change(path, value)) != []


@pytest.mark.parametrize(
    ("kind", "spec"),
    [
        ("Component", {"type": "service", "owner": "x"}),
        ("Component", {"lifecycle": "production", "owner": "x"}),
        ("System", {}),
        ("Domain", {"owner": ""}),
    ],
)
def test_required_spec_fields_per_kind(kind: str, spec: dict[str, Any]) -> None:
    entity = {"apiVersion": "backstage.io/v1alpha1", "kind": kind, "metadata": {"name": "x"}}
    assert entity_problems({**entity, "spec": spec}) != []


def test_name_rule_edges() -> None:
    assert is_valid_entity_name("a")
    assert is_valid_entity_name("A.b_c-d")
    assert is_valid_entity_name("a" * 63)
    assert not is_valid_entity_name("a" * 64)
    assert not is_valid_entity_name("a_")
    assert not is_valid_entity_name(7)


def test_label_values_may_be_empty() -> None:
    assert is_valid_label_value("")
    assert not is_valid_label_value(" ")


def test_annotation_key_prefix_is_a_lower_case_dns_subdomain() -> None:
    assert is_valid_annotation_key("aws.amazon.com/amazon-ecr-arn")
    assert not is_valid_annotation_key("AWS.com/x")
    assert not is_valid_annotation_key(("a" * 64) + ".com/x")


def test_tag_rule() -> None:
    assert is_valid_tag("c++")
    assert is_valid_tag("c#")
    assert is_valid_tag("a:b-c")
    assert not is_valid_tag("-a")
    assert not is_valid_tag("")


def test_ref_parsing() -> None:
    ref = parse_entity_ref("Group:default/Team-A", default_kind=None, default_namespace="x")
    assert str(ref) == "group:default/team-a"
    assert str(parse_entity_ref("jdoe", default_kind="group", default_namespace="default")) == (
        "group:default/jdoe"
    )
    assert parse_entity_ref("jdoe", default_kind=None, default_namespace="default") is None
    assert parse_entity_ref("group:default/../x", default_kind=None, default_namespace="d") is None
    assert parse_entity_ref("a/b/c", default_kind="group", default_namespace="d") is None


def test_validation_drops_bad_and_duplicate_entities_and_names_their_origin() -> None:
    upper = with_change("metadata.name", VALID["metadata"]["name"].upper())
    bad = with_change("metadata.name", "bad name")
    outcome = validate_entities([VALID, upper, bad], ["arn:1", "arn:2", "arn:3"])
    assert outcome.accepted == (VALID,)
    assert [(r.origin, len(r.problems)) for r in outcome.rejected] == [("arn:2", 1), ("arn:3", 1)]
    assert "twice" in outcome.rejected[0].problems[0]


HOSTILE_TAGS = {
    "owner": "group:default/../x",
    "description": "line\nbreak\n---\nkey: value # hash ünï 🐳",
    "team": "",
    "Team": "Ünïcödé 🐳",
    "environment": "x" * 256,
    "project": "a: b",
    "cost-center": "---",
    "backstage.io/tags": "ok, Bad!, 🐳, " + "y" * 64,
    "component": "../../etc, ok-svc",
}


def test_hostile_repository_data_becomes_a_valid_entity() -> None:
    name = "ns/" + "/".join(["a" * 60] * 4)
    name = name + "b" * (256 - len(name))
    build = build_catalog([source(repository(name, tags=HOSTILE_TAGS))], CatalogSettings())
    outcome = validate_entities(build.entities, build.origins)
    assert outcome.rejected == ()
    entity = next(e for e in outcome.accepted if e["metadata"].get("title") == name)
    assert len(name) == 256 and len(entity["metadata"]["name"]) <= 63
    assert entity["spec"]["owner"] == "platform-team"
    assert entity["spec"]["dependencyOf"] == ["component:default/ok-svc"]
    assert entity["metadata"]["description"] == HOSTILE_TAGS["description"].strip()
    assert entity["metadata"]["tags"] == ["ok"]
    labels = entity["metadata"]["labels"]
    assert labels["team"] == "n-c-d"  # "Team" sorts before "team" and wins the clash
    assert labels["environment"] == "x" * 63
    assert labels["project"] == "a-b"
    assert labels["cost-center"] == ""
    repairs = "\n".join(build.repairs)
    assert "owner tag" in repairs and "component tag" in repairs and "item dropped" in repairs


def test_rejections_are_logged_with_the_repository_arn(caplog: pytest.LogCaptureFixture) -> None:
    build = build_catalog([source(repository("team/api"))], CatalogSettings())
    broken = [dict(e, status={}) if e["kind"] == "Resource" else e for e in build.entities]
    with caplog.at_level(logging.WARNING):
        outcome = validate_entities(broken, build.origins)
        log_rejections(outcome.rejected)
    assert len(outcome.rejected) == 2
    assert "arn:aws:ecr:us-east-1:123456789012:repository/team/api" in caplog.text


def test_entities_known_valid_skip_their_own_rules_but_not_uniqueness() -> None:
    good = {
        "apiVersion": "backstage.io/v1alpha1",
        "kind": "Resource",
        "metadata": {"name": "repo"},
        "spec": {"type": "ecr-repository", "owner": "team-a"},
    }
    twin = {**good, "metadata": {"name": "REPO"}}
    bad = {**good, "metadata": {"name": "not valid!"}}
    outcome = validate_entities([good, twin, bad], known_valid=lambda index: index < 2)
    assert outcome.accepted == (good,)
    assert [r.problems[0] for r in outcome.rejected][0].endswith("is emitted twice")
    assert len(outcome.rejected) == 2
