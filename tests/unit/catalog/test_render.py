"""Deterministic rendering and YAML 1.2-safe quoting."""

from __future__ import annotations

import gzip
import json
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from service.catalog.render import (
    RenderedBody,
    etag_of,
    join_json,
    render_body,
    to_json_document,
    to_yaml_document,
)

from ...support import GOLDEN


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
    # Fixed bytes, whatever the process or the moment: keys in the transform's order, block
    # style, indentless lists, digit strings quoted.
    entity = {"b": 1, "a": ["x", "y"], "c": {"z": "1", "y": "2"}}
    assert to_yaml_document(entity) == b"---\nb: 1\na:\n- x\n- y\nc:\n  z: '1'\n  y: '2'\n"
    assert to_json_document(entity) == b'{"b":1,"a":["x","y"],"c":{"z":"1","y":"2"}}'


def test_text_is_written_as_it_reads_unicode_unescaped_and_long_lines_unbroken() -> None:
    # An operator reads descriptions; a folded or escaped one reads back the same, but is not.
    long = "word " * 40 + "end"
    document = to_yaml_document({"d": "Ünïcödé", "long": long, "whale": "🐳"})
    # PyYAML escapes what is beyond the Basic Multilingual Plane, even so.
    assert document == f'---\nd: Ünïcödé\nlong: {long}\nwhale: "\\U0001F433"\n'.encode()


def test_json_body_is_one_object_at_the_root() -> None:
    body = join_json([to_json_document({"a": 1}), to_json_document({"b": "é"})])
    assert json.loads(body) == {"items": [{"a": 1}, {"b": "é"}]}


def test_etag_is_a_strong_hash_of_the_body() -> None:
    # The first 160 bits of SHA-256, quoted: the same tag for the same bytes on any replica.
    assert etag_of(b"x") == '"2d711642b726b04401627ca9fbac32f5c8530fb1"'
    assert etag_of(b"x") != etag_of(b"y")
    assert render_body(b"x", with_gzip=False) == RenderedBody(b"x", etag_of(b"x"), None)


def test_json_documents_are_compact_utf_8() -> None:
    assert to_json_document({"b": "é 🐳", "n": [1, None]}) == ('{"b":"é 🐳","n":[1,null]}'.encode())


def test_gzip_is_stable_and_decodes_to_the_body() -> None:
    body = b"abc" * 100
    rendered = render_body(body, with_gzip=True)
    assert rendered.gzipped is not None and gzip.decompress(rendered.gzipped) == body
    # The one field of a gzip stream that depends on the clock is MTIME (bytes 4-7, RFC 1952):
    # it is zero, so the bytes are the same at any moment (test_replicas checks two processes).
    assert rendered.gzipped[4:8] == b"\0\0\0\0"
    stamped = gzip.compress(body, compresslevel=6, mtime=1_767_225_600)
    assert stamped[4:8] != b"\0\0\0\0"
    # Past the 10-byte header (time stamp, flags, OS), the same compressed bytes.
    assert stamped[10:] == rendered.gzipped[10:]


# Strings near every rule of the fast writer: indicators first and inside, ": " and " #",
# digits, timestamps, words YAML reads as booleans, quotes, unicode, spaces and line breaks.
TRICKY_STRINGS = st.one_of(
    st.text(alphabet=st.sampled_from(list("aZ09_/-:#?'\"*&!%@`|>[]{},. ~=+\\\n\té☃")), max_size=12),
    st.sampled_from(
        [
            "yes",
            "No",
            "TRUE",
            "off",
            "null",
            "Null",
            "~",
            "0",
            "007",
            "089",
            "1_000",
            "1:20",
            "2026-01-09T12:00:00Z",
            "2026-01-09",
            "2026-1-9 12:00:00",
            "1.5",
            ".5",
            "1e3",
            "0x1F",
            "0o17",
            "-",
            "- a",
            "a:",
            "a: b",
            "a #b",
            "a#b",
            "https://x/y?z=1#f",
            "123456789012.dkr.ecr.us-east-1.amazonaws.com/team/app",
            "a  b",
            " a",
            "a ",
            "<<",
            "=",
            "sha256:" + "0" * 64,
            "x" * 1001,
        ]
    ),
)
DOCUMENTS = st.recursive(
    st.one_of(TRICKY_STRINGS, st.integers(-5, 10**12), st.booleans(), st.none()),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(TRICKY_STRINGS, inner, max_size=4),
    ),
    max_leaves=12,
)


@settings(max_examples=500, deadline=None)
@given(st.dictionaries(TRICKY_STRINGS, DOCUMENTS, max_size=5))
def test_any_document_reads_back_as_what_was_rendered(entity: dict[str, Any]) -> None:
    document = to_yaml_document(entity)
    assert document.startswith(b"---")
    assert yaml.safe_load(document) == entity


def test_the_golden_catalog_renders_back_to_its_own_bytes() -> None:
    text = (GOLDEN / "catalog.yaml").read_text(encoding="utf-8")
    documents = list(yaml.safe_load_all(text))
    assert len(documents) > 5
    assert b"".join(to_yaml_document(entity) for entity in documents).decode() == text
