"""How uvicorn serves the app: the socket it listens on, its HTTP parser and the bound on a
request head, and the process's open-file limit.

``ecr-catalog serve`` and the bench's bare ASGI app both take their options from here, so the
bench measures the protocol the service runs.
"""

from __future__ import annotations

import errno
import logging
import resource
import socket
from typing import Any

from ..config.sections import ServerSettings
from ..errors import ConfigError

__all__ = [
    "BACKLOG",
    "REQUEST_LINE_BYTES",
    "listening_socket",
    "max_head_bytes",
    "raise_open_files_limit",
    "uvicorn_options",
]

log = logging.getLogger(__name__)

# uvicorn's own default backlog.
BACKLOG = 2048
PORT_SETTINGS = (
    "set PORT or server.port (make run PORT=..., serve --port, ECR_CATALOG_SERVER__PORT)"
)
HOST_SETTINGS = (
    "set HOST or server.host (make run HOST=..., serve --host, ECR_CATALOG_SERVER__HOST)"
)

# The request line around its target (method, spaces, "HTTP/1.1", CRLF) and the blank line
# that ends the head: generous, since the method is any token.
REQUEST_LINE_BYTES = 64


def max_head_bytes(server: ServerSettings) -> int:
    """The most of an unfinished request head the parser holds before it refuses it.

    Derived from the two settings the 414 and 431 answers use, so that one head which passes
    both still parses, and one setting governs each bound.
    """
    return server.max_url_length + server.max_header_bytes + REQUEST_LINE_BYTES


def uvicorn_options(server: ServerSettings) -> dict[str, Any]:
    """The keyword arguments of ``uvicorn.run`` that bound what a client can make us hold."""
    return {
        # httptools buffers a whole head before any limit of ours runs: a head that never ends
        # grew the process by hundreds of megabytes (issue 23). h11 refuses an unfinished
        # event beyond h11_max_incomplete_event_size with 400 and closes the connection.
        "http": "h11",
        "h11_max_incomplete_event_size": max_head_bytes(server),
        # Client addresses are never used; parsing X-Forwarded-For on every request is not
        # worth it.
        "proxy_headers": False,
        # limit_concurrency is left unset on purpose: it counts idle connections too, and
        # then answers 503 to every new request, the kubelet's probes included
        # (docs/security.md).
    }


def raise_open_files_limit() -> tuple[int, int]:
    """Raise the soft limit on open files to the hard one; returns (soft, hard) after.

    Each connection holds a descriptor, and a process out of them cannot accept the
    kubelet's probe. The hard limit is the container runtime's to set; the soft one is often
    far below it.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError) as exc:
            # E.g. an unlimited hard limit that the kernel caps lower (nr_open).
            log.warning("cannot raise the open-files limit from %d to %s: %s", soft, hard, exc)
            return soft, hard
        soft = hard
    return soft, hard


def _why_not(exc: OSError, where: str) -> str:
    if exc.errno == errno.EADDRINUSE:
        return f"another process listens on {where}; {PORT_SETTINGS}"
    if exc.errno == errno.EACCES:
        return f"no permission to listen on {where} (a port below 1024?); {PORT_SETTINGS}"
    if exc.errno in (errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT) or isinstance(exc, socket.gaierror):
        return f"cannot listen on {where}: not an address of this machine; {HOST_SETTINGS}"
    return f"cannot listen on {where}: {exc.strerror or exc}"


def listening_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``host``:``port`` and listening, as uvicorn would bind it.

    Bound here, before the app starts, so that a busy port is said in these words before any
    AWS client is opened; uvicorn itself would only log the OSError and exit 3. Raises
    ConfigError.
    """
    where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    try:
        # As uvicorn does: a port in TIME_WAIT after a restart is free; one listened on is not.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(BACKLOG)
    except OSError as exc:
        sock.close()
        raise ConfigError(_why_not(exc, where)) from None
    return sock
