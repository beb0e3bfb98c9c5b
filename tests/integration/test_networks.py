"""The networks platform teams run: proxies, private CAs, per-service endpoints.

Each test runs `ecr-catalog serve` as a process, configured only by a config file and the
environment, against moto behind real network pieces on loopback.
"""

from __future__ import annotations

import re
import ssl
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from service.demo import DEMO_ACCOUNT, DemoRepository, seed_registry

from ..support import (
    MACHINE_CA_VARIABLES,
    MotoServer,
    free_port,
    spawn_service,
    start_announcing,
    start_proxy,
    stop_process,
    wait_healthy_sources,
    wait_until,
)
from ..tls import make_pki

REPOSITORIES = [
    DemoRepository(name=f"net/app-{index}", region="us-east-1", images=(("v1",),))
    for index in range(4)
]
NAMES = {f"net--app-{index}.us-east-1.{DEMO_ACCOUNT}" for index in range(4)}
SECRET = "pr0xy-s3cret"


def config(endpoint: str, **aws: Any) -> dict[str, Any]:
    return {
        "aws": {
            "endpoint_url": endpoint,
            "total_max_attempts": 3,
            "connect_timeout_seconds": 2,
            "targets": [{"regions": ["us-east-1"], "account_id": DEMO_ACCOUNT}],
            **aws,
        },
        "refresh": {"interval_seconds": 600, "initial_retry_seconds": 1},
    }


def served_names(url: str) -> set[str]:
    items = httpx.get(f"{url}/entities.json", timeout=10).json()["items"]
    return {item["metadata"]["name"] for item in items}


def log_of(workdir: Path) -> str:
    return (workdir / "service.log").read_text(encoding="utf-8", errors="replace")


@pytest.fixture
def forward_proxy(moto: MotoServer, tmp_path: Path) -> Any:
    """A forward proxy with basic auth, and a port nothing listens on that it maps to moto."""
    seed_registry(moto.url, REPOSITORIES)
    dead = free_port()
    log = tmp_path / "proxy.log"
    process, port = start_announcing(
        [sys.executable, "-m", "tests.faults.forward_proxy", "--port", "0"]
        + ["--map", f"127.0.0.1:{dead}={moto.url.removeprefix('http://')}"]
        + ["--auth", f"catalog:{SECRET}"],
        log,
        "the forward proxy",
    )
    try:
        yield f"http://127.0.0.1:{dead}", f"http://catalog:{SECRET}@127.0.0.1:{port}", log
    finally:
        stop_process(process)


def trusting(ca: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(ca))


def proxied_calls(log: Path) -> list[str]:
    return re.findall(r"^REQUEST POST \S+ target=(\S*)$", log.read_text(), re.MULTILINE)


@pytest.mark.parametrize("variable", ["HTTP_PROXY", "http_proxy"])
def test_ecr_reachable_only_through_a_proxy_named_in_the_environment(
    forward_proxy: Any, tmp_path: Path, variable: str
) -> None:
    unreachable, proxy, log = forward_proxy
    service = spawn_service(tmp_path, config(unreachable), extra_env={variable: proxy})
    try:
        wait_healthy_sources(service.url, timeout=60)
        assert NAMES <= served_names(service.url)
    finally:
        stop_process(service.process)
    calls = proxied_calls(log)
    prefix = "AmazonEC2ContainerRegistry_V20150921."
    # The per-repository calls went through it, and so did STS (query protocol: no target).
    assert calls.count(prefix + "ListTagsForResource") >= len(REPOSITORIES)
    assert calls.count(prefix + "DescribeImages") >= len(REPOSITORIES)
    assert "" in calls
    assert "DENIED" not in log.read_text()
    # The proxy's password is never written down.
    output = log_of(tmp_path)
    assert SECRET not in output
    assert "through the proxy http://***@127.0.0.1:" in output


def test_the_aws_proxies_setting_serves_both_paths_and_replaces_the_environment(
    forward_proxy: Any, tmp_path: Path
) -> None:
    unreachable, proxy, log = forward_proxy
    # As botocore's Config(proxies=...): the environment's NO_PROXY no longer applies.
    service = spawn_service(
        tmp_path, config(unreachable, proxies={"http": proxy}), extra_env={"NO_PROXY": "*"}
    )
    try:
        wait_healthy_sources(service.url, timeout=60)
        assert NAMES <= served_names(service.url)
        readiness = httpx.get(f"{service.url}/readyz").text
    finally:
        stop_process(service.process)
    calls = proxied_calls(log)
    assert "AmazonEC2ContainerRegistry_V20150921.DescribeImages" in calls and "" in calls
    assert SECRET not in log_of(tmp_path) and SECRET not in readiness


def test_no_proxy_is_respected(forward_proxy: Any, moto: MotoServer, tmp_path: Path) -> None:
    _, proxy, log = forward_proxy
    service = spawn_service(
        tmp_path, config(moto.url), extra_env={"HTTP_PROXY": proxy, "no_proxy": "127.0.0.1"}
    )
    try:
        wait_healthy_sources(service.url, timeout=60)
        assert NAMES <= served_names(service.url)
    finally:
        stop_process(service.process)
    assert proxied_calls(log) == []


@pytest.fixture
def tls_moto(tmp_path: Path) -> Any:
    """moto over TLS, its certificate signed by a private CA; moto's own API on the same port."""
    pki = make_pki(tmp_path / "pki")
    process, port = start_announcing(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", "0", "-s"]
        + ["-c", str(pki.server_cert), "-k", str(pki.server_key)],
        tmp_path / "moto-tls.log",
        "moto over TLS",
    )
    url = f"https://127.0.0.1:{port}"
    try:
        wait_until(
            lambda: httpx.get(f"{url}/moto-api/", verify=trusting(pki.ca)).status_code == 200,
            "moto over TLS",
        )
        seed_registry(url, REPOSITORIES, ca_bundle=str(pki.ca))
        yield url, pki
    finally:
        stop_process(process)


@pytest.mark.parametrize("named_in", ["AWS_CA_BUNDLE", "AWS_CONFIG_FILE"])
def test_ecr_over_tls_signed_by_a_private_ca(
    tls_moto: Any, tmp_path: Path, named_in: str, no_machine_ca: None
) -> None:
    url, pki = tls_moto
    if named_in == "AWS_CA_BUNDLE":
        env = {"AWS_CA_BUNDLE": str(pki.ca)}
    else:
        profile = tmp_path / "aws-config"
        profile.write_text(f"[default]\nca_bundle = {pki.ca}\n", encoding="utf-8")
        env = {"AWS_CONFIG_FILE": str(profile)}
    service = spawn_service(
        tmp_path / "service", config(url), extra_env=env, drop_env=MACHINE_CA_VARIABLES
    )
    try:
        wait_healthy_sources(service.url, timeout=60)
        assert NAMES <= served_names(service.url)
    finally:
        stop_process(service.process)


@pytest.mark.parametrize("account", [DEMO_ACCOUNT, None])
def test_a_wrong_ca_fails_fast_with_a_message_naming_the_endpoint_and_the_setting(
    tls_moto: Any, tmp_path: Path, no_machine_ca: None, account: str | None
) -> None:
    url, _ = tls_moto
    other = make_pki(tmp_path / "other", name="Some Other CA")
    settings = config(url)
    # Without an account id, STS is asked first and fails the same way.
    settings["aws"]["targets"][0]["account_id"] = account
    service = spawn_service(
        tmp_path / "service",
        settings,
        extra_env={"AWS_CA_BUNDLE": str(other.ca)},
        drop_env=MACHINE_CA_VARIABLES,
    )
    try:
        started = time.monotonic()

        def certificate_error() -> str | None:
            readiness = httpx.get(f"{service.url}/readyz").json()
            errors = [s["last_error"] for s in readiness["sources"]]
            errors += readiness["unresolved_targets"]
            return next((e for e in errors if e and "could not be verified" in e), None)

        error = wait_until(certificate_error, "the certificate failure on /readyz", 30)
        elapsed = time.monotonic() - started
        metrics = httpx.get(f"{service.url}/metrics").text
    finally:
        stop_process(service.process)
    assert url in error and str(other.ca) in error
    assert "aws.ca_bundle" in error and "AWS_CA_BUNDLE" in error
    # Not retried: one attempt per call, then the message.
    assert not re.search(r'aws_calls_total\{operation="\w+",outcome="retried"\} [1-9]', metrics)
    if account is not None:
        # The ECR calls were made, each once.
        assert 'outcome="CertificateVerifyFailed"' in metrics
    assert "could not be verified" in log_of(tmp_path / "service")
    print(f"certificate failure on /readyz after {elapsed:.1f} s")


def test_sts_and_ecr_on_their_own_endpoints(moto: MotoServer, tmp_path: Path) -> None:
    seed_registry(moto.url, REPOSITORIES)
    ecr = start_proxy(moto.url)
    try:
        settings = config(moto.url, endpoint_urls={"ecr": ecr.url})
        del settings["aws"]["endpoint_url"]
        settings["aws"]["endpoint_urls"]["sts"] = moto.url
        service = spawn_service(tmp_path, settings)
        try:
            wait_healthy_sources(service.url, timeout=60)
            assert NAMES <= served_names(service.url)
        finally:
            stop_process(service.process)
        calls = ecr.stats()["calls"]
        assert calls["DescribeImages"] >= len(REPOSITORIES)
        # STS never went to the ECR endpoint.
        assert calls.get("(not ECR)", 0) == 0
    finally:
        stop_process(ecr.process)


def test_botocores_service_endpoint_variables_are_honoured(
    moto: MotoServer, tmp_path: Path
) -> None:
    seed_registry(moto.url, REPOSITORIES)
    ecr = start_proxy(moto.url)
    try:
        settings = config(moto.url)
        del settings["aws"]["endpoint_url"]
        env = {"AWS_ENDPOINT_URL_ECR": ecr.url, "AWS_ENDPOINT_URL_STS": moto.url}
        service = spawn_service(tmp_path, settings, extra_env=env)
        try:
            wait_healthy_sources(service.url, timeout=60)
        finally:
            stop_process(service.process)
        calls = ecr.stats()["calls"]
        assert calls["DescribeRepositories"] >= 1 and calls.get("(not ECR)", 0) == 0
        assert f"ECR in us-east-1: {ecr.url}\n" in log_of(tmp_path)
    finally:
        stop_process(ecr.process)
