"""The one seam from botocore's exceptions to ours: what each becomes, and what it says."""

from __future__ import annotations

import ssl

import pytest
from botocore.exceptions import ClientError, ReadTimeoutError, SSLError

from service.aws.errors import CERTIFICATE_FAILED, mapped_errors
from service.aws.network import CertificateRejected
from service.errors import EcrError

WHERE = ("123456789012", "eu-west-1", "AssumeRole", "/etc/private-ca.pem")


def raised(exc: BaseException, about: str = "") -> EcrError:
    with pytest.raises(EcrError) as caught, mapped_errors(*WHERE, about=about):
        raise exc
    assert (caught.value.account, caught.value.region) == WHERE[:2]
    assert caught.value.operation == "AssumeRole"
    assert caught.value.__cause__ is exc
    return caught.value


def test_an_aws_error_keeps_its_code_message_and_retries() -> None:
    exc = ClientError(
        {
            "Error": {"Code": "AccessDenied", "Message": "not allowed"},
            "ResponseMetadata": {"RetryAttempts": 0},
        },
        "AssumeRole",
    )
    error = raised(exc, about="cannot assume arn:aws:iam::1:role/x: ")
    assert error.code == "AccessDenied" and error.retries == 0
    assert error.detail == "cannot assume arn:aws:iam::1:role/x: not allowed"


def test_a_rejected_certificate_names_the_endpoint_the_bundle_and_the_setting() -> None:
    verification = ssl.SSLCertVerificationError(1, "unable to get local issuer certificate")
    url = "https://user:secret@sts.example.internal/"
    error = raised(CertificateRejected(endpoint_url=url, error=verification))
    assert error.code == CERTIFICATE_FAILED
    assert "https://***@sts.example.internal/" in error.detail and "secret" not in error.detail
    assert "/etc/private-ca.pem" in error.detail and "AWS_CA_BUNDLE" in error.detail
    assert "unable to get local issuer certificate" in error.detail


def test_another_tls_failure_is_not_called_a_certificate_problem() -> None:
    error = raised(SSLError(endpoint_url="https://ecr.example", error="handshake failure"))
    assert error.code == "TLSError" and "handshake failure" in error.detail


def test_no_answer_is_named_after_botocores_exception() -> None:
    error = raised(ReadTimeoutError(endpoint_url="https://ecr.example"))
    assert error.code == "ReadTimeoutError" and "https://ecr.example" in error.detail


def test_an_answer_nested_too_deep_is_malformed() -> None:
    assert raised(RecursionError()).code == "MalformedResponse"


def test_anything_else_passes_through_unchanged() -> None:
    with pytest.raises(KeyError), mapped_errors(*WHERE):
        raise KeyError("not botocore's")
