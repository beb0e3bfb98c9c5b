"""The configuration reference: written from Settings, so it names every key, as it is."""

from __future__ import annotations

import importlib.util
import types
from pathlib import Path
from typing import Any, Union, get_args, get_origin

import pytest
import yaml
from pydantic import BaseModel, ValidationError

from service.config import Settings, load_settings
from service.config.reference import defaults, reference_markdown, settings_keys

ROOT = Path(__file__).resolve().parents[2]


def models_in(annotation: Any) -> list[tuple[type[BaseModel], bool]]:
    """The settings models a field's annotation holds, each with whether it is in a list."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [(annotation, False)]
    found = []
    for argument in get_args(annotation):
        for model, in_list in models_in(argument):
            found.append((model, in_list or get_origin(annotation) is list))
    return found


def every_field(model: type[BaseModel], prefix: str = "") -> list[str]:
    """Every key path under ``model``, found here on its own rather than by the generator."""
    paths = []
    for name, field in model.model_fields.items():
        paths.append(prefix + name)
        for nested, in_list in models_in(field.annotation):
            paths += every_field(nested, prefix + name + ("[]." if in_list else "."))
    return paths


def test_the_walk_finds_the_nested_sections() -> None:
    # The independent walk itself must reach into lists and optional sections.
    paths = every_field(Settings)
    assert {"aws.targets[].regions", "aws.organization.role_name"} <= set(paths)
    assert "backstage.claims.interval_seconds" in paths
    assert len(paths) > 70


def test_every_settings_field_is_in_the_reference() -> None:
    page = reference_markdown()
    missing = [path for path in every_field(Settings) if f"`{path}`" not in page]
    assert not missing, f"keys missing from the configuration reference: {missing}"
    assert [key.path for key in settings_keys()] == every_field(Settings)


def test_every_settings_field_has_a_description() -> None:
    undescribed = [key.path for key in settings_keys() if not key.description]
    assert not undescribed, (
        f"give these fields a docstring (the line under the field), which the configuration "
        f"reference prints: {undescribed}"
    )


def test_the_reference_states_types_defaults_bounds_and_variables() -> None:
    keys = {key.path: key for key in settings_keys()}
    port = keys["server.port"]
    assert (port.type, port.default, port.env) == (
        "integer (≥ 0, ≤ 65,535)",
        "`8080`",
        "ECR_CATALOG_SERVER__PORT",
    )
    regions = keys["aws.targets[].regions"]
    assert (regions.default, regions.env) == ("required", None)
    assert keys["aws.targets"].env == "ECR_CATALOG_AWS__TARGETS"
    assert keys["aws.proxies"].type == "mapping of `http` or `https` to string, or null"
    assert keys["log_format"].type == "`text` or `json`"
    assert keys["backstage.token"].type == "secret string, or null"
    assert keys["catalog.label_tag_keys"].default.startswith('`["team", "environment"')


def test_each_documented_variable_sets_its_key(monkeypatch: pytest.MonkeyPatch) -> None:
    # A number or boolean variable set to nonsense must fail on exactly the documented key: so
    # the name in the reference is the one pydantic-settings reads.
    checked = 0
    for key in settings_keys():
        if key.env is None or not key.type.startswith(("integer", "number", "boolean")):
            continue
        monkeypatch.setenv(key.env, "not-a-value")
        with pytest.raises(ValidationError) as raised:
            Settings()
        locations = {".".join(str(part) for part in e["loc"]) for e in raised.value.errors()}
        assert key.path in locations, (key.env, locations)
        monkeypatch.delenv(key.env)
        checked += 1
    assert checked > 30


def test_the_defaults_shown_load_as_the_defaults(tmp_path: Path) -> None:
    page = reference_markdown()
    block = page.split("```yaml\n", 1)[1].split("```", 1)[0]
    assert yaml.safe_load(block) == defaults()
    path = tmp_path / "defaults.yaml"
    path.write_text(block, encoding="utf-8")
    assert load_settings(path) == Settings()


def test_the_docs_hook_puts_the_reference_into_the_configuration_page() -> None:
    spec = importlib.util.spec_from_file_location("docs_hooks", ROOT / "docs" / "hooks.py")
    assert spec is not None and spec.loader is not None
    hooks = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hooks)
    markdown = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    assert hooks.MARKER in markdown

    def page(uri: str) -> Any:
        return types.SimpleNamespace(file=types.SimpleNamespace(src_uri=uri))

    built = hooks.on_page_markdown(markdown, page=page("configuration.md"))
    assert hooks.MARKER not in built
    assert all(f"`{path}`" in built for path in every_field(Settings))
    # Other pages pass through as they are.
    assert hooks.on_page_markdown(markdown, page=page("cli.md")) == markdown


def test_a_union_annotation_is_walked() -> None:
    # The walk's own helper, on the forms Settings uses: X | None, list[X].
    class Inner(BaseModel):
        value: int = 1

    assert models_in(Inner | None) == [(Inner, False)]
    assert models_in(list[Inner]) == [(Inner, True)]
    assert models_in(Union[list[Inner], None]) == [(Inner, True)]  # noqa: UP007
    assert models_in(types.NoneType) == []
