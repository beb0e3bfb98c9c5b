"""Helpers shared by the tests: a moto server process, ports, settings."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from service.config import Settings, TargetSettings
from service.demo import DEMO_CREDENTIALS
from service.ecr import AwsEcrReader, SourceListing, StaticCredentials


def command_env() -> dict[str, str]:
    """The environment for a child ecr-catalog process: moto's credentials, nothing else of AWS."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "ECR_CATALOG_"))}
    env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"] = DEMO_CREDENTIALS
    return env


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for_http(url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            httpx.get(url, timeout=1.0)
            return
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


@dataclass
class MotoServer:
    """A real moto server process on loopback."""

    url: str
    process: subprocess.Popen[bytes]

    def reset(self) -> None:
        httpx.post(f"{self.url}/moto-api/reset", timeout=10).raise_for_status()

    def ecr(self, region: str) -> Any:
        import boto3

        return boto3.client(
            "ecr",
            region_name=region,
            endpoint_url=self.url,
            aws_access_key_id=DEMO_CREDENTIALS[0],
            aws_secret_access_key=DEMO_CREDENTIALS[1],
        )


def start_moto(port: int | None = None) -> MotoServer:
    port = port or free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    wait_for_http(f"{url}/moto-api/")
    return MotoServer(url, process)


def stop_process(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def moto_settings(url: str, regions: list[str], **aws: Any) -> Settings:
    return Settings(
        aws={
            "endpoint_url": url,
            "targets": [TargetSettings(regions=regions, account_id="123456789012")],
            # moto answers some operations with 500; retrying those only slows tests down.
            "total_max_attempts": aws.pop("total_max_attempts", 2),
            **aws,
        },
    )


@asynccontextmanager
async def moto_reader(settings: Settings) -> Any:
    reader_settings = settings.reader_settings()
    async with AwsEcrReader.open(reader_settings, StaticCredentials(*DEMO_CREDENTIALS)) as reader:
        yield reader


GOLDEN = Path(__file__).parent / "golden"


class FakeReader:
    """An EcrReader whose answers the test sets: records, or an error, per source."""

    def __init__(self, *records: Any) -> None:
        self.answers: dict[Any, Any] = {r.source: r for r in records}
        self.reads = 0
        self.gate: Any = None
        self.forgotten: list[tuple[Any, str]] = []

    async def list_sources(self) -> SourceListing:
        return SourceListing(tuple(sorted(self.answers)))

    async def read_source(self, source: Any) -> Any:
        self.reads += 1
        if self.gate is not None:
            await self.gate.wait()
        answer = self.answers[source]
        if isinstance(answer, BaseException):
            raise answer
        return answer

    async def forget_images(self, source: Any, repository: str) -> bool:
        self.forgotten.append((source, repository))
        answer = self.answers.get(source)
        return any(r.name == repository for r in getattr(answer, "repositories", ()))


@dataclass
class FaultProxy:
    """tests/faults/proxy.py as a process in front of an upstream (a moto server)."""

    url: str
    process: subprocess.Popen[bytes]

    def set(self, **faults: Any) -> None:
        httpx.post(f"{self.url}/__faults__", json=faults, timeout=10).raise_for_status()

    def clear(self) -> None:
        self.set()

    def stats(self) -> dict[str, Any]:
        result: dict[str, Any] = httpx.get(f"{self.url}/__faults__/stats", timeout=10).json()
        return result


def start_proxy(upstream: str) -> FaultProxy:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.faults.proxy", "--upstream", upstream, "--port", str(port)],
        cwd=Path(__file__).parents[1],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    wait_for_http(f"{url}/__faults__/stats")
    return FaultProxy(url, process)


def assume_role_credentials(moto_url: str, role_arn: str) -> tuple[str, str, str]:
    """Credentials of ``role_arn`` from moto's STS: moto then serves that account's own ECR."""
    import boto3

    sts = boto3.client(
        "sts",
        region_name="us-east-1",
        endpoint_url=moto_url,
        aws_access_key_id=DEMO_CREDENTIALS[0],
        aws_secret_access_key=DEMO_CREDENTIALS[1],
    )
    creds = sts.assume_role(RoleArn=role_arn, RoleSessionName="seed")["Credentials"]
    return creds["AccessKeyId"], creds["SecretAccessKey"], creds["SessionToken"]


OPENAPI = Path(__file__).parents[1] / "openapi" / "openapi.yaml"


def moto_service_config(moto_url: str, regions: list[str], **sections: Any) -> dict[str, Any]:
    """A `serve` config reading ``regions`` of the test account from a moto server."""
    return {
        "aws": {
            "endpoint_url": moto_url,
            "targets": [{"regions": regions, "account_id": "123456789012"}],
        },
        **sections,
    }


def wait_healthy_sources(url: str, timeout: float = 30.0) -> dict[str, Any]:
    """/readyz once the catalog is complete and every source healthy."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state: dict[str, Any] = httpx.get(f"{url}/readyz").json()
        if state["complete"] and all(s["healthy"] for s in state["sources"]):
            return state
        time.sleep(0.1)
    raise AssertionError(f"{url} never became ready with every source healthy")


@dataclass
class ServiceProcess:
    """`ecr-catalog serve` (or a wrapper module) as a child process on loopback."""

    url: str
    port: int
    process: subprocess.Popen[bytes]
    started: float


def spawn_service(
    workdir: Path,
    config: dict[str, Any],
    *,
    module: str = "service.cli",
    extra_env: dict[str, str] | None = None,
) -> ServiceProcess:
    """Write ``config`` to ``workdir``, start the service with it and wait for /healthz."""
    import yaml

    config_path = workdir / "ecr-catalog.yaml"
    config_path.write_text(yaml.safe_dump(config), encoding="utf-8")
    port = free_port()
    started = time.monotonic()
    with (workdir / "service.log").open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", module, "serve", "--config", str(config_path)]
            + ["--port", str(port)],
            cwd=Path(__file__).parents[1],
            env={**command_env(), **(extra_env or {})},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(f"{url}/healthz", timeout=60)
    except BaseException:
        stop_process(process)
        raise
    return ServiceProcess(url, port, process, started)
