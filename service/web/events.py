"""ECR events from EventBridge, delivered directly or wrapped in SNS: parsed and checked. Pure.

``ECR Image Action`` (push, delete) and ``ECR Image Scan`` name a repository whose image
summary (count, latest image, scan findings) is now out of date. Every other ECR event is
acknowledged and ignored.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .. import jsontext
from ..errors import EventRejected
from ..model import SourceId

__all__ = ["EcrImageEvent", "EventVerdict", "parse_event"]

IMAGE_ACTION = "ECR Image Action"
IMAGE_SCAN = "ECR Image Scan"


class _Lenient(BaseModel):
    # EventBridge adds fields over time; only the ones read here are checked.
    model_config = ConfigDict(extra="ignore", populate_by_name=True, frozen=True)


class _ImageActionDetail(_Lenient):
    repository_name: str = Field(alias="repository-name", min_length=2, max_length=256)
    action_type: str = Field(alias="action-type")
    result: str
    # A push without a tag has "image-tag": "".
    image_tag: str = Field(default="", alias="image-tag")
    image_digest: str | None = Field(default=None, alias="image-digest")


class _ImageScanDetail(_Lenient):
    repository_name: str = Field(alias="repository-name", min_length=2, max_length=256)
    scan_status: str = Field(alias="scan-status")
    image_digest: str | None = Field(default=None, alias="image-digest")
    finding_severity_counts: dict[str, int] = Field(
        default_factory=dict, alias="finding-severity-counts"
    )


class _Envelope(_Lenient):
    source: Literal["aws.ecr"]
    detail_type: str = Field(alias="detail-type")
    account: str = Field(pattern=r"^[0-9]{12}$")
    region: str = Field(pattern=r"^[a-z]{2,4}(-[a-z]+)+-[0-9]{1,2}$")
    detail: dict[str, Any]


@dataclass(frozen=True)
class EcrImageEvent:
    """A change to one repository's images."""

    source: SourceId
    repository: str
    kind: str  # push, delete or scan

    def __str__(self) -> str:
        return f"{self.kind} in {self.source}/{self.repository}"


@dataclass(frozen=True)
class EventVerdict:
    """What to do with a body: act on ``event``, or acknowledge and ignore it for ``reason``."""

    event: EcrImageEvent | None
    detail_type: str
    reason: str | None = None


def _unwrap_sns(document: dict[str, Any]) -> dict[str, Any]:
    kind = document.get("Type")
    if kind is None:
        return document
    if kind in ("SubscriptionConfirmation", "UnsubscribeConfirmation"):
        # Following SubscribeURL from a request body would make this service fetch URLs for
        # whoever can post here; the subscription is confirmed by its owner instead.
        raise EventRejected(
            400, f"SNS {kind} is not handled here: confirm the subscription out of band"
        )
    if kind != "Notification" or not isinstance(document.get("Message"), str):
        raise EventRejected(400, f"unsupported SNS message type {kind!r}")
    try:
        inner = jsontext.loads(document["Message"])
    except ValueError as exc:
        raise EventRejected(400, f"the SNS Message is not JSON: {exc}") from exc
    if not isinstance(inner, dict):
        raise EventRejected(400, "the SNS Message is not a JSON object")
    return inner


def _problems(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in error['loc']) or 'body'}: {error['msg']}"
        for error in exc.errors()
    )


def parse_event(body: bytes) -> EventVerdict:
    """Read an EventBridge event (or an SNS notification carrying one) from a request body."""
    try:
        document = jsontext.loads(body)
    except ValueError as exc:
        raise EventRejected(400, f"the body is not JSON: {exc}") from exc
    if not isinstance(document, dict):
        raise EventRejected(400, "the body is not a JSON object")
    document = _unwrap_sns(document)
    try:
        envelope = _Envelope.model_validate(document)
    except ValidationError as exc:
        raise EventRejected(422, f"not an ECR event: {_problems(exc)}") from exc
    source = SourceId(envelope.account, envelope.region)
    try:
        if envelope.detail_type == IMAGE_ACTION:
            action = _ImageActionDetail.model_validate(envelope.detail)
            if action.result != "SUCCESS":
                return EventVerdict(None, IMAGE_ACTION, f"{action.result.lower()} action")
            kind = action.action_type.lower()
            if kind not in ("push", "delete"):
                return EventVerdict(None, IMAGE_ACTION, f"action {action.action_type!r}")
            return EventVerdict(EcrImageEvent(source, action.repository_name, kind), IMAGE_ACTION)
        if envelope.detail_type == IMAGE_SCAN:
            scan = _ImageScanDetail.model_validate(envelope.detail)
            if scan.scan_status != "COMPLETE":
                return EventVerdict(None, IMAGE_SCAN, f"scan {scan.scan_status.lower()}")
            return EventVerdict(EcrImageEvent(source, scan.repository_name, "scan"), IMAGE_SCAN)
    except ValidationError as exc:
        raise EventRejected(422, f"malformed {envelope.detail_type}: {_problems(exc)}") from exc
    return EventVerdict(None, envelope.detail_type, "not an image event")
