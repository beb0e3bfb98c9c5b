"""How AWS is reached: proxies, TLS trust and endpoints, as botocore resolves them.

Every AWS call goes through aiobotocore, so botocore itself applies each setting; this module
only resolves what the service also names in logs and messages:

* **proxies**: ``aws.proxies`` (botocore's ``Config(proxies=...)``), which then replaces the
  environment entirely; otherwise ``HTTP_PROXY``/``HTTPS_PROXY`` (either case), unless the
  endpoint's host is in ``NO_PROXY`` (botocore's ``get_environ_proxies``, stdlib ``urllib``);
* **TLS trust**: ``aws.ca_bundle``, else botocore's ``ca_bundle`` setting (``AWS_CA_BUNDLE``,
  then ``ca_bundle`` in the AWS config profile), else botocore's own default bundle, passed
  to every client as ``verify``;
* **endpoints**: ``aws.endpoint_urls.<service>``, else ``aws.endpoint_url``, else whatever
  botocore resolves (``AWS_ENDPOINT_URL_<SERVICE>``, ``AWS_ENDPOINT_URL``, the config file, FIPS,
  dual-stack, the partition).

``FinalCertificates`` is the HTTP session every client uses: aiobotocore's own, except that a
certificate that fails verification ends the call instead of being retried.
"""

from __future__ import annotations

import ssl
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from aiobotocore.httpsession import AIOHTTPSession
from botocore.exceptions import BotoCoreError, SSLError
from botocore.httpsession import get_cert_path
from botocore.session import Session

__all__ = [
    "CertificateRejected",
    "FinalCertificates",
    "Network",
    "ca_bundle_of",
    "certificate_advice",
    "redacted",
]

CA_SETTINGS = "aws.ca_bundle (or AWS_CA_BUNDLE, or ca_bundle in the AWS config profile)"


def redacted(url: str) -> str:
    """``url`` without the user name and password it may carry, for logs and messages."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def ca_bundle_of(session: Session, configured: str | None) -> str:
    """The CA bundle botocore would verify with, ``configured`` (``aws.ca_bundle``) first."""
    if configured:
        return configured
    # botocore's own session variable: AWS_CA_BUNDLE, then the profile's ca_bundle.
    chosen = session.get_config_variable("ca_bundle")
    return str(chosen) if chosen else str(get_cert_path(True))


def certificate_advice(url: str, detail: str, bundle: str) -> str:
    """What to say when ``url``'s certificate cannot be verified: where, why, what to set."""
    return (
        f"the TLS certificate of {redacted(url)} could not be verified ({detail}) against the "
        f"CA bundle {bundle}; if it is signed by a private CA, name that CA's bundle in "
        f"{CA_SETTINGS}"
    )


@dataclass(frozen=True)
class Network:
    """Proxies, TLS trust and endpoints for every AWS call, resolved once at start."""

    endpoint_url: str | None
    endpoint_urls: Mapping[str, str]
    # aws.proxies, or None to follow the environment as botocore does. May hold credentials.
    proxies: Mapping[str, str] | None = field(repr=False)
    ca_bundle: str

    @classmethod
    def resolve(
        cls,
        session: Session,
        *,
        endpoint_url: str | None,
        endpoint_urls: Mapping[str, str],
        proxies: Mapping[str, str] | None,
        ca_bundle: str | None,
    ) -> Network:
        bundle = ca_bundle_of(session, ca_bundle)
        return cls(endpoint_url, dict(endpoint_urls), proxies, bundle)

    def endpoint_for(self, service: str) -> str | None:
        """The URL given for ``service``, or None to let botocore resolve it."""
        return self.endpoint_urls.get(service) or self.endpoint_url

    def proxy_for(self, url: str) -> str | None:
        """The proxy a request to ``url`` goes through, or None for a direct connection."""
        scheme = urlsplit(url).scheme
        if self.proxies is not None:
            return self.proxies.get(scheme)
        if urllib.request.proxy_bypass(urlsplit(url).netloc):
            return None
        return urllib.request.getproxies().get(scheme)


class CertificateRejected(BotoCoreError):
    """The endpoint's certificate failed verification against the CA bundle in use.

    Not a ConnectionError, so botocore's retry checkers do not retry it: the trust stays wrong
    until someone changes it, and every retry would only delay the message that says so.
    """

    fmt = "the TLS certificate of {endpoint_url} could not be verified: {error}"


class FinalCertificates(AIOHTTPSession):
    """aiobotocore's HTTP session (``AioConfig(http_session_cls=...)``), except that a
    certificate that fails verification raises ``CertificateRejected``, which botocore's retry
    checkers do not retry (they retry every ConnectionError, SSLError among them)."""

    async def send(self, request: Any) -> Any:
        try:
            return await super().send(request)
        except SSLError as exc:
            cause = exc.kwargs.get("error")
            verification = getattr(cause, "certificate_error", None)
            if not isinstance(verification, ssl.SSLCertVerificationError):
                raise
            raise CertificateRejected(
                endpoint_url=exc.kwargs.get("endpoint_url", ""), error=verification
            ) from exc
