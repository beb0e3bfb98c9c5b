"""catalog.names at start-up: every entry a valid name for one repository, or a ConfigError that
names the entries at fault; and the Domain, System and description settings beside it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from service.catalog.naming import registry_entity_name, repository_entity_name
from service.config import CatalogSettings, load_settings
from service.config.names import MAX_CONFIGURED_NAMES
from service.errors import ConfigError
from service.model import SourceId

A = "arn:aws:ecr:us-east-1:123456789012:repository/alpha/api"
B = "arn:aws:ecr:us-east-1:123456789012:repository/beta/web"
CN = "arn:aws-cn:ecr:cn-north-1:123456789012:repository/alpha/api"


def refused(tmp_path: Path, names: dict[str, str]) -> str:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({"catalog": {"names": names}}), encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_settings(path, environ={})
    message = str(caught.value)
    assert f"{path}: catalog.names: " in message
    return message


def test_names_load_from_the_file_and_from_the_environment(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({"catalog": {"names": {A: "alpha-api", CN: "Alpha_CN"}}}))
    assert load_settings(path, environ={}).catalog.names == {A: "alpha-api", CN: "Alpha_CN"}
    env = {"ECR_CATALOG_CATALOG__NAMES": json.dumps({B: "beta-web"})}
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ECR_CATALOG_CATALOG__NAMES", env["ECR_CATALOG_CATALOG__NAMES"])
        assert load_settings().catalog.names == {B: "beta-web"}
        patch.setenv("ECR_CATALOG_CATALOG__NAMES", json.dumps({B: "-bad"}))
        with pytest.raises(ConfigError, match=r"settings: catalog.names: '-bad' \(for "):
            load_settings()


def test_a_name_given_twice_is_refused_naming_both_entries(tmp_path: Path) -> None:
    message = refused(tmp_path, {A: "shared", B: "Shared"})
    # Refs ignore case: "shared" and "Shared" are one ref.
    assert f"is given to more than one repository: '{A}', '{B}'" in message


@pytest.mark.parametrize(
    ("names", "words"),
    [
        ({A: "-dash-first"}, f"'-dash-first' (for {A}) is not a valid Backstage entity name"),
        ({A: "x" * 64}, "is not a valid Backstage entity name"),
        ({A: "has space"}, "is not a valid Backstage entity name"),
        ({"alpha/api": "alpha-api"}, "'alpha/api' is not an ECR repository ARN"),
        ({A.replace(":ecr:", ":s3:"): "a"}, "is not an ECR repository ARN"),
        ({A.replace("123456789012", "12345"): "a"}, "is not an ECR repository ARN"),
        ({A.replace("us-east-1", "mars"): "a"}, "is not an ECR repository ARN"),
        ({A + "/UPPER": "a"}, "is not an ECR repository ARN"),
        ({A + "\n": "a"}, "is not an ECR repository ARN"),
        # Another source's generated names end in its region and account: never taken.
        ({A: "x.eu-west-1.123456789012"}, "ends in .eu-west-1.123456789012"),
        ({A: "x.us-east-1.210987654321"}, "ends in .us-east-1.210987654321"),
        # A registry's name belongs to the registry.
        ({A: "ecr-123456789012-us-east-1"}, "has the form of a registry's name"),
        ({A: "ECR-210987654321-eu-west-1"}, "has the form of a registry's name"),
    ],
)
def test_each_broken_rule_is_refused_naming_the_entry(
    tmp_path: Path, names: dict[str, str], words: str
) -> None:
    assert words in refused(tmp_path, names)


def test_every_problem_is_said_at_once_up_to_a_bound(tmp_path: Path) -> None:
    message = refused(tmp_path, {A: "-a", B: "-b"})
    assert "'-a'" in message and "'-b'" in message
    many = {f"{A}-{i}": f"-x{i}" for i in range(25)}
    assert "; and 5 more" in refused(tmp_path, many)


def test_a_hostile_entry_is_shown_escaped_and_cut_short(tmp_path: Path) -> None:
    message = refused(tmp_path, {"\x1b[31m" + "a" * 1000: "x"})
    assert "\x1b" not in message and "\\x1b[31m" in message and "a" * 301 not in message


def test_the_mapping_is_bounded() -> None:
    with pytest.raises(ValueError, match=f"at most {MAX_CONFIGURED_NAMES}"):
        CatalogSettings(names={f"{A}{i}": f"n{i}" for i in range(MAX_CONFIGURED_NAMES + 1)})


def test_the_service_s_own_names_pass_and_registry_names_do_not() -> None:
    source = SourceId("123456789012", "us-east-1")
    # A repository may keep the name it is generated, and a name of its own source's form
    # (the shortened names before issue 23).
    generated = repository_entity_name(source, "alpha/api")
    old_short = "payments-service-production-ima-7c3d37f8.us-east-1.123456789012"
    assert CatalogSettings(names={A: generated}).names == {A: generated}
    assert CatalogSettings(names={A: old_short}).names == {A: old_short}
    with pytest.raises(ValueError, match="registry"):
        CatalogSettings(names={A: registry_entity_name(source)})


def test_the_domain_system_and_descriptions_are_settings() -> None:
    options = CatalogSettings()
    assert (options.emit_domain, options.emit_system) == (True, True)
    assert "ADR" not in options.system_description
    options = CatalogSettings(
        emit_domain=False, emit_system=False, system_description="Ours.", domain="d"
    )
    assert options.domain == "d" and options.system_description == "Ours."
    with pytest.raises(ValueError):
        CatalogSettings(component_description="")
    with pytest.raises(ValueError):
        CatalogSettings(domain_description="x" * 1001)
