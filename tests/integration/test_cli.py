"""The `ecr-catalog` command as a user runs it: real processes, real HTTP on loopback."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from service.demo import DemoRepository, seed_registry

from ..support import (
    MotoServer,
    command_env,
    spawn_service,
    start_announcing,
    stop_process,
    wait_healthy_sources,
    wait_until,
)

DATA = [
    DemoRepository(
        name="alpha/api", region="us-east-1", tags={"owner": "alpha"}, images=(("v1",),)
    ),
    DemoRepository(name="alpha/web", region="us-east-1", images=((), ("v2", "latest"))),
    DemoRepository(name="beta", region="ap-southeast-2", tags={"component": "beta-svc"}),
]


def run_cli(*args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "service.cli", *args],
        env=command_env(),
        capture_output=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def config(moto: MotoServer, tmp_path: Path) -> Path:
    seed_registry(moto.url, DATA)
    path = tmp_path / "config.yaml"
    path.write_text(
        f"""
aws:
  endpoint_url: {moto.url}
  total_max_attempts: 2
  targets:
    - regions: [us-east-1, ap-southeast-2]
refresh:
  interval_seconds: 2
""",
        encoding="utf-8",
    )
    return path


def test_render_matches_the_registry_repository_for_repository(
    config: Path, moto: MotoServer
) -> None:
    result = run_cli("render", "--config", str(config))
    assert result.returncode == 0, result.stderr.decode()
    documents = list(yaml.safe_load_all(result.stdout))
    repositories = {
        d["metadata"]["title"]: d for d in documents if d["spec"].get("type") == "ecr-repository"
    }
    assert set(repositories) == {"alpha/api", "alpha/web", "beta"}
    for repo in DATA:
        entity = repositories[repo.name]
        annotations = entity["metadata"]["annotations"]
        assert annotations["ecr-catalog.io/image-count"] == str(len(repo.images))
        assert entity["metadata"]["labels"]["ecr-catalog.io/region"] == repo.region
        assert annotations["amazonaws.com/arn"] == (
            f"arn:aws:ecr:{repo.region}:123456789012:repository/{repo.name}"
        )
    assert repositories["alpha/api"]["spec"]["owner"] == "group:default/alpha"
    assert repositories["beta"]["spec"]["dependencyOf"] == ["component:default/beta-svc"]


def test_render_json(config: Path) -> None:
    result = run_cli("render", "--config", str(config), "--format", "json")
    assert result.returncode == 0
    assert len(yaml.safe_load(result.stdout)["items"]) == 3 + 2 + 3


def test_render_fails_loudly_rather_than_printing_nothing(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(
        "aws:\n  endpoint_url: http://127.0.0.1:9\n  total_max_attempts: 1\n"
        "  targets:\n    - regions: [us-east-1]\n      account_id: '123456789012'\n",
        encoding="utf-8",
    )
    result = run_cli("render", "--config", str(path))
    assert result.returncode == 1
    assert result.stdout == b""
    assert b"cannot render the catalog" in result.stderr


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("aws:\n  targets: [{regions: [mars-1]}]\n", b"not an AWS region"),
        ("{", b"not valid YAML"),
    ],
)
# serve has started its reader process before it reads the config: it must end it quietly.
@pytest.mark.parametrize("command", ["render", "serve"])
def test_bad_config_exits_2_with_a_clear_message(
    tmp_path: Path, text: str, message: bytes, command: str
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text, encoding="utf-8")
    result = run_cli(command, "--config", str(path))
    assert result.returncode == 2
    assert message in result.stderr
    assert b"Traceback" not in result.stderr


@pytest.fixture
def served(config: Path, tmp_path: Path) -> Iterator[str]:
    process, port = start_announcing(
        [sys.executable, "-m", "service.cli", "serve", "--config", str(config), "--port", "0"],
        tmp_path / "serve.log",
        "ecr-catalog serve",
        env=command_env(),
    )
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_process(process)


def wait_ready(url: str) -> None:
    wait_until(lambda: httpx.get(f"{url}/readyz").status_code == 200, f"{url} ready")


def test_serve_over_real_http_with_etag_and_live_changes(served: str, moto: MotoServer) -> None:
    wait_ready(served)
    first = httpx.get(f"{served}/entities.yaml")
    assert first.status_code == 200
    assert len(list(yaml.safe_load_all(first.text))) == 8
    assert (
        httpx.get(
            f"{served}/entities.yaml", headers={"If-None-Match": first.headers["etag"]}
        ).status_code
        == 304
    )
    moto.ecr("us-east-1").delete_repository(repositoryName="alpha/web", force=True)
    response = wait_until(
        lambda: (
            (
                answer := httpx.get(
                    f"{served}/entities.yaml", headers={"If-None-Match": first.headers["etag"]}
                )
            ).status_code
            == 200
            and answer
        ),
        "a new body after the deletion",
    )
    titles = [d["metadata"].get("title") for d in yaml.safe_load_all(response.text)]
    assert "alpha/web" not in titles and "alpha/api" in titles


def test_demo_seed_fills_any_ecr_endpoint(moto: MotoServer) -> None:
    result = run_cli("demo-seed", "--endpoint-url", moto.url)
    assert result.returncode == 0, result.stderr.decode()
    names = {
        r["repositoryName"] for r in moto.ecr("eu-west-1").describe_repositories()["repositories"]
    }
    assert "shared/nginx" in names and len(names) == 11


def test_serve_starts_whatever_its_state_files_hold(moto: MotoServer, tmp_path: Path) -> None:
    """Stop a service, corrupt its state files as an operator might, start it again."""
    seed_registry(moto.url, DATA)
    state = tmp_path / "state"
    config = {
        "aws": {
            "endpoint_url": moto.url,
            "targets": [{"regions": ["us-east-1", "ap-southeast-2"]}],
        },
        "refresh": {"interval_seconds": 2},
        "state_dir": str(state),
    }
    first = spawn_service(tmp_path, config)
    try:
        wait_healthy_sources(first.url)
    finally:
        stop_process(first.process)
    saved = sorted(p.name for p in state.iterdir())
    assert saved == ["123456789012-ap-southeast-2.json", "123456789012-us-east-1.json"]
    kept = (state / saved[0]).read_bytes().replace(b"ap-southeast-2", b"eu-west-2")
    corrupt = {
        "123456789012-us-east-1.json": b"null",
        "123456789012-ap-southeast-2.json": b"[]",
        "123456789012-eu-west-3.json": b"1",
        "123456789012-eu-north-1.json": b'"x"',
        "123456789012-sa-east-1.json": b'{"format": 2, "records": {}}',
    }
    for name, content in corrupt.items():
        (state / name).write_bytes(content)
    # A source that is no longer configured: kept as it is, not loaded.
    (state / "123456789012-eu-west-2.json").write_bytes(kept)

    second = spawn_service(tmp_path, config)
    try:
        ready = wait_healthy_sources(second.url)
        assert {s["region"] for s in ready["sources"]} == {"us-east-1", "ap-southeast-2"}
        body = httpx.get(f"{second.url}/entities.yaml").text
        assert len(list(yaml.safe_load_all(body))) == 8
    finally:
        stop_process(second.process)
    log = (tmp_path / "service.log").read_text(encoding="utf-8")
    assert "Traceback" not in log and "startup failed" not in log
    assert log.count("is unreadable and set aside") == len(corrupt)
    assert "eu-west-2, which is no longer configured: kept, not loaded" in log
    assert sorted(p.name for p in state.glob("*.corrupt")) == sorted(
        name.replace(".json", ".corrupt") for name in corrupt
    )
    assert (state / "123456789012-eu-west-2.json").read_bytes() == kept
