"""What the fault proxy and the benchmark's fake ECR both answer like AWS: errors and throttling."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Hashable
from typing import Any

from aiohttp import web

__all__ = ["TokenBuckets", "aws_error", "run_announced", "sts_error"]


def run_announced(app: web.Application, host: str, port: int, **runner_options: Any) -> None:
    """Serve ``app`` until killed; once bound, print ``listening on http://HOST:PORT``.

    With port 0 the system picks a free port, and the line says which: the tests read it
    instead of choosing a port first and racing other processes for it.
    """

    async def serve() -> None:
        runner = web.AppRunner(app, **runner_options)
        await runner.setup()
        await web.TCPSite(runner, host, port).start()
        bound_host, bound_port = runner.addresses[0][:2]
        print(f"listening on http://{bound_host}:{bound_port}", file=sys.stderr, flush=True)
        await asyncio.Event().wait()

    asyncio.run(serve())


def sts_error(status: int, code: str, message: str) -> web.Response:
    """An error as STS (the query protocol) sends it: XML."""
    body = (
        '<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error>'
        f"<Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error>"
        "<RequestId>fault-proxy</RequestId></ErrorResponse>"
    )
    return web.Response(body=body.encode(), status=status, content_type="text/xml")


def aws_error(status: int, code: str, message: str) -> web.Response:
    """An error as a JSON 1.1 AWS service sends it (botocore reads the code from both places)."""
    return web.json_response(
        {"__type": code, "message": message},
        status=status,
        headers={"x-amzn-ErrorType": code},
        content_type="application/x-amz-json-1.1",
    )


class TokenBuckets:
    """One token bucket per key (operation and region, as AWS throttles): ``rate`` calls/s
    refilled up to ``burst``. Rate-based, like the real service: a fixed "every Nth call fails"
    pattern would make botocore's adaptive mode shrink without end."""

    def __init__(self, rate: float | None, burst: float) -> None:
        self.rate = rate
        self.burst = burst
        self._buckets: dict[Hashable, tuple[float, float]] = {}

    def admit(self, key: Hashable) -> bool:
        """Take a token for ``key``; False when there is none (answer ThrottlingException)."""
        if self.rate is None:
            return True
        now = time.monotonic()
        tokens, last = self._buckets.get(key, (self.burst, now))
        tokens = min(self.burst, tokens + (now - last) * self.rate)
        if tokens < 1:
            self._buckets[key] = (tokens, now)
            return False
        self._buckets[key] = (tokens - 1, now)
        return True
