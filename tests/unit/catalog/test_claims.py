"""Claims in the pure transform: who claims what, and the owner and dependencyOf they give."""

from __future__ import annotations

import json
from typing import Any

from service.catalog.claims import Claimer, ClaimIndex, claim_filters, claimer_of, is_own_entity
from service.catalog.inputs import SourceInputs
from service.catalog.validate import entity_problems
from service.config import CatalogSettings
from service.model import SourceRecords
from service.snapshot.source import SourceCatalog, build_source

from ...catalog_build import build_catalog
from ...records import repository, source

OPTIONS = CatalogSettings()
KEYS = ["aws.amazon.com/amazon-ecr-arn", "ecr-catalog.io/repositories"]
ARN = "arn:aws:ecr:us-east-1:123456789012:repository/team-a/payments-api"


def component(
    name: str, annotations: dict[str, str], owner: Any = "team-a", namespace: str | None = None
) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name, "annotations": annotations}
    if namespace:
        metadata["namespace"] = namespace
    return {"kind": "Component", "metadata": metadata, "spec": {"owner": owner}}


def source_catalog(records: SourceRecords, claims: ClaimIndex) -> SourceCatalog:
    return build_source(SourceInputs.of(records, OPTIONS, claims=claims))


def entities_of(catalog: SourceCatalog) -> list[dict[str, Any]]:
    return [json.loads(item.json_document) for item in catalog.entities]


def repositories_of(claims: ClaimIndex, *repos: Any) -> dict[str, dict[str, Any]]:
    built = build_catalog([source(*repos)], OPTIONS, claims=claims)
    for entity in built.entities:
        assert entity_problems(entity) == []
    return {
        e["metadata"]["title"]: e["spec"]
        for e in built.entities
        if e["spec"].get("type") == "ecr-repository"
    }


def test_a_claimer_is_read_with_its_owner_resolved_in_its_namespace() -> None:
    claimer = claimer_of(
        component(
            "Payments",
            {KEYS[0]: f" {ARN} , checkout ", KEYS[1]: "checkout,billing"},
            owner="team-a",
            namespace="shop",
        ),
        KEYS,
    )
    assert claimer == Claimer(
        "component:shop/payments", "group:shop/team-a", (ARN, "checkout", "billing")
    )


def test_an_owner_that_is_not_a_group_or_user_is_dropped() -> None:
    claimer = claimer_of(component("payments", {KEYS[0]: ARN}, owner="system:x"), KEYS)
    assert claimer is not None and claimer.owner is None
    assert claimer_of(component("payments", {KEYS[0]: ARN}, owner=7), KEYS) is not None


def test_entities_without_a_usable_claim_are_no_claimers() -> None:
    assert claimer_of(component("payments", {KEYS[0]: " , "}), KEYS) is None
    assert claimer_of(component("payments", {"other": ARN}), KEYS) is None
    assert claimer_of({"kind": "Component"}, KEYS) is None
    assert claimer_of({"kind": 1, "metadata": {"name": "x"}}, KEYS) is None
    # A ref that is not one (no Backstage serves it) would make the claimed repository invalid.
    assert claimer_of(component("bad name!", {KEYS[0]: ARN}), KEYS) is None
    assert claimer_of({**component("x", {KEYS[0]: ARN}), "kind": "Com ponent"}, KEYS) is None


def test_the_services_own_entities_are_recognised() -> None:
    ours = {"metadata": {"annotations": {"ecr-catalog.io/repository-uri": "x", KEYS[0]: ARN}}}
    assert is_own_entity(ours, "ecr-catalog.io")
    assert not is_own_entity(component("payments", {KEYS[0]: ARN}), "ecr-catalog.io")


def test_a_claim_by_arn_gives_the_owner_and_dependency_of_an_untagged_repository() -> None:
    claims = ClaimIndex.of([Claimer("component:default/payments", "group:default/team-a", (ARN,))])
    specs = repositories_of(claims, repository("team-a/payments-api"), repository("other"))
    assert specs["team-a/payments-api"]["owner"] == "group:default/team-a"
    assert specs["team-a/payments-api"]["dependencyOf"] == ["component:default/payments"]
    assert specs["other"]["owner"] == OPTIONS.owner
    assert "dependencyOf" not in specs["other"]


def test_a_bare_name_matches_that_name_in_every_source_and_an_arn_only_its_own() -> None:
    claims = ClaimIndex.of(
        [
            Claimer("component:default/by-name", "group:default/team-n", ("api",)),
            Claimer(
                "component:default/by-arn",
                "group:default/team-e",
                ("arn:aws:ecr:eu-west-1:123456789012:repository/api",),
            ),
        ]
    )
    us = build_catalog([source(repository("api"))], OPTIONS, claims=claims)
    eu = build_catalog(
        [source(repository("api", region="eu-west-1"), region="eu-west-1")],
        OPTIONS,
        claims=claims,
    )
    (us_repo,) = [e for e in us.entities if e["metadata"].get("title") == "api"]
    (eu_repo,) = [e for e in eu.entities if e["metadata"].get("title") == "api"]
    assert us_repo["spec"]["dependencyOf"] == ["component:default/by-name"]
    assert eu_repo["spec"]["dependencyOf"] == [
        "component:default/by-arn",
        "component:default/by-name",
    ]


def test_precedence_is_owner_tag_then_claim_then_catalog_owner() -> None:
    claims = ClaimIndex.of(
        [Claimer("component:default/payments", "group:default/team-c", ("a", "b"))]
    )
    specs = repositories_of(
        claims,
        repository("a", tags={"owner": "team-tag"}),
        repository("b"),
        repository("c"),
    )
    assert specs["a"]["owner"] == "group:default/team-tag"
    assert specs["a"]["dependencyOf"] == ["component:default/payments"]
    assert specs["b"]["owner"] == "group:default/team-c"
    assert specs["c"]["owner"] == OPTIONS.owner


def test_an_invalid_owner_tag_falls_back_to_the_claim() -> None:
    claims = ClaimIndex.of([Claimer("component:default/payments", "group:default/team-c", ("a",))])
    built = build_catalog(
        [source(repository("a", tags={"owner": "system:x"}))], OPTIONS, claims=claims
    )
    (repo,) = [e for e in built.entities if e["metadata"].get("title") == "a"]
    assert repo["spec"]["owner"] == "group:default/team-c"
    assert any("owner tag" in repair for repair in built.repairs)


def test_claimers_of_different_owners_set_no_owner_and_all_become_dependents() -> None:
    claims = ClaimIndex.of(
        [
            Claimer("component:default/zeta", "group:default/team-z", ("a",)),
            Claimer("component:default/alpha", "group:default/team-a", ("a",)),
            Claimer("component:default/no-owner", None, ("a",)),
        ]
    )
    plan = source_catalog(source(repository("a")), claims)
    (repo,) = [e for e in entities_of(plan) if e["metadata"].get("title") == "a"]
    assert repo["spec"]["owner"] == OPTIONS.owner
    assert repo["spec"]["dependencyOf"] == [
        "component:default/alpha",
        "component:default/no-owner",
        "component:default/zeta",
    ]
    assert plan.claim_conflicts == (
        "arn:aws:ecr:us-east-1:123456789012:repository/a: claimed by "
        "component:default/alpha (group:default/team-a), "
        "component:default/zeta (group:default/team-z); "
        f"owners disagree, so owner {OPTIONS.owner} (catalog.owner)",
    )
    assert plan.claimed == 1


def test_a_claimer_that_sorts_first_cannot_take_a_repository_over() -> None:
    # The attack of issue 23: a catalog file registered as "aaa" sorts before the real claimer.
    payments = Claimer("component:default/payments", "group:default/payments", ("pay", "tagged"))
    attacker = Claimer("component:default/aaa", "group:default/attackers", ("pay", "tagged"))
    records = source(repository("pay"), repository("tagged", tags={"owner": "team-tag"}))
    alone = build_catalog([records], OPTIONS, claims=ClaimIndex.of([payments]))
    attacked = build_catalog([records], OPTIONS, claims=ClaimIndex.of([payments, attacker]))
    specs = {e["metadata"].get("title"): e["spec"] for e in attacked.entities}
    assert _spec(alone, "pay")["owner"] == "group:default/payments"
    assert specs["pay"]["owner"] == OPTIONS.owner
    assert specs["pay"]["dependencyOf"] == ["component:default/aaa", "component:default/payments"]
    # An owner tag always wins, whoever claims.
    assert specs["tagged"]["owner"] == "group:default/team-tag"


def _spec(build: Any, title: str) -> Any:
    return next(e["spec"] for e in build.entities if e["metadata"].get("title") == title)


def test_one_owner_among_claimers_is_no_conflict_and_each_claimed_repository_counts() -> None:
    claims = ClaimIndex.of(
        [
            Claimer("component:default/alpha", "group:default/team-a", ("a", "b")),
            Claimer("component:default/beta", None, ("a",)),
        ]
    )
    plan = source_catalog(source(repository("a"), repository("b"), repository("c")), claims)
    entities = entities_of(plan)
    assert len(entities) == 4 and plan.claim_conflicts == ()  # the registry + 3
    assert plan.claimed == 2


def test_the_services_own_entities_never_claim() -> None:
    # Its repository Resources carry aws.amazon.com/amazon-ecr-arn themselves.
    built = build_catalog([source(repository("a"))], OPTIONS)
    (own,) = [e for e in built.entities if e["metadata"].get("title") == "a"]
    own_ref = f"resource:default/{own['metadata']['name']}"
    ours = [own_ref, "system:default/container-registry", "domain:default/delivery"]
    ours += ["component:default/ecr-registry", "resource:default/ecr-123456789012-us-east-1"]
    claims = ClaimIndex.of([Claimer(ref, "group:default/team-x", ("a",)) for ref in ours])
    again = build_catalog([source(repository("a"))], OPTIONS, claims=claims)
    assert again.entities == built.entities


def test_the_index_compares_by_its_claimers() -> None:
    one = Claimer("component:default/a", None, ("x",))
    assert ClaimIndex.of([one]) == ClaimIndex.of([one, one])
    assert ClaimIndex.of([one]) != ClaimIndex.of([])
    assert not ClaimIndex() and ClaimIndex.of([one])


def test_one_claimer_per_ref_however_often_it_is_seen() -> None:
    index = ClaimIndex.of(
        [
            Claimer("component:default/a", None, ("x",)),
            Claimer("component:default/a", "group:default/team-a", ("y", "x")),
        ]
    )
    assert index.claimers == (Claimer("component:default/a", "group:default/team-a", ("x", "y")),)


def test_the_namespace_and_the_owners_kind_default_as_backstage_defaults_them() -> None:
    claimer = claimer_of(component("api", {KEYS[1]: "x"}, owner="user:jdoe"), KEYS)
    assert claimer == Claimer("component:default/api", "user:default/jdoe", ("x",))


def test_malformed_entities_from_backstage_claim_nothing_and_break_nothing() -> None:
    named_by_number = {"kind": "Component", "metadata": {"name": 5, "annotations": {KEYS[1]: "x"}}}
    assert claimer_of(named_by_number, KEYS) is None
    odd_spec = {"kind": "Component", "metadata": {"name": "a", "annotations": {KEYS[1]: "x"}}}
    assert claimer_of(odd_spec | {"spec": "not a mapping"}, KEYS) == Claimer(
        "component:default/a", None, ("x",)
    )
    assert not is_own_entity({"metadata": "not a mapping"}, "ecr-catalog.io")
    assert not is_own_entity({"metadata": {"annotations": "not a mapping"}}, "ecr-catalog.io")
    registry = {"metadata": {"annotations": {"ecr-catalog.io/registry-uri": "x"}}}
    assert is_own_entity(registry, "ecr-catalog.io")


def test_every_key_gets_its_filters_in_order() -> None:
    own = "aws.amazon.com/amazon-ecr-arn"
    filters = claim_filters(["ecr-catalog.io/repositories", own], [own])
    assert filters == [
        "metadata.annotations.ecr-catalog.io/repositories",
        f"kind=component,metadata.annotations.{own}",
        f"kind=system,metadata.annotations.{own}",
        f"kind=api,metadata.annotations.{own}",
    ]
