"""The Backstage harness shared by the end-to-end tests: start it, read its catalog."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
import yaml

from ...support import free_port, spawn_service, stop_process, wait_for_http, wait_until

HARNESS = Path(__file__).parent
T = TypeVar("T")


def eventually(check: Callable[[], T | None], timeout: float, what: str, every: float = 1.0) -> T:
    """``wait_until`` with the deadline first, as these tests read; once a second by default
    (each check is an HTTP call to Backstage)."""
    result: T = wait_until(check, what, timeout, every)
    return result


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
    # The static external-access token, when the default auth policy is on.
    token: str | None = None
    process: subprocess.Popen[bytes] | None = None

    def stop(self) -> None:
        """Stop it now (it stays stopped when the test's context ends)."""
        if self.process is not None and self.process.poll() is None:
            stop_process(self.process)

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def entities(self) -> list[dict[str, Any]]:
        response = httpx.get(f"{self.url}/api/catalog/entities", timeout=10, headers=self.headers)
        response.raise_for_status()
        result: list[dict[str, Any]] = response.json()
        return result

    def entity(self, ref: str) -> dict[str, Any] | None:
        """One entity by ref (``kind:namespace/name``), or None while Backstage has none."""
        kind, rest = ref.split(":", 1)
        namespace, name = rest.split("/", 1)
        response = httpx.get(
            f"{self.url}/api/catalog/entities/by-name/{kind}/{namespace}/{name}",
            timeout=10,
            headers=self.headers,
        )
        if response.status_code == 404:
            return None
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result

    def refresh(self, ref: str) -> None:
        """What a person's "refresh" button does."""
        response = httpx.post(
            f"{self.url}/api/catalog/refresh",
            json={"entityRef": ref},
            timeout=10,
            headers=self.headers,
        )
        response.raise_for_status()

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
    port: int | None = None,
    token: str | None = None,
    processing_seconds: int | None = 5,
    app_configs: Sequence[Path] = (),
    env: Mapping[str, str] | None = None,
    allow: list[str] | None = None,
    catalog_starts: bool = True,
) -> Iterator[Backstage]:
    """Backstage with one `type: url` location on ``path`` of the service.

    ``locations`` replaces that location; ``database_dir`` keeps the catalog's SQLite database
    in files there, so that a restart (a config change) finds what the last run ingested.
    ``port`` is the port to listen on (one the service was told already); ``token`` turns on
    the default auth policy with this static external-access token, for the catalog only.
    ``processing_seconds`` None keeps Backstage's own interval (100-150 s). ``allow`` replaces
    the hosts Backstage may read (``host:port``; by default the service's).

    ``app_configs``: app-config files (as deploy/backstage ships them), each passed as one more
    ``--config`` after the harness's own, as the docs say. The harness's own config then holds
    no location, no ``reading.allow`` and no ``catalog.rules`` (and, with ``token``, no
    external access): those files bring them. ``env`` is Backstage's whole environment
    (None: the test process's). ``catalog_starts`` False: the catalog plugin is expected to
    fail, so only the process is waited for, not the plugin.
    """
    if not (HARNESS / "node_modules" / "@backstage" / "plugin-catalog-backend").is_dir():
        pytest.fail("the Backstage harness is not installed: run `make backstage-deps`")
    node = shutil.which("node")
    assert node, "node is required for the Backstage end-to-end test"
    # Backstage cannot report a port it picked itself, so one is chosen here; another process
    # may take it first, and then Backstage exits with EADDRINUSE and is started again.
    for attempt in range(5):
        listen = port or free_port()
        config = _config(
            listen, service, path, locations, database_dir, token, processing_seconds, allow
        )
        if app_configs:
            _leave_to_app_configs(config, token)
        process, log_path = _start_backstage(tmp, node, config, app_configs, env)
        backstage = Backstage(f"http://127.0.0.1:{listen}", log_path, token, process)
        try:
            # Any answer will do: with the auth policy on, it is a 401.
            catalog = f"{backstage.url}/api/catalog/entities"
            wait_for_http(catalog, timeout=120, process=process)
            if catalog_starts:
                wait_until(
                    partial(_catalog_started, catalog), "Backstage's catalog plugin", 120, every=0.1
                )
            break
        except AssertionError:
            stop_process(process)
            if "EADDRINUSE" not in backstage.log_text() or attempt == 4 or port:
                raise AssertionError(f"Backstage did not start:\n{backstage.log_tail()}") from None
    try:
        yield backstage
    finally:
        backstage.stop()


def _catalog_started(url: str) -> bool:
    """Backstage listens before its plugins start, and answers 404 for their routes until the
    catalog plugin has been initialised."""
    return httpx.get(url, timeout=5).status_code != 404


def _config(
    port: int,
    service: Service,
    path: str,
    locations: list[dict[str, Any]] | None,
    database_dir: Path | None,
    token: str | None,
    processing_seconds: int | None,
    allow: list[str] | None = None,
) -> dict[str, Any]:
    """The harness's own app-config."""
    # As docs/backstage-both-ways.md has it: a static token, for the catalog plugin only.
    auth: dict[str, Any] = (
        {
            "externalAccess": [
                {
                    "type": "static",
                    "options": {"token": token, "subject": "ecr-catalog"},
                    "accessRestrictions": [{"plugin": "catalog"}],
                }
            ]
        }
        if token
        # Test only: lets plain HTTP read /api/catalog/entities.
        else {"dangerouslyDisableDefaultAuthPolicy": True}
    )
    return {
        "app": {"baseUrl": "http://localhost:3000"},
        "backend": {
            "baseUrl": f"http://127.0.0.1:{port}",
            "listen": {"host": "127.0.0.1", "port": port},
            "database": {
                "client": "better-sqlite3",
                "connection": {"directory": str(database_dir)} if database_dir else ":memory:",
            },
            # The hostname must match the location URL's exactly, port included.
            "reading": {
                "allow": [{"host": host} for host in allow or [f"localhost:{service.port}"]]
            },
            "auth": auth,
        },
        "events": {"useEventBus": "never"},
        "catalog": {
            **(
                {"processingInterval": {"seconds": processing_seconds}}
                if processing_seconds
                else {}
            ),
            # Global rules: entities read through nested Locations are judged by these.
            "rules": [{"allow": ["Domain", "System", "Component", "Resource", "Location"]}],
            "locations": locations
            if locations is not None
            else [{"type": "url", "target": f"http://localhost:{service.port}{path}"}],
        },
    }


def _leave_to_app_configs(config: dict[str, Any], token: str | None) -> None:
    """Take out of the harness's config what the other app-config files must bring themselves,
    so that nothing of the harness's makes up for something they lack."""
    del config["backend"]["reading"]
    del config["catalog"]["rules"], config["catalog"]["locations"]
    if token:
        del config["backend"]["auth"]


def _start_backstage(
    tmp: Path,
    node: str,
    config: dict[str, Any],
    app_configs: Sequence[Path],
    env: Mapping[str, str] | None,
) -> tuple[subprocess.Popen[bytes], Path]:
    config_path = tmp / "app-config.yaml"
    config_path.write_text(yaml.safe_dump(config), encoding="utf-8")
    configs = [str(config_path), *map(str, app_configs)]
    log_path = tmp / "backstage.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [node, "backend.js", *[w for c in configs for w in ("--config", c)]],
            cwd=HARNESS,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=None if env is None else dict(env),
        )
    return process, log_path
