"""`ecr-catalog diff` against a live registry (moto), as a user runs it before migrating."""

from __future__ import annotations

import json
from pathlib import Path

from ..support import GOLDEN, MotoServer
from .test_cli import config, run_cli  # noqa: F401  (the fixture)

OLD = GOLDEN / "ecr-registry.old.yaml"


def test_diff_command_against_a_registry(config: Path, moto: MotoServer, tmp_path: Path) -> None:  # noqa: F811
    result = run_cli("diff", str(OLD), "--config", str(config), "--format", "json")
    assert result.returncode == 1, result.stderr
    diff = json.loads(result.stdout)
    renamed = {r["ref"]: r["renamed_to"] for r in diff["removed"]}
    assert renamed == {
        "resource:default/alpha-api": "resource:default/alpha--api.us-east-1.123456789012",
        "resource:default/retired-repo": None,
    }
    assert "domain:default/delivery" in diff["added"]
    assert "system:default/container-registry" in diff["added"]
    changed = {c["ref"]: c["fields"] for c in diff["changed"]}
    assert "spec.system" in changed["component:default/ecr-registry"]
    text = run_cli("diff", str(OLD), "--config", str(config))
    assert text.returncode == 1
    assert (
        b"renamed: same repository as resource:default/alpha--api.us-east-1.123456789012"
        in text.stdout
    )
    broken = tmp_path / "broken.yaml"
    broken.write_text("kind: [", encoding="utf-8")
    failed = run_cli("diff", str(broken), "--config", str(config))
    assert failed.returncode == 2 and b"not valid YAML" in failed.stderr
    missing = run_cli("diff", str(tmp_path / "nope.yaml"), "--config", str(config))
    assert missing.returncode == 2 and b"cannot read" in missing.stderr
