"""The one exception tree of ecr-catalog, and where each kind ends up.

    EcrCatalogError
    ├── ConfigError             a setting is wrong: the command exits 2, naming the key
    ├── AwsError                AWS did not answer as the read needs
    │   └── EcrError            one call failed for good (after botocore's retries): code,
    │                           message, account, region and operation (service/aws/errors.py)
    ├── BackstageError          Backstage's API did not answer as needed: status and detail
    ├── StateError              the state directory (service/snapshot/persist.py)
    │   ├── StateFileInvalid    a file is not one source's records: it is set aside
    │   └── StateWriteFailed    a save failed: counted, and serving goes on
    ├── SnapshotRefused         the catalog's own entities failed validation: the last stays
    ├── CatalogUnreadable       `diff`, `names-from`: the old catalog file cannot be read
    └── RequestRefused          an HTTP request cannot be served: status, detail, headers
        ├── Elsewhere           307: another partition of the fleet serves it (Location)
        ├── NotFound            404
        ├── Unauthorized        401, with WWW-Authenticate: Bearer
        ├── Conflict            409: the request does not fit the state (nothing held)
        ├── PayloadTooLarge     413
        ├── TooManyRequests     429, with Retry-After
        ├── Unavailable         503, with Retry-After: nothing to serve yet
        └── EventRejected       400 or 422: not an ECR event this endpoint takes

AWS and Backstage errors never reach HTTP: a source whose read fails keeps its last good data,
a failed Backstage call keeps the last claims, and either shows on /readyz. ``RequestRefused``
is mapped to a response by the one handler in ``service/web/refusals.py``; the command maps
``ConfigError`` and ``CatalogUnreadable`` to exit 2.
"""

from __future__ import annotations

from collections.abc import Mapping

from .model import SourceId

__all__ = [
    "AwsError",
    "BackstageError",
    "CatalogUnreadable",
    "ConfigError",
    "Conflict",
    "EcrCatalogError",
    "EcrError",
    "Elsewhere",
    "EventRejected",
    "NotFound",
    "PayloadTooLarge",
    "RequestRefused",
    "SnapshotRefused",
    "StateError",
    "StateFileInvalid",
    "StateWriteFailed",
    "TooManyRequests",
    "Unauthorized",
    "Unavailable",
]


class EcrCatalogError(Exception):
    """Every error this service raises on purpose."""


class ConfigError(EcrCatalogError):
    """The configuration cannot be used; the message names the file and the key."""


class AwsError(EcrCatalogError):
    """AWS did not answer as the read needs."""


class EcrError(AwsError):
    """An AWS call failed for good; names the account, region and operation.

    ``retries`` are the attempts botocore made after the first, as far as it says.
    """

    def __init__(
        self,
        account: str,
        region: str,
        operation: str,
        code: str,
        message: str,
        retries: int = 0,
    ) -> None:
        super().__init__(f"{operation} in {account}/{region} failed: {code}: {message}")
        self.account = account
        self.region = region
        self.operation = operation
        self.code = code
        self.detail = message
        self.retries = retries


class BackstageError(EcrCatalogError):
    """A call to Backstage's API failed; ``status`` is its HTTP status, or None unanswered."""

    def __init__(self, what: str, status: int | None, detail: str) -> None:
        answer = f"HTTP {status}" if status is not None else "no answer"
        super().__init__(f"{what}: {answer}: {detail}")
        self.status = status
        self.detail = detail

    @property
    def retryable(self) -> bool:
        """Worth one more try: no answer, a 429 or a server error."""
        return self.status is None or self.status == 429 or self.status >= 500


class StateError(EcrCatalogError):
    """Something about the state directory."""


class StateFileInvalid(StateError, ValueError):
    """A state file's content is not the records of one source in this format."""


class StateWriteFailed(StateError):
    """A source's records could not be written to the state directory."""


class SnapshotRefused(EcrCatalogError):
    """The catalog's own entities failed validation: serving the rest would orphan them.

    ``sources`` are the sources whose registry was refused (none when the Domain, System or
    Component was: those come from the settings alone).
    """

    def __init__(self, message: str, sources: tuple[SourceId, ...] = ()) -> None:
        super().__init__(message)
        self.sources = sources


class CatalogUnreadable(EcrCatalogError):
    """An old catalog file (for ``ecr-catalog diff`` or ``names-from``) cannot be read as
    entities."""


class RequestRefused(EcrCatalogError):
    """An HTTP request that gets ``status`` with ``detail`` (and ``headers``) instead."""

    status = 400

    def __init__(self, detail: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.headers = dict(headers or {})


class Elsewhere(RequestRefused):
    """Another partition of a fleet serves this URL: a temporary redirect to it."""

    status = 307

    def __init__(self, url: str) -> None:
        super().__init__(f"served by another partition: {url}", {"Location": url})


class NotFound(RequestRefused):
    status = 404


class Unauthorized(RequestRefused):
    status = 401

    def __init__(self, detail: str = "a valid bearer token is required") -> None:
        super().__init__(detail, {"WWW-Authenticate": "Bearer"})


class Conflict(RequestRefused):
    status = 409


class PayloadTooLarge(RequestRefused):
    status = 413


class TooManyRequests(RequestRefused):
    status = 429

    def __init__(self, detail: str, retry_after: int) -> None:
        super().__init__(detail, {"Retry-After": str(retry_after)})


class Unavailable(RequestRefused):
    status = 503

    def __init__(self, detail: str, retry_after: int) -> None:
        super().__init__(detail, {"Retry-After": str(retry_after)})


class EventRejected(RequestRefused):
    """The body is not an event this endpoint takes: 400 (not JSON) or 422 (not an event)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
