"""Shared fixtures: no real AWS, and a moto server process."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import pytest

from .support import (
    MACHINE_CA_VARIABLES,
    PROXY_VARIABLES,
    FaultProxy,
    MotoServer,
    start_moto,
    start_proxy,
    stop_process,
)


@pytest.fixture(autouse=True)
def _no_real_aws(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test may reach real AWS or pick up a developer's configuration (or old switches)."""
    for name in list(os.environ):
        if (
            name.startswith(("AWS_", "ECR_CATALOG_"))
            or name in PROXY_VARIABLES
            or name == "UPDATE_GOLDEN"
        ):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoServer]:
    server = start_moto()
    try:
        yield server
    finally:
        stop_process(server.process)


@pytest.fixture
def moto(moto_server: MotoServer) -> Iterator[MotoServer]:
    """The session's moto server, emptied before each test."""
    moto_server.reset()
    yield moto_server


@pytest.fixture
def proxy(moto: MotoServer) -> Iterator[FaultProxy]:
    """A fault proxy in front of the (emptied) moto server, with no faults set."""
    started = start_proxy(moto.url)
    try:
        yield started
    finally:
        stop_process(started.process)


@pytest.fixture
def machine_in_tokyo(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The process's local time zone is nine hours ahead of UTC, for this test only."""
    monkeypatch.setenv("TZ", "JST-9")  # POSIX form: needs no time zone database
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.fixture
def no_machine_ca(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only the CA settings a test makes itself: none of the machine's own."""
    for name in MACHINE_CA_VARIABLES:
        monkeypatch.delenv(name, raising=False)


LAYERS = ("unit", "integration", "e2e")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark each test with its layer, from its folder: ``pytest -m unit`` runs the pure ones."""
    for item in items:
        parts = item.path.parts
        for layer in LAYERS:
            if layer in parts:
                item.add_marker(getattr(pytest.mark, layer))
