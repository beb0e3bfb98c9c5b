"""The one seam that turns botocore's exceptions into ours, as httpx maps its transport's.

Every AWS call (ECR, STS, Organizations, Account) runs inside ``mapped_errors``; whatever
botocore or aiobotocore raises leaves it as an ``EcrError`` naming the account, region and
operation, with AWS's error code (or botocore's exception name) and the retries botocore made.

    ClientError               AWS answered with an error: its code and message
    CertificateRejected       the endpoint's TLS certificate is not trusted: what to set, never
                              retried (``network.FinalCertificates``)
    SSLError                  another TLS failure
    BotoCoreError             no answer: timeouts, refused connections, a proxy that failed
    ResponseParserError,      an answer botocore cannot parse: not UTF-8, nested past the
    UnicodeDecodeError,       JSON parser's depth bound
    RecursionError
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from botocore.exceptions import BotoCoreError, ClientError, SSLError
from botocore.parsers import ResponseParserError

from ..errors import EcrError
from ..jsontext import TOO_DEEP
from .answers import MALFORMED
from .network import CertificateRejected, certificate_advice, redacted

__all__ = [
    "CERTIFICATE_FAILED",
    "THROTTLING_CODES",
    "mapped_errors",
    "outcome_of",
]

# The code of a call whose TLS certificate could not be verified.
CERTIFICATE_FAILED = "CertificateVerifyFailed"
# botocore's standard-mode throttling codes: counted as "throttled" in the metrics.
THROTTLING_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottledException",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "RequestLimitExceeded",
        "BandwidthLimitExceeded",
        "LimitExceededException",
        "RequestThrottled",
        "SlowDown",
        "PriorRequestNotComplete",
    }
)


def outcome_of(code: str) -> str:
    """The metrics' outcome of a call that failed with ``code``."""
    return "throttled" if code in THROTTLING_CODES else code


@contextmanager
def mapped_errors(
    account: str, region: str, operation: str, ca_bundle: str, about: str = ""
) -> Iterator[None]:
    """Runs the block; a botocore failure leaves it as an EcrError that names where.

    ``about`` opens the message (``cannot assume <role>: ``), for calls made on behalf of
    something the operation's name does not say.
    """
    try:
        yield
    except ClientError as exc:
        error = exc.response.get("Error", {})
        retries = int(exc.response.get("ResponseMetadata", {}).get("RetryAttempts", 0))
        code = str(error.get("Code") or "Unknown")
        message = about + str(error.get("Message") or "")
        raise EcrError(account, region, operation, code, message, retries) from exc
    except CertificateRejected as exc:
        url = str(exc.kwargs.get("endpoint_url", ""))
        advice = certificate_advice(url, str(exc.kwargs.get("error", "")), ca_bundle)
        raise EcrError(account, region, operation, CERTIFICATE_FAILED, about + advice) from exc
    except SSLError as exc:
        url = redacted(str(exc.kwargs.get("endpoint_url", "")))
        detail = f"TLS with {url} failed: {exc.kwargs.get('error', exc)}"
        raise EcrError(account, region, operation, "TLSError", about + detail) from exc
    except BotoCoreError as exc:
        raise EcrError(account, region, operation, type(exc).__name__, about + str(exc)) from exc
    except (ResponseParserError, UnicodeDecodeError, RecursionError) as exc:
        # botocore's JSON parser takes only a JSON error as a bad body; a body that is not
        # UTF-8, or nested past the parser's depth bound, is a malformed answer all the same.
        cause = TOO_DEEP if isinstance(exc, RecursionError) else str(exc)
        detail = f"the answer cannot be read: {cause}"
        raise EcrError(account, region, operation, MALFORMED, about + detail) from exc
