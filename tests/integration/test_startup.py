"""Start-up refusals as a user meets them: a real `ecr-catalog serve` process, its exit status and
what it says on stderr, for a misspelt region, an unquoted account id and a busy port."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from ..support import run_cli, spawn_service, stop_process

TARGET = {"regions": ["us-east-1"], "account_id": "123456789012"}


def serve(config: Path | str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """`serve` run to its end: these configurations must stop it before it serves anything."""
    return run_cli("serve", "--config", str(config), *args, timeout=timeout)


def config_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "ecr-catalog.yaml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def listener() -> Iterator[int]:
    """Another process's listening socket on loopback (this one's, standing in for it)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def test_a_misspelt_region_stops_serve_at_once_naming_the_close_matches(tmp_path: Path) -> None:
    path = config_file(
        tmp_path,
        "aws:\n  targets:\n    - regions: [us-east-1, eu-centrall-1]\n"
        "      account_id: '123456789012'\n",
    )
    started = time.monotonic()
    result = serve(path, "--port", "0")
    assert result.returncode == 2
    assert time.monotonic() - started < 30  # not after botocore's retries on DNS
    assert f"{path}: aws.targets.0.regions: 'eu-centrall-1' is not a region botocore" in (
        result.stderr
    )
    assert "Did you mean eu-central-1" in result.stderr
    assert "aws.extra_regions" in result.stderr
    assert "Traceback" not in result.stderr and "listening on" not in result.stderr


def test_render_refuses_it_too(tmp_path: Path) -> None:
    path = config_file(tmp_path, "aws:\n  targets:\n    - regions: [us-wset-2]\n")
    result = run_cli("render", "--config", str(path))
    assert result.returncode == 2 and "Did you mean us-west-2" in result.stderr
    assert result.stdout == ""


def test_a_region_newer_than_botocore_starts_with_extra_regions(tmp_path: Path) -> None:
    refused_port = 9  # discard: nothing listens; no call leaves the machine
    config = {
        "aws": {
            "extra_regions": ["eu-newplace-1"],
            "proxies": dict.fromkeys(("http", "https"), f"http://127.0.0.1:{refused_port}"),
            "total_max_attempts": 1,
            "targets": [{"regions": ["eu-newplace-1"], "account_id": "123456789012"}],
        }
    }
    without = config_file(tmp_path, yaml.safe_dump({"aws": {"targets": config["aws"]["targets"]}}))
    assert serve(without, "--port", "0").returncode == 2
    service = spawn_service(tmp_path / "extra", config)
    try:
        assert httpx.get(f"{service.url}/healthz").status_code == 200
        log = (tmp_path / "extra" / "service.log").read_text(encoding="utf-8")
        # botocore resolved the new region's endpoint by its partition's pattern.
        assert "ECR in eu-newplace-1: https://api.ecr.eu-newplace-1.amazonaws.com" in log
    finally:
        stop_process(service.process)


def test_any_region_is_deliberate_with_an_endpoint_of_ones_own(tmp_path: Path) -> None:
    config = {
        "aws": {
            "endpoint_url": "http://127.0.0.1:9",
            "total_max_attempts": 1,
            "targets": [{"regions": ["xx-test-1"], "account_id": "123456789012"}],
        }
    }
    service = spawn_service(tmp_path, config)
    try:
        assert httpx.get(f"{service.url}/healthz").status_code == 200
    finally:
        stop_process(service.process)


@pytest.mark.parametrize("account", ["123456789012", "012345670123"])
def test_an_unquoted_account_id_is_told_to_be_quoted(tmp_path: Path, account: str) -> None:
    path = config_file(
        tmp_path,
        f"aws:\n  endpoint_url: http://127.0.0.1:9\n  targets:\n"
        f"    - regions: [us-east-1]\n      account_id: {account}\n",
    )
    result = serve(path, "--port", "0")
    assert result.returncode == 2
    assert (
        f"{path}: aws.targets.0.account_id: quote it: account ids are strings of 12 digits"
        in result.stderr
    )
    assert "Input should be a valid string" not in result.stderr


def test_a_busy_port_is_said_in_words(tmp_path: Path, listener: int) -> None:
    aws = {"endpoint_url": "http://127.0.0.1:9", "targets": [TARGET]}
    path = config_file(tmp_path, yaml.safe_dump({"aws": aws}))
    result = serve(path, "--port", str(listener))
    assert result.returncode == 2
    assert f"another process listens on 127.0.0.1:{listener}; set PORT or server.port" in (
        result.stderr
    )
    assert "Traceback" not in result.stderr
    # The same from the setting, and before anything was started: no AWS client, no app.
    with_port = config_file(tmp_path, yaml.safe_dump({"aws": aws, "server": {"port": listener}}))
    again = serve(with_port)
    assert again.returncode == 2
    assert f"another process listens on 127.0.0.1:{listener}" in again.stderr
    assert "Started server process" not in again.stderr and "ECR in" not in again.stderr


def test_a_busy_port_under_the_demo_stops_its_moto_too(listener: int) -> None:
    started = time.monotonic()
    result = run_cli("serve", "--demo", "--port", str(listener))
    assert result.returncode == 2
    assert f"another process listens on 127.0.0.1:{listener}" in result.stderr
    # Refused before the demo's moto server was started.
    assert "demo ECR" not in result.stderr and time.monotonic() - started < 30
