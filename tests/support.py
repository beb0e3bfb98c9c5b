"""Helpers shared by the tests: a moto server process, ports, settings."""

from __future__ import annotations

import asyncio
import inspect
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from asgi_lifespan import LifespanManager
from hypothesis import strategies as st
from starlette.types import ASGIApp

from service.aws.reader import AwsEcrReader
from service.config import Settings, TargetSettings
from service.demo import DEMO_CREDENTIALS
from service.reading import SourceListing, StaticCredentials
from service.web.app import create_app

# Any JSON document: what a state file may hold after a person, a disk or a bug got to it.
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)

# Where this machine tells programs which CAs to trust; TLS tests clear them, so that only the
# settings under test can make a certificate trusted.
MACHINE_CA_VARIABLES = (
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
    "NODE_EXTRA_CA_CERTS",
)
PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy")


def command_env() -> dict[str, str]:
    """The environment for a child ecr-catalog process: moto's credentials, nothing else of AWS."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AWS_", "ECR_CATALOG_")) and k not in PROXY_VARIABLES
    }
    env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"] = DEMO_CREDENTIALS
    return env


def run_cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """``ecr-catalog <args>`` run to its end in ``command_env()`` (with ``env`` over it), its
    output as text; the exit status is the caller's to check."""
    return subprocess.run(
        [sys.executable, "-m", "service.cli", *args],
        env=command_env() | (env or {}),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def free_port() -> int:
    """A port free now, for a process that cannot pick its own: see start_announcing."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# How the processes the tests start announce the port they bound to port 0: moto's werkzeug
# (" * Running on http://127.0.0.1:PORT"), uvicorn ("Uvicorn running on http://..."), and the
# fault proxy and fake ECR ("listening on http://...").
ANNOUNCED_PORT = re.compile(r"(?:[Rr]unning|listening) on https?://[^\s/]*:(\d+)")
ROOT = Path(__file__).parents[1]


def _log_tail(log: Path, size: int = 3000) -> str:
    return log.read_text(encoding="utf-8", errors="replace")[-size:] if log.exists() else ""


def wait_for_announced_port(
    process: subprocess.Popen[bytes], log: Path, what: str, timeout: float = 60.0
) -> int:
    """The port ``process`` says, in ``log``, that it listens on; fails at once if it exits."""
    deadline = time.monotonic() + timeout
    while True:
        found = ANNOUNCED_PORT.search(_log_tail(log, 1_000_000))
        if found:
            return int(found.group(1))
        if process.poll() is not None:
            raise AssertionError(
                f"{what} exited ({process.returncode}) before it listened:\n{_log_tail(log)}"
            )
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} never said where it listens within {timeout:g} s")
        time.sleep(0.05)


def start_announcing(
    argv: list[str],
    log: Path,
    what: str,
    *,
    env: dict[str, str] | None = None,
    timeout: float = 60.0,
) -> tuple[subprocess.Popen[bytes], int]:
    """Start a process that binds port 0 and reports it: no race for a port chosen before."""
    with log.open("wb") as handle:
        process = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=handle, stderr=subprocess.STDOUT)
    try:
        port = wait_for_announced_port(process, log, what, timeout)
    except BaseException:
        stop_process(process)
        raise
    return process, port


def wait_for_http(
    url: str, timeout: float = 30.0, process: subprocess.Popen[bytes] | None = None
) -> None:
    """Until ``url`` answers at all; fails at once, saying so, if ``process`` exits first."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            httpx.get(url, timeout=1.0)
            return
        except httpx.TransportError as exc:
            if process is not None and process.poll() is not None:
                raise AssertionError(
                    f"the process behind {url} exited ({process.returncode})"
                ) from exc
            if time.monotonic() > deadline:
                raise AssertionError(f"{url} did not answer within {timeout:g} s") from exc
            time.sleep(0.1)


def wait_until(
    condition: Callable[[], Any], what: str, timeout: float = 30.0, every: float = 0.05
) -> Any:
    """Poll ``condition`` every ``every`` seconds until it gives something true; fail, naming
    ``what``, at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {timeout:g} s")
        time.sleep(every)


async def until_true(condition: Callable[[], Any], what: str, within: float = 30.0) -> Any:
    """``wait_until`` for the event loop: ``condition`` may be sync or return an awaitable."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        result = condition()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return result
        if loop.time() > deadline:
            raise AssertionError(f"{what} did not happen within {within:g} s")
        await asyncio.sleep(0.01)


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


def start_moto() -> MotoServer:
    """A moto server process on a port it picks itself."""
    log = Path(tempfile.mkdtemp(prefix="moto-")) / "moto.log"
    process, port = start_announcing(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", "0"], log, "moto"
    )
    url = f"http://127.0.0.1:{port}"
    wait_for_http(f"{url}/moto-api/", process=process)
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
    credentials = StaticCredentials(*DEMO_CREDENTIALS)
    async with AwsEcrReader.open(settings.aws, settings.cache, credentials) as reader:
        yield reader


@asynccontextmanager
async def in_process(
    settings: Settings, reader: Any
) -> AsyncIterator[tuple[httpx.AsyncClient, ASGIApp]]:
    """The app on ``reader``, in this process and ready: a client, and the app itself for
    tests that speak ASGI to it directly."""
    app = create_app(settings, lambda _observer: nullcontext(reader))
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:

            async def ready() -> bool:
                return (await client.get("/readyz")).status_code == 200

            await until_true(ready, "a ready service", within=10)
            yield client, manager.app


GOLDEN = Path(__file__).parent / "golden"


class FakeReader:
    """An EcrReader whose answers the test sets: records, or an error, per source."""

    def __init__(self, *records: Any) -> None:
        self.answers: dict[Any, Any] = {r.source: r for r in records}
        self.reads = 0
        self.gate: Any = None
        self.forgotten: list[tuple[Any, str]] = []
        self.rediscovered = 0

    async def list_sources(self, rediscover: bool = False) -> SourceListing:
        self.rediscovered += rediscover
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
    log = Path(tempfile.mkdtemp(prefix="proxy-")) / "proxy.log"
    process, port = start_announcing(
        [sys.executable, "-m", "tests.faults.proxy", "--upstream", upstream, "--port", "0"],
        log,
        "the fault proxy",
    )
    return FaultProxy(f"http://127.0.0.1:{port}", process)


def start_fake_ecr(*options: str, log: Path | None = None) -> tuple[subprocess.Popen[bytes], str]:
    """tests/faults/fake_ecr.py as a process on a port of its own; its URL once it answers."""
    log = log or Path(tempfile.mkdtemp(prefix="fake-ecr-")) / "fake-ecr.log"
    process, port = start_announcing(
        [sys.executable, "-m", "tests.faults.fake_ecr", "--port", "0", *options],
        log,
        "the fake ECR",
        timeout=180,
    )
    url = f"http://127.0.0.1:{port}"
    wait_for_http(f"{url}/__stats__", process=process)
    return process, url


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
    drop_env: tuple[str, ...] = (),
    args: tuple[str, ...] = (),
    host: str | None = None,
    port: int = 0,
) -> ServiceProcess:
    """Write ``config`` to ``workdir``, start the service with it and wait for /healthz.

    It listens on ``host`` (default: the config's, 127.0.0.1) and ``port``; by default on a
    port of its own choosing (``--port 0``), which uvicorn's log names.
    """
    import yaml

    workdir.mkdir(parents=True, exist_ok=True)
    config_path = workdir / "ecr-catalog.yaml"
    config_path.write_text(yaml.safe_dump(config), encoding="utf-8")
    started = time.monotonic()
    process, port = start_announcing(
        [
            *(sys.executable, "-m", module, "serve", "--config", str(config_path)),
            *(("--host", host) if host else ()),
            *("--port", str(port), *args),
        ],
        workdir / "service.log",
        "ecr-catalog serve",
        env={k: v for k, v in command_env().items() if k not in drop_env} | (extra_env or {}),
    )
    url = f"http://{host or '127.0.0.1'}:{port}"
    try:
        wait_for_http(f"{url}/healthz", timeout=60, process=process)
    except BaseException:
        stop_process(process)
        raise
    return ServiceProcess(url, port, process, started)
