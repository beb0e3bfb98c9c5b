"""The `ecr-catalog` command: serve, render, diff against an old catalog file, the names that keep
its refs, write OpenAPI."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import TYPE_CHECKING

from .commands import add_tool_commands, names_from_command, openapi_yaml, run_tool, usage_error
from .logs import configure_logging

if TYPE_CHECKING:
    from .config import KnownRegions, Settings
    from .reading import StaticCredentials
    from .snapshot.types import Snapshot
    from .web.app import ReaderFactory

# FastAPI, botocore and the rest are imported where used: `openapi` and `iam-policy` need
# none of them.

__all__ = ["main", "openapi_yaml"]

log = logging.getLogger("service")


def _opener(settings: Settings, credentials: StaticCredentials | None) -> ReaderFactory:
    from .aws.reader import AwsEcrReader

    return lambda observer: AwsEcrReader.open(
        settings.aws,
        settings.cache,
        credentials,
        observer,
        state_dir=settings.state_dir,
        partitions=settings.partition.count,
    )


@contextmanager
def _reader_factory(settings: Settings, demo: bool) -> Iterator[tuple[Settings, ReaderFactory]]:
    """The settings to run with and how to open the reader; with ``demo``, a seeded moto."""
    if not demo:
        yield settings, _opener(settings, None)
        return
    from .config import TargetSettings
    from .demo import DEMO_ACCOUNT, DEMO_CREDENTIALS, DEMO_REGIONS, running_demo_ecr
    from .reading import StaticCredentials

    with running_demo_ecr() as url:
        # The demo shows every posture check, the encryption check included, unless told not to.
        posture = settings.posture
        if "require_kms" not in posture.model_fields_set:
            posture = posture.model_copy(update={"require_kms": True})
        demo_settings = settings.model_copy(
            update={
                "posture": posture,
                "aws": settings.aws.model_copy(
                    update={
                        "endpoint_url": url,
                        "targets": [
                            TargetSettings(regions=list(DEMO_REGIONS), account_id=DEMO_ACCOUNT)
                        ],
                    }
                ),
            }
        )
        yield demo_settings, _opener(demo_settings, StaticCredentials(*DEMO_CREDENTIALS))


def _serve(settings: Settings, args: argparse.Namespace) -> int:
    """Serve until stopped; 3 when the app could not start. Raises ConfigError, before anything
    else is started, for a port or address that cannot be listened on, or a fleet's partition
    index that cannot be told."""
    from .web.server import listening_socket

    partition = settings.partition
    if partition.count > 1:
        # Only a server is one partition of a fleet: its index is known before it starts.
        log.info("partition %d of %d", partition.own_index, partition.count)
    host = args.host or settings.server.host
    port = args.port if args.port is not None else settings.server.port
    sock = listening_socket(host, port)
    with sock, _reader_factory(settings, args.demo) as (run_settings, factory):
        import uvicorn

        from .web.app import create_app
        from .web.server import raise_open_files_limit, uvicorn_options

        app = create_app(run_settings, factory)
        soft, hard = raise_open_files_limit()
        log.info("open-files limit %d (hard limit %d)", soft, hard)
        server = uvicorn.Server(
            uvicorn.Config(
                app,
                host=host,
                port=port,
                log_config=None,
                access_log=False,
                timeout_graceful_shutdown=5,
                # The parser and the bounds on what a client can make us hold
                # (docs/security.md).
                **uvicorn_options(run_settings.server),
            )
        )
        # Port 0 picks a free port: this line says which (the tests read it).
        shown = f"[{host}]" if ":" in host else host
        bound = sock.getsockname()[1]
        log.info("listening on http://%s:%d; the catalog is at /entities.yaml", shown, bound)
        # uvicorn raises the signal that stopped it again once it has shut down: Ctrl-C then
        # arrives here as KeyboardInterrupt, as uvicorn.run would also swallow it.
        with suppress(KeyboardInterrupt):
            server.run(sockets=[sock])
    # uvicorn's own exit status for an app whose start-up failed.
    return 0 if server.started else 3


async def _read_once(settings: Settings, factory: ReaderFactory) -> Snapshot | None:
    from .snapshot.store import SnapshotStore

    async with factory(None) as reader:
        store = SnapshotStore(reader, settings.catalog, settings.refresh, posture=settings.posture)
        outcome = await store.refresh()
        if store.snapshot is None or not store.snapshot.complete:
            log.error("cannot render the catalog: %s", outcome.error)
            return None
        return store.snapshot


def _render(settings: Settings, args: argparse.Namespace) -> int:
    with _reader_factory(settings, args.demo) as (run_settings, factory):
        snapshot = asyncio.run(_read_once(run_settings, factory))
    if snapshot is None:
        return 1
    body = snapshot.yaml.body if args.format == "yaml" else snapshot.json.get().body
    sys.stdout.buffer.write(body)
    sys.stdout.buffer.flush()
    return 0


def _known_regions() -> KnownRegions:
    from .aws.partitions import known_regions

    return known_regions()


def _diff(settings: Settings, args: argparse.Namespace) -> int:
    from .catalog.diff import diff_catalogs
    from .catalog.oldfile import fetch_catalog, read_catalog_file
    from .errors import CatalogUnreadable

    try:
        old = read_catalog_file(args.old)
        new = fetch_catalog(args.url) if args.url else None
    except CatalogUnreadable as exc:
        return usage_error(str(exc))
    if new is None:
        with _reader_factory(settings, args.demo) as (run_settings, factory):
            snapshot = asyncio.run(_read_once(run_settings, factory))
        if snapshot is None:
            return 2
        new = [json.loads(item.json_document) for item in snapshot.entities]
    result = diff_catalogs(old, new)
    if args.format == "json":
        sys.stdout.write(json.dumps(result.as_dict(), indent=2) + "\n")
    else:
        sys.stdout.write("\n".join(result.lines()) + "\n")
    # Like diff(1): 0 when equal, 1 when they differ.
    return 0 if result.empty else 1


def _version() -> str:
    """The installed distribution's version; a source tree that was never installed has its own."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("ecr-catalog")
    except PackageNotFoundError:
        from . import __version__

        return __version__


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ecr-catalog", description="AWS ECR as Backstage catalog entities."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    commands = parser.add_subparsers(dest="command", required=True)

    def with_config(sub: argparse.ArgumentParser) -> None:
        sub.add_argument(
            "--config", type=Path, help="YAML config file (default: $ECR_CATALOG_CONFIG)"
        )
        sub.add_argument(
            "--demo", action="store_true", help="read an embedded, seeded moto ECR instead of AWS"
        )

    add_tool_commands(commands)
    serve = commands.add_parser("serve", help="serve the catalog over HTTP")
    with_config(serve)
    serve.add_argument("--host", help="listen address (default: server.host)")
    serve.add_argument("--port", type=int, help="listen port (default: server.port)")

    render = commands.add_parser("render", help="print the catalog once and exit")
    with_config(render)
    render.add_argument("--format", choices=("yaml", "json"), default="yaml")

    diff = commands.add_parser(
        "diff",
        help="compare the live catalog with an old committed catalog file; exit 1 if they differ",
    )
    diff.add_argument("old", type=Path, help="the old file, e.g. catalog/ecr-registry.yaml")
    with_config(diff)
    diff.add_argument(
        "--url", help="read a running service (its /entities.yaml) instead of reading ECR"
    )
    diff.add_argument("--format", choices=("text", "json"), default="text")

    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script."""
    args = _parser().parse_args(argv)
    configure_logging("text")
    tool = run_tool(args)
    if tool is not None:
        return tool
    from .config import load_settings
    from .errors import ConfigError

    try:
        # The demo reads its own embedded ECR, `diff --url` and `names-from` no ECR at all.
        reads_aws = args.command != "names-from" and not (
            getattr(args, "demo", False) or getattr(args, "url", None)
        )
        settings = load_settings(args.config, known_regions=_known_regions() if reads_aws else None)
        if args.command == "names-from":
            # Reads no AWS: without targets, every repository the old file names is taken.
            return names_from_command(settings, args)
        if reads_aws:
            settings.aws.resolved_targets()
    except ConfigError as exc:
        return usage_error(str(exc))
    configure_logging(settings.log_format)
    if args.command == "serve":
        try:
            return _serve(settings, args)
        except ConfigError as exc:
            return usage_error(str(exc))
    if args.command == "diff":
        return _diff(settings, args)
    return _render(settings, args)


if __name__ == "__main__":
    sys.exit(main())
