"""names-from: the catalog.names that keep an old file's refs, found without AWS."""

from __future__ import annotations

from typing import Any

import yaml

from service.catalog.diff import diff_catalogs
from service.catalog.migration import names_from
from service.catalog.naming import repository_entity_name
from service.catalog.oldfile import read_catalog_file
from service.config import CatalogSettings
from service.model import SourceId

from ...catalog_build import build_catalog
from ...records import ACCOUNT, repository, source
from ...support import GOLDEN

US = SourceId(ACCOUNT, "us-east-1")
ARN = f"arn:aws:ecr:us-east-1:{ACCOUNT}:repository/alpha/api"


def old_resource(name: str, namespace: str | None = None, **annotations: str) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name, "annotations": annotations}
    if namespace:
        metadata["namespace"] = namespace
    return {"kind": "Resource", "metadata": metadata, "spec": {"type": "x", "owner": "o"}}


def every_source(_source: SourceId) -> bool:
    return True


def aws(_region: str) -> str:
    return "aws"


def find(old: list[dict[str, Any]], options: CatalogSettings | None = None, **kwargs: Any) -> Any:
    return names_from(
        old,
        options or CatalogSettings(),
        reads=kwargs.get("reads", every_source),
        partition_of=kwargs.get("partition_of", aws),
    )


def test_the_golden_old_file_keeps_its_repository_name_and_lists_the_rest() -> None:
    found = find(read_catalog_file(GOLDEN / "ecr-registry.old.yaml"))
    assert found.names == {ARN: "alpha-api"}
    # The Component keeps its ref (the service emits it); retired-repo names no repository.
    assert found.unmatched == ("resource:default/retired-repo",)
    assert found.problems == () and found.same == ()


def test_only_names_that_differ_are_printed_and_the_output_loads_as_settings() -> None:
    generated = repository_entity_name(US, "beta/web")
    old = [
        old_resource(
            "alpha-api",
            **{"example.com/image": f"{ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com/alpha/api:v1"},
        ),
        old_resource(generated, **{"amazonaws.com/arn": ARN.replace("alpha/api", "beta/web")}),
        old_resource(
            "Gamma_CN",
            **{"amazonaws.com/arn": f"arn:aws-cn:ecr:cn-north-1:{ACCOUNT}:repository/gamma"},
        ),
    ]
    partitions = {"us-east-1": "aws", "cn-north-1": "aws-cn"}
    found = find(old, partition_of=partitions.__getitem__)
    assert found.names == {
        ARN: "alpha-api",
        f"arn:aws-cn:ecr:cn-north-1:{ACCOUNT}:repository/gamma": "Gamma_CN",
    }
    assert found.same == (f"resource:default/{generated}".lower(),)
    text = found.as_yaml("old.yaml")
    assert text.startswith("# catalog.names from old.yaml:\n")
    loaded = yaml.safe_load(text)
    assert CatalogSettings(**loaded["catalog"]).names == found.names


def test_after_the_switch_diff_shows_nothing_removed_or_renamed_that_was_kept() -> None:
    records = source(repository("alpha/api", tags={"owner": "alpha"}), repository("beta/web"))
    old = read_catalog_file(GOLDEN / "ecr-registry.old.yaml")
    before = diff_catalogs(old, build_catalog([records], CatalogSettings()).entities)
    assert before.renamed == {
        "resource:default/alpha-api": f"resource:default/alpha--api.us-east-1.{ACCOUNT}"
    }
    found = find(old)
    after = diff_catalogs(
        old, build_catalog([records], CatalogSettings(names=found.names)).entities
    )
    assert after.renamed == {}
    assert set(after.removed) == set(found.unmatched)
    # owner: alpha in the old file is group:default/alpha: no change.
    changed = {c.ref: c.fields for c in after.changed}
    assert "spec.owner" not in changed["resource:default/alpha-api"]


def test_sources_the_config_does_not_read_are_left_out() -> None:
    old = [old_resource("alpha-api", **{"amazonaws.com/arn": ARN})]
    found = find(old, reads=lambda source: source.region == "eu-west-1")
    assert found.names == {} and found.unmatched == ()
    assert found.problems == (
        "resource:default/alpha-api: names only repositories of sources the config does not read",
    )


def test_entries_the_settings_would_refuse_are_reported_not_printed() -> None:
    beta_generated = repository_entity_name(US, "beta/web")
    old = [
        # Two repositories in one Resource: which one keeps the name?
        old_resource("both", a=ARN, b=ARN.replace("alpha/api", "beta/web")),
        # One repository in two Resources.
        old_resource("gamma-1", a=ARN.replace("alpha/api", "gamma")),
        old_resource("gamma-2", a=ARN.replace("alpha/api", "gamma")),
        # A name Backstage took then, but not the settings: a registry's form.
        old_resource(f"ecr-{ACCOUNT}-us-east-1", a=ARN.replace("alpha/api", "delta")),
        # The name the service makes for another repository of the file.
        old_resource(beta_generated.upper(), a=ARN),
        old_resource("beta-web", a=ARN.replace("alpha/api", "beta/web")),
    ]
    found = find(old)
    assert found.names == {ARN.replace("alpha/api", "beta/web"): "beta-web"}
    problems = "\n".join(found.problems)
    assert "resource:default/both: names more than one repository" in problems
    assert "resource:default/gamma-1: shares its repository" in problems
    assert "resource:default/gamma-2: shares its repository" in problems
    assert "has the form of a registry's name" in problems
    assert f"the one the service makes for {ARN.replace('alpha/api', 'beta/web')}" in problems


def test_a_name_in_another_namespace_is_kept_and_flagged() -> None:
    found = find([old_resource("alpha-api", namespace="ops", a=ARN)])
    assert found.names == {ARN: "alpha-api"}
    assert (
        "in namespace ops, and the service serves catalog.namespace default" in (found.problems[0])
    )


def test_the_report_says_what_each_list_holds() -> None:
    found = find(read_catalog_file(GOLDEN / "ecr-registry.old.yaml"))
    assert list(found.report()) == [
        "1 entries for catalog.names; 0 old Resources have the names the service makes already",
        "1 old entities match no repository the config reads: Backstage deletes them at the "
        "switch unless another location emits them",
        "  resource:default/retired-repo",
    ]


def test_a_system_defined_elsewhere_is_unmatched_when_the_service_does_not_emit_it() -> None:
    old = [
        {"kind": "System", "metadata": {"name": "container-registry"}, "spec": {"owner": "o"}},
        {"kind": "Domain", "metadata": {"name": "delivery"}, "spec": {"owner": "o"}},
    ]
    assert find(old).unmatched == ()
    options = CatalogSettings(emit_system=False)
    assert find(old, options).unmatched == ("system:default/container-registry",)
