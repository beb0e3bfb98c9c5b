"""Rewrite tests/golden/catalog.yaml from the golden sources: `make golden`, then review it."""

from __future__ import annotations

from .support import GOLDEN
from .unit.catalog.test_entities import golden_catalog


def main() -> None:
    (GOLDEN / "catalog.yaml").write_text(golden_catalog(), encoding="utf-8")
    print(f"wrote {GOLDEN / 'catalog.yaml'}; review it with git diff")


if __name__ == "__main__":
    main()
