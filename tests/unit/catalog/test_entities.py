"""The pure transform: golden output, naming, tag conventions."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest
import yaml

from service.catalog.naming import (
    registry_entity_name,
    repository_entity_name,
    sanitize_label_value,
)
from service.catalog.render import join_yaml, to_yaml_document
from service.catalog.validate import entity_problems
from service.config import CatalogSettings, PostureSettings
from service.model import ImageSummary, LatestImage, LifecyclePolicy, RegistryRecord, SourceId

from ...catalog_build import build_catalog
from ...records import repository, source
from ...support import GOLDEN

OPTIONS = CatalogSettings()
US = SourceId("123456789012", "us-east-1")
EU = SourceId("123456789012", "eu-west-1")


def golden_sources() -> list:
    return [
        source(
            repository(
                "team-a/payments-api",
                tags={
                    "owner": "team-a",
                    "component": "payments-api",
                    "description": "Payments API images.",
                    "team": "Team A",
                    "backstage.io/tags": "payments, java",
                },
            ),
            repository("shared/nginx", tags={"Owner": "user:jdoe"}),
            repository("empty", image_count=0, lifecycle=LifecyclePolicy(present=False)),
            # Too long to keep whole: shortened, with the marker and a 16-hex hash (naming.py).
            repository("payments-service-production-images-long-name", tags={"owner": "team-a"}),
        ),
        source(repository("shared/nginx", region="eu-west-1"), region="eu-west-1"),
    ]


def test_catalog_matches_the_golden_file() -> None:
    rendered = golden_catalog()
    # The test never writes the golden file: `make golden` does (tests/update_golden.py).
    assert rendered == (GOLDEN / "catalog.yaml").read_text(encoding="utf-8")


def golden_catalog() -> str:
    """What tests/golden/catalog.yaml holds: the golden sources, built and rendered, with the
    posture judged on the day after they were read."""
    build = build_catalog(golden_sources(), OPTIONS, posture=(PostureSettings(), date(2026, 1, 10)))
    return join_yaml(to_yaml_document(entity) for entity in build.entities).decode()


def test_every_built_entity_is_valid() -> None:
    build = build_catalog(golden_sources(), OPTIONS)
    assert [entity_problems(entity) for entity in build.entities] == [[]] * len(build.entities)


def test_adr_0132_structure() -> None:
    entities = build_catalog(golden_sources(), OPTIONS).entities
    kinds = [e["kind"] for e in entities]
    assert kinds.count("Domain") == kinds.count("System") == kinds.count("Component") == 1
    system = next(e for e in entities if e["kind"] == "System")
    assert system["metadata"]["name"] == "container-registry"
    assert system["spec"]["domain"] == "delivery"
    component = next(e for e in entities if e["kind"] == "Component")
    assert component["spec"]["dependsOn"] == [
        "resource:default/ecr-123456789012-eu-west-1",
        "resource:default/ecr-123456789012-us-east-1",
    ]
    resources = [e for e in entities if e["kind"] == "Resource"]
    assert {e["spec"]["system"] for e in resources} == {"container-registry"}
    assert len(resources) == 2 + 5


def test_output_is_sorted_and_independent_of_input_order() -> None:
    forward = build_catalog(golden_sources(), OPTIONS).entities
    backward = build_catalog(list(reversed(golden_sources())), OPTIONS).entities
    assert forward == backward


def test_the_planned_order_is_the_order_of_the_built_names() -> None:
    # The plan sorts by names it works out before building anything: they must be the names
    # the entities then carry, also for mapped, hashed and mixed-case ones.
    repositories = [
        repository(name)
        for name in ("b/a", "b-a", "ba", "a.b/c", "Z-upper", "x" * 90, "_odd", "a--b", "0")
    ]
    options = CatalogSettings(domain="zz-domain", system="A-system", component="m")
    entities = build_catalog([source(*repositories), source(region="eu-west-1")], options).entities
    order = {"Domain": 0, "System": 1, "Component": 2, "Resource": 3}
    keys = [(order[e["kind"]], e["metadata"]["name"].lower()) for e in entities]
    assert keys == sorted(keys)
    assert len(entities) == 3 + 2 + len(repositories)


def test_names_and_owners_are_configurable() -> None:
    options = CatalogSettings(
        domain="shipping", system="registry", component="ecr", owner="group:ops/platform"
    )
    entities = build_catalog(golden_sources(), options).entities
    names = {e["kind"]: e["metadata"]["name"] for e in entities if e["kind"] != "Resource"}
    assert names == {"Domain": "shipping", "System": "registry", "Component": "ecr"}
    assert entities[1]["spec"] == {"owner": "group:ops/platform", "domain": "shipping"}


def test_repository_names_map_slash_to_double_dash() -> None:
    assert repository_entity_name(US, "team-a/payments-api") == (
        "team-a--payments-api.us-east-1.123456789012"
    )
    assert registry_entity_name(US) == "ecr-123456789012-us-east-1"


def test_same_repository_in_two_regions_gets_two_names() -> None:
    assert repository_entity_name(US, "shared/nginx") != repository_entity_name(EU, "shared/nginx")


@pytest.mark.parametrize(
    "repository_name",
    [
        "a" * 256,
        "/".join(["namespace"] * 25) + "/x",
        "team/" + "service-" * 30 + "end",
        "Weird Name!/With Spaces",
    ],
)
def test_long_or_odd_names_are_shortened_deterministically(repository_name: str) -> None:
    name = repository_entity_name(US, repository_name)
    assert len(name) <= 63
    assert (
        entity_problems(
            {
                "apiVersion": "backstage.io/v1alpha1",
                "kind": "Resource",
                "metadata": {"name": name},
                "spec": {"type": "x", "owner": "y"},
            }
        )
        == []
    )
    assert name == repository_entity_name(US, repository_name)
    assert name.endswith(".us-east-1.123456789012")


def test_shortened_names_of_similar_repositories_differ() -> None:
    first = repository_entity_name(US, "x" * 200 + "a")
    second = repository_entity_name(US, "x" * 200 + "b")
    assert first != second


def test_a_name_never_depends_on_other_repositories() -> None:
    alone = build_catalog([source(repository("team-a/api"))], OPTIONS).entities
    crowded = build_catalog(
        [source(repository("team-a/api"), repository("team-a-api"), repository("team-a.api"))],
        OPTIONS,
    ).entities

    def name_of(entities: tuple) -> str:
        return next(
            e["metadata"]["name"] for e in entities if e["metadata"].get("title") == "team-a/api"
        )

    assert name_of(alone) == name_of(crowded)
    names = [e["metadata"]["name"] for e in crowded]
    assert len(names) == len(set(names))


def _repo_entity(tags: dict[str, str], options: CatalogSettings = OPTIONS) -> dict:
    build = build_catalog([source(repository("svc", tags=tags))], options)
    return next(e for e in build.entities if e["metadata"].get("title") == "svc")


def test_owner_tag_keys_match_case_insensitively() -> None:
    assert _repo_entity({"OWNER": "team-x"})["spec"]["owner"] == "group:default/team-x"
    assert (
        _repo_entity({"backstage.io/owner": "user:jdoe", "owner": "team-y"})["spec"]["owner"]
        == "user:default/jdoe"
    )


@pytest.mark.parametrize("owner", ["group:default/../x", "not valid", "component:foo", ""])
def test_an_invalid_owner_tag_falls_back_to_the_default(owner: str) -> None:
    assert _repo_entity({"owner": owner})["spec"]["owner"] == "platform-team"


def test_component_tag_adds_dependency_of_with_a_kind() -> None:
    spec = _repo_entity({"component": "checkout, payments-api api:bad"})["spec"]
    assert spec["dependencyOf"] == ["component:default/checkout", "component:default/payments-api"]


def test_labels_come_only_from_allow_listed_tags_and_are_sanitised() -> None:
    labels = _repo_entity({"team": "Team A / Payments", "secret": "x", "env": "---"})["metadata"][
        "labels"
    ]
    assert labels == {
        "ecr-catalog.io/account": "123456789012",
        "ecr-catalog.io/region": "us-east-1",
        "env": "",
        "team": "Team-A-Payments",
    }


def test_repositories_are_ordered_by_their_names_lower_cased() -> None:
    # "_" sorts before letters once lower-cased, after them if upper-cased.
    build = build_catalog([source(repository("teamb"), repository("team_a"))], OPTIONS)
    names = [e["metadata"]["name"] for e in build.entities if e["kind"] == "Resource"]
    assert names == [
        "ecr-123456789012-us-east-1",
        "team_a.us-east-1.123456789012",
        "teamb.us-east-1.123456789012",
    ]


def test_a_tag_that_cannot_become_a_label_leaves_the_next_ones_labelled() -> None:
    options = CatalogSettings(label_tag_keys=["_", "team"])
    labels = _repo_entity({"_": "x", "team": "payments"}, options)["metadata"]["labels"]
    assert labels["team"] == "payments" and "_" not in labels


def test_every_unknown_check_is_named_in_the_annotation_and_the_index() -> None:
    unsure = replace(repository("r"), scan_on_push=None, tag_mutability=None)
    build = build_catalog([source(unsure)], OPTIONS, posture=(PostureSettings(), date(2025, 3, 2)))
    annotations = _entity_named(build, "r")["metadata"]["annotations"]
    assert annotations["ecr-catalog.io/posture-unknown"] == "scanning,tag-immutability"


def test_own_annotations_use_the_configured_prefix_and_are_strings() -> None:
    entity = _repo_entity({}, CatalogSettings(annotation_prefix="example.com"))
    annotations = entity["metadata"]["annotations"]
    assert annotations["example.com/latest-image-findings-critical"] == "1"
    assert annotations["example.com/image-count"] == "2"
    assert all(isinstance(v, str) for v in annotations.values())
    assert "aws.amazon.com/amazon-ecr-tags" not in annotations


def test_render_is_yaml_that_round_trips() -> None:
    build = build_catalog(golden_sources(), OPTIONS)
    text = join_yaml(to_yaml_document(entity) for entity in build.entities).decode()
    assert list(yaml.safe_load_all(text)) == list(build.entities)


def test_names_at_the_length_limit_stay_readable_and_one_more_is_hashed() -> None:
    suffix = ".us-east-1.123456789012"
    longest = "a" * (63 - len(suffix))
    assert repository_entity_name(US, longest) == longest + suffix
    hashed = repository_entity_name(US, longest + "b")
    assert len(hashed) == 63 and hashed.endswith(suffix)
    digest = hashlib.sha256(f"123456789012/us-east-1/{longest}b".encode()).hexdigest()[:16]
    assert hashed == f"{'a' * (63 - len(suffix) - 18)}_-{digest}{suffix}"


@pytest.mark.parametrize(
    ("repository_name", "head"),
    [
        ("Team A/Api", "Team-A--Api"),
        ("-odd_/", "odd"),
        ("--", "ecr"),  # nothing readable left: a name must start with a letter or digit
        ("a//b", "a----b"),
        ("X" * 70, "X" * 22),  # only separators are trimmed from the head
    ],
)
def test_a_hashed_name_keeps_a_cleaned_head(repository_name: str, head: str) -> None:
    suffix = ".us-east-1.123456789012"
    digest = hashlib.sha256(f"123456789012/us-east-1/{repository_name}".encode()).hexdigest()
    expected = f"{head}_-{digest[:16]}{suffix}"
    assert repository_entity_name(US, repository_name) == expected


@pytest.mark.parametrize(
    ("value", "label"),
    [
        ("production", "production"),
        ("  Team A  ", "Team-A"),
        ("a--b__c..d", "a-b-c-d"),
        ("-._x._-", "x"),
        ("x" * 62 + "-y", "x" * 62),
        ("🐳", ""),
        ("", ""),
        ("X-ray X", "X-ray-X"),  # only separators are trimmed from the ends
    ],
)
def test_label_values_are_sanitised(value: str, label: str) -> None:
    assert sanitize_label_value(value) == label


def test_console_links_keep_slashes_and_quote_the_rest() -> None:
    entity = _entity_named(build_catalog([source(repository("team a/x+y"))], OPTIONS), "x+y")
    url = "https://us-east-1.console.aws.amazon.com/ecr/repositories/private/123456789012/"
    assert entity["metadata"]["links"] == [
        {"url": url + "team%20a/x%2By?region=us-east-1", "title": "AWS console", "icon": "cloud"}
    ]
    assert entity["metadata"]["annotations"]["backstage.io/view-url"] == (
        url + "team%20a/x%2By?region=us-east-1"
    )


def _entity_named(build: Any, title_end: str) -> dict[str, Any]:
    return next(e for e in build.entities if e["metadata"].get("title", "").endswith(title_end))


def test_a_registry_without_replication_or_scanning_says_so() -> None:
    records = source(registry=RegistryRecord((), None))
    (registry,) = [e for e in build_catalog([records], OPTIONS).entities if e["kind"] == "Resource"]
    annotations = registry["metadata"]["annotations"]
    assert annotations["ecr-catalog.io/replication"] == "none"
    assert annotations["ecr-catalog.io/scan-type"] == "unknown"
    two = source(registry=RegistryRecord(("eu-west-1", "us-west-2@210987654321"), "ENHANCED"))
    (registry,) = [e for e in build_catalog([two], OPTIONS).entities if e["kind"] == "Resource"]
    annotations = registry["metadata"]["annotations"]
    assert annotations["ecr-catalog.io/replication"] == "eu-west-1,us-west-2@210987654321"
    assert annotations["ecr-catalog.io/scan-type"] == "ENHANCED"
    assert (
        annotations["ecr-catalog.io/registry-uri"] == "123456789012.dkr.ecr.us-east-1.amazonaws.com"
    )


def test_facts_that_are_not_known_are_left_out_not_guessed() -> None:
    bare = replace(
        repository("bare"),
        created_at=None,
        scan_on_push=None,
        tag_mutability=None,
        encryption_type=None,
        images=ImageSummary(
            1, LatestImage("sha256:1", (), datetime(2026, 1, 1, tzinfo=UTC), None, (), None)
        ),
    )
    annotations = _entity_named(build_catalog([source(bare)], OPTIONS), "bare")["metadata"][
        "annotations"
    ]
    prefix = "ecr-catalog.io/"
    assert {key.removeprefix(prefix) for key in annotations if key.startswith(prefix)} == {
        "repository-uri",
        "image-count",
        "lifecycle-policy",
        "lifecycle-rule-count",
        "latest-image-digest",
        "latest-image-tags",
        "latest-image-pushed-at",
        "latest-image-findings",
    }
    # Never silently empty: no counts, and it says why.
    assert annotations[prefix + "latest-image-findings"] == "unavailable"
    assert annotations[prefix + "latest-image-tags"] == ""
    assert annotations[prefix + "latest-image-pushed-at"] == "2026-01-01T00:00:00Z"
    with_scan = replace(bare, scan_on_push=False)
    annotations = _entity_named(build_catalog([source(with_scan)], OPTIONS), "bare")["metadata"][
        "annotations"
    ]
    assert annotations[prefix + "scan-on-push"] == "false"


def test_an_unparseable_lifecycle_policy_is_a_fact_of_its_repository() -> None:
    odd = repository("odd", lifecycle=LifecyclePolicy(present=True, rule_count=None))
    posture = (PostureSettings(), date(2026, 1, 10))
    build = build_catalog([source(odd, repository("fine"))], OPTIONS, posture=posture)
    annotations = _entity_named(build, "odd")["metadata"]["annotations"]
    assert annotations["ecr-catalog.io/lifecycle-policy"] == "unparseable"
    # Not known, so not written: never a made-up 0.
    assert "ecr-catalog.io/lifecycle-rule-count" not in annotations
    assert "lifecycle-policy" in annotations["ecr-catalog.io/posture-unknown"].split(",")
    fine = _entity_named(build, "fine")["metadata"]["annotations"]
    assert fine["ecr-catalog.io/lifecycle-policy"] == "true"
    assert fine["ecr-catalog.io/lifecycle-rule-count"] == "2"


def test_times_are_written_in_utc() -> None:
    east = timezone(timedelta(hours=5))
    repo = replace(repository("tz"), created_at=datetime(2026, 1, 1, 5, 0, tzinfo=east))
    annotations = _entity_named(build_catalog([source(repo)], OPTIONS), "tz")["metadata"][
        "annotations"
    ]
    assert annotations["ecr-catalog.io/created-at"] == "2026-01-01T00:00:00Z"


def test_every_repair_names_the_repository_and_the_tag() -> None:
    arn = "arn:aws:ecr:us-east-1:123456789012:repository/r"
    tags = {
        "Owner": "not a ref!",
        "component": "ok, ../x",
        "team": "Team A",
        "Env": "first of the keys that clash",
        "env": "prod",
        # Nothing of this key is left once it is fitted to the label-key rule.
        "🐳": "whale",
        "backstage.io/tags": "fine, Not Fine!",
    }
    options = CatalogSettings(label_tag_keys=["team", "env", "🐳"])
    build = build_catalog([source(repository("r", tags=tags))], options)
    assert sorted(build.repairs) == sorted(
        [
            f"{arn}: owner tag 'Owner' is not a group or user ref",
            f"{arn}: component tag 'component' value dropped",
            f"{arn}: label 'team' value sanitised",
            f"{arn}: tag '🐳' cannot become a label",
            f"{arn}: label 'env' value sanitised",
            f"{arn}: tag 'backstage.io/tags' item dropped",
        ]
    )
    entity = _entity_named(build, "r")
    assert entity["metadata"]["labels"]["env"] == "first-of-the-keys-that-clash"
    assert "whale" not in entity["metadata"]["labels"].values()
    assert entity["metadata"]["labels"]["team"] == "Team-A"
    assert entity["spec"]["dependencyOf"] == ["component:default/ok"]


def test_origins_say_where_each_entity_came_from() -> None:
    build = build_catalog([source(repository("r"))], OPTIONS, registry_sources=[US, EU])
    assert list(zip(build.origins, build.sources, strict=True)) == [
        ("catalog:domain", None),
        ("catalog:system", None),
        ("catalog:component", None),
        ("registry:123456789012/us-east-1", US),
        ("arn:aws:ecr:us-east-1:123456789012:repository/r", US),
    ]
    component = build.entities[2]
    # The Component depends on the registries of every listed source, read or not.
    assert component["spec"]["dependsOn"] == [
        "resource:default/ecr-123456789012-eu-west-1",
        "resource:default/ecr-123456789012-us-east-1",
    ]


def test_entities_of_a_stale_source_carry_the_time_of_its_last_read() -> None:
    since = datetime(2026, 1, 8, 9, 30, tzinfo=UTC)
    build = build_catalog([source(repository("r"))], OPTIONS, stale_since={US: since})
    marked = [
        e["metadata"]["name"]
        for e in build.entities
        if e["metadata"].get("annotations", {}).get("ecr-catalog.io/last-successful-read-at")
        == "2026-01-08T09:30:00Z"
    ]
    assert marked == ["ecr-123456789012-us-east-1", "r.us-east-1.123456789012"]


def test_entities_sort_by_kind_then_case_insensitive_name() -> None:
    repos = [repository(name) for name in ("b", "a", "c/A")]
    names = [e["metadata"]["name"] for e in build_catalog([source(*repos)], OPTIONS).entities]
    assert names == [
        "delivery",
        "container-registry",
        "ecr-registry",
        "a.us-east-1.123456789012",
        "b.us-east-1.123456789012",
        names[5],
        "ecr-123456789012-us-east-1",
    ]
    assert names[5].startswith("c--A_-")
