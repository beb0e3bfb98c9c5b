"""The embedded demo registry: a moto ECR server, in-process, seeded with realistic data.

The service reads it through the normal aioboto3 path, so `make run` exercises everything but
AWS itself. Also used by the tests to seed moto server processes.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "DEMO_ACCOUNT",
    "DEMO_CREDENTIALS",
    "DEMO_REGIONS",
    "DemoRepository",
    "demo_repositories",
    "running_demo_ecr",
    "seed_registry",
]

log = logging.getLogger(__name__)

# moto's default account: what it answers for any credentials that were not assumed.
DEMO_ACCOUNT = "123456789012"
DEMO_REGIONS = ("us-east-1", "eu-west-1")
DEMO_CREDENTIALS = ("demo-access-key", "demo-secret-key")

_LIFECYCLE_TWO_RULES = json.dumps(
    {
        "rules": [
            {
                "rulePriority": 1,
                "description": "expire untagged after 14 days",
                "selection": {
                    "tagStatus": "untagged",
                    "countType": "sinceImagePushed",
                    "countUnit": "days",
                    "countNumber": 14,
                },
                "action": {"type": "expire"},
            },
            {
                "rulePriority": 2,
                "description": "keep the last 50 release images",
                "selection": {
                    "tagStatus": "tagged",
                    "tagPrefixList": ["v"],
                    "countType": "imageCountMoreThan",
                    "countNumber": 50,
                },
                "action": {"type": "expire"},
            },
        ]
    }
)


@dataclass(frozen=True)
class DemoRepository:
    """One repository to create, with its tags, images and lifecycle policy."""

    name: str
    region: str
    tags: dict[str, str] = field(default_factory=dict)
    # Each image is a tuple of its tags; an empty tuple is a tagless image.
    images: tuple[tuple[str, ...], ...] = ()
    lifecycle_policy: str | None = None
    tag_mutability: str = "MUTABLE"
    scan_on_push: bool = False
    # KMS or AES256 (ECR's default).
    encryption_type: str = "AES256"
    # The latest image is scanned, and its scan finds these (severity: count); None: no scan.
    findings: dict[str, int] | None = None


# A repository built to break every rule a tag can: a 256-character name, owner tags that are
# no refs, labels that are no labels, YAML and Unicode in values. It is repaired, never rejected
# (the operator page lists each repair with the rule behind it).
_HOSTILE_HEAD = "hostile/" + "/".join(["segment-" + "n" * 40] * 4) + "/"
HOSTILE_NAME = _HOSTILE_HEAD + "z" * (256 - len(_HOSTILE_HEAD))
HOSTILE = DemoRepository(
    name=HOSTILE_NAME,
    region="us-east-1",
    tags={
        "owner": "group:default/../x",
        "Owner": "team-z",
        "description": "line1\nline2\n---\nkey: value # not a comment ünï 🐳",
        "team": "---",
        "Team": "Ünïcödé 🐳 team",
        "environment": "x" * 256,
        "component": "",
        "backstage.io/tags": "Good, bad tag!, ok-1, 🐳, 1e3",
        "cost-center": "1e3",
        "project": "a: b",
    },
    # The tagged image is pushed last, so it is the latest whichever second each push lands in
    # (moto records push times in whole seconds).
    images=((), ("1e3", "0o17")),
)

_API_FINDINGS = {
    "team-a": {},
    "team-b": {"CRITICAL": 1, "HIGH": 3, "MEDIUM": 7},
    "data": {"MEDIUM": 2, "LOW": 5},
}


def demo_repositories() -> list[DemoRepository]:
    """The demo data set: 2 regions, 26 repositories, every convention the service reads, and
    repositories that pass and fail each posture check."""
    teams = {
        "team-a": ("group:default/team-a", "payments"),
        "team-b": ("team-b", "checkout"),
        "data": ("user:default/jdoe", "ingest"),
    }
    repos: list[DemoRepository] = []
    for team, (owner, product) in teams.items():
        for suffix in ("api", "worker", "web", "migrations"):
            name = f"{team}/{product}-{suffix}"
            repos.append(
                DemoRepository(
                    name=name,
                    region="us-east-1",
                    tags={
                        "owner": owner,
                        "component": f"{product}-{suffix}",
                        "team": team,
                        "environment": "production",
                        "description": f"Container images of {product} {suffix}.",
                    },
                    images=(("v1.0.0",), ("v1.1.0", "latest", f"sha-{suffix}"), ()),
                    lifecycle_policy=_LIFECYCLE_TWO_RULES if suffix != "migrations" else None,
                    tag_mutability="IMMUTABLE" if suffix == "api" else "MUTABLE",
                    scan_on_push=suffix == "api",
                    # Scanned on push: one clean, one with critical findings, one medium only.
                    findings=_API_FINDINGS[team] if suffix == "api" else None,
                    encryption_type="KMS" if suffix == "api" else "AES256",
                )
            )
    for index in range(8):
        repos.append(
            DemoRepository(
                name=f"platform/base-images/python-3.{index + 5}",
                region="eu-west-1",
                tags={"Owner": "platform-team", "cost-center": "CC 1234 / shared"},
                images=tuple((f"3.{index + 5}.{patch}",) for patch in range(index % 3 + 1)),
                lifecycle_policy=_LIFECYCLE_TWO_RULES,
            )
        )
    # The same repository name in both regions: two entities, two names.
    for region in DEMO_REGIONS:
        repos.append(
            DemoRepository(
                name="shared/nginx",
                region=region,
                tags={"backstage.io/owner": "platform-team", "backstage.io/tags": "edge,proxy"},
                images=(("1.27", "stable"), ("1.25",)),
            )
        )
    repos.append(
        DemoRepository(
            name="experiments/" + "very-long-repository-name-" * 8 + "end",
            region="eu-west-1",
            tags={"description": "A name of more than 200 characters."},
            images=((),),
        )
    )
    repos.append(DemoRepository(name="empty-repo", region="eu-west-1"))
    repos.append(
        DemoRepository(
            name="legacy/tools",
            region="us-east-1",
            tags={"owner": "not a valid owner!", "component": "legacy-tools"},
            images=((), ()),
        )
    )
    repos.append(HOSTILE)
    return repos


def _manifest(repository: str, image_index: int) -> str:
    seed = hashlib.sha256(f"{repository}:{image_index}".encode()).hexdigest()
    return json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "config": {
                "mediaType": "application/vnd.docker.container.image.v1+json",
                "size": 1000 + image_index,
                "digest": f"sha256:{seed}",
            },
            "layers": [
                {
                    "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
                    "size": 20_000_000 + image_index,
                    "digest": f"sha256:{hashlib.sha256(seed.encode()).hexdigest()}",
                }
            ],
        }
    )


def seed_registry(
    endpoint_url: str,
    repositories: Sequence[DemoRepository],
    credentials: tuple[str, str] = DEMO_CREDENTIALS,
    session_token: str | None = None,
    ca_bundle: str | None = None,
) -> None:
    """Create the repositories, tags, images and policies in the ECR at ``endpoint_url``."""
    import boto3

    clients: dict[str, Any] = {}
    for repo in repositories:
        if repo.region not in clients:
            clients[repo.region] = boto3.client(
                "ecr",
                region_name=repo.region,
                endpoint_url=endpoint_url,
                aws_access_key_id=credentials[0],
                aws_secret_access_key=credentials[1],
                aws_session_token=session_token,
                verify=ca_bundle,
            )
        ecr = clients[repo.region]
        ecr.create_repository(
            repositoryName=repo.name,
            imageTagMutability=repo.tag_mutability,
            imageScanningConfiguration={"scanOnPush": repo.scan_on_push},
            encryptionConfiguration={"encryptionType": repo.encryption_type},
            tags=[{"Key": k, "Value": v} for k, v in repo.tags.items()],
        )
        for index, image_tags in enumerate(repo.images):
            manifest = _manifest(repo.name, index)
            if not image_tags:
                ecr.put_image(repositoryName=repo.name, imageManifest=manifest)
            for tag in image_tags:
                ecr.put_image(repositoryName=repo.name, imageManifest=manifest, imageTag=tag)
        if repo.lifecycle_policy:
            ecr.put_lifecycle_policy(
                repositoryName=repo.name, lifecyclePolicyText=repo.lifecycle_policy
            )
        if repo.findings is not None and repo.images:
            _scan_latest(endpoint_url, ecr, repo)
    if "us-east-1" in clients:
        clients["us-east-1"].put_replication_configuration(
            replicationConfiguration={
                "rules": [{"destinations": [{"region": "eu-west-1", "registryId": DEMO_ACCOUNT}]}]
            }
        )


def _scan_latest(endpoint_url: str, ecr: Any, repo: DemoRepository) -> None:
    """Scan the latest image, with what the scan finds set through moto's own API."""
    import urllib.request

    # Every image: which one is the latest is the reader's call (pushes share a second here).
    for detail in ecr.describe_images(repositoryName=repo.name)["imageDetails"]:
        image_id = {"imageDigest": detail["imageDigest"]}
        ecr.start_image_scan(repositoryName=repo.name, imageId=image_id)
    result = {
        "registryId": DEMO_ACCOUNT,
        "repositoryName": repo.name,
        "imageId": {},
        "imageScanStatus": {"status": "COMPLETE", "description": "The scan was completed."},
        "imageScanFindings": {"findings": [], "findingSeverityCounts": repo.findings or {}},
    }
    request = urllib.request.Request(
        f"{endpoint_url}/moto-api/static/ecr/scan-finding-results",
        data=json.dumps({"results": [result], "region": repo.region}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        answer.read()


@contextmanager
def running_demo_ecr(host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """Start an in-process moto server, seed it with the demo data and yield its URL."""
    from moto.server import ThreadedMotoServer

    # moto's werkzeug logs every request at INFO; the service's own logs are what matter here.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address=host, port=port, verbose=False)
    server.start()
    bound_host, bound_port = server.get_host_and_port()
    url = f"http://{bound_host}:{bound_port}"
    try:
        seed_registry(url, demo_repositories())
        log.info("demo ECR (moto) serving on %s", url)
        yield url
    finally:
        server.stop()
