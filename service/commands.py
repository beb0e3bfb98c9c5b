"""The commands that need neither AWS nor the service: the OpenAPI document, IAM documents,
seeding a demo registry, and the `catalog.names` an old committed catalog file implies."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .config import Settings

__all__ = ["add_tool_commands", "names_from_command", "openapi_yaml", "run_tool", "usage_error"]

log = logging.getLogger("service")


def usage_error(message: str) -> int:
    """Say what is wrong on stderr; 2 is the exit status of bad input."""
    print(f"ecr-catalog: {message}", file=sys.stderr)
    return 2


def openapi_yaml() -> str:
    """The app's OpenAPI document as YAML, exactly as committed in openapi/openapi.yaml."""
    import yaml

    from .config import Settings
    from .web.app import create_app

    spec = create_app(Settings()).openapi()
    return yaml.safe_dump(spec, sort_keys=False, allow_unicode=True, width=100)


def names_from_command(settings: Settings, args: argparse.Namespace) -> int:
    from .aws.partitions import partition_of
    from .catalog.migration import names_from
    from .catalog.oldfile import read_catalog_file
    from .errors import CatalogUnreadable, ConfigError
    from .model import SourceId
    from .text import escape_controls

    try:
        old = read_catalog_file(args.old)
    except CatalogUnreadable as exc:
        return usage_error(str(exc))
    try:
        settings.aws.resolved_targets()
        reads: Callable[[SourceId], bool] = settings.aws.may_read
    except ConfigError:
        print("ecr-catalog: no sources configured: taking every repository", file=sys.stderr)
        reads = lambda _source: True  # noqa: E731
    found = names_from(
        old, settings.catalog, reads=reads, partition_of=lambda region: partition_of(region).name
    )
    # The old file's path and names go to a terminal: their controls are shown, never run.
    sys.stdout.write(found.as_yaml(escape_controls(str(args.old))))
    for line in found.report():
        print(f"ecr-catalog: {escape_controls(line)}", file=sys.stderr)
    return 0


def _openapi(args: argparse.Namespace) -> int:
    text = openapi_yaml()
    if args.output == "-":
        sys.stdout.write(text)
    else:
        Path(args.output).write_text(text, encoding="utf-8")
    return 0


def _iam_policy(args: argparse.Namespace) -> int:
    from .aws.iam import iam_document, iam_json

    try:
        document = iam_document(args.document, args.partition, read_role_name=args.read_role_name)
    except ValueError as exc:
        return usage_error(str(exc))
    sys.stdout.write(iam_json(document))
    return 0


def _demo_seed(args: argparse.Namespace) -> int:
    from .demo import demo_repositories, seed_registry

    seed_registry(args.endpoint_url, demo_repositories())
    log.info("seeded the demo registry at %s", args.endpoint_url)
    return 0


def add_tool_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The sub-commands of this module, on ``ecr-catalog``'s parser."""
    names = commands.add_parser(
        "names-from",
        help="print the catalog.names that keep the names an old committed catalog file gives "
        "repositories (no AWS call)",
    )
    names.add_argument("old", type=Path, help="the old file, e.g. catalog/ecr-registry.yaml")
    names.add_argument(
        "--config", type=Path, help="YAML config file (default: $ECR_CATALOG_CONFIG)"
    )

    openapi = commands.add_parser("openapi", help="write the OpenAPI spec")
    openapi.add_argument(
        "--output", default="openapi/openapi.yaml", help="file to write, or - for stdout"
    )
    iam = commands.add_parser(
        "iam-policy", help="print an IAM document the service needs, for any AWS partition"
    )
    iam.add_argument("--partition", default="aws", help="aws, aws-cn, aws-us-gov, ...")
    iam.add_argument(
        "--document",
        choices=("permissions", "irsa-trust", "read-role-trust", "organization"),
        default="permissions",
        help="the service role's permissions, or one of the trust policies",
    )
    iam.add_argument(
        "--read-role-name", default="ecr-catalog-reader", help="the read role in other accounts"
    )
    seed = commands.add_parser(
        "demo-seed", help="create the demo repositories in an ECR endpoint such as a moto server"
    )
    seed.add_argument("--endpoint-url", required=True, help="e.g. http://moto:5000")


def run_tool(args: argparse.Namespace) -> int | None:
    """The exit status of a command that needs no settings; None for any other command."""
    tools = {"openapi": _openapi, "demo-seed": _demo_seed, "iam-policy": _iam_policy}
    run = tools.get(args.command)
    return None if run is None else run(args)
