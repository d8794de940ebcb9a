"""``switchman serve``: the router, the SQLite store and the gateway in one process.

SIGINT, SIGTERM and SIGHUP stop it gracefully: new calls are refused, in-flight calls
get the grace period, what is left is ended by the router and stored as failed with
what it did and cost, exit 0 (there is no reload: a changed configuration takes a
restart); a second signal ends the grace period there. A stop always ends: past its time
(``_Backstop``) the process exits with 1. Logs go to stderr, one line each
with time, level and logger, at ``--log-level`` (default ``$SWITCHMAN_LOG_LEVEL``, else
info).
"""

from __future__ import annotations

import argparse
import functools
import logging
import os
import signal
import sys
import time
import tomllib
from typing import Any

import attrs
import trio

from switchman._cli_args import url_host
from switchman._errors import ValidationError
from switchman._router import open_router
from switchman._version import __version__
from switchman.catalog import Config, load_config
from switchman.catalog._config import DISABLED_BY_CONFIG
from switchman.cli import DEFAULT_HOST, EXIT_OK, PORT_ENV, CliError, env_port
from switchman.gateway import InsecureBindError, check_bind, serve_gateway
from switchman.gateway._hypercorn import raise_file_limit
from switchman.gateway._outbox import Outboxes
from switchman.gateway._serve import RESPONSE_MARGIN_S
from switchman.store import StoreError, open_store
from switchman.store._db import MEMORY
from switchman.supervisor import SupervisorEscalation

#: the file ``serve`` reads without ``--config``, when the folder it runs in has one
DEFAULT_CONFIG = "switchman.toml"


def _config(args: argparse.Namespace) -> Config:
    """The configuration ``serve`` runs with (``args.config`` set to ``DEFAULT_CONFIG``
    when it was not given and the folder has one); a ``CliError`` (exit 2) for a file that
    is missing, unreadable or invalid, naming each mistake on its own line."""
    for flag, given in (("--config", args.config), ("--db", args.db)):
        if given is not None and not given.strip():  # (a script's unset variable)
            raise CliError(f"{flag}: the path is empty")
    if not args.config and os.path.lexists(DEFAULT_CONFIG):  # (a folder, a broken link:
        args.config = DEFAULT_CONFIG  # refused as such, not passed over for the defaults)
    try:
        config = load_config(args.config) if args.config else load_config(None)
    except FileNotFoundError:
        raise CliError(f"config file not found: {args.config}") from None
    except OSError as exc:  # a directory, no permission...
        raise CliError(f"cannot read config file {args.config}: {exc.strerror or exc}") from None
    except ValidationError as exc:
        raise CliError(invalid_config_message(args.config, exc)) from None
    server = config.server
    if args.db:  # (``--db=~/x.db`` reaches us with its ``~``: the shell expands only a word's)
        server = attrs.evolve(server, db=os.path.expanduser(args.db))
    if args.host is not None:
        server = attrs.evolve(server, host=args.host)
    if args.port is not None:
        server = attrs.evolve(server, port=args.port)
    elif os.environ.get(PORT_ENV, "").strip():
        # where the clients look for it (exported for them, the daemon went to 8265 and
        # every client of that shell found nothing)
        server = attrs.evolve(server, port=env_port())
    return attrs.evolve(config, server=server)


def invalid_config_message(path: str | None, exc: ValidationError) -> str:
    """``invalid configuration FILE:`` then ``  path: message`` per mistake; a TOML syntax
    error (reported under the file's own name) is ``  invalid TOML: ...``."""
    lines = [f"invalid configuration {path}:" if path else "invalid configuration:"]
    for field in exc.fields:
        where = "" if field.field in ("", path) else f"{field.field}: "
        lines.append(f"  {where}{field.message}")
    return "\n".join(lines)


#: how long a stop may take past the grace period and hypercorn's margin for open
#: responses, and after a second signal, before the process exits regardless
STOP_SLACK_S = 5.0
#: exit code of a stop that had to leave connections behind
EXIT_FORCED = 1
#: the router gave up (its supervisors' restarts came too fast): sysexits' EX_SOFTWARE
EXIT_GAVE_UP = 70
#: after a second signal, how long the jobs left have to be ended by the router and
#: stored with their results (what they were billed) before everything is cancelled
HURRY_S = 1.0


@attrs.define
class _Backstop:
    """The time by which a stopping server exits whatever still holds it: a connection
    whose client stopped reading keeps hypercorn in a shielded send that no cancel ends
    (a suspended ``switchman watch``, a dead peer behind a NAT)."""

    scope: trio.CancelScope = attrs.field(factory=lambda: trio.CancelScope(shield=True))
    done: bool = False
    #: what the gateway's websockets owe their clients: told before the exit
    outboxes: Outboxes = attrs.field(factory=Outboxes)

    def by(self, when: float) -> None:
        self.scope.deadline = min(self.scope.deadline, when)

    async def run(self) -> None:
        with self.scope:
            await trio.sleep_forever()
        if not self.done:
            print(
                "switchman: still stopping past its time (a client is not taking what it"
                " was sent, or too slowly): exiting now",
                file=sys.stderr,
                flush=True,
            )
            self.outboxes.tell_unsent()  # (results that stay in GET /result)
            logging.shutdown()
            os._exit(EXIT_FORCED)


async def _watch_signals(
    stop: trio.Event,
    hurry: trio.Event,
    everything: trio.CancelScope,
    backstop: _Backstop,
    within: float,
    *,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """First SIGINT/SIGTERM/SIGHUP: graceful stop, which must end ``within`` seconds. A
    second one: stop now, without the rest of the grace: the jobs left are ended and
    stored with their results (``hurry``), and everything is cancelled ``HURRY_S`` later
    at the latest; a third cancels at once. Past ``STOP_SLACK_S`` after the second, or
    ``within`` after the first, the process exits (``_Backstop``).

    The receiver stays open for the whole life of the server, so a signal never turns
    into a KeyboardInterrupt traceback."""
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM, signal.SIGHUP) as signals:
        task_status.started()
        async for signum in signals:
            name = signal.Signals(signum).name
            if not stop.is_set():
                print(
                    f"switchman: {name}: stopping (grace period running; again to stop now)",
                    file=sys.stderr,
                    flush=True,
                )
                backstop.by(trio.current_time() + within)
                stop.set()
            elif not hurry.is_set():
                print(f"switchman: {name}: stopping now", file=sys.stderr, flush=True)
                now = trio.current_time()
                backstop.by(now + STOP_SLACK_S)
                hurry.set()
                everything.deadline = min(everything.deadline, now + HURRY_S)
            else:
                everything.cancel()


async def run_server(
    config: Config, *, insecure: bool = False, config_path: str | None = None
) -> None:
    """Serve until SIGINT or SIGTERM; ``config_path``: the file ``config`` was read from,
    named as the daemon starts."""
    server = config.server
    stop = trio.Event()
    hurry = trio.Event()
    backstop = _Backstop()
    within = server.grace_s + RESPONSE_MARGIN_S + STOP_SLACK_S
    async with trio.open_nursery() as outer:
        outer.start_soon(backstop.run)
        await outer.start(_watch_signals, stop, hurry, outer.cancel_scope, backstop, within)
        try:
            await _serve(
                config, stop, hurry, backstop.outboxes, insecure=insecure, config_path=config_path
            )
        finally:  # stopped in time (or failed to start): the backstop has nothing to do
            backstop.done = True
            backstop.scope.cancel()
        outer.cancel_scope.cancel()  # served and shut down: stop watching signals


async def _serve(
    config: Config,
    stop: trio.Event,
    hurry: trio.Event,
    outboxes: Outboxes,
    *,
    insecure: bool,
    config_path: str | None = None,
) -> None:
    server = config.server
    async with (
        open_store(
            server.db,
            retention_count=server.job_retention_count,
            retention_days=server.job_retention_days,
            retention_mb=server.job_retention_mb,
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
                end_grace=hurry.wait,
                outboxes=outboxes,
                task_status=task_status,
            )
        )
        mode = " on the built-in simulator (answers are simulated)" if config.simulated else ""
        enabled = [name for name, p in config.providers.items() if p.disabled_reason is None]
        url = f"http://{url_host(host)}:{port}"
        watch = "" if host == DEFAULT_HOST else f" --host {host}"
        kept = sum((await store.job_counts()).values())
        keys = [f"{k.handle} (admin)" if k.admin else k.handle for k in config.keys]
        print(
            f"switchman {__version__} serving on {url}{mode}\n"
            f"  providers: {', '.join(enabled) or 'none'}\n"
            f"  OpenAI-compatible base URL: {url}/v1\n"
            f"  live traces: switchman watch{watch} --port {port}\n"
            + _where_lines(config_path, store.path, store.created, kept)
            + f"\n  gateway keys: {', '.join(keys) or 'none (open to any caller that reaches it)'}",
            flush=True,
        )


def _where_lines(config_path: str | None, store: str, created: bool, kept: int) -> str:
    """The start's lines naming the config file and the store, each by its whole path,
    and whether the store is new."""
    config = os.path.abspath(config_path) if config_path else "none (the defaults)"
    if store == MEMORY:
        said = "in memory: no job or spend is kept after a stop"
    else:
        said = (
            "new: no jobs, budgets count spend from zero"
            if created
            else f"{kept} job{'' if kept == 1 else 's'}"
        )
        store = os.path.abspath(store)
    return f"  config: {config}\n  store: {store} ({said})"


#: where ``serve`` reads its log level when ``--log-level`` is not given
LOG_LEVEL_ENV = "SWITCHMAN_LOG_LEVEL"
_LEVELS = ("debug", "info", "warning", "error")


def log_level(level: str | None) -> str:
    """The level to log at: ``level`` (``--log-level``), else ``$SWITCHMAN_LOG_LEVEL``
    (white space around it dropped, any case), else info; a ``CliError`` naming the
    variable for anything else."""
    chosen = (level or os.environ.get(LOG_LEVEL_ENV, "").strip() or "info").lower()
    if chosen not in _LEVELS:
        raise CliError(f"{LOG_LEVEL_ENV}={chosen!r}: use one of {', '.join(_LEVELS)}")
    return chosen


def setup_logging(level: str | None) -> None:
    """Log to stderr at ``log_level(level)``, one line each: time (UTC, ISO 8601 with its
    ``Z``, as every time switchman shows), level, logger, message. httpx and httpcore stay
    at warning: a line per upstream request is noise (switchman logs what goes wrong with
    them itself)."""
    chosen = log_level(level)
    logging.basicConfig(
        level=chosen.upper(),
        format="%(asctime)s.%(msecs)03dZ %(levelname)s %(name)s: %(message)s",
        datefmt="%Y-%m-%dT%H:%M:%S",
        stream=sys.stderr,
        force=True,
    )
    for handler in logging.getLogger().handlers:
        if handler.formatter is not None:  # (local time, with no zone, by default)
            handler.formatter.converter = time.gmtime
    for noisy in ("httpx", "httpcore", "hpack"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLogger().level))


def named_providers(path: str, config: Config) -> list[str]:
    """The providers the configuration file at ``path`` names, in its order: its
    ``[providers.X]`` tables, its models' providers, and those of the models its routes
    chain (a catalog model's provider too). The file was read and checked already."""
    with open(path, "rb") as f:
        data = tomllib.load(f)
    tables = data.get("providers")
    names = list(tables) if isinstance(tables, dict) else []
    models = data.get("models")
    for m in models if isinstance(models, list) else ():
        if isinstance(m, dict) and isinstance(m.get("provider"), str):
            names.append(m["provider"])
    routes = data.get("routes")  # the file's own (the catalog's name every provider)
    for name in routes if isinstance(routes, dict) else ():
        chain = config.routes[name].chain if name in config.routes else ()
        names += [config.models[a].provider for a in chain if a in config.models]
    return [n for n in dict.fromkeys(names) if n in config.providers]


def _tell_out_of_service(path: str, config: Config) -> None:
    """Warn of each provider the file names that cannot be used (its key unset or unfit,
    a local server not found), naming why: its models, and the routes through them, would
    otherwise fall to others, or to the simulator, without a word. One the file turns off
    (``enabled = false``) is meant, and not told."""
    log = logging.getLogger("switchman.serve")
    named = named_providers(path, config)
    out = {
        n: reason
        for n in named
        if (reason := config.providers[n].disabled_reason) not in (None, DISABLED_BY_CONFIG)
    }
    for name, reason in out.items():
        log.warning("provider %s, which %s names, is out of service: %s", name, path, reason)
    for name in named:
        provider = config.providers[name]
        if provider.disabled_reason is not None or provider.kind in ("sim", "ollama"):
            continue  # (an Ollama server's pulled models are found at start: told then)
        if not any(m.provider == name for m in config.models.values()):  # (off: meant)
            log.warning(
                'provider %s, which %s names, serves no model: add [[models]] with provider = "%s"',
                name,
                path,
                name,
            )
    if config.simulated:
        named_unset = [
            var
            for n in out
            if (var := config.providers[n].api_key_env) and out[n].startswith("missing API key")
        ]
        unset = named_unset or sorted(
            {
                p.api_key_env
                for p in config.providers.values()
                if p.api_key_env and (p.disabled_reason or "").startswith("missing API key")
            }
        )
        log.warning(
            "%s has its key set (%s): serving the built-in simulator, whose answers are simulated",
            f"no provider of {path}" if named_unset else "no provider",
            ", ".join(unset[:4]) + (", ..." if len(unset) > 4 else ""),
        )


def serve(args: argparse.Namespace) -> int:
    setup_logging(getattr(args, "log_level", None))
    config = _config(args)
    try:  # before anything starts: nothing to stop
        check_bind(config.server.host, has_keys=bool(config.keys), insecure=args.insecure)
    except InsecureBindError as exc:
        raise CliError(str(exc)) from None
    if args.config:
        _tell_out_of_service(args.config, config)
    raise_file_limit()  # (the daemon's clients and its providers' connections are files)
    # the refusal is raised after the ``except*`` clauses, not inside one: CPython 3.11.0
    # to 3.11.3 (Debian 12's python3 is 3.11.2) wrap an exception raised there in an
    # ExceptionGroup, a traceback and exit 1 instead of ``switchman: ...`` and exit 2
    refused: CliError | None = None
    try:
        trio.run(
            functools.partial(run_server, config, insecure=args.insecure, config_path=args.config)
        )
    except* InsecureBindError as group:
        refused = refused or CliError(str(_first_leaf(group)))
    except* StoreError as group:  # the --db file is in use, not SQLite, or read-only
        refused = refused or CliError(str(_first_leaf(group)))
    except* OSError as group:  # e.g. the port is taken
        refused = refused or CliError(
            f"cannot serve on {url_host(config.server.host)}:{config.server.port}: "
            f"{_first_leaf(group)}"
        )
    except* SupervisorEscalation as group:  # a part of the router kept crashing (a bug)
        refused = refused or CliError(
            f"the router gave up, the daemon stops: {_chain(_first_leaf(group))}; the calls"
            " in flight were stored failed (a service manager should start it again)",
            exit_code=EXIT_GAVE_UP,
        )
    if refused is not None:
        raise refused
    return EXIT_OK


def _chain(exc: BaseException) -> str:
    """An escalation and the causes under it, outermost first, to the crash itself."""
    said = [str(exc)]
    cause = exc.__cause__
    while cause is not None and len(said) < 8:
        if isinstance(cause, BaseExceptionGroup):
            cause = _first_leaf(cause)
            continue
        said.append(str(cause) if isinstance(cause, SupervisorEscalation) else repr(cause))
        cause = cause.__cause__
    return ", after: ".join(said)


def _first_leaf(group: BaseExceptionGroup[Any]) -> BaseException:
    """The first exception that is not a group (nurseries nest them)."""
    exc: BaseException = group
    while isinstance(exc, BaseExceptionGroup):
        exc = exc.exceptions[0]
    return exc
