"""The pure transform: golden output, naming, tag conventions."""

from __future__ import annotations

import pytest
import yaml

from service.catalog import (
    build_catalog,
    plan_catalog,
    registry_entity_name,
    repository_entity_name,
)
from service.config import CatalogSettings
from service.model import LifecyclePolicy, SourceId
from service.render import join_yaml, to_yaml_document
from service.validate import entity_problems

from .records import repository, source
from .support import GOLDEN

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
        ),
        source(repository("shared/nginx", region="eu-west-1"), region="eu-west-1"),
    ]


def test_catalog_matches_the_golden_file() -> None:
    rendered = golden_catalog()
    # The test never writes the golden file: `make golden` does (tests/update_golden.py).
    assert rendered == (GOLDEN / "catalog.yaml").read_text(encoding="utf-8")


def golden_catalog() -> str:
    """What tests/golden/catalog.yaml holds: the golden sources, built and rendered."""
    build = build_catalog(golden_sources(), OPTIONS)
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
    assert len(resources) == 2 + 4


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


def test_a_plan_builds_each_entity_only_when_iterated() -> None:
    sources = [source(repository("svc", tags={"owner": "not a ref!", "team": "a b c"}))]
    plan = plan_catalog(sources, OPTIONS)
    assert len(plan) == 4 + 1 and plan.repairs == ()
    entities = plan.entities()
    assert [next(entities)["kind"] for _ in range(3)] == ["Domain", "System", "Component"]
    assert plan.repairs == ()
    assert list(entities) == list(build_catalog(sources, OPTIONS).entities[3:])
    assert plan.repairs == build_catalog(sources, OPTIONS).repairs != ()


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
