"""`ecr-catalog names-from` and the switch it prepares, as a user runs them: the printed names
committed into the config, `diff` against the old file then shows no ref the file had removed or
renamed, and a bad `catalog.names` stops the service at start-up."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from ..support import MotoServer
from .test_cli import config, run_cli, served, wait_ready  # noqa: F401  (the fixtures)

ACCOUNT = "123456789012"
ALPHA_API = f"arn:aws:ecr:us-east-1:{ACCOUNT}:repository/alpha/api"
ALPHA_WEB = f"arn:aws:ecr:us-east-1:{ACCOUNT}:repository/alpha/web"

# What a sync script could have committed: repositories named after themselves, found by an ARN
# annotation, by an image URI with its tag, or already under the name the service makes.
OLD = f"""\
apiVersion: backstage.io/v1alpha1
kind: Component
metadata: {{name: ecr-registry}}
spec: {{type: service, lifecycle: production, owner: platform-team, system: container-registry}}
---
apiVersion: backstage.io/v1alpha1
kind: Resource
metadata:
  name: alpha-api
  annotations: {{amazonaws.com/arn: "{ALPHA_API}"}}
spec: {{type: ecr-repository, owner: alpha, system: container-registry}}
---
apiVersion: backstage.io/v1alpha1
kind: Resource
metadata:
  name: alpha-web
  annotations:
    example.com/image: {ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com/alpha/web:latest
spec: {{type: ecr-repository, owner: platform-team}}
---
apiVersion: backstage.io/v1alpha1
kind: Resource
metadata:
  name: beta.ap-southeast-2.{ACCOUNT}
  annotations: {{amazonaws.com/arn: "arn:aws:ecr:ap-southeast-2:{ACCOUNT}:repository/beta"}}
spec: {{type: ecr-repository, owner: platform-team}}
---
apiVersion: backstage.io/v1alpha1
kind: Resource
metadata:
  name: gamma
  annotations: {{amazonaws.com/arn: "arn:aws:ecr:eu-west-1:{ACCOUNT}:repository/gamma"}}
spec: {{type: ecr-repository, owner: platform-team}}
---
apiVersion: backstage.io/v1alpha1
kind: Resource
metadata: {{name: retired-repo}}
spec: {{type: ecr-repository, owner: platform-team}}
"""


def test_the_printed_names_keep_every_ref_the_old_file_had(
    config: Path,  # noqa: F811
    moto: MotoServer,
    tmp_path: Path,
) -> None:
    old = tmp_path / "ecr-registry.yaml"
    old.write_text(OLD, encoding="utf-8")
    before = json.loads(
        run_cli("diff", str(old), "--config", str(config), "--format", "json").stdout
    )
    assert {r["ref"] for r in before["removed"] if r["renamed_to"]} == {
        "resource:default/alpha-api",
        "resource:default/alpha-web",
    }

    printed = run_cli("names-from", str(old), "--config", str(config))
    assert printed.returncode == 0, printed.stderr
    names = yaml.safe_load(printed.stdout)["catalog"]["names"]
    assert names == {ALPHA_API: "alpha-api", ALPHA_WEB: "alpha-web"}
    report = printed.stderr.decode()
    assert "2 entries for catalog.names; 1 old Resources have the names" in report
    assert "  resource:default/retired-repo\n" in report
    assert "resource:default/gamma: names only repositories of sources the config does not" in (
        report
    )

    # The switch: the printed mapping committed into the config file.
    switched = tmp_path / "switched.yaml"
    settings = yaml.safe_load(config.read_text(encoding="utf-8"))
    settings["catalog"] = yaml.safe_load(printed.stdout)["catalog"]
    switched.write_text(yaml.safe_dump(settings), encoding="utf-8")
    after = json.loads(
        run_cli("diff", str(old), "--config", str(switched), "--format", "json").stdout
    )
    # Removed: only what names-from said matches nothing it can keep. Renamed: nothing.
    assert after["removed"] == [
        {"ref": "resource:default/gamma", "renamed_to": None},
        {"ref": "resource:default/retired-repo", "renamed_to": None},
    ]
    changed = {c["ref"]: c["fields"] for c in after["changed"]}
    # owner: alpha is group:default/alpha, as the service writes it: no change.
    assert "spec.owner" not in changed.get("resource:default/alpha-api", [])


def test_names_from_needs_no_config_and_refuses_a_hostile_file(tmp_path: Path) -> None:
    old = tmp_path / "ecr-registry.yaml"
    old.write_text(OLD, encoding="utf-8")
    bare = run_cli("names-from", str(old))
    assert bare.returncode == 0, bare.stderr
    assert b"no sources configured: taking every repository" in bare.stderr
    names = yaml.safe_load(bare.stdout)["catalog"]["names"]
    assert names[f"arn:aws:ecr:eu-west-1:{ACCOUNT}:repository/gamma"] == "gamma"
    bomb = tmp_path / "bomb.yaml"
    lines = ["kind: Resource", "metadata: {name: a}", "a: &a [x, x, x, x, x, x, x, x, x, x]"]
    lines += [
        f"{chr(98 + i)}: &{chr(98 + i)} [" + ", ".join([f"*{chr(97 + i)}"] * 10) + "]"
        for i in range(9)
    ]
    bomb.write_text("\n".join(lines) + "\n", encoding="utf-8")
    refused = run_cli("names-from", str(bomb))
    assert refused.returncode == 2 and b"expands to too many nodes" in refused.stderr
    assert refused.stdout == b""
    missing = run_cli("names-from", str(tmp_path / "nope.yaml"))
    assert missing.returncode == 2 and b"cannot read" in missing.stderr


@pytest.mark.parametrize("command", ["serve", "render"])
def test_a_name_given_twice_stops_the_service_at_start_up_naming_both(
    tmp_path: Path, command: str
) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "aws": {"targets": [{"regions": ["us-east-1"], "account_id": ACCOUNT}]},
                "catalog": {"names": {ALPHA_API: "alpha", ALPHA_WEB: "alpha"}},
            }
        ),
        encoding="utf-8",
    )
    result = run_cli(command, "--config", str(path))
    assert result.returncode == 2
    message = result.stderr.decode()
    assert (
        f"catalog.names: 'alpha' is given to more than one repository: '{ALPHA_API}', '{ALPHA_WEB}'"
        in message
    )
    assert "Traceback" not in message


def test_diff_reads_a_running_service_with_the_same_bounds(
    served: str,  # noqa: F811
    tmp_path: Path,
) -> None:
    old = tmp_path / "ecr-registry.yaml"
    old.write_text(OLD, encoding="utf-8")
    wait_ready(served)
    result = run_cli("diff", str(old), "--url", f"{served}/entities.yaml", "--format", "json")
    assert result.returncode == 1, result.stderr
    renamed = {r["ref"]: r["renamed_to"] for r in json.loads(result.stdout)["removed"]}
    assert renamed["resource:default/alpha-api"] == (
        f"resource:default/alpha--api.us-east-1.{ACCOUNT}"
    )
    missing = run_cli("diff", str(old), "--url", f"{served}/nope.yaml")
    assert missing.returncode == 2 and b"answered 404" in missing.stderr
    refused = run_cli("diff", str(old), "--url", "http://127.0.0.1:9/entities.yaml")
    assert refused.returncode == 2 and b"cannot read http://127.0.0.1:9/entities.yaml" in (
        refused.stderr
    )
    assert b"Traceback" not in refused.stderr
