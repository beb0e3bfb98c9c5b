"""The Backstage harness shared by the end-to-end tests: start it, read its catalog."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
import yaml

from ...support import free_port, spawn_service, stop_process, wait_for_http

HARNESS = Path(__file__).parent
T = TypeVar("T")


def eventually(check: Callable[[], T | None], timeout: float, what: str) -> T:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(1)


def ref_of(entity: dict[str, Any]) -> str:
    metadata = entity["metadata"]
    return f"{entity['kind']}:{metadata.get('namespace', 'default')}/{metadata['name']}".lower()


@dataclass
class Service:
    """An `ecr-catalog serve` process."""

    url: str
    port: int

    def served(self) -> dict[str, dict[str, Any]]:
        items = httpx.get(f"{self.url}/entities.json", timeout=10).json()["items"]
        return {ref_of(entity): entity for entity in items}

    def sources_refs(self) -> list[str]:
        """Every entity ref the per-source URLs and the core serve, read as Backstage would."""
        refs = []
        for path in ["/catalog/core.yaml"] + [
            f"/sources/{s['account']}/{s['region']}/entities.yaml"
            for s in self.readiness()["sources"]
        ]:
            response = httpx.get(f"{self.url}{path}", timeout=10)
            if response.status_code == 200:
                refs += [ref_of(d) for d in yaml.safe_load_all(response.text) if d]
        return refs

    def readiness(self) -> dict[str, Any]:
        result: dict[str, Any] = httpx.get(f"{self.url}/readyz", timeout=10).json()
        return result

    def metric(self, route: str, status: str) -> float:
        text = httpx.get(f"{self.url}/metrics", timeout=10).text
        prefix = f'ecr_catalog_http_requests_total{{route="{route}",status="{status}"}} '
        for line in text.splitlines():
            if line.startswith(prefix):
                return float(line[len(prefix) :])
        return 0.0


@contextmanager
def running_service(tmp: Path, settings: dict[str, Any]) -> Iterator[Service]:
    spawned = spawn_service(tmp, settings)
    try:
        service = Service(spawned.url, spawned.port)
        eventually(lambda: service.readiness()["ready"], 60, "ecr-catalog ready")
        yield service
    finally:
        stop_process(spawned.process)


@dataclass
class Backstage:
    """A real catalog backend: @backstage/plugin-catalog-backend on backend-defaults."""

    url: str
    log: Path

    def entities(self) -> list[dict[str, Any]]:
        response = httpx.get(f"{self.url}/api/catalog/entities", timeout=10)
        response.raise_for_status()
        result: list[dict[str, Any]] = response.json()
        return result

    def ingested(self) -> dict[str, dict[str, Any]]:
        """Every entity but Locations, by ref."""
        return {ref_of(e): e for e in self.entities() if e["kind"] != "Location"}

    def locations(self) -> list[dict[str, Any]]:
        return [e for e in self.entities() if e["kind"] == "Location"]

    def log_text(self) -> str:
        """Everything the backend has logged so far."""
        return self.log.read_text(errors="replace")

    def log_tail(self) -> str:
        return self.log_text()[-4000:]


@contextmanager
def running_backstage(
    tmp: Path,
    service: Service,
    path: str,
    *,
    locations: list[dict[str, Any]] | None = None,
    database_dir: Path | None = None,
) -> Iterator[Backstage]:
    """Backstage with one `type: url` location on ``path`` of the service.

    ``locations`` replaces that location; ``database_dir`` keeps the catalog's SQLite database
    in files there, so that a restart (a config change) finds what the last run ingested.
    """
    if not (HARNESS / "node_modules" / "@backstage" / "plugin-catalog-backend").is_dir():
        pytest.fail("the Backstage harness is not installed: run `make backstage-deps`")
    node = shutil.which("node")
    assert node, "node is required for the Backstage end-to-end test"
    # Backstage cannot report a port it picked itself, so one is chosen here; another process
    # may take it first, and then Backstage exits with EADDRINUSE and is started again.
    for attempt in range(5):
        port = free_port()
        process, log_path = _start_backstage(
            tmp, node, port, service, path, locations, database_dir
        )
        backstage = Backstage(f"http://127.0.0.1:{port}", log_path)
        try:
            wait_for_http(f"{backstage.url}/api/catalog/entities", timeout=120, process=process)
            break
        except AssertionError:
            stop_process(process)
            if "EADDRINUSE" not in backstage.log_text() or attempt == 4:
                raise AssertionError(f"Backstage did not start:\n{backstage.log_tail()}") from None
    try:
        yield backstage
    finally:
        stop_process(process)


def _start_backstage(
    tmp: Path,
    node: str,
    port: int,
    service: Service,
    path: str,
    locations: list[dict[str, Any]] | None,
    database_dir: Path | None,
) -> tuple[subprocess.Popen[bytes], Path]:
    config = {
        "app": {"baseUrl": "http://localhost:3000"},
        "backend": {
            "baseUrl": f"http://127.0.0.1:{port}",
            "listen": {"host": "127.0.0.1", "port": port},
            "database": {
                "client": "better-sqlite3",
                "connection": {"directory": str(database_dir)} if database_dir else ":memory:",
            },
            # The hostname must match the location URL's exactly, port included.
            "reading": {"allow": [{"host": f"localhost:{service.port}"}]},
            # Test only: lets plain HTTP read /api/catalog/entities.
            "auth": {"dangerouslyDisableDefaultAuthPolicy": True},
        },
        "events": {"useEventBus": "never"},
        "catalog": {
            "processingInterval": {"seconds": 5},
            # Global rules: entities read through nested Locations are judged by these.
            "rules": [{"allow": ["Domain", "System", "Component", "Resource", "Location"]}],
            "locations": locations
            if locations is not None
            else [{"type": "url", "target": f"http://localhost:{service.port}{path}"}],
        },
    }
    config_path = tmp / "app-config.yaml"
    config_path.write_text(yaml.safe_dump(config), encoding="utf-8")
    log_path = tmp / "backstage.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [node, "backend.js", "--config", str(config_path)],
            cwd=HARNESS,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    return process, log_path
