"""A fault-injecting HTTP proxy in front of a moto server, controlled over HTTP during a test.

moto cannot inject faults, so tests put this in between:

    python -m tests.faults.proxy --upstream http://127.0.0.1:5000 --port 5100

``POST /__faults__`` with a JSON body replaces the fault settings (see ``Faults``);
``GET /__faults__/stats`` returns what was injected, by kind, calls by operation, and ECR
calls by signer and region (``"<access key id>/<region>": {operation: calls}``: with the fake
ECR, an assumed role's key is ``ASIA<account>``, so each source's reads can be counted).
Faults apply to ECR calls (JSON 1.1, ``X-Amz-Target``); STS and moto's own API pass through.
The region comes from the SigV4 credential scope, as in AWS.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import re
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import parse_qs

from aiohttp import ClientSession, ClientTimeout, web

from .aws_wire import TokenBuckets, aws_error, run_announced, sts_error

ECR_TARGET_PREFIX = "AmazonEC2ContainerRegistry_V20150921."
_SCOPE = re.compile(r"Credential=[^/]+/\d{8}/([a-z0-9-]+)/")
_SIGNER = re.compile(r"Credential=([A-Za-z0-9]{1,128})/")
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "host"}


@dataclass
class Faults:
    latency_ms: float = 0.0
    # Token bucket per (operation, region): `rate` calls/s refilled, `burst` at most.
    throttle_rate: float | None = None
    throttle_burst: float = 10.0
    error_rate: float = 0.0
    error_status: int = 500
    reset_rate: float = 0.0
    hang_rate: float = 0.0
    hang_seconds: float = 60.0
    garbage_rate: float = 0.0
    truncate_rate: float = 0.0
    deny_regions: list[str] = field(default_factory=list)
    # AccessDenied for these operations (e.g. DescribeImageScanFindings), in every region.
    deny_operations: list[str] = field(default_factory=list)
    # Drop every connection at once (STS included), as an unreachable AWS would.
    refuse: bool = False
    # Fail every call whose request asks for this page (its "nextToken"): with "throttle",
    # a ThrottlingException; otherwise an InternalFailure with error_status.
    fail_next_token: str | None = None
    fail_page_with: str = "throttle"
    # JSON 1.1 calls whose X-Amz-Target starts with one of these (e.g. an Organizations
    # "AWSOrganizationsV20161128.") get 503: that service is down.
    unavailable_targets: list[str] = field(default_factory=list)
    # STS AssumeRole of these role ARNs is refused (AccessDenied), as for a missing role.
    deny_assume_roles: list[str] = field(default_factory=list)
    seed: int | None = None


class Proxy:
    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.faults = Faults()
        self.rng = random.Random()
        self.buckets = TokenBuckets(None, self.faults.throttle_burst)
        self.injected: Counter[str] = Counter()
        self.calls: Counter[str] = Counter()
        self.by_signer: dict[str, Counter[str]] = {}
        self.session: ClientSession | None = None

    async def configure(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.faults = Faults(**body)
        self.rng = random.Random(self.faults.seed)
        self.buckets = TokenBuckets(self.faults.throttle_rate, self.faults.throttle_burst)
        return web.json_response(asdict(self.faults))

    async def stats(self, _request: web.Request) -> web.Response:
        return web.json_response(
            {"injected": self.injected, "calls": self.calls, "by_signer": self.by_signer}
        )

    async def reset_stats(self, _request: web.Request) -> web.Response:
        self.injected.clear()
        self.calls.clear()
        self.by_signer.clear()
        return web.json_response({})

    def _chance(self, rate: float) -> bool:
        return rate > 0 and self.rng.random() < rate

    async def handle(self, request: web.Request) -> web.StreamResponse:
        target = request.headers.get("X-Amz-Target", "")
        body = await request.read()
        faults = self.faults
        if faults.refuse:
            self.injected["refused"] += 1
            assert request.transport is not None
            request.transport.abort()
            raise ConnectionResetError("injected refusal")
        if any(target.startswith(prefix) for prefix in faults.unavailable_targets):
            self.injected["unavailable"] += 1
            return aws_error(503, "ServiceUnavailableException", "injected: unavailable")
        if faults.deny_assume_roles and b"Action=AssumeRole" in body:
            role = parse_qs(body.decode("utf-8", "replace")).get("RoleArn", [""])[0]
            if role in faults.deny_assume_roles:
                self.injected["assume_role_denied"] += 1
                return sts_error(
                    403, "AccessDenied", f"not authorized to perform sts:AssumeRole on {role}"
                )
        if target.startswith(ECR_TARGET_PREFIX):
            operation = target.removeprefix(ECR_TARGET_PREFIX)
            scope = _SCOPE.search(request.headers.get("Authorization", ""))
            region = scope.group(1) if scope else "unknown"
            self.calls[operation] += 1
            signer = _SIGNER.search(request.headers.get("Authorization", ""))
            key = f"{signer.group(1) if signer else 'unknown'}/{region}"
            self.by_signer.setdefault(key, Counter())[operation] += 1
            if self._chance(faults.reset_rate):
                self.injected["reset"] += 1
                assert request.transport is not None
                request.transport.abort()
                raise ConnectionResetError("injected reset")
            if faults.latency_ms:
                await asyncio.sleep(faults.latency_ms / 1000)
            if region in faults.deny_regions or operation in faults.deny_operations:
                self.injected["access_denied"] += 1
                return aws_error(400, "AccessDeniedException", "injected: access denied")
            if faults.fail_next_token is not None and _next_token(body) == faults.fail_next_token:
                self.injected[f"page_{faults.fail_page_with}"] += 1
                if faults.fail_page_with == "throttle":
                    return aws_error(400, "ThrottlingException", "Rate exceeded")
                return aws_error(faults.error_status, "InternalFailure", "injected page error")
            if not self.buckets.admit((operation, region)):
                self.injected["throttle"] += 1
                return aws_error(400, "ThrottlingException", "Rate exceeded")
            if self._chance(faults.error_rate):
                self.injected[f"http_{faults.error_status}"] += 1
                return aws_error(faults.error_status, "InternalFailure", "injected error")
            if self._chance(faults.hang_rate):
                self.injected["hang"] += 1
                await asyncio.sleep(faults.hang_seconds)
            garbage = self._chance(faults.garbage_rate)
            truncate = not garbage and self._chance(faults.truncate_rate)
        else:
            # STS and moto's own API: counted, never faulted.
            self.calls["(not ECR)"] += 1
            garbage = truncate = False
        assert self.session is not None
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
        async with self.session.request(
            request.method,
            self.upstream + request.path_qs,
            headers=headers,
            data=body,
            allow_redirects=False,
        ) as upstream:
            payload = await upstream.read()
            out_headers = {k: v for k, v in upstream.headers.items() if k.lower() not in HOP_BY_HOP}
            status = upstream.status
        if garbage:
            self.injected["garbage"] += 1
            payload = b"<html>\x00\xffnot json at all"
        elif truncate:
            self.injected["truncated"] += 1
            payload = payload[: max(1, len(payload) // 2)]
        return web.Response(body=payload, status=status, headers=out_headers)


def _next_token(body: bytes) -> str | None:
    try:
        document = json.loads(body) if body else {}
    except ValueError:
        return None
    token = document.get("nextToken") if isinstance(document, dict) else None
    return str(token) if token is not None else None


def make_app(upstream: str) -> web.Application:
    proxy = Proxy(upstream)

    async def lifecycle(_app: web.Application) -> Any:
        proxy.session = ClientSession(timeout=ClientTimeout(total=120), auto_decompress=False)
        yield
        await proxy.session.close()

    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.cleanup_ctx.append(lifecycle)
    app.router.add_post("/__faults__", proxy.configure)
    app.router.add_get("/__faults__/stats", proxy.stats)
    app.router.add_delete("/__faults__/stats", proxy.reset_stats)
    app.router.add_route("*", "/{tail:.*}", proxy.handle)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--upstream", required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True, help="0: any free port (printed)")
    args = parser.parse_args()
    run_announced(make_app(args.upstream), args.host, args.port)


if __name__ == "__main__":
    main()
