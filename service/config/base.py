"""What every section of the settings shares: strictness, and the patterns of AWS names."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict

__all__ = [
    "ACCOUNT",
    "ECR_REPOSITORY_NAME",
    "REGION",
    "ROLE_ARN",
    "AccountId",
    "RepositoryId",
    "Strict",
    "check_url",
    "parse_repository_arn",
    "repository_named_by",
]

# Every partition's regions: us-east-1, cn-north-1, us-gov-west-1, us-isob-east-1, eusc-de-east-1.
REGION = re.compile(r"^[a-z]{2,4}(-[a-z]+)+-[0-9]{1,2}$")
ACCOUNT = re.compile(r"^[0-9]{12}$")
ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::[0-9]{12}:role/[\w+=,.@/-]{1,512}$", re.ASCII)
# An ECR repository name: lower-case components joined by single separators, split by "/"
# (ECR's CreateRepository pattern), at most 256 characters. Used with fullmatch: "$" would also
# match before a final newline, and "0\n" would pass.
ECR_REPOSITORY_NAME = re.compile(r"(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*")
MAX_REPOSITORY_NAME_LENGTH = 256
# arn:<partition>:ecr:<region>:<account>:repository/<name>
_REPOSITORY_ARN = re.compile(r"arn:(aws(?:-[a-z]+)*):ecr:([^:]+):([^:]+):repository/(.+)")
# <account>.dkr.ecr.<region>.<dns suffix>/<name>, as docker pulls it: optionally with a scheme,
# a tag or a digest; the FIPS (dkr.ecr-fips) and dual-stack (dkr-ecr) hosts too.
_REPOSITORY_URI = re.compile(
    r"(?:https?://)?([0-9]{12})\.dkr[.-]ecr(?:-fips)?\.([a-z0-9-]+)\.[a-z0-9.-]+/([^:@]+)"
    r"(?::[a-z0-9_][a-z0-9_.-]{0,127}|@sha256:[0-9a-f]{64})?"
)


@dataclass(frozen=True, order=True, slots=True)
class RepositoryId:
    """One ECR repository, whatever names it: its account, region and name."""

    account_id: str
    region: str
    name: str

    def arn(self, partition: str) -> str:
        return f"arn:{partition}:ecr:{self.region}:{self.account_id}:repository/{self.name}"


def _repository(account: str, region: str, name: str, *, strict: bool) -> RepositoryId | None:
    """The repository, if the parts are an account, a region and a name; ``strict``, a name
    ECR would take (a non-conforming endpoint may list others, which are matched all the
    same)."""
    if (
        ACCOUNT.fullmatch(account)
        and REGION.fullmatch(region)
        and len(name) <= MAX_REPOSITORY_NAME_LENGTH
        and (ECR_REPOSITORY_NAME.fullmatch(name) if strict else name)
    ):
        return RepositoryId(account, region, name)
    return None


def parse_repository_arn(arn: str, *, strict: bool = True) -> tuple[str, RepositoryId] | None:
    """The partition and repository of an ECR repository ARN, exactly as ECR writes it; with
    ``strict`` false, of any repository name."""
    found = _REPOSITORY_ARN.fullmatch(arn)
    if found is None:
        return None
    partition, region, account, name = found.groups()
    repository = _repository(account, region, name, strict=strict)
    return None if repository is None else (partition, repository)


def repository_named_by(value: str) -> RepositoryId | None:
    """The repository a text names by its ARN or its URI (``docker pull`` form, with or without
    a tag or digest), ignoring case as ECR's lower-case names allow; None for any other text."""
    if len(value) > 1024:
        return None
    text = value.strip().lower()
    parsed = parse_repository_arn(text, strict=False)
    if parsed is not None:
        return parsed[1]
    found = _REPOSITORY_URI.fullmatch(text)
    return None if found is None else _repository(*found.groups(), strict=False)


def _quoted(value: Any) -> Any:
    # YAML reads unquoted digits as a number: 123456789012 loses nothing, but 012345670123 is
    # octal to YAML 1.1 (PyYAML) and another number altogether. pydantic's own "Input should
    # be a valid string" says nothing of that, so the number is refused here in these words.
    if isinstance(value, int | float) and not isinstance(value, bool):
        raise ValueError(
            "quote it: account ids are strings of 12 digits, e.g. '012345678901'; unquoted, "
            f"this one was read as the number {value} (YAML and JSON drop leading zeros, and "
            "YAML reads some as octal)"
        )
    return value


def _twelve_digits(account: str) -> str:
    """``account`` if it is 12 ASCII digits; else ValueError."""
    if not ACCOUNT.fullmatch(account):
        raise ValueError(f"{account!r} is not a 12-digit AWS account id")
    return account


# An AWS account id in the settings: a string of 12 digits, and a clear word for a number.
AccountId = Annotated[str, BeforeValidator(_quoted), AfterValidator(_twelve_digits)]


class Strict(BaseModel):
    # A misspelt key is an error, not a silently ignored default. Each field's docstring is its
    # description, which the configuration reference (service/config/reference.py) prints.
    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)


def check_url(url: str, what: str, schemes: tuple[str, ...] = ("http", "https")) -> str:
    """``url`` if it is an absolute URL of one of ``schemes`` with a host; else ValueError."""
    parts = urlsplit(url)
    if parts.scheme not in schemes or not parts.hostname:
        raise ValueError(f"{what} must be an {' or '.join(schemes)} URL with a host")
    return url
