"""What every section of the settings shares: strictness, and the patterns of AWS names."""

from __future__ import annotations

import re
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict

__all__ = ["ACCOUNT", "REGION", "ROLE_ARN", "AccountId", "Strict", "check_url"]

# Every partition's regions: us-east-1, cn-north-1, us-gov-west-1, us-isob-east-1, eusc-de-east-1.
REGION = re.compile(r"^[a-z]{2,4}(-[a-z]+)+-[0-9]{1,2}$")
ACCOUNT = re.compile(r"^[0-9]{12}$")
ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::[0-9]{12}:role/[\w+=,.@/-]{1,512}$", re.ASCII)


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
