"""A fast fake ECR for benchmarks: the real wire protocol over an in-memory, seeded data set.

    python -m tests.faults.fake_ecr --port 5200 --regions 5 --repositories 10000
    (with --latency-ms 25 --rate 100 for ECR's latency and throttling)

moto spends about 8 ms of CPU per call, too slow to benchmark 10,000 repositories. This fake
speaks ECR's JSON 1.1 (`X-Amz-Target`) for the read operations the service uses, plus STS
GetCallerIdentity (query protocol), pages exactly like ECR (`maxResults`, `nextToken`), adds
a per-call latency, applies a token bucket per operation and region that answers
`ThrottlingException`, and counts calls by operation (`GET /__stats__`).
`POST /__config__` changes latency and rate while it runs; `DELETE /__stats__` resets counts.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import random
import re
import time
from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import parse_qs

from aiohttp import web

from .aws_wire import TokenBuckets, aws_error, run_announced, sts_error

ACCOUNT = "123456789012"
TARGET_PREFIX = "AmazonEC2ContainerRegistry_V20150921."
ORGANIZATIONS_PREFIX = "AWSOrganizationsV20161128."
_SCOPE = re.compile(r"Credential=[^/]+/\d{8}/([a-z0-9-]+)/")
REGION_NAMES = ["us-east-1", "eu-west-1", "us-west-2", "ap-southeast-2", "eu-central-1"]
LIFECYCLE = json.dumps({"rules": [{"rulePriority": 1}, {"rulePriority": 2}]})


@dataclass
class Repository:
    name: str
    region: str
    created: float
    tags: list[dict[str, str]]
    images: list[dict[str, Any]]
    lifecycle: str | None
    # Images made page by page instead of held (huge repositories): this many, after `images`.
    generated_images: int = 0
    pushed: int = 1_760_000_000
    account: str = ACCOUNT

    @property
    def arn(self) -> str:
        return f"arn:aws:ecr:{self.region}:{self.account}:repository/{self.name}"

    @property
    def image_count(self) -> int:
        return len(self.images) + self.generated_images

    def image_details(self, start: int, size: int) -> list[dict[str, Any]]:
        held = self.images[start : start + size]
        first = max(0, start - len(self.images))
        wanted = min(size - len(held), self.generated_images - first)
        return held + [image_detail(self.name, self.pushed, first + i) for i in range(wanted)]

    def describe(self) -> dict[str, Any]:
        return {
            "repositoryArn": self.arn,
            "registryId": self.account,
            "repositoryName": self.name,
            "repositoryUri": f"{self.account}.dkr.ecr.{self.region}.amazonaws.com/{self.name}",
            "createdAt": self.created,
            "imageTagMutability": "MUTABLE",
            "imageScanningConfiguration": {"scanOnPush": False},
            "encryptionConfiguration": {"encryptionType": "AES256"},
        }


def image_detail(name: str, pushed: int, image: int, latest: bool = False) -> dict[str, Any]:
    """One ImageDetail as real ECR sends it, ~700 bytes of JSON: a 1,000-image page is the
    ~0.74 MB that ECR-NOTES.md measured."""
    digest = hashlib.sha256(f"{name}:{image}".encode()).hexdigest()
    at = pushed + image * 3600
    return {
        "registryId": ACCOUNT,
        "repositoryName": name,
        "imageDigest": f"sha256:{digest}",
        "imageTags": [
            f"v1.{image // 100}.{image % 100}",
            f"sha-{digest[:12]}",
            f"build-{100_000 + image}",
            *(["latest"] if latest else []),
        ],
        "imageSizeInBytes": 50_000_000 + image,
        "imagePushedAt": at,
        "imageScanStatus": {
            "status": "COMPLETE",
            "description": "The scan was completed successfully.",
        },
        "imageScanFindingsSummary": {
            "imageScanCompletedAt": at + 60,
            "vulnerabilitySourceUpdatedAt": at,
            "findingSeverityCounts": {
                "CRITICAL": image % 2,
                "HIGH": image % 7,
                "MEDIUM": 2,
                "LOW": 5,
            },
        },
        "imageManifestMediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "artifactMediaType": "application/vnd.docker.container.image.v1+json",
        "lastRecordedPullTime": at + 7200,
    }


def _account_of(authorization: str) -> str:
    """The account whose credentials signed a request: an assumed role's, or the management's."""
    found = re.search(r"Credential=ASIA(\d{12})/", authorization)
    return found.group(1) if found else ACCOUNT


def generate_fleet(
    accounts: int, regions: list[str], repositories: int, images: int, seed: int
) -> dict[str, list[Repository]]:
    """``accounts`` member accounts (100000000001, ...), each with ``repositories`` of its own
    spread over ``regions``; the management account holds none."""
    fleet: dict[str, list[Repository]] = {}
    for number in range(1, accounts + 1):
        account = f"{100_000_000_000 + number}"
        for region, repos in generate(regions, repositories, images, seed + number).items():
            fleet.setdefault(region, []).extend(replace(r, account=account) for r in repos)
    return fleet


def generate(
    regions: list[str], repositories: int, images: int, seed: int, huge: int = 0
) -> dict[str, list[Repository]]:
    """``repositories`` spread evenly over ``regions``, each with ``images`` images; with
    ``huge``, one more repository (``huge/ci-builds``, first region) of that many images."""
    rng = random.Random(seed)
    data: dict[str, list[Repository]] = {region: [] for region in regions}
    for index in range(repositories):
        region = regions[index % len(regions)]
        name = f"team-{index % 37:02d}/service-{index:06d}"
        pushed = 1_760_000_000 + rng.randrange(10_000_000)
        details = [
            image_detail(name, pushed, image, image == images - 1) for image in range(images)
        ]
        data[region].append(
            Repository(
                name=name,
                region=region,
                created=1_700_000_000 + index,
                tags=[
                    {"Key": "owner", "Value": f"team-{index % 37:02d}"},
                    {"Key": "component", "Value": f"service-{index:06d}"},
                ],
                images=details,
                lifecycle=LIFECYCLE if index % 3 else None,
            )
        )
    if huge:
        data[regions[0]].append(
            Repository("huge/ci-builds", regions[0], 1_700_000_000, [], [], None, huge)
        )
    return data


def from_spec(spec: list[dict[str, Any]]) -> dict[str, list[Repository]]:
    """A data set from plain records: name, region, tags, images (lists of tags), lifecycle.

    The --data file holds ``{"repositories": [...], "replication": {region: destinations}}``.

    The same records seed a moto server (service.demo.seed_registry), which is how the
    contract test compares the two.
    """
    data: dict[str, list[Repository]] = {}
    for index, raw in enumerate(spec):
        images = []
        for number, tags in enumerate(raw.get("images", [])):
            digest = hashlib.sha256(f"{raw['name']}:{number}".encode()).hexdigest()
            image: dict[str, Any] = {
                "registryId": ACCOUNT,
                "repositoryName": raw["name"],
                "imageDigest": f"sha256:{digest}",
                "imageSizeInBytes": 1000 + number,
                "imagePushedAt": 1_760_000_000 + number,
            }
            if tags:
                image["imageTags"] = list(tags)
            images.append(image)
        data.setdefault(raw["region"], []).append(
            Repository(
                name=raw["name"],
                region=raw["region"],
                created=1_700_000_000 + index,
                tags=[{"Key": k, "Value": v} for k, v in raw.get("tags", {}).items()],
                images=images,
                lifecycle=raw.get("lifecycle"),
            )
        )
    return data


@dataclass
class Limits:
    latency_ms: float = 0.0
    rate: float | None = None
    burst: float = 10.0
    # ECR may answer with fewer items than maxResults; small pages make paging cheap to test.
    max_page_size: int = 1000


@dataclass
class FakeEcr:
    data: dict[str, list[Repository]]
    replication: dict[str, list[dict[str, str]]] = field(default_factory=dict)
    limits: Limits = field(default_factory=Limits)
    # Enhanced scanning (Inspector): findings only through DescribeImageScanFindings.
    enhanced: bool = False
    calls: Counter[str] = field(default_factory=Counter)
    throttled: Counter[str] = field(default_factory=Counter)
    # Wall-clock times of the first and the last ECR call, to split a cold start into
    # "before the first call", "reading" and "after the last call".
    first_call_at: float | None = None
    last_call_at: float | None = None

    def __post_init__(self) -> None:
        self.buckets = TokenBuckets(self.limits.rate, self.limits.burst)
        self.by_arn = {r.arn: r for repos in self.data.values() for r in repos}
        self.by_name = {(r.account, r.region, r.name): r for r in self.by_arn.values()}
        self.listing: dict[tuple[str, str], list[Repository]] = {}
        for repository in self.by_arn.values():
            self.listing.setdefault((repository.account, repository.region), []).append(repository)
        # The organisation: the management account and every account that holds data.
        self.accounts = sorted({ACCOUNT} | {r.account for r in self.by_arn.values()})

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        target = request.headers.get("X-Amz-Target", "")
        authorization = request.headers.get("Authorization", "")
        scope = _SCOPE.search(authorization)
        region = scope.group(1) if scope else "us-east-1"
        account = _account_of(authorization)
        if request.path == "/listRegions":
            return self._list_regions(body)
        if not target:
            return await self._sts(body, account)
        if target.startswith(ORGANIZATIONS_PREFIX):
            operation = target.removeprefix(ORGANIZATIONS_PREFIX)
            if self.limits.latency_ms:
                await asyncio.sleep(self.limits.latency_ms / 1000)
            if not self.buckets.admit(("organizations", operation)):
                self.throttled[f"organizations:{operation}"] += 1
                return aws_error(400, "TooManyRequestsException", "Rate exceeded")
            return self._organizations(operation, body)
        operation = target.removeprefix(TARGET_PREFIX)
        self.calls[operation] += 1
        self.last_call_at = time.time()
        if self.first_call_at is None:
            self.first_call_at = self.last_call_at
        if self.limits.latency_ms:
            await asyncio.sleep(self.limits.latency_ms / 1000)
        if not self.buckets.admit((account, operation, region)):
            self.throttled[operation] += 1
            return aws_error(400, "ThrottlingException", "Rate exceeded")
        params = json.loads(body or b"{}")
        handler = getattr(self, f"_{operation}", None)
        if handler is None:
            return aws_error(400, "UnknownOperationException", operation)
        result = handler(account, region, params)
        if isinstance(result, web.Response):
            return result
        return web.Response(
            body=json.dumps(result).encode(), content_type="application/x-amz-json-1.1"
        )

    async def _sts(self, body: bytes, account: str) -> web.Response:
        form = parse_qs(body.decode())
        action = form.get("Action", [""])[0]
        self.calls[f"sts:{action}"] += 1
        if self.limits.latency_ms:
            await asyncio.sleep(self.limits.latency_ms / 1000)
        if not self.buckets.admit(("sts", action)):
            self.throttled[f"sts:{action}"] += 1
            return sts_error(400, "Throttling", "Rate exceeded")
        if action == "AssumeRole":
            role = form.get("RoleArn", [""])[0]
            member = role.split(":")[4] if role.count(":") >= 5 else ""
            if member not in self.accounts:
                return sts_error(403, "AccessDenied", f"cannot assume {role}")
            seconds = int(form.get("DurationSeconds", ["3600"])[0])
            expires = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + seconds))
            xml = (
                '<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">'
                f"<AssumeRoleResult><Credentials><AccessKeyId>ASIA{member}</AccessKeyId>"
                f"<SecretAccessKey>secret-{member}</SecretAccessKey>"
                f"<SessionToken>token-{member}</SessionToken><Expiration>{expires}</Expiration>"
                f"</Credentials><AssumedRoleUser><AssumedRoleId>AROA:{member}</AssumedRoleId>"
                f"<Arn>{role}</Arn></AssumedRoleUser></AssumeRoleResult>"
                "<ResponseMetadata><RequestId>bench</RequestId></ResponseMetadata>"
                "</AssumeRoleResponse>"
            )
            return web.Response(body=xml.encode(), content_type="text/xml")
        xml = (
            '<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">'
            "<GetCallerIdentityResult>"
            f"<Arn>arn:aws:iam::{account}:user/bench</Arn><UserId>AIDBENCH</UserId>"
            f"<Account>{account}</Account></GetCallerIdentityResult>"
            "<ResponseMetadata><RequestId>bench</RequestId></ResponseMetadata>"
            "</GetCallerIdentityResponse>"
        )
        return web.Response(body=xml.encode(), content_type="text/xml")

    def _organizations(self, operation: str, body: bytes) -> web.Response:
        """ListAccounts, ListAccountsForParent and ListChildren of a flat organisation."""
        self.calls[f"organizations:{operation}"] += 1
        params = json.loads(body or b"{}")
        if operation == "ListChildren":
            result: dict[str, Any] = {"Children": []}
        elif operation in ("ListAccounts", "ListAccountsForParent"):
            size = int(params.get("MaxResults", 20))
            start = int(params.get("NextToken") or 0)
            chosen = self.accounts[start : start + size]
            result = {
                "Accounts": [
                    {
                        "Id": account,
                        "Arn": f"arn:aws:organizations::{ACCOUNT}:account/o-bench/{account}",
                        "Name": f"account-{account}",
                        "Email": f"{account}@example.com",
                        "Status": "ACTIVE",
                        "State": "ACTIVE",
                    }
                    for account in chosen
                ]
            }
            if start + size < len(self.accounts):
                result["NextToken"] = str(start + size)
        else:
            return aws_error(400, "UnknownOperationException", operation)
        return web.Response(
            body=json.dumps(result).encode(), content_type="application/x-amz-json-1.1"
        )

    def _list_regions(self, body: bytes) -> web.Response:
        """account:ListRegions: every region the data uses, enabled."""
        self.calls["account:ListRegions"] += 1
        regions = sorted({region for _, region in self.listing} or {"us-east-1"})
        result = {"Regions": [{"RegionName": r, "RegionOptStatus": "ENABLED"} for r in regions]}
        return web.json_response(result)

    def _page(self, items: list[Any], params: dict[str, Any], key: str) -> dict[str, Any]:
        size = max(1, min(int(params.get("maxResults", 100)), self.limits.max_page_size))
        start = int(params.get("nextToken") or 0)
        page: dict[str, Any] = {key: items[start : start + size]}
        if start + size < len(items):
            page["nextToken"] = str(start + size)
        return page

    def _DescribeRepositories(
        self, account: str, region: str, params: dict[str, Any]
    ) -> dict[str, Any]:
        repos = [r.describe() for r in self.listing.get((account, region), [])]
        return self._page(repos, params, "repositories")

    def _repo(self, account: str, region: str, params: dict[str, Any]) -> Repository | web.Response:
        repo = self.by_name.get((account, region, params.get("repositoryName", "")))
        if repo is None:
            return aws_error(400, "RepositoryNotFoundException", "no such repository")
        return repo

    def _DescribeImages(self, account: str, region: str, params: dict[str, Any]) -> Any:
        repo = self._repo(account, region, params)
        if isinstance(repo, web.Response):
            return repo
        size = max(1, min(int(params.get("maxResults", 100)), self.limits.max_page_size))
        start = int(params.get("nextToken") or 0)
        details = repo.image_details(start, size)
        if self.enhanced:
            # Enhanced scanning (Inspector): DescribeImages carries no findings summary.
            details = [
                {k: v for k, v in d.items() if k != "imageScanFindingsSummary"}
                | {"imageScanStatus": {"status": "ACTIVE"}}
                for d in details
            ]
        page: dict[str, Any] = {"imageDetails": details}
        if start + size < repo.image_count:
            page["nextToken"] = str(start + size)
        return page

    def _DescribeImageScanFindings(self, account: str, region: str, params: dict[str, Any]) -> Any:
        repo = self._repo(account, region, params)
        if isinstance(repo, web.Response):
            return repo
        digest = (params.get("imageId") or {}).get("imageDigest")
        found = next(
            (d for d in repo.image_details(0, repo.image_count) if d["imageDigest"] == digest), None
        )
        if found is None:
            return aws_error(400, "ImageNotFoundException", "no such image")
        if "imageScanFindingsSummary" not in found:
            return aws_error(400, "ScanNotFoundException", "the image was never scanned")
        return {
            "registryId": account,
            "repositoryName": repo.name,
            "imageId": {"imageDigest": digest},
            "imageScanStatus": {"status": "ACTIVE" if self.enhanced else "COMPLETE"},
            "imageScanFindings": {
                "findingSeverityCounts": (found.get("imageScanFindingsSummary") or {}).get(
                    "findingSeverityCounts", {}
                ),
                "enhancedFindings" if self.enhanced else "findings": [],
            },
        }

    def _ListTagsForResource(self, account: str, region: str, params: dict[str, Any]) -> Any:
        repo = self.by_arn.get(params.get("resourceArn", ""))
        if repo is None:
            return aws_error(400, "RepositoryNotFoundException", "no such repository")
        return {"tags": repo.tags}

    def _GetLifecyclePolicy(self, account: str, region: str, params: dict[str, Any]) -> Any:
        repo = self._repo(account, region, params)
        if isinstance(repo, web.Response):
            return repo
        if repo.lifecycle is None:
            return aws_error(400, "LifecyclePolicyNotFoundException", "no lifecycle policy")
        return {
            "registryId": account,
            "repositoryName": repo.name,
            "lifecyclePolicyText": repo.lifecycle,
        }

    def _DescribeRegistry(
        self, account: str, region: str, params: dict[str, Any]
    ) -> dict[str, Any]:
        destinations = self.replication.get(region)
        rules = [{"destinations": destinations}] if destinations else []
        return {"registryId": account, "replicationConfiguration": {"rules": rules}}

    def _GetRegistryScanningConfiguration(
        self, account: str, region: str, params: dict[str, Any]
    ) -> Any:
        if not self.enhanced:
            # What moto and a new registry answer: basic scanning, no rules.
            return {
                "registryId": account,
                "scanningConfiguration": {"scanType": "BASIC", "rules": []},
            }
        every = [{"filter": "*", "filterType": "WILDCARD"}]
        rules = [{"scanFrequency": "CONTINUOUS_SCAN", "repositoryFilters": every}]
        return {
            "registryId": account,
            "scanningConfiguration": {"scanType": "ENHANCED", "rules": rules},
        }

    async def stats(self, _request: web.Request) -> web.Response:
        return web.json_response(
            {
                "calls": self.calls,
                "throttled": self.throttled,
                "first_call_at": self.first_call_at,
                "last_call_at": self.last_call_at,
            }
        )

    async def reset(self, _request: web.Request) -> web.Response:
        self.calls.clear()
        self.throttled.clear()
        self.first_call_at = self.last_call_at = None
        return web.json_response({})

    async def configure(self, request: web.Request) -> web.Response:
        self.limits = Limits(**await request.json())
        self.buckets = TokenBuckets(self.limits.rate, self.limits.burst)
        return web.json_response({})


def make_app(fake: FakeEcr) -> web.Application:
    app = web.Application(client_max_size=16 * 1024 * 1024)
    app.router.add_get("/__stats__", fake.stats)
    app.router.add_delete("/__stats__", fake.reset)
    app.router.add_post("/__config__", fake.configure)
    app.router.add_post("/{tail:.*}", fake.handle)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True, help="0: any free port (printed)")
    parser.add_argument("--regions", type=int, default=2)
    parser.add_argument("--repositories", type=int, default=1000)
    parser.add_argument("--images", type=int, default=3)
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--rate", type=float, default=None)
    parser.add_argument("--max-page-size", type=int, default=1000)
    parser.add_argument("--huge-repository", type=int, default=0, help="images of one more repo")
    parser.add_argument("--enhanced", action="store_true", help="enhanced scanning")
    parser.add_argument(
        "--accounts", type=int, default=0, help="member accounts, each with --repositories"
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--data", help="a JSON list of repositories instead of generated ones")
    args = parser.parse_args()
    regions = REGION_NAMES[: args.regions]
    limits = Limits(latency_ms=args.latency_ms, rate=args.rate, max_page_size=args.max_page_size)
    if args.data:
        with open(args.data) as handle:
            document = json.load(handle)
        fake = FakeEcr(from_spec(document["repositories"]), document.get("replication", {}), limits)
    else:
        data = (
            generate_fleet(args.accounts, regions, args.repositories, args.images, args.seed)
            if args.accounts
            else generate(regions, args.repositories, args.images, args.seed, args.huge_repository)
        )
        fake = FakeEcr(data, limits=limits, enhanced=args.enhanced)
    run_announced(make_app(fake), "127.0.0.1", args.port, access_log=None)


if __name__ == "__main__":
    main()
