"""The approach ecr-catalog replaces: a sequential boto3 script that writes a committed YAML file.

    python -m bench.baseline_sync --endpoint-url URL --regions us-east-1,eu-west-1 > out.yaml

Paginates the repositories, then for each repository, one after another, fetches its tags,
images and lifecycle policy, and dumps YAML. Standard retries, as such scripts are written.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import boto3
import yaml
from botocore.exceptions import ClientError


def sync(endpoint_url: str, regions: list[str]) -> list[dict[str, Any]]:
    documents = []
    for region in regions:
        ecr = boto3.client("ecr", region_name=region, endpoint_url=endpoint_url)
        for page in ecr.get_paginator("describe_repositories").paginate():
            for repo in page["repositories"]:
                tags = ecr.list_tags_for_resource(resourceArn=repo["repositoryArn"])["tags"]
                images = [
                    image
                    for images_page in ecr.get_paginator("describe_images").paginate(
                        repositoryName=repo["repositoryName"]
                    )
                    for image in images_page["imageDetails"]
                ]
                try:
                    ecr.get_lifecycle_policy(repositoryName=repo["repositoryName"])
                    lifecycle = True
                except ClientError:
                    lifecycle = False
                documents.append(
                    {
                        "apiVersion": "backstage.io/v1alpha1",
                        "kind": "Resource",
                        "metadata": {
                            "name": repo["repositoryName"].replace("/", "-"),
                            "annotations": {
                                "amazonaws.com/arn": repo["repositoryArn"],
                                "images": str(len(images)),
                                "lifecycle": str(lifecycle),
                            },
                            "labels": {t["Key"]: t["Value"] for t in tags},
                        },
                        "spec": {"type": "ecr-repository", "owner": "platform-team"},
                    }
                )
    return documents


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--endpoint-url", required=True)
    parser.add_argument("--regions", required=True)
    args = parser.parse_args()
    documents = sync(args.endpoint_url, args.regions.split(","))
    yaml.safe_dump_all(documents, sys.stdout)


if __name__ == "__main__":
    main()
