"""How uvicorn serves the app: its HTTP parser and the bound on a request head, and the process's
open-file limit.

``ecr-catalog serve`` and the bench's bare ASGI app both take their options from here, so the
bench measures the protocol the service runs.
"""

from __future__ import annotations

import logging
import resource
from typing import Any

from ..config.sections import ServerSettings

__all__ = ["REQUEST_LINE_BYTES", "max_head_bytes", "raise_open_files_limit", "uvicorn_options"]

log = logging.getLogger(__name__)

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
