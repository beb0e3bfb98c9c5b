"""The limit of the serving stack: a bare ASGI app on uvicorn that serves the same bytes.

    python -m bench.bare_asgi --body entities.yaml --port 0 [--http httptools] [--fastapi]

It runs with the service's own uvicorn options (service/web/server.py: h11 and its head bound)
unless ``--http`` names another parser, which `make bench` uses to show what h11 costs. It
answers ``GET /entities.yaml`` with the pre-compressed body and a strong ETag, or 304 when
``If-None-Match`` names it, and nothing else: no routing, no middleware, no snapshot, no
metrics. The service's poll path cannot be faster than this on the same server, so
`make bench` reports the service's figures as ratios to it.

With ``--fastapi`` the same answers come from a minimal FastAPI app instead: one route, no
middleware, no dependencies. That is what the poll costs through FastAPI's own routing before
anything of ours runs, and the issue's serving target is a ratio to it.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import sys
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI, Request, Response

from service.config import ServerSettings
from service.web.server import uvicorn_options


def _answers(body: bytes) -> tuple[str, bytes, dict[str, str], dict[str, str]]:
    """The gzip ETag, the gzipped body, and the headers of the 304 and of the 200."""
    gzipped = gzip.compress(body, compresslevel=6, mtime=0)
    etag = '"' + hashlib.sha256(body).hexdigest()[:40] + '-gzip"'
    not_modified = {"etag": etag, "cache-control": "no-cache"}
    full = not_modified | {
        "content-type": "application/yaml",
        "content-encoding": "gzip",
        "content-length": str(len(gzipped)),
    }
    return etag, gzipped, not_modified, full


def make_fastapi_app(body: bytes) -> FastAPI:
    etag, gzipped, not_modified, full = _answers(body)
    app = FastAPI()

    @app.get("/entities.yaml")
    async def entities_yaml(request: Request) -> Response:
        if request.headers.get("if-none-match") == etag:
            return Response(status_code=304, headers=not_modified)
        return Response(gzipped, headers=full)

    return app


def make_app(body: bytes) -> Any:
    etag, gzipped, not_modified_headers, full_headers = _answers(body)
    not_modified = [(k.encode(), v.encode()) for k, v in not_modified_headers.items()]
    full = [(k.encode(), v.encode()) for k, v in full_headers.items()]

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
    parser.add_argument("--fastapi", action="store_true", help="a minimal FastAPI app instead")
    args = parser.parse_args()
    body = args.body.read_bytes()
    app = make_fastapi_app(body) if args.fastapi else make_app(body)
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
