"""What a release is made of: the licence, the changelog, the lock and the Dockerfile's use of
it, all agreeing with pyproject.toml and with the version."""

from __future__ import annotations

import hashlib
import re
import tomllib

import yaml

import service

from ..release import (
    DOCKERFILE,
    LOCK,
    ROOT,
    copies,
    declared_dependencies,
    dockerfile_stages,
    lock_problems,
    lock_python,
    read_lock,
    run_commands,
)

# The Apache License 2.0 as the ASF publishes it (LICENSE-2.0.txt): its SHA-256.
APACHE_2_0_SHA256 = "cfc7749b96f63bd31c3c42b5c471bf756814053e847c10f3eb003417bc523d30"


def test_the_license_is_the_full_apache_2_0_text_that_pyproject_names() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert pyproject["project"]["license"] == "Apache-2.0"
    text = (ROOT / "LICENSE").read_bytes()
    assert hashlib.sha256(text).hexdigest() == APACHE_2_0_SHA256
    assert b"END OF TERMS AND CONDITIONS" in text


RELEASE = re.compile(r"^## \[(\d+\.\d+\.\d+)\] - (\d{4}-\d{2}-\d{2})$")
KINDS = {"Added", "Changed", "Deprecated", "Removed", "Fixed", "Security"}


def test_the_changelog_is_keep_a_changelog_and_has_this_version() -> None:
    lines = (ROOT / "CHANGELOG.md").read_text().splitlines()
    assert lines[0] == "# Changelog"
    releases = [line for line in lines if line.startswith("## ")]
    # Unreleased first, then the releases, newest first.
    assert releases[0] == "## [Unreleased]"
    versions = []
    for heading in releases[1:]:
        match = RELEASE.match(heading)
        assert match, f"not a release heading: {heading!r}"
        versions.append(tuple(int(p) for p in match.group(1).split(".")))
    assert versions == sorted(versions, reverse=True)
    assert releases[1].startswith(f"## [{service.__version__}] - "), "add this version's entry"
    kinds = {line[4:] for line in lines if line.startswith("### ")}
    assert kinds and kinds <= KINDS, kinds - KINDS


def test_the_image_tag_of_the_kustomization_is_this_version() -> None:
    kustomization = yaml.safe_load(
        (ROOT / "deploy" / "kubernetes" / "base" / "kustomization.yaml").read_text()
    )
    (image,) = kustomization["images"]
    assert image["name"] == "ecr-catalog"
    assert image["newTag"] == service.__version__


def test_the_lock_pins_every_declared_dependency_with_hashes() -> None:
    text = LOCK.read_text()
    assert lock_problems(declared_dependencies(), text) == [], "run `make lock`"
    pins = read_lock(text)
    assert {"fastapi", "uvicorn", "aioboto3", "botocore", "pydantic-core"} <= pins.keys()
    # Dev and test tools never reach the image.
    assert not {"pytest", "moto", "mypy", "ruff", "pip-tools"} & pins.keys()


def test_a_stale_lock_is_caught() -> None:
    text = LOCK.read_text()
    declared = declared_dependencies()
    fastapi = next(d for d in declared if d.startswith("fastapi"))
    # A dependency added to pyproject.toml without `make lock`:
    assert lock_problems([*declared, "rich>=13"], text) == [
        "rich>=13 is declared but not in the lock"
    ]
    # one removed from it:
    (problem,) = lock_problems([d for d in declared if d != fastapi], text)
    assert problem.startswith("fastapi==") and "no longer declares it" in problem
    # a lower bound raised past the pinned version:
    (problem,) = lock_problems([d if d != fastapi else "fastapi>=99" for d in declared], text)
    assert "does not satisfy the declared fastapi>=99" in problem
    # an extra declared that the lock did not resolve:
    raised = [d if d != fastapi else "fastapi[all]>=0.115,<1" for d in declared]
    (problem,) = lock_problems(raised, text)
    assert "lacks the declared extras" in problem
    # a pin edited by hand, without its hash or to a range:
    edited = re.sub(
        r"(?m)^(fastapi==\S+) \\\n(    --hash=\S+ \\\n)*    --hash=\S+\n", r"\1\n", text
    )
    assert lock_problems(declared, edited) == [
        f"{read_lock(edited)['fastapi'].requirement}: no sha256 hash"
    ]
    ranged = re.sub(r"(?m)^fastapi==\S+", "fastapi>=0.115", text)
    assert lock_problems(declared, ranged) == ["fastapi>=0.115: not pinned with == to one version"]


def test_the_lock_is_for_the_python_of_the_image() -> None:
    bases = [stage[0].arguments.split()[0] for stage in dockerfile_stages(DOCKERFILE.read_text())]
    pythons = set()
    for base in bases:
        match = re.fullmatch(r"python:(\d+\.\d+)-[\w.-]+", base)
        assert match, f"not an official Python image: {base}"
        pythons.add(match.group(1))
    assert pythons == {lock_python(LOCK.read_text())}, "run `make lock` with the image's Python"


def test_the_image_installs_exactly_the_lock_then_the_service_alone() -> None:
    build, runtime = dockerfile_stages(DOCKERFILE.read_text())
    (lock_copy,) = [(s, d) for s, d in copies(runtime) if s == [LOCK.name]]
    destination = lock_copy[1]
    pips = [c for c in run_commands(runtime) if c[:2] == ["pip", "install"]]
    assert pips[0] == ["pip", "install", "--no-cache-dir", "--require-hashes", "-r", destination]
    # The service's wheel, built in the build stage without its dependencies, installs with
    # none either: everything else came from the lock.
    assert pips[1][-1] == "/wheels/*.whl" and {"--no-deps", "--no-index"} <= set(pips[1])
    (wheel,) = [c for c in run_commands(build) if c[:2] == ["pip", "wheel"]]
    assert "--no-deps" in wheel
    assert len(pips) == 2
