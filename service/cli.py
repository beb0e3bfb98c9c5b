"""The `ecr-catalog` command: serve, render once, or write the OpenAPI spec."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import yaml
from pydantic import ValidationError

from .app import ReaderFactory, create_app
from .config import ConfigError, Settings, TargetSettings, load_settings
from .ecr import AwsEcrReader, StaticCredentials
from .logs import configure_logging
from .snapshot import SnapshotStore

__all__ = ["main", "openapi_yaml"]

log = logging.getLogger("service")


def openapi_yaml() -> str:
    """The app's OpenAPI document as YAML, exactly as committed in openapi/openapi.yaml."""
    spec = create_app(Settings()).openapi()
    return yaml.safe_dump(spec, sort_keys=False, allow_unicode=True, width=100)


@contextmanager
def _reader_factory(settings: Settings, demo: bool) -> Iterator[tuple[Settings, ReaderFactory]]:
    """The settings to run with and how to open the reader; with ``demo``, a seeded moto."""
    if not demo:
        yield settings, (lambda observer: AwsEcrReader.open(settings, observer=observer))
        return
    from .demo import DEMO_ACCOUNT, DEMO_CREDENTIALS, DEMO_REGIONS, running_demo_ecr

    with running_demo_ecr() as url:
        demo_settings = settings.model_copy(
            update={
                "aws": settings.aws.model_copy(
                    update={
                        "endpoint_url": url,
                        "targets": [
                            TargetSettings(regions=list(DEMO_REGIONS), account_id=DEMO_ACCOUNT)
                        ],
                    }
                )
            }
        )
        credentials = StaticCredentials(*DEMO_CREDENTIALS)
        yield (
            demo_settings,
            (lambda observer: AwsEcrReader.open(demo_settings, credentials, observer)),
        )


def _serve(settings: Settings, args: argparse.Namespace) -> int:
    import uvicorn

    host = args.host or settings.server.host
    port = args.port if args.port is not None else settings.server.port
    with _reader_factory(settings, args.demo) as (run_settings, factory):
        app = create_app(run_settings, factory)
        log.info("serving the catalog on http://%s:%d/entities.yaml", host, port)
        uvicorn.run(
            app,
            host=host,
            port=port,
            log_config=None,
            access_log=False,
            # Bounds what a client can make the server hold (see README, "Security model").
            h11_max_incomplete_event_size=16 * 1024,
            timeout_graceful_shutdown=5,
        )
    return 0


async def _render_once(settings: Settings, factory: ReaderFactory, fmt: str) -> bytes | None:
    async with factory(None) as reader:
        store = SnapshotStore(reader, settings.catalog, settings.refresh)
        outcome = await store.refresh()
        if store.snapshot is None or not store.snapshot.complete:
            log.error("cannot render the catalog: %s", outcome.error)
            return None
        return store.snapshot.yaml.body if fmt == "yaml" else store.snapshot.json.get().body


def _render(settings: Settings, args: argparse.Namespace) -> int:
    with _reader_factory(settings, args.demo) as (run_settings, factory):
        body = asyncio.run(_render_once(run_settings, factory, args.format))
    if body is None:
        return 1
    sys.stdout.buffer.write(body)
    sys.stdout.buffer.flush()
    return 0


def _openapi(args: argparse.Namespace) -> int:
    text = openapi_yaml()
    if args.output == "-":
        sys.stdout.write(text)
    else:
        Path(args.output).write_text(text, encoding="utf-8")
    return 0


def _demo_seed(args: argparse.Namespace) -> int:
    from .demo import demo_repositories, seed_registry

    seed_registry(args.endpoint_url, demo_repositories())
    log.info("seeded the demo registry at %s", args.endpoint_url)
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ecr-catalog", description="AWS ECR as Backstage catalog entities."
    )
    commands = parser.add_subparsers(dest="command", required=True)

    def with_config(sub: argparse.ArgumentParser) -> None:
        sub.add_argument(
            "--config", type=Path, help="YAML config file (default: $ECR_CATALOG_CONFIG)"
        )
        sub.add_argument(
            "--demo", action="store_true", help="read an embedded, seeded moto ECR instead of AWS"
        )

    serve = commands.add_parser("serve", help="serve the catalog over HTTP")
    with_config(serve)
    serve.add_argument("--host", help="listen address (default: server.host)")
    serve.add_argument("--port", type=int, help="listen port (default: server.port)")

    render = commands.add_parser("render", help="print the catalog once and exit")
    with_config(render)
    render.add_argument("--format", choices=("yaml", "json"), default="yaml")

    openapi = commands.add_parser("openapi", help="write the OpenAPI spec")
    openapi.add_argument(
        "--output", default="openapi/openapi.yaml", help="file to write, or - for stdout"
    )
    seed = commands.add_parser(
        "demo-seed", help="create the demo repositories in an ECR endpoint such as a moto server"
    )
    seed.add_argument("--endpoint-url", required=True, help="e.g. http://moto:5000")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script."""
    args = _parser().parse_args(argv)
    configure_logging("text")
    if args.command == "openapi":
        return _openapi(args)
    if args.command == "demo-seed":
        return _demo_seed(args)
    try:
        settings = load_settings(args.config)
        if not args.demo:
            settings.aws.resolved_targets()
    except ConfigError as exc:
        print(f"ecr-catalog: {exc}", file=sys.stderr)
        return 2
    except ValidationError as exc:
        print(f"ecr-catalog: invalid configuration:\n{exc}", file=sys.stderr)
        return 2
    configure_logging(settings.log_format)
    if args.command == "serve":
        return _serve(settings, args)
    return _render(settings, args)


if __name__ == "__main__":
    sys.exit(main())
