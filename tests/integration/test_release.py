"""The release as a user gets it: `ecr-catalog --version`, and the image's install steps run as
the Dockerfile has them, in a fresh virtual environment (there is no Docker engine here)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import venv
from importlib.metadata import version
from pathlib import Path

from packaging.utils import canonicalize_name

import service

from ..release import (
    DOCKERFILE,
    LOCK,
    ROOT,
    copies,
    dockerfile_stages,
    read_lock,
    run_commands,
)

BIN = Path(sys.executable).parent


def test_version_prints_the_installed_version() -> None:
    result = subprocess.run(
        [str(BIN / "ecr-catalog"), "--version"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"ecr-catalog {version('ecr-catalog')}\n"
    assert version("ecr-catalog") == service.__version__


def _run(command: list[str], cwd: Path) -> None:
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False)
    assert result.returncode == 0, f"{command}\n{result.stdout[-3000:]}{result.stderr[-3000:]}"


def test_the_image_install_steps_install_exactly_the_lock_and_the_service(tmp_path: Path) -> None:
    """The build stage's wheel and the runtime stage's two pip commands, word for word, with
    only the image's paths mapped to temporary folders."""
    build, runtime = dockerfile_stages(DOCKERFILE.read_text())
    # The build stage: its files copied as its COPY lines say, then its `pip wheel`.
    source = tmp_path / "src"
    source.mkdir()
    for sources, destination in copies(build):
        for name in sources:
            # "COPY a b ./" copies each into the folder; "COPY service ./service" names it.
            target = source / destination
            target = target / name if destination.endswith("/") else target
            if (ROOT / name).is_dir():
                shutil.copytree(ROOT / name, target, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                shutil.copyfile(ROOT / name, target)
    wheels = tmp_path / "wheels"
    (wheel_command,) = [c for c in run_commands(build) if c[:2] == ["pip", "wheel"]]
    paths = {"/wheels": str(wheels)}
    python = tmp_path / "venv" / "bin" / "python"
    venv.create(tmp_path / "venv", with_pip=True)
    _run([str(python), "-m", *[paths.get(w, w) for w in wheel_command]], source)
    # The runtime stage: the lock where its COPY puts it, then its two `pip install`s.
    (lock_destination,) = [d for s, d in copies(runtime) if s == [LOCK.name]]
    paths[lock_destination] = str(LOCK)
    for command in (c for c in run_commands(runtime) if c[:2] == ["pip", "install"]):
        words = [paths.get(w, w) for w in command]
        if words[-1] == "/wheels/*.whl":
            words[-1:] = [str(p) for p in wheels.glob("*.whl")]
        _run([str(python), "-m", *words], tmp_path)
    _run([str(python), "-m", "pip", "check"], tmp_path)
    frozen = subprocess.run(
        [str(python), "-m", "pip", "list", "--format=freeze"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    installed = {canonicalize_name(line.split("==")[0]): line.split("==")[1] for line in frozen}
    # Exactly the lock and the service; pip (and setuptools, on older Pythons) are the venv's.
    for own in ("pip", "setuptools"):
        installed.pop(own, None)
    assert installed.pop("ecr-catalog") == service.__version__
    pins = read_lock(LOCK.read_text())
    assert installed == {name: pin.version for name, pin in pins.items()}
    result = subprocess.run(
        [str(tmp_path / "venv" / "bin" / "ecr-catalog"), "--version"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.stdout == f"ecr-catalog {service.__version__}\n", result.stderr
