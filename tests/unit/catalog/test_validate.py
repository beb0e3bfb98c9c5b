"""Backstage's entity rules."""

from __future__ import annotations

import copy
import logging
from typing import Any

import pytest

from service.catalog.validate import EntityValidator, Rejection, entity_problems, entity_ref
from service.config import CatalogSettings
from service.names import (
    EntityRef,
    is_valid_annotation_key,
    is_valid_dns_subdomain,
    is_valid_entity_name,
    is_valid_label_key,
    is_valid_label_value,
    is_valid_namespace,
    is_valid_tag,
    parse_entity_ref,
)
from service.snapshot.build import log_rejections

from ...catalog_build import build_catalog, validate_entities
from ...records import repository, source

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
    ("path", "value", "problems"),
    [
        ("relations", [], ["root field 'relations' is not allowed"]),
        ("status", {}, ["root field 'status' is not allowed"]),
        ("apiVersion", "v1", ["apiVersion 'v1' is not supported"]),
        ("kind", "Not A Kind", ["kind 'Not A Kind' is invalid"]),
        ("metadata.name", "a" * 64, [f"metadata.name {'a' * 64!r} is invalid"]),
        ("metadata.name", "team-a/api", ["metadata.name 'team-a/api' is invalid"]),
        ("metadata.name", "-leading", ["metadata.name '-leading' is invalid"]),
        ("metadata.name", "", ["metadata.name '' is invalid"]),
        ("metadata.namespace", "Default", ["metadata.namespace 'Default' is invalid"]),
        ("metadata.uid", "123", ["metadata.uid must not be set"]),
        ("metadata.etag", "abc", ["metadata.etag must not be set"]),
        ("metadata.labels", {"bad key!": "x"}, ["metadata.labels key 'bad key!' is invalid"]),
        ("metadata.labels", {"ok": "bad value!"}, ["metadata.labels['ok'] has an invalid value"]),
        (
            "metadata.labels",
            {"Upper.Case/name": "x"},
            ["metadata.labels key 'Upper.Case/name' is invalid"],
        ),
        ("metadata.annotations", {"x": 1}, ["metadata.annotations['x'] has an invalid value"]),
        ("metadata.annotations", {"x": True}, ["metadata.annotations['x'] has an invalid value"]),
        (
            "metadata.annotations",
            {"backstage.io/managed-by-location": "url:x"},
            ["annotation backstage.io/managed-by-location is set by the catalog itself"],
        ),
        ("metadata.annotations", {"a/b/c": "x"}, ["metadata.annotations key 'a/b/c' is invalid"]),
        ("metadata.tags", ["Upper"], ["tag 'Upper' is invalid"]),
        ("metadata.tags", ["with space"], ["tag 'with space' is invalid"]),
        ("metadata.tags", ["a--b"], ["tag 'a--b' is invalid"]),
        ("metadata.tags", ["x" * 64], [f"tag {'x' * 64!r} is invalid"]),
        ("metadata.links", [{"url": "not a url"}], ["link {'url': 'not a url'} has no valid url"]),
        ("metadata.links", [{"title": "no url"}], ["link {'title': 'no url'} has no valid url"]),
        ("spec.owner", KeyError, ["spec.owner is required for a Resource"]),
        ("spec.type", KeyError, ["spec.type is required for a Resource"]),
        ("spec.owner", "group:default/../x", ["spec.owner ref 'group:default/../x' is invalid"]),
        (
            "spec.dependsOn",
            ["ecr-123456789012-us-east-1"],
            ["spec.dependsOn ref 'ecr-123456789012-us-east-1' is invalid"],
        ),
        ("spec.dependencyOf", ["payments"], ["spec.dependencyOf ref 'payments' is invalid"]),
        ("spec.dependsOn", "resource:x", ["spec.dependsOn must be a list"]),
        ("spec.dependencyOf", "component:x", ["spec.dependencyOf must be a list"]),
        ("metadata.title", 5, ["metadata.title must be a string"]),
        ("metadata.description", ["x"], ["metadata.description must be a string"]),
        ("metadata.tags", "java", ["metadata.tags must be a list"]),
        ("metadata.tags", ["java", "java"], ["metadata.tags has duplicates"]),
        ("metadata.links", {"url": "https://x"}, ["metadata.links must be a list"]),
        ("metadata.links", [{"url": "https://"}], ["link {'url': 'https://'} has no valid url"]),
        ("metadata.links", [{"url": "/relative"}], ["link {'url': '/relative'} has no valid url"]),
        ("metadata.links", ["https://x"], ["link 'https://x' has no valid url"]),
        ("metadata.labels", ["x"], ["metadata.labels must be a mapping"]),
        ("metadata.annotations", "x", ["metadata.annotations must be a mapping"]),
        ("metadata", [], ["metadata must be a mapping"]),
        ("spec", [], ["spec must be a mapping"]),
        ("spec.system", "a:b:c", ["spec.system ref 'a:b:c' is invalid"]),
        (
            "spec.owner",
            "",
            ["spec.owner is required for a Resource", "spec.owner ref '' is invalid"],
        ),
    ],
)
def test_rule_breaks_are_reported_in_words(path: str, value: Any, problems: list[str]) -> None:
    assert entity_problems(with_change(path, value)) == problems


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


@pytest.mark.parametrize("text", ["abc\n", "a\n", "team-a\n"])
def test_a_final_newline_breaks_every_rule(text: str) -> None:
    # Python's "$" also matches before a final newline; Backstage's rules do not.
    assert not is_valid_entity_name(text)
    assert not is_valid_label_value(text)
    assert not is_valid_tag(text)
    assert not is_valid_annotation_key(text)


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
    assert is_valid_tag("a")  # one character is a whole tag


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
    # The second of the two is named by its ref, as the first was.
    assert outcome.rejected[0].ref == str(entity_ref(VALID))


def test_every_ref_field_is_checked_when_an_earlier_one_is_absent_or_not_a_list() -> None:
    spec = {k: v for k, v in VALID["spec"].items() if k not in ("system", "domain")}
    entity = {**VALID, "spec": {**spec, "dependencyOf": ["a:b:c"]}}
    assert entity_problems(entity) == ["spec.dependencyOf ref 'a:b:c' is invalid"]
    entity = {**VALID, "spec": {**spec, "dependsOn": "x", "dependencyOf": ["a:b:c"]}}
    assert entity_problems(entity) == [
        "spec.dependsOn must be a list",
        "spec.dependencyOf ref 'a:b:c' is invalid",
    ]


def test_a_validator_checks_every_rule() -> None:
    bad = with_change("metadata.name", "bad name")
    assert not EntityValidator().admit(bad)


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


def test_refs_are_unique_ignoring_case_and_each_entity_keeps_its_rules() -> None:
    good = {
        "apiVersion": "backstage.io/v1alpha1",
        "kind": "Resource",
        "metadata": {"name": "repo"},
        "spec": {"type": "ecr-repository", "owner": "team-a"},
    }
    twin = {**good, "metadata": {"name": "REPO"}}
    bad = {**good, "metadata": {"name": "not valid!"}}
    outcome = validate_entities([good, twin, bad])
    assert outcome.accepted == (good,)
    assert [r.problems[0] for r in outcome.rejected][0].endswith("is emitted twice")
    assert len(outcome.rejected) == 2


@pytest.mark.parametrize(
    ("check", "longest"),
    [
        (is_valid_entity_name, 63),
        (is_valid_namespace, 63),
        (is_valid_tag, 63),
    ],
)
def test_length_limits_are_inclusive(check: Any, longest: int) -> None:
    assert check("a" * longest)
    assert not check("a" * (longest + 1))
    assert not check("")


def test_a_dns_subdomain_is_dot_separated_labels_of_at_most_253_characters() -> None:
    label = "a" * 63
    longest = ".".join([label, label, label, "a" * 61])
    assert len(longest) == 253 and is_valid_dns_subdomain(longest)
    assert not is_valid_dns_subdomain(longest + "a")
    assert is_valid_dns_subdomain("a")
    assert is_valid_dns_subdomain("ecr-catalog.io")
    assert not is_valid_dns_subdomain("")
    assert not is_valid_dns_subdomain("a..b")
    assert not is_valid_dns_subdomain("a." + "b" * 64)
    assert not is_valid_dns_subdomain("Upper.io")
    assert not is_valid_dns_subdomain(7)


def test_prefixed_keys_need_a_string() -> None:
    assert not is_valid_annotation_key(None)
    assert not is_valid_label_key(("a", "b"))


@pytest.mark.parametrize(
    ("url", "valid"),
    [
        ("https://x.example/y", True),
        ("http://127.0.0.1:8080", True),
        ("", False),
        (" https://x", False),
        ("https://x y", False),
        ("no-scheme.example/x", False),
        ("https://", False),
        ("mailto:a@b", False),
        ("http://[::1", False),
        (None, False),
        (5, False),  # not text at all: a problem, not an exception
    ],
)
def test_link_urls_are_absolute_with_a_host(url: Any, valid: bool) -> None:
    entity = with_change("metadata.links", [{"url": url}])
    assert (entity_problems(entity) == []) is valid


def test_refs_are_lower_cased_with_the_default_namespace() -> None:
    entity = {"kind": "Resource", "metadata": {"name": "Repo.X"}}
    assert entity_ref(entity) == EntityRef("resource", "default", "repo.x")
    assert str(entity_ref({"kind": "API", "metadata": {"name": "A", "namespace": "NS"}})) == (
        "api:ns/a"
    )


def test_ref_parsing_splits_at_the_first_colon_and_slash() -> None:
    assert parse_entity_ref("", default_kind="group", default_namespace="d") is None
    assert parse_entity_ref(None, default_kind="group", default_namespace="d") is None
    assert str(parse_entity_ref("user:jdoe", default_kind="group", default_namespace="d")) == (
        "user:d/jdoe"
    )
    assert str(parse_entity_ref("team/x", default_kind="group", default_namespace="d")) == (
        "group:team/x"
    )
    assert parse_entity_ref("kind:ns:x", default_kind=None, default_namespace="d") is None
    assert parse_entity_ref("9kind:x", default_kind=None, default_namespace="d") is None
    assert parse_entity_ref("group:Bad_NS/x", default_kind=None, default_namespace="d") is None


def test_a_rejection_names_the_entity_its_origin_and_every_problem() -> None:
    bad = with_change("metadata.tags", ["Upper", "x y"])
    outcome = validate_entities([bad, 5, {"kind": "X", "metadata": 1}])
    assert outcome.accepted == ()
    assert outcome.rejected[0] == Rejection(
        "Resource:team-a--api.us-east-1.123456789012",
        "Resource:team-a--api.us-east-1.123456789012",
        ("tag 'Upper' is invalid", "tag 'x y' is invalid"),
    )
    assert outcome.rejected[1].ref == outcome.rejected[1].origin == "<not an entity>"
    assert outcome.rejected[1].problems == ("an entity must be a mapping",)
    assert outcome.rejected[2].ref == "<not an entity>"
    assert "metadata must be a mapping" in outcome.rejected[2].problems


def test_an_unknown_kind_needs_only_the_common_rules() -> None:
    entity = {"apiVersion": "backstage.io/v1beta1", "kind": "Template", "metadata": {"name": "t"}}
    assert entity_problems({**entity, "spec": {}}) == []
    assert entity_problems({**entity, "kind": 5, "spec": {}}) == ["kind 5 is invalid"]
    assert entity_problems({**entity, "kind": "", "spec": {}}) == ["kind '' is invalid"]
