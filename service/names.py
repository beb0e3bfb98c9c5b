"""Backstage's name rules: entity names, namespaces, label and annotation keys, tags and entity
refs, as @backstage/catalog-model's KubernetesValidatorFunctions has them.

Their one home: the settings check configured names with them, the catalog checks and repairs
entities with them. Pure, and importing nothing of ours, so that any stage may use them.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

__all__ = [
    "KIND",
    "MAX_DNS_SUBDOMAIN_LENGTH",
    "MAX_NAME_LENGTH",
    "MAX_TAG_LENGTH",
    "EntityRef",
    "is_valid_annotation_key",
    "is_valid_dns_label",
    "is_valid_dns_subdomain",
    "is_valid_entity_name",
    "is_valid_label_key",
    "is_valid_label_value",
    "is_valid_namespace",
    "is_valid_tag",
    "parse_entity_ref",
]

MAX_NAME_LENGTH = 63


MAX_TAG_LENGTH = 63


MAX_DNS_SUBDOMAIN_LENGTH = 253


_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")


_DNS_LABEL = re.compile(r"^[a-z0-9]+(?:-+[a-z0-9]+)*$")


_TAG = re.compile(r"^[a-z0-9:+#]+(-[a-z0-9:+#]+)*$")


KIND = re.compile(r"^[a-zA-Z][a-z0-9A-Z]*$")


def is_valid_entity_name(value: object) -> bool:
    """metadata.name: 1-63 characters of ``[A-Za-z0-9-_.]``, alphanumeric at both ends."""
    return (
        isinstance(value, str)
        and 0 < len(value) <= MAX_NAME_LENGTH
        and bool(_NAME.fullmatch(value))
    )


def is_valid_dns_label(value: object) -> bool:
    return isinstance(value, str) and 0 < len(value) <= 63 and bool(_DNS_LABEL.fullmatch(value))


def is_valid_namespace(value: object) -> bool:
    """metadata.namespace: a DNS label."""
    return is_valid_dns_label(value)


def is_valid_dns_subdomain(value: object) -> bool:
    return (
        isinstance(value, str)
        and 0 < len(value) <= MAX_DNS_SUBDOMAIN_LENGTH
        and all(is_valid_dns_label(label) for label in value.split("."))
    )


def _is_valid_prefixed_name(value: object) -> bool:
    if not isinstance(value, str):
        return False
    return _is_valid_prefixed_str(value)


# Label and annotation keys are the same few dozen strings on every entity: each is checked once.
@functools.lru_cache(maxsize=4096)
def _is_valid_prefixed_str(value: str) -> bool:
    parts = value.split("/")
    if len(parts) == 1:
        return is_valid_entity_name(parts[0])
    if len(parts) == 2:
        return is_valid_dns_subdomain(parts[0]) and is_valid_entity_name(parts[1])
    return False


def is_valid_label_key(value: object) -> bool:
    """``[dns-subdomain/]name``."""
    return _is_valid_prefixed_name(value)


def is_valid_annotation_key(value: object) -> bool:
    """``[dns-subdomain/]name``, the same rule as label keys."""
    return _is_valid_prefixed_name(value)


def is_valid_label_value(value: object) -> bool:
    """Empty, or the entity-name rule."""
    return value == "" or is_valid_entity_name(value)


def is_valid_tag(value: object) -> bool:
    """metadata.tags entries: lower-case words of ``[a-z0-9:+#]`` joined by single dashes."""
    return (
        isinstance(value, str) and 0 < len(value) <= MAX_TAG_LENGTH and bool(_TAG.fullmatch(value))
    )


@dataclass(frozen=True, order=True)
class EntityRef:
    """A fully qualified entity reference, lower-cased for comparison."""

    kind: str
    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.kind}:{self.namespace}/{self.name}"


def parse_entity_ref(
    value: object, *, default_kind: str | None, default_namespace: str
) -> EntityRef | None:
    """Parse ``[kind:][namespace/]name``; None when it is malformed or lacks a required kind."""
    if not isinstance(value, str) or not value:
        return None
    kind: str | None = default_kind
    rest = value
    if ":" in rest:
        kind, rest = rest.split(":", 1)
        if not KIND.fullmatch(kind):
            return None
    if kind is None:
        return None
    namespace = default_namespace
    if "/" in rest:
        namespace, rest = rest.split("/", 1)
        if not is_valid_namespace(namespace):
            return None
    if not is_valid_entity_name(rest):
        return None
    return EntityRef(kind.lower(), namespace.lower(), rest.lower())
