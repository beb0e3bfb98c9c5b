"""ECR events as EventBridge delivers them (and SNS wraps them), for the tests."""

from __future__ import annotations

import json
from typing import Any

ACCOUNT = "123456789012"
TOKEN = "events-token-for-tests"

__all__ = ["ACCOUNT", "TOKEN", "image_action", "image_scan", "sns"]


def image_action(repo: str, tag: str = "latest", action: str = "PUSH", **extra: Any) -> dict:
    # As documented for EventBridge ("ECR Image Action"), tagless pushes have "image-tag": "".
    return {
        "version": "0",
        "id": "13cde686-328b-6117-af20-0e5566167482",
        "detail-type": "ECR Image Action",
        "source": "aws.ecr",
        "account": ACCOUNT,
        "time": "2026-11-26T01:54:34Z",
        "region": "us-east-1",
        "resources": [],
        "detail": {
            "result": "SUCCESS",
            "repository-name": repo,
            "image-digest": "sha256:7f5b2640fe6fb4f46592dfd3410c4a79dac4f89e4782432e0378abcd1234",
            "action-type": action,
            "image-tag": tag,
            **extra,
        },
    }


def image_scan(repo: str) -> dict:
    return {
        "version": "0",
        "id": "85fc3613-e913-7fc4-a80c-a3753e4aa9ae",
        "detail-type": "ECR Image Scan",
        "source": "aws.ecr",
        "account": ACCOUNT,
        "time": "2026-11-26T02:36:48Z",
        "region": "us-east-1",
        "resources": [f"arn:aws:ecr:us-east-1:{ACCOUNT}:repository/{repo}"],
        "detail": {
            "scan-status": "COMPLETE",
            "repository-name": repo,
            "finding-severity-counts": {"CRITICAL": 10, "MEDIUM": 9},
            "image-digest": "sha256:7f5b2640fe6fb4f46592dfd3410c4a79dac4f89e4782432e0378abcd1234",
            "image-tags": [],
        },
    }


def sns(message: dict) -> dict:
    return {
        "Type": "Notification",
        "MessageId": "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324",
        "TopicArn": f"arn:aws:sns:us-east-1:{ACCOUNT}:ecr-events",
        "Message": json.dumps(message),
        "Timestamp": "2026-11-26T02:36:49.000Z",
        "SignatureVersion": "1",
    }
