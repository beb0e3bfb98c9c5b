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
    "REF_FIELDS",
    "EntityRef",
    "full_ref",
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


# The spec fields that hold entity refs, by kind, and the kind a ref without one defaults to
# (None: the ref must name its kind), as BuiltinKindsEntityProcessor.postProcessEntity emits
# their relations (@backstage/plugin-catalog-backend 4.0). A ref without a namespace is in
# the entity's own.
REF_FIELDS: dict[str, dict[str, str | None]] = {
    "component": {
        "owner": "group",
        "subcomponentOf": "component",
        "providesApis": "api",
        "consumesApis": "api",
        "dependsOn": None,
        "dependencyOf": None,
        "system": "system",
    },
    "api": {"owner": "group", "system": "system"},
    "resource": {"owner": "group", "dependsOn": None, "dependencyOf": None, "system": "system"},
    "user": {"memberOf": "group"},
    "group": {"parent": "group", "children": "group", "members": "user"},
    "system": {"owner": "group", "domain": "domain"},
    "domain": {"owner": "group", "subdomainOf": "domain"},
}


def _split_entity_ref(value: str) -> tuple[str | None, str | None, str] | None:
    """Kind, namespace and name as catalog-model's parseRefString splits them; None where it
    throws (an empty part). A "/" ahead of the first ":" makes the rest the name."""
    colon, slash = value.find(":"), value.find("/")
    if slash != -1 and slash < colon:
        colon = -1
    kind = None if colon == -1 else value[:colon]
    namespace = None if slash == -1 else value[colon + 1 : slash]
    name = value[max(colon + 1, slash + 1) :]
    if kind == "" or namespace == "" or name == "":
        return None
    return kind, namespace, name


def parse_entity_ref(
    value: object, *, default_kind: str | None, default_namespace: str
) -> EntityRef | None:
    """Parse ``[kind:][namespace/]name``; None when it is malformed or lacks a required kind."""
    if not isinstance(value, str) or not value:
        return None
    parts = _split_entity_ref(value)
    if parts is None:
        return None
    kind = parts[0] if parts[0] is not None else default_kind
    namespace = parts[1] if parts[1] is not None else default_namespace
    name = parts[2]
    if kind is None or not KIND.fullmatch(kind):
        return None
    if parts[1] is not None and not is_valid_namespace(namespace):
        return None
    if not is_valid_entity_name(name):
        return None
    return EntityRef(kind.lower(), namespace.lower(), name.lower())


def full_ref(value: object, *, default_kind: str | None, default_namespace: str) -> str | None:
    """``kind:namespace/name`` in lower case, as Backstage's parseEntityRef and
    stringifyEntityRef make a relation's target of ``value``: the parts are not checked
    against the name rules. None where parseEntityRef throws."""
    if not isinstance(value, str) or not value:
        return None
    parts = _split_entity_ref(value)
    if parts is None:
        return None
    kind = parts[0] if parts[0] is not None else default_kind
    if not kind:
        return None
    namespace = parts[1] if parts[1] is not None else default_namespace or "default"
    return f"{kind}:{namespace}/{parts[2]}".lower()
