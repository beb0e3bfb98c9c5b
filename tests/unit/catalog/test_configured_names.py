"""catalog.names in the pure build: a configured name keeps a repository's old ref, is part of
its source's inputs alone, and can never take over another repository's entity."""

from __future__ import annotations

from datetime import UTC, datetime

from service.catalog.claims import Claimer, ClaimIndex
from service.catalog.inputs import SourceInputs
from service.catalog.naming import repository_entity_name
from service.catalog.validate import entity_problems
from service.config import CatalogSettings
from service.model import SourceId
from service.reading import SourceListing
from service.snapshot.catalogs import Catalogs
from service.snapshot.source import build_source

from ...catalog_build import build_catalog, build_snapshot
from ...records import ACCOUNT, repository, source

ALPHA = repository("alpha/api", tags={"owner": "alpha"})
BETA = repository("beta/web")
US = source(ALPHA, BETA)
EU = source(repository("alpha/api", region="eu-west-1"), region="eu-west-1")
US_ID = SourceId(ACCOUNT, "us-east-1")
EU_ID = SourceId(ACCOUNT, "eu-west-1")


def names_of(options: CatalogSettings, *sources: object) -> dict[str, str]:
    """Repository ARN -> entity name, of every repository Resource built."""
    built = build_catalog(sources, options)  # type: ignore[arg-type]
    for entity in built.entities:
        assert entity_problems(entity) == []
    return {
        entity["metadata"]["annotations"]["amazonaws.com/arn"]: entity["metadata"]["name"]
        for entity in built.entities
        if entity["spec"].get("type") == "ecr-repository"
    }


def test_a_configured_name_replaces_the_generated_one_for_that_repository_alone() -> None:
    options = CatalogSettings(names={ALPHA.arn: "alpha-api"})
    assert names_of(options, US, EU) == {
        ALPHA.arn: "alpha-api",
        BETA.arn: repository_entity_name(US_ID, "beta/web"),
        EU.repositories[0].arn: repository_entity_name(EU_ID, "alpha/api"),
    }
    # The rest of the entity is as it was: its owner, its title, its dependsOn.
    built = build_catalog([US], options).entities
    (alpha,) = [e for e in built if e["metadata"].get("title") == "alpha/api"]
    assert alpha["spec"]["owner"] == "group:default/alpha"
    assert alpha["spec"]["dependsOn"] == [f"resource:default/ecr-{ACCOUNT}-us-east-1"]


def test_a_source_s_inputs_hold_its_own_entries_only() -> None:
    with_names = CatalogSettings(names={ALPHA.arn: "alpha-api"})
    us, eu = SourceInputs.of(US, with_names), SourceInputs.of(EU, with_names)
    assert us.names == ((ALPHA.arn, "alpha-api"),)
    assert eu.names == ()
    # A name configured for another source's repository leaves this source's inputs equal,
    # so its catalog is reused.
    assert eu == SourceInputs.of(EU, CatalogSettings())
    assert us != SourceInputs.of(US, CatalogSettings())
    assert us.settings.names == {}


def test_equal_inputs_reuse_the_catalog_and_changed_names_build_it_again() -> None:
    catalogs = Catalogs()
    listing = SourceListing(sources=(EU_ID, US_ID))
    records = {US_ID: US, EU_ID: EU}
    built_at = datetime(2026, 1, 9, 12, tzinfo=UTC)
    first = build_snapshot(listing, records, {}, CatalogSettings(), built_at, catalogs=catalogs)
    kept = dict(catalogs._kept)
    options = CatalogSettings(names={ALPHA.arn: "alpha-api"})
    second = build_snapshot(listing, records, {}, options, built_at, catalogs=catalogs)
    assert catalogs._kept[EU_ID] is kept[EU_ID]
    assert catalogs._kept[US_ID] is not kept[US_ID]
    assert "resource:default/alpha-api" in second.by_ref
    assert "resource:default/alpha-api" not in first.by_ref


def test_a_configured_name_that_is_another_repositorys_generated_name_serves_neither() -> None:
    taken = repository_entity_name(US_ID, "beta/web")
    # Even with a name of its own configured, beta keeps its generated ref from being taken.
    for names in ({ALPHA.arn: taken}, {ALPHA.arn: taken, BETA.arn: "beta-web"}):
        catalog = build_source(SourceInputs.of(US, CatalogSettings(names=names)))
        served = {item.ref for item in catalog.entities}
        assert served == {f"resource:default/ecr-{ACCOUNT}-us-east-1"}, names
        (collision,) = catalog.collisions
        assert collision.ref == f"resource:default/{taken}"
        assert collision.origins == tuple(sorted((ALPHA.arn, BETA.arn)))
        assert f"catalog.names gives {ALPHA.arn} the generated name of {BETA.arn}" in (
            collision.describe()
        )


def test_two_repositories_configured_one_name_in_another_case_serve_neither() -> None:
    # The settings refuse this at start-up (config.names); the build needs no such promise.
    inputs = SourceInputs.of(US, CatalogSettings())
    inputs = SourceInputs(
        **{**inputs.__dict__, "names": ((ALPHA.arn, "shared"), (BETA.arn, "Shared"))}
    )
    catalog = build_source(inputs)
    assert [c.origins for c in catalog.collisions] == [tuple(sorted((ALPHA.arn, BETA.arn)))]
    assert len(catalog.entities) == 1


def test_a_configured_name_of_its_own_generated_name_is_no_collision() -> None:
    own = repository_entity_name(US_ID, "alpha/api")
    catalog = build_source(SourceInputs.of(US, CatalogSettings(names={ALPHA.arn: own})))
    assert catalog.collisions == () and len(catalog.entities) == 3


def test_a_renamed_repository_is_still_the_services_own_and_never_claims() -> None:
    # Its Resource carries aws.amazon.com/amazon-ecr-arn, which Backstage hands back as a claim.
    options = CatalogSettings(names={ALPHA.arn: "alpha-api"})
    claims = ClaimIndex.of(
        [Claimer("resource:default/alpha-api", "group:default/x", ("alpha/api",))]
    )
    built = build_catalog([US], options).entities
    assert build_catalog([US], options, claims=claims).entities == built
