"""Deterministic YAML and JSON bytes for entities, and the strong ETag of a body.

Each entity is rendered once, as its own YAML document and JSON object; a full or filtered body
is then only a concatenation of pre-rendered pieces. YAML is PyYAML's safe dumper (its C emitter
where it is built) with fixed options, so the same entity gives the same bytes in every replica.
Pure: no I/O.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import yaml

from ..model import Entity

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


def to_yaml_document(entity: Entity) -> bytes:
    """One ``---``-started YAML document; keys keep the transform's order."""
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
