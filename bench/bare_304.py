"""The fastest 304 one Python process can give: the ceiling for the service's 304 figures.

An asyncio protocol on uvloop (what uvicorn runs on) that answers every request on a
keep-alive connection with a fixed 304, without parsing anything but the end of the headers.
No HTTP server written in Python does less per request, so its p99 under `make bench`'s load
shows what the 304 target asks of one Python process on this machine.
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

import uvloop

RESPONSE = (
    b"HTTP/1.1 304 Not Modified\r\n"
    b'etag: "0123456789abcdef0123456789abcdef01234567"\r\n'
    b"cache-control: no-cache\r\n"
    b"\r\n"
)


class Bare304(asyncio.Protocol):
    def __init__(self) -> None:
        # uvloop's transports are not asyncio.Transport subclasses; they have write().
        self.transport: Any = None
        self.pending = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.pending += data
        while (end := self.pending.find(b"\r\n\r\n")) >= 0:
            self.pending = self.pending[end + 4 :]
            self.transport.write(RESPONSE)


async def serve(port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(Bare304, "127.0.0.1", port, backlog=1024)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    uvloop.run(serve(args.port))


if __name__ == "__main__":
    main()
