"""How uvicorn is run: the h11 parser, a head bound derived from the settings, the file limit."""

from __future__ import annotations

import resource

from service.config import Settings
from service.web.server import (
    REQUEST_LINE_BYTES,
    max_head_bytes,
    raise_open_files_limit,
    uvicorn_options,
)


def test_the_parser_is_h11_with_a_head_bound_from_the_two_request_settings() -> None:
    server = Settings(server={"max_url_length": 4096, "max_header_bytes": 2048}).server
    options = uvicorn_options(server)
    assert options["http"] == "h11"
    assert options["h11_max_incomplete_event_size"] == max_head_bytes(server)
    assert max_head_bytes(server) == 4096 + 2048 + REQUEST_LINE_BYTES
    # It would count idle connections and answer the kubelet's probes 503.
    assert "limit_concurrency" not in options


def test_the_soft_open_files_limit_is_raised_to_the_hard_one() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(soft, 256), hard))
        assert raise_open_files_limit() == (hard, hard)
        assert resource.getrlimit(resource.RLIMIT_NOFILE) == (hard, hard)
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
