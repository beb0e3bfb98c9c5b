"""An old committed catalog file is hostile input: read bounded, and paired with repositories by
the one rule diff and names-from share; and refs parsed by Backstage's own rules."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from service.catalog.oldfile import (
    MAX_CATALOG_BYTES,
    named_repositories,
    read_catalog_documents,
    read_catalog_file,
)
from service.config.base import RepositoryId, parse_repository_arn, repository_named_by
from service.errors import CatalogUnreadable
from service.names import full_ref, parse_entity_ref

ENTITY = "kind: Resource\nmetadata: {name: a}\n"
API = RepositoryId("123456789012", "us-east-1", "team/api")


def test_a_billion_laughs_is_refused_quickly() -> None:
    lines = ["kind: Resource", "metadata: {name: a}", "a: &a [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(9):
        previous, this = chr(ord("a") + i), chr(ord("b") + i)
        lines.append(f"{this}: &{this} [" + ", ".join([f"*{previous}"] * 10) + "]")
    started = time.monotonic()
    with pytest.raises(CatalogUnreadable, match="document 1 of old.yaml expands to too many"):
        read_catalog_documents("\n".join(lines) + "\n", "old.yaml")
    assert time.monotonic() - started < 5


def test_a_cycle_and_deep_nesting_are_refused() -> None:
    # A cycle is endless: whichever bound it meets first refuses it.
    with pytest.raises(CatalogUnreadable, match="nested more than 64 levels|too many nodes"):
        read_catalog_documents(ENTITY + "spec: &s {loop: *s}\n", "old.yaml")
    deep = "[" * 80 + "]" * 80
    with pytest.raises(CatalogUnreadable, match="nested more than 64 levels"):
        read_catalog_documents(ENTITY + f"spec: {deep}\n", "old.yaml")
    # Past 1,000 levels YAML's own parser refuses.
    with pytest.raises(CatalogUnreadable, match="not valid YAML"):
        read_catalog_documents(ENTITY + "spec: " + "[" * 2000 + "]" * 2000 + "\n", "old.yaml")


def test_honest_aliases_are_read() -> None:
    text = "kind: Resource\nmetadata: {name: a, labels: &l {team: a}}\nspec: {owner: a, x: *l}\n"
    (document,) = read_catalog_documents(text, "f")
    assert document["spec"]["x"] == document["metadata"]["labels"] == {"team": "a"}


def test_a_file_is_read_up_to_its_bound(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    big.write_bytes(ENTITY.encode() + b"#" * MAX_CATALOG_BYTES)
    with pytest.raises(CatalogUnreadable, match="is larger than"):
        read_catalog_file(big)
    with pytest.raises(CatalogUnreadable, match="cannot read"):
        read_catalog_file(tmp_path / "missing.yaml")
    latin = tmp_path / "latin.yaml"
    latin.write_bytes(b"kind: Resource\nmetadata: {name: caf\xe9}\n")
    with pytest.raises(CatalogUnreadable, match="not UTF-8"):
        read_catalog_file(latin)
    with pytest.raises(CatalogUnreadable, match="has no kind or name"):
        read_catalog_documents("kind: [Resource]\nmetadata: {name: a}\n", "f")


@pytest.mark.parametrize(
    "value",
    [
        "arn:aws:ecr:us-east-1:123456789012:repository/team/api",
        " ARN:AWS:ECR:US-EAST-1:123456789012:REPOSITORY/TEAM/API ",
        "123456789012.dkr.ecr.us-east-1.amazonaws.com/team/api",
        "123456789012.dkr.ecr.us-east-1.amazonaws.com/team/api:v1.2",
        "https://123456789012.dkr.ecr.us-east-1.amazonaws.com/team/api@sha256:" + "a" * 64,
        "123456789012.dkr.ecr-fips.us-east-1.amazonaws.com/team/api",
        "123456789012.dkr-ecr.us-east-1.on.aws/team/api",
    ],
)
def test_a_repository_is_named_by_its_arn_or_its_uri(value: str) -> None:
    assert repository_named_by(value) == API


@pytest.mark.parametrize(
    "value",
    [
        "team/api",
        "arn:aws:ecr:us-east-1:123456789012:repository/",
        "arn:aws:s3:::bucket/team/api",
        "123456789012.dkr.ecr.us-east-1.amazonaws.com",
        "12345.dkr.ecr.us-east-1.amazonaws.com/team/api",
        "built from 123456789012.dkr.ecr.us-east-1.amazonaws.com/team/api",
        "arn:aws:ecr:us-east-1:123456789012:repository/" + "x" * 2000,
    ],
)
def test_other_text_names_no_repository(value: str) -> None:
    assert repository_named_by(value) is None


def test_arns_in_settings_are_taken_only_as_ecr_writes_them() -> None:
    assert parse_repository_arn("arn:aws-cn:ecr:cn-north-1:123456789012:repository/a") == (
        "aws-cn",
        RepositoryId("123456789012", "cn-north-1", "a"),
    )
    assert parse_repository_arn("arn:aws:ecr:us-east-1:123456789012:repository/Odd Name") is None
    assert API.arn("aws-us-gov") == "arn:aws-us-gov:ecr:us-east-1:123456789012:repository/team/api"


def test_an_old_entity_names_repositories_anywhere_and_the_services_own_in_annotations() -> None:
    arn = "arn:aws:ecr:us-east-1:123456789012:repository/team/api"
    entity = {
        "kind": "Resource",
        "metadata": {"name": "x", "annotations": {"example.com/note": arn}},
        "spec": {"links": [{"url": "123456789012.dkr.ecr.eu-west-1.amazonaws.com/b"}]},
    }
    assert named_repositories(entity) == {API, RepositoryId("123456789012", "eu-west-1", "b")}
    # The service's own entities name theirs in identifying annotations only.
    assert named_repositories(entity, identifying_only=True) == set()
    entity["metadata"]["annotations"] = {"amazonaws.com/arn": arn}
    assert named_repositories(entity, identifying_only=True) == {API}


@pytest.mark.parametrize(
    ("value", "default_kind", "expected"),
    [
        ("platform", "group", "group:default/platform"),
        ("Group:Ops/Platform", "group", "group:ops/platform"),
        ("user:jdoe", "group", "user:default/jdoe"),
        ("ops/platform", "group", "group:ops/platform"),
        # A "/" ahead of the first ":" makes the rest the name (catalog-model parseRefString).
        ("ops/a:b", "group", "group:ops/a:b"),
        ("x", None, None),
        ("resource:", None, None),
        (":x", "group", None),
        ("a/", "group", None),
        ("", "group", None),
        (5, "group", None),
    ],
)
def test_full_refs_are_backstages(value: object, default_kind: str | None, expected: str) -> None:
    assert full_ref(value, default_kind=default_kind, default_namespace="default") == expected


def test_a_parsed_ref_also_meets_the_name_rules() -> None:
    assert parse_entity_ref("ops/a:b", default_kind="group", default_namespace="default") is None
    assert str(parse_entity_ref("ops/A", default_kind="group", default_namespace="x")) == (
        "group:ops/a"
    )
    # Backstage's namespace rule is a lower-case DNS label.
    assert parse_entity_ref("Ops/a", default_kind="group", default_namespace="x") is None
    # A namespace it takes from the context is not checked; one it is given is.
    assert parse_entity_ref("a", default_kind="group", default_namespace="") is not None
    assert parse_entity_ref("group:Bad_NS/a", default_kind=None, default_namespace="x") is None
