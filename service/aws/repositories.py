"""The per-repository answers of a read, each cached with its own TTL.

Per repository ListTagsForResource, DescribeImages (summarised page by page) and
GetLifecyclePolicy, and for the latest image of an enhanced-scanning registry its findings,
once per digest. A repository that every cache answers costs no task and no call.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping
from typing import Any

from ..config import CacheSettings
from ..errors import EcrError
from ..model import (
    FINDINGS_PENDING,
    FINDINGS_UNAVAILABLE,
    ImageSummary,
    LifecyclePolicy,
    RegistryRecord,
    RepositoryRecord,
)
from ..reading import ReadObserver
from .answers import (
    FINDINGS_REFUSED,
    NO_LIFECYCLE_POLICY,
    NO_SCAN,
    REPOSITORY_GONE,
    Findings,
    ImageSummariser,
    findings_of_scan,
    lifecycle_policy,
    repository_record,
    scanned,
)
from .cache import AsyncTTLCache
from .ecr import EcrClient

__all__ = ["RepositoryReads"]

log = logging.getLogger(__name__)


class RepositoryReads:
    """Reads repositories through an account's ``EcrClient``, and keeps the answers."""

    def __init__(self, settings: CacheSettings, observer: ReadObserver) -> None:
        def new_cache(kind: str, ttl: float) -> Any:
            return AsyncTTLCache(
                ttl,
                maxsize=settings.max_entries,
                jitter=settings.jitter,
                on_lookup=lambda hit: observer.cache_lookup(kind, hit),
            )

        self.tags_cache: AsyncTTLCache[str, tuple[tuple[str, str], ...]] = new_cache(
            "tags", settings.tags_ttl_seconds
        )
        self.images_cache: AsyncTTLCache[str, ImageSummary] = new_cache(
            "images", settings.images_ttl_seconds
        )
        self.lifecycle_cache: AsyncTTLCache[str, LifecyclePolicy] = new_cache(
            "lifecycle_policy", settings.lifecycle_policy_ttl_seconds
        )
        # By repository and digest: read again when the latest image changes, or after the TTL.
        self.findings_cache: AsyncTTLCache[tuple[str, str], Findings] = new_cache(
            "findings", settings.findings_ttl_seconds
        )

    async def read(
        self, region: EcrClient, raw: Mapping[str, Any], registry: RegistryRecord
    ) -> RepositoryRecord | None:
        """The repository's record; None when it was deleted since it was listed."""
        name = str(raw["repositoryName"])
        arn = str(raw["repositoryArn"])
        registry_id = str(raw.get("registryId", region.account))
        caches = (self.tags_cache, self.images_cache, self.lifecycle_cache)
        cached = (
            self.tags_cache.peek(arn),
            self.images_cache.peek(arn),
            self.lifecycle_cache.peek(arn),
        )
        # Most repositories of a warm refresh are answered from the caches alone: no tasks.
        if cached[0] is not None and cached[1] is not None and cached[2] is not None:
            for cache in caches:
                cache.counted_hit()
            return repository_record(raw, cached[0], cached[1], cached[2])
        try:
            tags, images, lifecycle = await asyncio.gather(
                self.tags_cache.get_or_load(arn, lambda: self._read_tags(region, arn)),
                self.images_cache.get_or_load(
                    arn, lambda: self._read_images(region, raw, registry)
                ),
                self.lifecycle_cache.get_or_load(
                    arn, lambda: self._read_lifecycle(region, name, registry_id)
                ),
            )
        except EcrError as exc:
            # Deleted between DescribeRepositories and now: the next listing will not have it.
            if exc.code == REPOSITORY_GONE:
                return None
            raise
        return repository_record(raw, tags, images, lifecycle)

    def forget_images(self, arn: str) -> None:
        """Read the repository's images (and findings) again at the next read."""
        self.images_cache.discard(arn)
        self._forget_findings(arn)

    def forget(self, arns: Iterable[str]) -> None:
        """Keep nothing of these repositories: they are gone."""
        for arn in arns:
            self.tags_cache.discard(arn)
            self.images_cache.discard(arn)
            self.lifecycle_cache.discard(arn)
            self._forget_findings(arn)

    def _forget_findings(self, arn: str) -> None:
        for key in [key for key in self.findings_cache.keys() if key[0] == arn]:
            self.findings_cache.discard(key)

    async def _read_tags(self, region: EcrClient, arn: str) -> tuple[tuple[str, str], ...]:
        response = await region.call("list_tags_for_resource", resourceArn=arn)
        return tuple(sorted((t["Key"], t["Value"]) for t in response.get("tags") or ()))

    async def _read_images(
        self,
        region: EcrClient,
        raw: Mapping[str, Any],
        registry: RegistryRecord,
    ) -> ImageSummary:
        name, arn = str(raw["repositoryName"]), str(raw["repositoryArn"])
        registry_id = str(raw.get("registryId", region.account))
        summariser = ImageSummariser()
        async for page in region.pages(
            "describe_images", "imageDetails", repositoryName=name, registryId=registry_id
        ):
            summariser.add(page)
        latest = summariser.latest_detail
        # Enhanced scanning (Inspector) leaves the summary out of DescribeImages
        # (aws/containers-roadmap#1662): ask for the latest image's findings, once per digest.
        if latest is None or (
            registry.scan_type != "ENHANCED" and latest.get("imageScanFindingsSummary") is not None
        ):
            return summariser.summary()
        digest = str(latest.get("imageDigest", ""))
        is_scanned = scanned(raw, registry)
        findings = await self.findings_cache.get_or_load(
            (arn, digest),
            lambda: self._read_findings(region, name, registry_id, digest, is_scanned),
        )
        return summariser.summary(findings)

    async def _read_findings(
        self, region: EcrClient, name: str, registry_id: str, digest: str, scanned: bool
    ) -> Findings:
        try:
            response = await region.call(
                "describe_image_scan_findings",
                repositoryName=name,
                registryId=registry_id,
                imageId={"imageDigest": digest},
                maxResults=1,
            )
        except EcrError as exc:
            if exc.code == NO_SCAN:
                # Not scanned: yet, if a scan is configured for it; otherwise never.
                return Findings(FINDINGS_PENDING if scanned else FINDINGS_UNAVAILABLE)
            if exc.code in FINDINGS_REFUSED:
                log.warning("findings of %s in %s are unavailable: %s", name, region.region, exc)
                return Findings(FINDINGS_UNAVAILABLE)
            raise
        return findings_of_scan(response)

    async def _read_lifecycle(
        self, region: EcrClient, name: str, registry_id: str
    ) -> LifecyclePolicy:
        try:
            response = await region.call(
                "get_lifecycle_policy", repositoryName=name, registryId=registry_id
            )
        except EcrError as exc:
            if exc.code == NO_LIFECYCLE_POLICY:
                return LifecyclePolicy(present=False)
            raise
        return lifecycle_policy(response)
