"""Deterministic YAML and JSON bytes for entities, and the strong ETag of a body.

Each entity is rendered once, as its own YAML document and JSON object; a full or filtered
body is then only a concatenation of pre-rendered pieces. Pure: no I/O.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import yaml

from .model import Entity

__all__ = [
    "RenderedBody",
    "etag_of",
    "join_json",
    "join_yaml",
    "render_body",
    "to_json_document",
    "to_yaml_document",
]

_BaseDumper: Any = getattr(yaml, "CSafeDumper", yaml.SafeDumper)

# Backstage parses with the `yaml` package, which follows the YAML 1.2 core schema. PyYAML
# follows 1.1, so it leaves some strings plain that 1.2 reads as numbers (`0o17`, `1e3`,
# `+.5`): an annotation value that turned into a number would fail the entity. Such strings
# are quoted explicitly.
_YAML12_NON_STRING = re.compile(
    r"""^(?:
        [-+]?[0-9]+
      | 0o[0-7]+
      | 0x[0-9a-fA-F]+
      | [-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?
      | [-+]?\.(?:inf|Inf|INF)
      | \.(?:nan|NaN|NAN)
      | ~|null|Null|NULL|true|True|TRUE|false|False|FALSE
    )$""",
    re.VERBOSE,
)


class _CatalogDumper(_BaseDumper):  # type: ignore[misc]
    pass


def _represent_str(dumper: Any, value: str) -> Any:
    style = "'" if _YAML12_NON_STRING.match(value) else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_CatalogDumper.add_representer(str, _represent_str)


def pyyaml_document(entity: Entity) -> bytes:
    """One ``---``-started YAML document as PyYAML writes it; keys keep the transform's order."""
    text: str = yaml.dump(
        entity,
        Dumper=_CatalogDumper,
        explicit_start=True,
        sort_keys=False,
        allow_unicode=True,
        default_flow_style=False,
        width=4096,
    )
    return text.encode("utf-8")


def to_yaml_document(entity: Entity) -> bytes:
    """``pyyaml_document(entity)``, byte for byte, written about ten times faster.

    PyYAML's representer and resolver are Python, ~0.8 ms per entity: most of a cold build
    (cProfile). Entities are plain mappings, lists and scalars, so they are written here
    directly; what PyYAML would do to a string is decided by a conservative pattern, or else by
    asking PyYAML once per distinct string. Anything else (a multi-line string, a float, a
    list of lists) is left to PyYAML whole. tests/test_render.py compares the two on the
    golden catalog and on generated documents.
    """
    if not entity:
        return pyyaml_document(entity)
    out = ["---\n"]
    try:
        _write_mapping(entity, "", out)
    except _LeftToPyYAML:
        return pyyaml_document(entity)
    return "".join(out).encode("utf-8")


class _LeftToPyYAML(Exception):
    pass


# Strings PyYAML writes plain (unquoted) in block context: printable ASCII on one line, no
# leading or trailing space, no indicator where it matters (a first character such as "-",
# "#", "'" or "*"; a ":" not followed by a character; a space followed by "#" or another
# space). Those that would read back as something else are quoted instead: the words below,
# and strings starting with a digit, unless they hold a "/", which no number or timestamp does.
_PLAIN = re.compile(r"[A-Za-z0-9_/](?:[!-9;-~]|:(?=[!-~])| (?=[!-\"$-~]))*\Z")
_NOT_PLAIN = frozenset(
    variant
    for word in ("yes", "no", "true", "false", "on", "off", "null")
    for variant in (word, word.capitalize(), word.upper())
)
# Read back as an integer (or, by YAML 1.2, an octal) or a timestamp: single-quoted.
_QUOTED = re.compile(r"[0-9]+\Z|[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z\Z")
_LONGEST_PLAIN = 1000


def _scalar(value: str) -> str:
    if len(value) <= _LONGEST_PLAIN and _PLAIN.match(value):
        if not value[0].isdigit():
            if value not in _NOT_PLAIN:
                return value
        elif "/" in value:
            return value
        elif _QUOTED.match(value):
            return f"'{value}'"
    return _scalar_as_pyyaml(value)


@functools.lru_cache(maxsize=65536)
def _scalar_as_pyyaml(value: str) -> str:
    text: str = yaml.dump(
        {"k": value},
        Dumper=_CatalogDumper,
        sort_keys=False,
        allow_unicode=True,
        default_flow_style=False,
        width=4096,
    )
    form = text[len("k: ") : -1]
    if "\n" in form or len(value) > _LONGEST_PLAIN:
        raise _LeftToPyYAML
    return form


def _atom(value: object) -> str:
    if isinstance(value, str):
        return _scalar(value)
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if type(value) is int:
        return str(value)
    raise _LeftToPyYAML


@functools.lru_cache(maxsize=4096)
def _key(key: object) -> str:
    # Entities share most of their keys: each is worked out once.
    if not isinstance(key, str) or not key:
        raise _LeftToPyYAML
    form = _scalar(key)
    return form if form == key else _key_as_pyyaml(key)


def _key_as_pyyaml(key: str) -> str:
    # A key PyYAML cannot write as a simple key becomes "? key" on a line of its own.
    text: str = yaml.dump({key: None}, Dumper=_CatalogDumper, allow_unicode=True, width=4096)
    if text.startswith("? ") or text.count("\n") != 1 or not text.endswith(": null\n"):
        raise _LeftToPyYAML
    return text[: -len(": null\n")]


def _write_mapping(mapping: dict[str, Any], indent: str, out: list[str]) -> None:
    for key, value in mapping.items():
        _write_entry(f"{indent}{_key(key)}:", value, indent, out)


def _write_entry(head: str, value: object, indent: str, out: list[str]) -> None:
    # PyYAML's block style: a mapping's entries two spaces in, a list's items at the key's own
    # column ("indentless"), empty ones in flow style.
    if isinstance(value, dict):
        if value:
            out.append(head + "\n")
            _write_mapping(value, indent + "  ", out)
        else:
            out.append(head + " {}\n")
    elif isinstance(value, list):
        if value:
            out.append(head + "\n")
            _write_sequence(value, indent, out)
        else:
            out.append(head + " []\n")
    else:
        out.append(f"{head} {_atom(value)}\n")


def _write_sequence(items: list[Any], indent: str, out: list[str]) -> None:
    for item in items:
        if isinstance(item, dict) and item:
            prefix = f"{indent}- "
            for key, value in item.items():
                _write_entry(f"{prefix}{_key(key)}:", value, indent + "  ", out)
                prefix = f"{indent}  "
        elif isinstance(item, dict | list):
            raise _LeftToPyYAML
        else:
            out.append(f"{indent}- {_atom(item)}\n")


def to_json_document(entity: Entity) -> bytes:
    """One compact JSON object."""
    return json.dumps(entity, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def join_yaml(documents: Iterable[bytes | memoryview]) -> bytes:
    """A multi-document YAML stream."""
    return b"".join(documents)


def join_json(documents: Iterable[bytes]) -> bytes:
    """``{"items": [...]}``: a single object at the root, which Backstage also accepts."""
    return b'{"items":[' + b",".join(documents) + b"]}"


def etag_of(body: bytes) -> str:
    """A strong ETag: the SHA-256 of the exact bytes, so equal bodies get equal tags anywhere."""
    return '"' + hashlib.sha256(body).hexdigest()[:40] + '"'


@dataclass(frozen=True)
class RenderedBody:
    """A response body with its ETag and, computed once, its gzip encoding."""

    body: bytes
    etag: str
    gzipped: bytes | None = None


def render_body(body: bytes, *, with_gzip: bool) -> RenderedBody:
    """Hash (and optionally compress) a body once; ``mtime=0`` keeps the gzip bytes stable."""
    gzipped = gzip.compress(body, compresslevel=6, mtime=0) if with_gzip else None
    return RenderedBody(body=body, etag=etag_of(body), gzipped=gzipped)
