"""The one rule for region names: each configured region is one botocore knows, or one named in
``aws.extra_regions``, unless the ECR endpoint is given (then the name is deliberate).

A misspelt region (``eu-centrall-1``) has the shape of a region, so the field validators pass
it; read with it, every call fails on DNS after botocore's retries, and the single URL answers
503 for every region. So the command refuses it at start-up, naming the close matches. The
names botocore knows come from ``service.aws.partitions.known_regions`` (only ``service/aws``
imports botocore); this module only judges.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from ..errors import ConfigError
from .aws import AwsSettings
from .base import REGION

__all__ = ["KnownRegions", "check_regions"]

# Where botocore takes an endpoint for every service, or for ECR, from the environment.
ENDPOINT_VARIABLES = ("AWS_ENDPOINT_URL_ECR", "AWS_ENDPOINT_URL")
REGION_VARIABLES = ("AWS_REGION", "AWS_DEFAULT_REGION")


@dataclass(frozen=True)
class KnownRegions:
    """The region names a source knows (``source``: e.g. ``botocore 1.40.61``)."""

    names: frozenset[str]
    source: str


def _deliberate_endpoint(aws: AwsSettings, env: Mapping[str, str]) -> bool:
    """Whether ECR is reached at a URL given for it: then any region name may be meant."""
    return bool(
        aws.endpoint_url
        or aws.endpoint_urls.get("ecr")
        or any(env.get(name) for name in ENDPOINT_VARIABLES)
    )


def _configured(aws: AwsSettings, env: Mapping[str, str]) -> Iterator[tuple[str, str]]:
    """Every region the settings name, with the key (or variable) that names it."""
    for index, target in enumerate(aws.targets):
        for region in target.regions:
            yield f"aws.targets.{index}.regions", region
    organization = aws.organization
    if organization is not None and not organization.enabled_regions:
        for region in organization.regions:
            yield "aws.organization.regions", region
    if not aws.targets and organization is None:
        # The ambient target (AwsSettings.resolved_targets): its region from the environment.
        for name in REGION_VARIABLES:
            if env.get(name):
                yield name, env[name]
                break


def _either(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]


def _problem(region: str, known: KnownRegions) -> str:
    if not REGION.fullmatch(region):
        return f"{region!r} is not an AWS region name (e.g. us-east-1)"
    close = difflib.get_close_matches(region, sorted(known.names), n=3, cutoff=0.75)
    hint = f" Did you mean {_either(close)}?" if close else ""
    return (
        f"{region!r} is not a region {known.source} knows.{hint} A region newer than that "
        "goes in aws.extra_regions; an endpoint of your own (moto, LocalStack) in "
        "aws.endpoint_url."
    )


def check_regions(
    aws: AwsSettings,
    known: KnownRegions,
    where: str = "settings",
    environ: Mapping[str, str] | None = None,
) -> None:
    """Raise ConfigError naming each unknown region (and its key) with its close matches.

    Nothing is refused when the ECR endpoint is given (``aws.endpoint_url``,
    ``aws.endpoint_urls.ecr``, ``AWS_ENDPOINT_URL_ECR``, ``AWS_ENDPOINT_URL``): a test server
    or a private endpoint may take any name. ``aws.extra_regions`` are taken as known.
    """
    env = os.environ if environ is None else environ
    if _deliberate_endpoint(aws, env):
        return
    names = known.names | frozenset(aws.extra_regions)
    problems = [
        f"{'environment' if key in REGION_VARIABLES else where}: {key}: {_problem(region, known)}"
        for key, region in _configured(aws, env)
        if region not in names
    ]
    if problems:
        raise ConfigError("unknown AWS region:\n" + "\n".join(f"  {p}" for p in problems))
