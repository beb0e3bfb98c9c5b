"""Deterministic rendering and YAML 1.2-safe quoting."""

from __future__ import annotations

import gzip
import json

import pytest
import yaml

from service.render import etag_of, join_json, render_body, to_json_document, to_yaml_document


@pytest.mark.parametrize(
    "value", ["0o17", "1e3", "+.5", "0x1F", "123", "true", "null", "~", ".nan", "-.inf", "1_000"]
)
def test_strings_a_yaml_1_2_parser_would_read_as_non_strings_are_quoted(value: str) -> None:
    document = to_yaml_document({"v": value}).decode()
    assert document.splitlines()[1].split(": ", 1)[1][0] in "'\""
    assert yaml.safe_load(document) == {"v": value}


@pytest.mark.parametrize(
    "value", ["line\nbreak", "---", "a: b", "# not a comment", "ünï ☃ 🐳", "x" * 256, ""]
)
def test_hostile_strings_round_trip(value: str) -> None:
    entity = {"metadata": {"description": value, "annotations": {"k": value}}}
    assert list(yaml.safe_load_all(to_yaml_document(entity))) == [entity]


def test_rendering_is_byte_stable() -> None:
    entity = {"b": 1, "a": ["x", "y"], "c": {"z": "1", "y": "2"}}
    assert to_yaml_document(entity) == to_yaml_document(dict(entity))
    assert to_yaml_document(entity).startswith(b"---\nb: 1\na:")


def test_json_body_is_one_object_at_the_root() -> None:
    body = join_json([to_json_document({"a": 1}), to_json_document({"b": "é"})])
    assert json.loads(body) == {"items": [{"a": 1}, {"b": "é"}]}


def test_etag_is_a_strong_hash_of_the_body() -> None:
    assert etag_of(b"x") == etag_of(b"x") != etag_of(b"y")
    assert etag_of(b"x").startswith('"') and not etag_of(b"x").startswith("W/")


def test_gzip_is_stable_and_decodes_to_the_body() -> None:
    first, second = (
        render_body(b"abc" * 100, with_gzip=True),
        render_body(b"abc" * 100, with_gzip=True),
    )
    assert first.gzipped == second.gzipped
    assert first.gzipped is not None and gzip.decompress(first.gzipped) == b"abc" * 100
