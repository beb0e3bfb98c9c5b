"""What every section of the settings shares: strictness, and the patterns of AWS names."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict

__all__ = ["ACCOUNT", "REGION", "ROLE_ARN", "Strict", "check_url"]

# Every partition's regions: us-east-1, cn-north-1, us-gov-west-1, us-isob-east-1, eusc-de-east-1.
REGION = re.compile(r"^[a-z]{2,4}(-[a-z]+)+-[0-9]{1,2}$")
ACCOUNT = re.compile(r"^[0-9]{12}$")
ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::[0-9]{12}:role/[\w+=,.@/-]{1,512}$", re.ASCII)


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
