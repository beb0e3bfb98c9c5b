"""A forward HTTP proxy, as enterprise networks put between services and AWS.

    python -m tests.faults.forward_proxy --port 0 --map 127.0.0.1:9=127.0.0.1:5000 \
        [--auth user:password]

It takes ``CONNECT host:port`` (tunnels, for https endpoints) and absolute-URI requests
(``POST http://host:port/ HTTP/1.1``, for http endpoints), the two ways botocore and aiohttp
use a proxy. ``--map`` sends a host:port on to another address: pointed at a port nothing
listens on, the only way to reach the upstream is through this proxy. With ``--auth``, a
request without that ``Proxy-Authorization`` gets 407. Every request is logged on stdout, one
line each: ``CONNECT host:port`` or ``REQUEST METHOD URL target=<X-Amz-Target>``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import sys
from urllib.parse import urlsplit

HEAD_LIMIT = 64 * 1024


def _say(line: str) -> None:
    print(line, flush=True)


class ForwardProxy:
    def __init__(self, mapping: dict[str, str], auth: str | None) -> None:
        self.mapping = mapping
        self.expected = "Basic " + base64.b64encode(auth.encode()).decode() if auth else None

    def _route(self, host_port: str) -> tuple[str, int]:
        host, _, port = self.mapping.get(host_port, host_port).rpartition(":")
        return host, int(port)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstreams: dict[str, tuple[asyncio.StreamReader, asyncio.StreamWriter]] = {}
        try:
            while True:
                head = await _read_head(reader)
                if head is None:
                    return
                request_line, headers = _parse(head)
                method, target, version = request_line.split(" ", 2)
                if self.expected and headers.get("proxy-authorization") != self.expected:
                    _say(f"DENIED {method} {target}")
                    writer.write(
                        b"HTTP/1.1 407 Proxy Authentication Required\r\n"
                        b'Proxy-Authenticate: Basic realm="proxy"\r\nContent-Length: 0\r\n\r\n'
                    )
                    await writer.drain()
                    continue
                if method == "CONNECT":
                    _say(f"CONNECT {target}")
                    await self._tunnel(target, reader, writer)
                    return
                await self._forward(
                    method, target, version, head, headers, reader, writer, upstreams
                )
        except (ConnectionError, asyncio.IncompleteReadError, ValueError):
            return
        finally:
            for _, upstream in upstreams.values():
                upstream.close()
            writer.close()

    async def _tunnel(
        self, target: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self._route(target))
        except OSError as exc:
            writer.write(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
            await writer.drain()
            _say(f"FAILED CONNECT {target}: {exc}")
            return
        writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        await writer.drain()
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))

    async def _forward(
        self,
        method: str,
        target: str,
        version: str,
        head: bytes,
        headers: dict[str, str],
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        upstreams: dict[str, tuple[asyncio.StreamReader, asyncio.StreamWriter]],
    ) -> None:
        url = urlsplit(target)
        if not url.scheme or not url.netloc:
            raise ValueError(f"not an absolute URI: {target}")
        _say(f"REQUEST {method} {target} target={headers.get('x-amz-target', '')}")
        body = await reader.readexactly(int(headers.get("content-length", "0") or 0))
        if url.netloc not in upstreams:
            upstreams[url.netloc] = await asyncio.open_connection(*self._route(url.netloc))
        up_reader, up_writer = upstreams[url.netloc]
        path = url.path or "/"
        if url.query:
            path += "?" + url.query
        lines = head.split(b"\r\n")[1:]
        kept = [
            line
            for line in lines
            if line
            and line.split(b":", 1)[0].strip().lower()
            not in (b"proxy-authorization", b"proxy-connection")
        ]
        up_writer.write(
            f"{method} {path} {version}\r\n".encode() + b"\r\n".join(kept) + b"\r\n\r\n" + body
        )
        await up_writer.drain()
        response = await _read_head(up_reader)
        if response is None:
            raise ConnectionError("the upstream closed")
        _, response_headers = _parse(response)
        writer.write(response)
        if response_headers.get("transfer-encoding", "").lower() == "chunked":
            while True:
                size_line = await up_reader.readuntil(b"\r\n")
                size = int(size_line.split(b";")[0], 16)
                chunk = await up_reader.readexactly(size + 2)
                writer.write(size_line + chunk)
                if size == 0:
                    break
        elif "content-length" in response_headers:
            writer.write(await up_reader.readexactly(int(response_headers["content-length"])))
        else:
            writer.write(await up_reader.read())
            upstreams.pop(url.netloc)[1].close()
        await writer.drain()


async def _read_head(reader: asyncio.StreamReader) -> bytes | None:
    try:
        return await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as exc:
        if exc.partial:
            raise
        return None
    except asyncio.LimitOverrunError as exc:
        raise ValueError("head too large") from exc


def _parse(head: bytes) -> tuple[str, dict[str, str]]:
    first, *rest = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in rest:
        if ":" in line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    return first, headers


async def _pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
    try:
        while data := await source.read(65536):
            sink.write(data)
            await sink.drain()
    except ConnectionError:
        pass
    finally:
        sink.close()


async def serve(port: int, mapping: dict[str, str], auth: str | None) -> None:
    proxy = ForwardProxy(mapping, auth)
    server = await asyncio.start_server(proxy.handle, "127.0.0.1", port, limit=HEAD_LIMIT)
    bound = server.sockets[0].getsockname()[1]
    print(f"listening on http://127.0.0.1:{bound}", file=sys.stderr, flush=True)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--map", action="append", default=[], help="host:port=host:port")
    parser.add_argument("--auth", help="user:password the clients must send")
    args = parser.parse_args()
    mapping = dict(item.split("=", 1) for item in args.map)
    asyncio.run(serve(args.port, mapping, args.auth))


if __name__ == "__main__":
    main()
