"""The shipped deployment files, read as their consumers read them: where the kustomization puts
the Service, and which URLs a Backstage ``backend.reading.allow`` entry lets Backstage read."""

from __future__ import annotations

import posixpath
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

ROOT = Path(__file__).parents[1]
KUBERNETES = ROOT / "deploy" / "kubernetes" / "base"
BACKSTAGE = ROOT / "deploy" / "backstage"
READING = BACKSTAGE / "app-config.ecr-catalog.yaml"
BOTH_WAYS = BACKSTAGE / "app-config.ecr-catalog-both-ways.yaml"


def load(path: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    return loaded


def service_address() -> tuple[str, int]:
    """The cluster DNS name and port of the Service, as the base kustomization deploys it: the
    Service's name, in the kustomization's namespace (which overrides the manifest's own)."""
    service = load(KUBERNETES / "service.yaml")
    namespace = load(KUBERNETES / "kustomization.yaml")["namespace"]
    (port,) = service["spec"]["ports"]
    return f"{service['metadata']['name']}.{namespace}.svc.cluster.local", int(port["port"])


def allows(entry: dict[str, Any], url: str) -> bool:
    """Whether one ``backend.reading.allow`` entry lets Backstage's FetchUrlReader read ``url``.

    As @backstage/backend-defaults 0.19 decides it (FetchUrlReader's predicateFromConfig):
    the hostname matches exactly (or a ``*.`` suffix); an entry with a port (or a range ``a-b``)
    matches that port, the scheme's default standing for a URL without one; an entry without a
    port matches only URLs without one; each of ``paths`` matches itself and the paths below it
    at a segment boundary, after the URL's path is normalised; no ``paths``: every path.
    """
    parts = urlsplit(url)
    hostname, _, port = str(entry["host"]).partition(":")
    if hostname.startswith("*."):
        host_ok = (parts.hostname or "").endswith(hostname[1:])
    else:
        host_ok = parts.hostname == hostname
    if port:
        low, _, high = port.partition("-")
        actual = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
        port_ok = actual is not None and int(low) <= actual <= int(high or low)
    else:
        # WHATWG URL parsing drops a scheme's default port: http://h:80/ has none.
        default = {"http": 80, "https": 443}.get(parts.scheme)
        port_ok = parts.port is None or parts.port == default
    # Node's path.posix.normalize keeps a trailing slash; Python's normpath drops it.
    raw = parts.path or "/"
    path = posixpath.normpath(raw) + ("/" if raw.endswith("/") and raw != "/" else "")
    paths = entry.get("paths")
    path_ok = paths is None or any(
        path == allowed or path.startswith(allowed if allowed.endswith("/") else allowed + "/")
        for allowed in paths
    )
    return host_ok and port_ok and path_ok


def rewritten_for(path: Path, host: str, workdir: Path) -> Path:
    """A shipped app-config file with the Service's name swapped for ``host`` (a loopback
    ``localhost:port``), in the target and the allow entry alike and nowhere else: the one
    change a test on this machine has to make."""
    text = path.read_text(encoding="utf-8")
    service_host, _ = service_address()
    assert text.count(service_host) == (2 if path == READING else 0), path
    copy = workdir / path.name
    copy.write_text(text.replace(service_host, host), encoding="utf-8")
    return copy
