"""An old committed catalog file: read once and bounded, its entities' refs, and the repositories
each entity names; shared by ``diff`` and ``names-from``. Pure but for ``read_catalog_file``
and ``fetch_catalog``.

The file is hostile input like any other: it is read up to a size, parsed with YAML's safe
loader (whose parser refuses nesting past 1,000 levels), and each document is walked once,
within a budget of nodes, before anything else looks at it: YAML aliases make a small file
stand for a huge or endless structure ("billion laughs", ``&a [*a]``), which the safe loader
builds as shared or cyclic references.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from ..config.base import RepositoryId, repository_named_by
from ..errors import CatalogUnreadable
from ..model import Entity

__all__ = [
    "MAX_CATALOG_BYTES",
    "entity_ref",
    "fetch_catalog",
    "named_repositories",
    "read_catalog_documents",
    "read_catalog_file",
    "strings_of",
]

# Far above a committed file of 10,000 repositories (about 10 MB).
MAX_CATALOG_BYTES = 32 * 1024 * 1024
# An entity is a few levels deep; a file that needs more is not a catalog file.
_MAX_DEPTH = 64
# Nodes a document may expand to, beyond one per byte of the file: room for a few honest
# aliases, none for a bomb.
_SPARE_NODES = 100_000
# Annotation keys whose value identifies the entity's repository: the service's own
# (amazonaws.com/arn, .../ecr-repository-arn, aws.amazon.com/amazon-ecr-arn, <prefix>/
# repository-uri) and the usual spellings of other tools.
_IDENTIFYING_SUFFIXES = ("/arn", "-arn", "repository-uri", "/repository")
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def read_catalog_file(path: Path) -> list[Entity]:
    """The entities of the catalog file at ``path``; CatalogUnreadable when it cannot be
    read, is larger than MAX_CATALOG_BYTES, or is not a catalog file."""
    try:
        with path.open("rb") as file:
            data = file.read(MAX_CATALOG_BYTES + 1)
    except OSError as exc:
        raise CatalogUnreadable(f"cannot read {path}: {exc.strerror or exc}") from None
    if len(data) > MAX_CATALOG_BYTES:
        raise CatalogUnreadable(f"{path} is larger than {MAX_CATALOG_BYTES} bytes")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise CatalogUnreadable(f"{path} is not UTF-8 text") from None
    return read_catalog_documents(text, str(path))


def fetch_catalog(url: str) -> list[Entity]:
    """The entities a running service serves at ``url``, read within the same bounds."""
    import httpx

    body = bytearray()
    try:
        with httpx.stream("GET", url, timeout=60, follow_redirects=True) as response:
            if response.status_code != 200:
                raise CatalogUnreadable(f"{url} answered {response.status_code}")
            for chunk in response.iter_bytes():
                body += chunk
                if len(body) > MAX_CATALOG_BYTES:
                    raise CatalogUnreadable(f"{url} sent more than {MAX_CATALOG_BYTES} bytes")
    except httpx.HTTPError as exc:
        raise CatalogUnreadable(f"cannot read {url}: {exc}") from None
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise CatalogUnreadable(f"{url} sent no UTF-8 text") from None
    return read_catalog_documents(text, url)


def read_catalog_documents(text: str, origin: str) -> list[Entity]:
    """The entities of a (multi-document) YAML catalog file; empty documents are skipped."""
    if len(text) > MAX_CATALOG_BYTES:
        raise CatalogUnreadable(f"{origin} is larger than {MAX_CATALOG_BYTES} bytes")
    budget = [len(text) + _SPARE_NODES]
    documents: list[Entity] = []
    try:
        loaded = (d for d in yaml.load_all(text, Loader=_LOADER) if d is not None)
        for index, document in enumerate(loaded, start=1):
            _walk(document, budget, f"document {index} of {origin}")
            if not isinstance(document, dict) or not isinstance(document.get("metadata"), dict):
                raise CatalogUnreadable(f"document {index} of {origin} is not an entity")
            kind, name = document.get("kind"), document["metadata"].get("name")
            if not (kind and isinstance(kind, str) and name and isinstance(name, str)):
                raise CatalogUnreadable(f"document {index} of {origin} has no kind or name")
            documents.append(document)
    except yaml.YAMLError as exc:
        raise CatalogUnreadable(f"{origin} is not valid YAML: {exc}") from exc
    except RecursionError:
        raise CatalogUnreadable(f"{origin} is nested too deeply") from None
    return documents


def _walk(document: object, budget: list[int], where: str) -> None:
    """Count the nodes ``document`` expands to, against ``budget``; and bound its depth."""
    stack: list[tuple[object, int]] = [(document, 0)]
    while stack:
        value, depth = stack.pop()
        budget[0] -= 1
        if budget[0] < 0:
            raise CatalogUnreadable(f"{where} expands to too many nodes (YAML aliases?)")
        if depth > _MAX_DEPTH:
            raise CatalogUnreadable(f"{where} is nested more than {_MAX_DEPTH} levels deep")
        if isinstance(value, dict):
            stack.extend((item, depth + 1) for pair in value.items() for item in pair)
        elif isinstance(value, list):
            stack.extend((item, depth + 1) for item in value)


def entity_ref(entity: Entity) -> str:
    """``kind:namespace/name`` in lower case, as Backstage compares refs."""
    metadata = entity["metadata"]
    namespace = metadata.get("namespace") or "default"
    return f"{entity['kind']}:{namespace}/{metadata['name']}".lower()


def strings_of(value: Any) -> Iterator[str]:
    """Every string in ``value``, keys of mappings left out."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            yield item
        elif isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def named_repositories(entity: Entity, *, identifying_only: bool = False) -> set[RepositoryId]:
    """The repositories ``entity`` names by ARN or URI: in any of its strings (an old file may
    keep them under any key), or, with ``identifying_only``, in its identifying annotations
    (the way the service's own entities name theirs). This is the one rule that pairs an old
    entity with a repository, for ``diff`` and ``names-from`` alike."""
    if identifying_only:
        annotations = entity["metadata"].get("annotations")
        values = [
            value
            for key, value in (annotations.items() if isinstance(annotations, dict) else ())
            if str(key).endswith(_IDENTIFYING_SUFFIXES) and isinstance(value, str)
        ]
    else:
        values = list(strings_of(entity))
    return {found for value in values if (found := repository_named_by(value)) is not None}
