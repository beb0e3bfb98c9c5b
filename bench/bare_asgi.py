"""The limit of the serving stack: a bare ASGI app on uvicorn that serves the same bytes.

    python -m bench.bare_asgi --body entities.yaml --port 0 [--http httptools]

It runs with the service's own uvicorn options (service/web/server.py: h11 and its head bound)
unless ``--http`` names another parser, which `make bench` uses to show what h11 costs. It
answers ``GET /entities.yaml`` with the pre-compressed body and a strong ETag, or 304 when
``If-None-Match`` names it, and nothing else: no routing, no middleware, no snapshot, no
metrics. The service's poll path cannot be faster than this on the same server, so
`make bench` reports the service's figures as ratios to it.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import sys
from pathlib import Path
from typing import Any

import uvicorn

from service.config import ServerSettings
from service.web.server import uvicorn_options


def make_app(body: bytes) -> Any:
    gzipped = gzip.compress(body, compresslevel=6, mtime=0)
    etag = '"' + hashlib.sha256(body).hexdigest()[:40] + '-gzip"'
    not_modified = [(b"etag", etag.encode()), (b"cache-control", b"no-cache")]
    full = [
        *not_modified,
        (b"content-type", b"application/yaml"),
        (b"content-encoding", b"gzip"),
        (b"content-length", str(len(gzipped)).encode()),
    ]

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        match = any(
            name == b"if-none-match" and value.decode() == etag for name, value in scope["headers"]
        )
        if match:
            await send({"type": "http.response.start", "status": 304, "headers": not_modified})
            await send({"type": "http.response.body", "body": b""})
            return
        await send({"type": "http.response.start", "status": 200, "headers": full})
        await send({"type": "http.response.body", "body": gzipped})

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--body", type=Path, required=True)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--http", choices=("h11", "httptools"), help="instead of the service's")
    args = parser.parse_args()
    app = make_app(args.body.read_bytes())
    # The service's own server settings, but for what only the service needs.
    options = uvicorn_options(ServerSettings())
    if args.http:
        options["http"] = args.http
    uvicorn.run(
        app, host="127.0.0.1", port=args.port, log_level="info", access_log=False, **options
    )
    sys.exit(0)


if __name__ == "__main__":
    main()
