"""The committed OpenAPI spec is what the app serves."""

from __future__ import annotations

from service.cli import openapi_yaml

from ..support import OPENAPI

COMMITTED = OPENAPI


def test_committed_spec_matches_the_app() -> None:
    assert COMMITTED.read_text(encoding="utf-8") == openapi_yaml(), (
        "openapi/openapi.yaml is out of date: run `make openapi`"
    )


def test_operation_ids_are_stable_names() -> None:
    text = openapi_yaml()
    for operation in ("entities_yaml", "entities_json", "entities", "entity", "readyz"):
        assert f"operationId: {operation}\n" in text
