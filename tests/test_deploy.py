"""The container and Compose files: linted, schema-checked, and the image's command run as a
plain process (there is no Docker engine here)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx

from service.demo import DEMO_ACCOUNT, DemoRepository, seed_registry

from .support import MotoServer, command_env, free_port, stop_process, wait_for_http

ROOT = Path(__file__).parents[1]
BIN = Path(sys.executable).parent


def dockerfile() -> str:
    return (ROOT / "Dockerfile").read_text(encoding="utf-8")


def test_dockerfile_lints_clean() -> None:
    result = subprocess.run(
        [str(BIN / "hadolint"), "--no-color", str(ROOT / "Dockerfile")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_file_is_valid_compose() -> None:
    result = subprocess.run(
        [str(BIN / "check-jsonschema"), "--builtin-schema", "vendor.compose-spec"]
        + [str(ROOT / "docker-compose.yml")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_image_command_serves_with_the_image_environment(
    moto: MotoServer, tmp_path: Path
) -> None:
    text = dockerfile()
    command = json.loads(re.findall(r"^CMD (\[.*\])$", text, re.MULTILINE)[-1])
    assert command == ["ecr-catalog", "serve"]
    env_block = re.search(r"^ENV ((?:.*\\\n)*.*)$", text.split("FROM")[-1], re.MULTILINE)
    assert env_block is not None
    image_env = dict(re.findall(r"(\w+)=(\S+)", env_block.group(1)))
    assert image_env["ECR_CATALOG_STATE_DIR"] == "/var/lib/ecr-catalog"
    port = free_port()
    seed_registry(moto.url, [DemoRepository(name="image/check", region="us-east-1")])
    env = command_env() | image_env
    env |= {
        # Only the host-specific values change: a loopback port and a writable state_dir.
        "ECR_CATALOG_SERVER__HOST": "127.0.0.1",
        "ECR_CATALOG_SERVER__PORT": str(port),
        "ECR_CATALOG_STATE_DIR": str(tmp_path / "state"),
        "AWS_ENDPOINT_URL": moto.url,
        "ECR_CATALOG_AWS__TARGETS": json.dumps(
            [{"regions": ["us-east-1"], "account_id": DEMO_ACCOUNT}]
        ),
    }
    process = subprocess.Popen(
        [str(BIN / command[0]), *command[1:]],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_for_http(f"{url}/healthz", timeout=60)
        healthcheck = re.search(r'CMD \["python", "-c", "(.*)"\]', text)
        assert healthcheck is not None
        probe = healthcheck.group(1).replace("8080", str(port))
        assert subprocess.run([sys.executable, "-c", probe], check=False).returncode == 0
        for _ in range(200):
            if httpx.get(f"{url}/readyz").status_code == 200:
                break
            time.sleep(0.1)
        assert "image--check.us-east-1.123456789012" in httpx.get(f"{url}/entities.yaml").text
        # The only path written: the state directory.
        assert list((tmp_path / "state").glob("*.json"))
    finally:
        stop_process(process)
