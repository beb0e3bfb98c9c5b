"""``names-from``: the ``catalog.names`` that keep an old committed file's refs. Pure.

Each old Resource that names one repository (by ARN or URI, as ``diff`` pairs them:
oldfile.named_repositories) keeps its name when the service would make another one. No AWS call
is made: the repositories are those the old file names, kept to the sources the configuration
reads (``reads``); the partition of an ARN written from a URI is the region's (``partition_of``).
A repository named in the file that no longer exists gets an entry that is never used.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass

import yaml

from ..config import CatalogSettings
from ..config.base import RepositoryId
from ..config.names import configured_name_problem
from ..model import Entity, SourceId
from .entities import core_refs
from .naming import repository_entity_name
from .oldfile import entity_ref, named_repositories

__all__ = ["NamesFrom", "names_from"]


@dataclass(frozen=True)
class NamesFrom:
    """What ``names-from`` found in an old file."""

    # Repository ARN -> the old name, where it differs from the name the service makes.
    names: Mapping[str, str]
    # Old refs of repositories whose generated name is the old one already: nothing to set.
    same: tuple[str, ...]
    # Old refs that name no repository the configuration reads, and are not the service's own
    # Domain, System or Component: Backstage deletes them at the switch unless another
    # location emits them.
    unmatched: tuple[str, ...]
    # Old refs that name a repository but get no entry, or whose entry needs a look, and why.
    problems: tuple[str, ...]

    def as_yaml(self, origin: str) -> str:
        """The entries as a config file holds them, with a comment on where they came from."""
        header = (
            f"# catalog.names from {origin}:\n"
            f"# {len(self.names)} repositories keep the names it gives them.\n"
            "# Review, merge into the config file, and commit.\n"
        )
        body = {"catalog": {"names": dict(self.names)}}
        return header + yaml.safe_dump(body, sort_keys=True, default_flow_style=False, width=1000)

    def report(self) -> Iterator[str]:
        """What the entries leave out, for people: a line each."""
        yield (
            f"{len(self.names)} entries for catalog.names; {len(self.same)} old Resources have"
            " the names the service makes already"
        )
        if self.unmatched:
            yield (
                f"{len(self.unmatched)} old entities match no repository the config reads: "
                "Backstage deletes them at the switch unless another location emits them"
            )
            yield from (f"  {ref}" for ref in self.unmatched)
        if self.problems:
            yield f"{len(self.problems)} old Resources need a look:"
            yield from (f"  {problem}" for problem in self.problems)


@dataclass(frozen=True)
class _Candidate:
    """An old Resource that names one repository the configuration reads."""

    ref: str
    name: str
    namespace: str
    arn: str
    # The name the service makes for the repository.
    generated: str


def _candidate(
    ref: str, entity: Entity, repository: RepositoryId, partition_of: Callable[[str], str]
) -> _Candidate:
    metadata = entity["metadata"]
    source = SourceId(repository.account_id, repository.region)
    return _Candidate(
        ref,
        str(metadata["name"]),
        str(metadata.get("namespace") or "default"),
        repository.arn(partition_of(repository.region)),
        repository_entity_name(source, repository.name),
    )


def _candidates(
    old: Iterable[Entity],
    options: CatalogSettings,
    reads: Callable[[SourceId], bool],
    partition_of: Callable[[str], str],
) -> tuple[list[_Candidate], list[str], list[str]]:
    """The old Resources that name exactly one repository the configuration reads; the refs
    that match nothing; and why the others get no entry."""
    candidates: list[_Candidate] = []
    unmatched: list[str] = []
    problems: list[str] = []
    core = core_refs(options)
    for entity in old:
        ref = entity_ref(entity)
        found = named_repositories(entity) if entity["kind"].lower() == "resource" else set()
        read = sorted(r for r in found if reads(SourceId(r.account_id, r.region)))
        if len(read) == 1:
            candidates.append(_candidate(ref, entity, read[0], partition_of))
        elif len(read) > 1:
            names = ", ".join(f"{r.account_id}/{r.region}/{r.name}" for r in read)
            problems.append(f"{ref}: names more than one repository ({names}); none is kept")
        elif found:
            problems.append(f"{ref}: names only repositories of sources the config does not read")
        elif ref not in core:
            unmatched.append(ref)
    return candidates, unmatched, problems


def _shared(candidates: Iterable[_Candidate]) -> dict[str, list[str]]:
    """The refs of each repository named by more than one old Resource, or whose old name is
    another's too (ignoring case, as refs do), by ARN."""
    by_arn: dict[str, list[str]] = {}
    by_name: dict[str, list[_Candidate]] = {}
    for candidate in candidates:
        by_arn.setdefault(candidate.arn, []).append(candidate.ref)
        by_name.setdefault(candidate.name.lower(), []).append(candidate)
    shared = {arn: refs for arn, refs in by_arn.items() if len(refs) > 1}
    for found in by_name.values():
        if len({c.arn for c in found}) > 1:
            for candidate in found:
                shared.setdefault(candidate.arn, []).extend(c.ref for c in found)
    return shared


def _problem(candidate: _Candidate, generated: Mapping[str, str]) -> str | None:
    """Why ``candidate``'s old name cannot be configured; None if it can."""
    problem = configured_name_problem(candidate.arn, candidate.name)
    if problem is not None:
        return f"{candidate.ref}: {problem}"
    other = generated.get(candidate.name.lower())
    if other is not None and other != candidate.arn:
        return (
            f"{candidate.ref}: its name is the one the service makes for {other}; both would"
            " be left out"
        )
    return None


def names_from(
    old: Iterable[Entity],
    options: CatalogSettings,
    *,
    reads: Callable[[SourceId], bool],
    partition_of: Callable[[str], str],
) -> NamesFrom:
    """The ``catalog.names`` entries that keep the refs of ``old``'s repository Resources.

    ``reads`` says whether the configuration reads a source; ``partition_of`` names the
    partition of a region (aws, aws-cn, ...).
    """
    candidates, unmatched, problems = _candidates(old, options, reads, partition_of)
    shared = _shared(candidates)
    generated = {c.generated.lower(): c.arn for c in candidates}
    names: dict[str, str] = {}
    same: list[str] = []
    for candidate in candidates:
        if candidate.arn in shared:
            others = sorted(set(shared[candidate.arn]) - {candidate.ref})
            problems.append(
                f"{candidate.ref}: shares its repository ({candidate.arn}) or its name with "
                f"{', '.join(others)}; none is kept"
            )
            continue
        if candidate.namespace.lower() != options.namespace:
            problems.append(
                f"{candidate.ref}: in namespace {candidate.namespace}, and the service serves "
                f"catalog.namespace {options.namespace}: the ref changes unless they agree"
            )
        if candidate.name == candidate.generated:
            same.append(candidate.ref)
            continue
        problem = _problem(candidate, generated)
        if problem is None:
            names[candidate.arn] = candidate.name
        else:
            problems.append(problem)
    return NamesFrom(dict(sorted(names.items())), tuple(same), tuple(unmatched), tuple(problems))
