"""The IAM documents the service needs, for any partition: `ecr-catalog iam-policy`.

ARNs and service hosts differ by partition (``arn:aws-cn:``, ``amazonaws.com.cn``), so the
documents are written from botocore's partition data rather than kept as literals; the files
under ``deploy/aws/`` are their output for ``aws``, ``aws-cn`` and ``aws-us-gov``, and a test
keeps them equal.
"""

from __future__ import annotations

import json
from typing import Any

from .partitions import home_region, partition_of

__all__ = ["DOCUMENTS", "ECR_READ_ACTIONS", "iam_document", "iam_json"]

# Every ECR call the reader makes, and nothing else: read-only (tests/integration/
# test_security.py compares this with the calls a real refresh makes).
ECR_READ_ACTIONS = (
    "ecr:DescribeRegistry",
    "ecr:GetRegistryScanningConfiguration",
    "ecr:DescribeRepositories",
    "ecr:ListTagsForResource",
    "ecr:DescribeImages",
    "ecr:GetLifecyclePolicy",
    "ecr:DescribeImageScanFindings",
)
DOCUMENTS = ("permissions", "irsa-trust", "read-role-trust", "organization")
# What discovering an organisation needs, in the management account or a delegated
# administrator's (aws.organization.management_role_arn).
ORGANIZATION_ACTIONS = (
    "organizations:ListAccounts",
    "organizations:ListAccountsForParent",
    "organizations:ListChildren",
    "account:ListRegions",
)


def iam_document(
    document: str,
    partition: str = "aws",
    *,
    read_role_name: str = "ecr-catalog-reader",
    service_role_arn_account: str = "111122223333",
) -> dict[str, Any]:
    """One IAM document: the service role's permissions, or one of the two trust policies.

    Raises ValueError for a document or partition that does not exist.
    """
    region = home_region(partition)
    suffix = partition_of(region).dns_suffix
    arn = f"arn:{partition}"
    if document == "permissions":
        return _policy(
            {
                "Sid": "ReadEcrForTheCatalog",
                "Effect": "Allow",
                "Action": list(ECR_READ_ACTIONS),
                "Resource": "*",
            },
            {
                "Sid": "AssumeTheReadRolesOfOtherAccounts",
                "Effect": "Allow",
                "Action": "sts:AssumeRole",
                "Resource": f"{arn}:iam::*:role/{read_role_name}",
            },
        )
    if document == "organization":
        return _policy(
            {
                "Sid": "DiscoverTheOrganisationsAccounts",
                "Effect": "Allow",
                "Action": list(ORGANIZATION_ACTIONS),
                "Resource": "*",
            }
        )
    if document == "irsa-trust":
        issuer = f"oidc.eks.{region}.{suffix}/id/EXAMPLED539D4633E53DE1B71EXAMPLE"
        return _policy(
            {
                "Sid": "EcrCatalogServiceAccountOnly",
                "Effect": "Allow",
                "Principal": {
                    "Federated": f"{arn}:iam::{service_role_arn_account}:oidc-provider/{issuer}"
                },
                "Action": "sts:AssumeRoleWithWebIdentity",
                "Condition": {
                    "StringEquals": {
                        f"{issuer}:sub": "system:serviceaccount:ecr-catalog:ecr-catalog",
                        # The EKS pod identity webhook's audience, in every partition.
                        f"{issuer}:aud": "sts.amazonaws.com",
                    }
                },
            }
        )
    if document == "read-role-trust":
        return _policy(
            {
                "Sid": "OnlyTheCatalogRoleWithTheAgreedExternalId",
                "Effect": "Allow",
                "Principal": {"AWS": f"{arn}:iam::{service_role_arn_account}:role/ecr-catalog"},
                "Action": "sts:AssumeRole",
                "Condition": {
                    "StringEquals": {"sts:ExternalId": "replace-with-the-agreed-external-id"}
                },
            }
        )
    raise ValueError(f"unknown document {document!r}: one of {', '.join(DOCUMENTS)}")


def _policy(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def iam_json(document: dict[str, Any]) -> str:
    """The document as committed: two-space JSON and a final newline."""
    return json.dumps(document, indent=2) + "\n"
