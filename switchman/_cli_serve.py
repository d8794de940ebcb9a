"""``switchman serve``: the router, the SQLite store and the gateway in one process.

SIGINT/SIGTERM stop it gracefully: the gateway stops accepting, in-flight calls
get the grace period, what is left is cancelled and stored as failed, exit 0.
"""

from __future__ import annotations

import argparse
import functools
import signal
import sys
from typing import Any

import attrs
import trio

from switchman._errors import ValidationError
from switchman._router import open_router
from switchman._version import __version__
from switchman.catalog import Config, load_config
from switchman.cli import EXIT_OK, CliError
from switchman.gateway import InsecureBindError, serve_gateway
from switchman.store import StoreError, open_store


def _config(args: argparse.Namespace) -> Config:
    """The configuration ``serve`` runs with; a ``CliError`` (exit 2) for a file that is
    missing, unreadable or invalid, naming each mistake on its own line."""
    try:
        config = load_config(args.config) if args.config else load_config(None)
    except FileNotFoundError:
        raise CliError(f"config file not found: {args.config}") from None
    except OSError as exc:  # a directory, no permission...
        raise CliError(f"cannot read config file {args.config}: {exc.strerror or exc}") from None
    except ValidationError as exc:
        raise CliError(invalid_config_message(args.config, exc)) from None
    server = config.server
    if args.db:
        server = attrs.evolve(server, db=args.db)
    if args.host is not None:
        server = attrs.evolve(server, host=args.host)
    if args.port is not None:
        server = attrs.evolve(server, port=args.port)
    return attrs.evolve(config, server=server)


def invalid_config_message(path: str | None, exc: ValidationError) -> str:
    """``invalid configuration FILE:`` then ``  path: message`` per mistake; a TOML syntax
    error (reported under the file's own name) is ``  invalid TOML: ...``."""
    lines = [f"invalid configuration {path}:" if path else "invalid configuration:"]
    for field in exc.fields:
        where = "" if field.field in ("", path) else f"{field.field}: "
        lines.append(f"  {where}{field.message}")
    return "\n".join(lines)


async def _watch_signals(
    stop: trio.Event,
    everything: trio.CancelScope,
    *,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """First SIGINT/SIGTERM: graceful stop. A second one: stop now, without the grace.

    The receiver stays open for the whole life of the server, so a signal never turns
    into a KeyboardInterrupt traceback."""
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        task_status.started()
        async for signum in signals:
            name = signal.Signals(signum).name
            if not stop.is_set():
                print(
                    f"switchman: {name}: stopping (grace period running; again to stop now)",
                    file=sys.stderr,
                    flush=True,
                )
                stop.set()
            else:
                print(f"switchman: {name}: stopping now", file=sys.stderr, flush=True)
                everything.cancel()


async def run_server(config: Config, *, insecure: bool = False) -> None:
    """Serve until SIGINT or SIGTERM."""
    server = config.server
    stop = trio.Event()
    async with trio.open_nursery() as outer:
        await outer.start(_watch_signals, stop, outer.cancel_scope)
        async with (
            open_store(
                server.db,
                retention_count=server.job_retention_count,
                retention_days=server.job_retention_days,
            ) as store,
            open_router(config, store=store) as router,
            trio.open_nursery() as nursery,
        ):
            host, port = await nursery.start(
                lambda task_status: serve_gateway(
                    router,
                    host=server.host,
                    port=server.port,
                    insecure=insecure,
                    store=store,
                    shutdown_trigger=stop.wait,
                    task_status=task_status,
                )
            )
            mode = " on the built-in simulator (answers are simulated)" if config.simulated else ""
            enabled = [name for name, p in config.providers.items() if p.disabled_reason is None]
            print(
                f"switchman {__version__} serving on http://{host}:{port}{mode}\n"
                f"  providers: {', '.join(enabled) or 'none'}\n"
                f"  OpenAI-compatible base URL: http://{host}:{port}/v1\n"
                f"  live traces: switchman watch --port {port}",
                flush=True,
            )
        outer.cancel_scope.cancel()  # served and shut down: stop watching signals


def serve(args: argparse.Namespace) -> int:
    config = _config(args)
    try:
        trio.run(functools.partial(run_server, config, insecure=args.insecure))
    except* InsecureBindError as group:
        raise CliError(str(_first_leaf(group))) from None
    except* StoreError as group:  # the --db file is in use, not SQLite, or read-only
        raise CliError(str(_first_leaf(group))) from None
    except* OSError as group:  # e.g. the port is taken
        raise CliError(
            f"cannot serve on {config.server.host}:{config.server.port}: {_first_leaf(group)}"
        ) from None
    return EXIT_OK


def _first_leaf(group: BaseExceptionGroup[Any]) -> BaseException:
    """The first exception that is not a group (nurseries nest them)."""
    exc: BaseException = group
    while isinstance(exc, BaseExceptionGroup):
        exc = exc.exceptions[0]
    return exc
