"""Entity names, label values, registry hosts and console links: the catalog's naming rules.

Pure. A name depends only on the repository's own account, region and name, so it never
changes when other repositories come and go.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from urllib.parse import quote

from ..config.base import ECR_REPOSITORY_NAME
from ..model import Entity, Partition, SourceId
from ..names import MAX_NAME_LENGTH, is_valid_label_value

__all__ = [
    "SHORTENED_MARKER",
    "console_link",
    "console_url",
    "entity_name",
    "registry_entity_name",
    "registry_uri",
    "repository_entity_name",
    "sanitize_label_key",
    "sanitize_label_value",
]

# In an ECR repository name (config.base.ECR_REPOSITORY_NAME) separators come singly, so "--"
# never occurs in one, which makes "/" -> "--" reversible.
_NOT_NAME_CHARS = re.compile(r"[^A-Za-z0-9._-]+")
_SEPARATOR_RUNS = re.compile(r"[-_.]{2,}")
# What sets a shortened name apart from every plain one. A plain name never holds two
# separators in a row except the "--" that stands for "/", and that is always followed by a
# letter or digit: "_-" can only come from here, so the two forms are disjoint.
SHORTENED_MARKER = "_-"
# 64 bits of SHA-256 over the full identity: matching a given shortened name takes about 2**63
# tries of making names and hashing them (docs/entities.md, "Naming scheme"); 32 bits took minutes.
_HASH_LENGTH = 16
# The head of a name with nothing readable left: a name must start with a letter or digit.
_EMPTY_HEAD = "ecr"


def _short_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:_HASH_LENGTH]


def registry_entity_name(source: SourceId) -> str:
    """``ecr-<account>-<region>``: one registry Resource per account and region."""
    return f"ecr-{source.account_id}-{source.region}"


def repository_entity_name(source: SourceId, repository_name: str) -> str:
    """A name that depends only on the repository's own account, region and name.

    ``team-a/payments-api`` in us-east-1 of 123456789012 becomes
    ``team-a--payments-api.us-east-1.123456789012``. A name that would exceed 63 characters,
    or that is not a plain ECR name, is shortened to ``<readable head>_-<16 hex>.<region>.
    <account>``: the hex is SHA-256 of the full identity, and ``_-`` (SHORTENED_MARKER) never
    occurs in a plain name. So no plain name equals a shortened one, two shortened names are
    equal only if 64 bits of SHA-256 are, and neither changes when other repositories come
    and go.
    """
    suffix = f".{source.region}.{source.account_id}"
    if ECR_REPOSITORY_NAME.fullmatch(repository_name):
        readable = repository_name.replace("/", "--") + suffix
        if len(readable) <= MAX_NAME_LENGTH:
            return readable
    digest = _short_hash(f"{source.account_id}/{source.region}/{repository_name}")
    room = MAX_NAME_LENGTH - len(suffix) - len(digest) - len(SHORTENED_MARKER)
    head = _NOT_NAME_CHARS.sub("-", repository_name.replace("/", "--"))[:room].strip("-_.")
    return f"{head or _EMPTY_HEAD}{SHORTENED_MARKER}{digest}{suffix}"


def entity_name(source: SourceId, name: str, arn: str, configured: Mapping[str, str]) -> str:
    """The name of the repository ``name`` (``arn``): the one ``configured`` gives it
    (catalog.names), else ``repository_entity_name``."""
    return configured.get(arn) or repository_entity_name(source, name)


def sanitize_label_value(value: str) -> str:
    """Fit any text to Backstage's label-value rule, or to "" when nothing usable is left."""
    cleaned = _SEPARATOR_RUNS.sub("-", _NOT_NAME_CHARS.sub("-", value.strip()))
    cleaned = cleaned.strip("-_.")[:MAX_NAME_LENGTH].rstrip("-_.")
    return cleaned if is_valid_label_value(cleaned) else ""


def sanitize_label_key(key: str) -> str:
    """A tag key fitted to the label-key rule the way values are (lower-cased first)."""
    return sanitize_label_value(key.lower())


def registry_uri(source: SourceId, partition: Partition) -> str:
    """The registry's host, as ``docker pull`` names it: ``<account>.dkr.ecr.<region>.<suffix>``."""
    return f"{source.account_id}.dkr.ecr.{source.region}.{partition.dns_suffix}"


def console_url(
    source: SourceId, partition: Partition, repository_name: str | None = None
) -> str | None:
    """The AWS console page of a registry, or of one repository; None without a console."""
    # The console lives in each partition on a host of its own; some have none that is public.
    if partition.console_host is None:
        return None
    region = source.region
    base = f"https://{region}.{partition.console_host}/ecr"
    if repository_name is None:
        return f"{base}/private-registry/repositories?region={region}"
    path = _console_path(repository_name)
    if path is None:
        return None
    return f"{base}/repositories/private/{source.account_id}/{path}?region={region}"


def _console_path(repository_name: str) -> str | None:
    """The name as the path below the account's repositories, or None if no path can hold it.

    A URL parser resolves "." and ".." segments, percent-encoded or not ("%2e" is a dot to the
    WHATWG URL standard), so a name with such a segment would lead out of the repository's
    page. Such a name keeps its "/" quoted, which makes it one segment; a name that is itself
    a dot segment has no page. Plain ECR names can hold neither and keep their slashes. quote
    writes "%" as "%25", so a "%2e" in the name reaches the URL as "%252e", no dot.
    """
    if repository_name in (".", ".."):
        return None
    segments = repository_name.split("/")
    safe = "" if any(segment in (".", "..") for segment in segments) else "/"
    return quote(repository_name, safe=safe)


def console_link(url: str | None) -> list[Entity]:
    """The entity's links: the console page, when there is one."""
    return [] if url is None else [{"url": url, "title": "AWS console", "icon": "cloud"}]
