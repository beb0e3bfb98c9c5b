"""The Domain, System and Component: emitted or only referred to, with descriptions from the
settings."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import yaml

from service.catalog.entities import core_entities
from service.catalog.validate import entity_problems
from service.config import CatalogSettings
from service.model import SourceId
from service.reading import SourceListing

from ...catalog_build import build_snapshot
from ...records import ACCOUNT, repository, source

US = SourceId(ACCOUNT, "us-east-1")


def served(options: CatalogSettings) -> list[dict]:
    """The documents of /entities.yaml, as Backstage would read them."""
    records = source(repository("team/api"))
    snapshot = build_snapshot(
        SourceListing(sources=(US,)),
        {US: records},
        {},
        options,
        datetime(2026, 1, 9, 12, tzinfo=UTC),
        refuse_any_rejection=True,
    )
    return [d for d in yaml.safe_load_all(snapshot.yaml.body) if d]


@pytest.mark.parametrize(
    ("settings", "absent"),
    [
        ({"emit_domain": False}, {"Domain"}),
        ({"emit_system": False}, {"System"}),
        ({"emit_domain": False, "emit_system": False}, {"Domain", "System"}),
    ],
)
def test_a_domain_or_system_defined_elsewhere_is_referred_to_but_not_emitted(
    settings: dict, absent: set[str]
) -> None:
    options = CatalogSettings(domain="delivery", system="platform-registry", **settings)
    documents = served(options)
    kinds = {d["kind"] for d in documents}
    assert kinds == {"Domain", "System", "Component", "Resource"} - absent
    # Everything served still validates (the snapshot refuses any rejection), and still
    # refers to the Domain and System by their configured names.
    assert all(entity_problems(d) == [] for d in documents)
    component = next(d for d in documents if d["kind"] == "Component")
    assert component["spec"]["system"] == "platform-registry"
    resources = [d for d in documents if d["kind"] == "Resource"]
    assert {d["spec"]["system"] for d in resources} == {"platform-registry"}
    if "System" not in absent:
        system = next(d for d in documents if d["kind"] == "System")
        assert system["spec"]["domain"] == "delivery"


def test_by_default_all_three_are_emitted_with_descriptions_free_of_adr_numbers() -> None:
    built = core_entities(CatalogSettings(), ["ecr-123456789012-us-east-1"])
    descriptions = {b.entity["kind"]: b.entity["metadata"]["description"] for b in built}
    assert descriptions == {
        "Domain": "Software delivery: build, publish, deploy.",
        "System": "The AWS ECR container registry and its repositories.",
        "Component": "AWS Elastic Container Registry.",
    }


def test_descriptions_are_settings() -> None:
    options = CatalogSettings(
        domain_description="Delivery (see ADR-7).",
        system_description="Images: 'quoted' and: colons\nand lines",
        component_description="ECR.",
    )
    documents = served(options)
    descriptions = {d["kind"]: d["metadata"].get("description") for d in documents}
    assert descriptions["Domain"] == "Delivery (see ADR-7)."
    assert descriptions["System"] == "Images: 'quoted' and: colons\nand lines"
    assert descriptions["Component"] == "ECR."
