"""``catalog.names``: the entity names configured for single repositories, and their rules.

A configured name keeps the ref that other catalog files already use for a repository (see
docs/migration.md). It must never be able to take over another entity's ref: so, besides being
a valid Backstage name given to one repository only, it may not have the form of the names the
service makes for registries, nor end in another source's ``.<region>.<account>``, the suffix
every generated repository name carries. Within one source, a configured name equal to another
repository's generated name is a collision, found when the source is built
(snapshot.source), where both are left out.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from ..names import is_valid_entity_name
from .base import REGION, parse_repository_arn

__all__ = ["MAX_CONFIGURED_NAMES", "check_configured_names", "configured_name_problem"]

# A bound on the mapping a hostile config or environment can make the service hold and check;
# far above any registry's repository count.
MAX_CONFIGURED_NAMES = 100_000
# At most this many problems are spelt out; the rest are counted.
_MAX_PROBLEMS_SHOWN = 20
# ``ecr-<account>-<region>``: catalog.naming.registry_entity_name.
_REGISTRY_NAME = re.compile(r"ecr-([0-9]{12})-(.+)")
# ``.<region>.<account>``: the end of every name catalog.naming.repository_entity_name makes.
_GENERATED_SUFFIX = re.compile(r".*\.([a-z0-9-]+)\.([0-9]{12})")


def _shown(text: str) -> str:
    """``text`` quoted with its controls escaped (repr), and cut short: it may come from a
    hostile config or environment, and is written to a terminal."""
    return repr(text) if len(text) <= 300 else f"{text[:300]!r}..."


def configured_name_problem(arn: str, name: str) -> str | None:
    """What is wrong with configuring ``name`` for the repository ``arn``; None if nothing."""
    parsed = parse_repository_arn(arn)
    if parsed is None:
        return (
            f"{_shown(arn)} is not an ECR repository ARN "
            "(arn:<partition>:ecr:<region>:<account>:repository/<name>)"
        )
    if not is_valid_entity_name(name):
        return (
            f"{_shown(name)} (for {arn}) is not a valid Backstage entity name: 1-63 characters of "
            "[A-Za-z0-9-_.], a letter or digit at both ends"
        )
    lowered = name.lower()
    registry = _REGISTRY_NAME.fullmatch(lowered)
    if registry is not None and REGION.fullmatch(registry.group(2)):
        return f"{name!r} (for {arn}) has the form of a registry's name (ecr-<account>-<region>)"
    suffix = _GENERATED_SUFFIX.fullmatch(lowered)
    repository = parsed[1]
    if (
        suffix is not None
        and REGION.fullmatch(suffix.group(1))
        and (suffix.group(1), suffix.group(2)) != (repository.region, repository.account_id)
    ):
        return (
            f"{name!r} (for {arn}) ends in .{suffix.group(1)}.{suffix.group(2)}, the suffix of "
            "another source's generated names"
        )
    return None


def _duplicates(names: Mapping[str, str]) -> list[str]:
    """One problem per name given to more than one repository (refs ignore case)."""
    by_name: dict[str, list[str]] = {}
    for arn, name in names.items():
        by_name.setdefault(name.lower(), []).append(arn)
    return [
        f"{_shown(names[arns[0]])} is given to more than one repository: "
        + ", ".join(_shown(arn) for arn in sorted(arns))
        for _, arns in sorted(by_name.items())
        if len(arns) > 1
    ]


def check_configured_names(names: Mapping[str, str]) -> None:
    """Raise ValueError naming every entry that breaks a rule, and both of each duplicate."""
    problems = [
        problem
        for arn, name in sorted(names.items())
        if (problem := configured_name_problem(arn, name)) is not None
    ]
    problems += _duplicates(names)
    if problems:
        shown = problems[:_MAX_PROBLEMS_SHOWN]
        more = len(problems) - len(shown)
        raise ValueError("; ".join(shown) + (f"; and {more} more" if more else ""))
