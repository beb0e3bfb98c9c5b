"""The configuration reference, written from ``Settings`` itself: every key with its type,
default, bounds, environment variable and description (the field's docstring).

The docs site's configuration page is built from it at build time (``docs/hooks.py``), so the
page cannot drift from the code: a new field appears in it, and a field without a docstring
is caught by a test.
"""

from __future__ import annotations

import json
import types
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, SecretStr
from pydantic.fields import FieldInfo

from . import ENV_PREFIX, Settings

__all__ = ["Key", "defaults", "reference_markdown", "settings_keys"]

_NAMES: dict[Any, str] = {
    str: "string",
    int: "integer",
    float: "number",
    bool: "boolean",
    Path: "path",
    SecretStr: "secret string",
}
# The constraints pydantic keeps in a field's metadata (annotated_types' Ge, Gt, ...), by the
# attribute each one carries, and how the reference writes them.
_BOUNDS = (
    ("ge", "≥"),
    ("gt", ">"),
    ("le", "≤"),
    ("lt", "<"),
    ("min_length", "length ≥"),
    ("max_length", "length ≤"),
)


@dataclass(frozen=True)
class Key:
    """One setting: where it lives, what it takes, and what it does."""

    path: str
    """The key path in the config file, e.g. ``aws.targets[].regions``."""
    type: str
    default: str
    env: str | None
    """The environment variable that sets it; None inside a list (set the list as JSON)."""
    description: str
    section: bool
    """Whether it holds settings of its own (described by the keys under it)."""


def settings_keys(model: type[BaseModel] = Settings) -> list[Key]:
    """Every key of ``model`` and of the sections under it, depth first, in declaration order."""
    return list(_keys(model, prefix="", env=ENV_PREFIX))


def _keys(model: type[BaseModel], prefix: str, env: str | None) -> Iterator[Key]:
    for name, field in model.model_fields.items():
        path = prefix + name
        field_env = None if env is None else env + name.upper()
        nested, in_list = _nested_model(field.annotation)
        yield Key(
            path=path,
            type=_type_name(field.annotation) + _bounds(field),
            default=_default(field),
            env=field_env,
            description=" ".join((field.description or "").split()).replace("``", "`"),
            section=nested is not None,
        )
        if nested is not None:
            child_env = None if in_list or field_env is None else field_env + "__"
            yield from _keys(nested, path + ("[]." if in_list else "."), child_env)


def _members(annotation: Any) -> tuple[Any, ...]:
    """The types of a union (``X | None``), or the annotation alone."""
    if get_origin(annotation) in (Union, types.UnionType):
        return get_args(annotation)
    return (annotation,)


def _nested_model(annotation: Any) -> tuple[type[BaseModel] | None, bool]:
    """The settings model a field holds, and whether it holds a list of them."""
    for member in _members(annotation):
        if isinstance(member, type) and issubclass(member, BaseModel):
            return member, False
        if get_origin(member) is list:
            (item,) = get_args(member)
            if isinstance(item, type) and issubclass(item, BaseModel):
                return item, True
    return None, False


def _type_name(annotation: Any) -> str:
    members = [m for m in _members(annotation) if m is not type(None)]
    names = " or ".join(_one_type(member) for member in members)
    return names + ", or null" if len(members) < len(_members(annotation)) else names


def _one_type(annotation: Any) -> str:
    origin = get_origin(annotation)
    if origin is Literal:
        return " or ".join(f"`{value}`" for value in get_args(annotation))
    if origin is list:
        (item,) = get_args(annotation)
        if isinstance(item, type) and issubclass(item, BaseModel):
            return "list of entries"
        return "list of " + _type_name(item)
    if origin is dict:
        key, value = get_args(annotation)
        return f"mapping of {_type_name(key)} to {_type_name(value)}"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "section"
    return _NAMES.get(annotation, getattr(annotation, "__name__", str(annotation)))


def _bounds(field: FieldInfo) -> str:
    found = []
    for constraint in field.metadata:
        for attribute, word in _BOUNDS:
            value = getattr(constraint, attribute, None)
            if value is not None:
                found.append(f"{word} {value:,}")
    return f" ({', '.join(found)})" if found else ""


def _default(field: FieldInfo) -> str:
    if field.is_required():
        return "required"
    value = field.get_default(call_default_factory=True)
    if isinstance(value, BaseModel):
        return "see below"
    return "`" + json.dumps(value, ensure_ascii=False, default=str) + "`"


def _cell(text: str) -> str:
    return text.replace("|", "\\|") or "—"


def defaults(model: type[BaseModel] = Settings) -> dict[str, Any]:
    """Every key at its default, as a config file would hold it (required keys left out)."""
    found: dict[str, Any] = {}
    for name, field in model.model_fields.items():
        if field.is_required():
            continue
        value = field.get_default(call_default_factory=True)
        if isinstance(value, BaseModel):
            found[name] = defaults(type(value))
        else:
            found[name] = json.loads(json.dumps(value, default=str))
    return found


def reference_markdown(model: type[BaseModel] = Settings) -> str:
    """The reference as Markdown: every default as a file, one table per top-level section,
    then the top-level keys."""
    keys = settings_keys(model)
    sections = [key for key in keys if "." not in key.path and key.section]
    top = [key for key in keys if "." not in key.path and not key.section]
    lines = ["### Every key at its default", "", "```yaml"]
    lines += [yaml.safe_dump(defaults(model), sort_keys=False).rstrip(), "```", ""]
    for section in sections:
        lines += [f"### `{section.path}`", "", section.description, ""]
        lines += _table([key for key in keys if key.path.startswith(section.path + ".")])
    lines += ["### Top-level keys", ""]
    lines += _table(top)
    return "\n".join(lines)


def _table(keys: list[Key]) -> list[str]:
    rows = ["| key | type | default | description |", "| --- | --- | --- | --- |"]
    for key in keys:
        where = f"`{key.path}`"
        if key.env is not None:
            where += f"<br>`{key.env}`"
        rows.append(
            f"| {where} | {_cell(key.type)} | {_cell(key.default)} | {_cell(key.description)} |"
        )
    return [*rows, ""]
