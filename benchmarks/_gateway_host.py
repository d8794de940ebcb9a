"""``python -m benchmarks._gateway_host --config FILE --db FILE``: switchman's gateway.

What ``switchman serve`` runs (router, SQLite store, hypercorn gateway in one
trio process; the store keeps ``[server] job_retention_count`` and
``job_retention_days`` from the config), on a free loopback port printed as
``http://127.0.0.1:PORT`` once it listens. SIGTERM or SIGINT stops it
gracefully. API keys come from the environment as usual. ``--prune-every S``
also prunes the job store every S seconds (the gateway itself prunes every few
minutes, longer than a benchmark runs; the memory scenario uses it so the store
is held at its retention limit while memory is measured). ``--profile FILE``
writes a pyinstrument HTML profile of the whole run (pyinstrument must be
installed).
"""

from __future__ import annotations

import argparse
import signal
import sys

import trio

from switchman import load_config, open_router
from switchman.gateway import serve_gateway
from switchman.store import JobStore, open_store


async def _wait_for_signal() -> None:
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for _ in signals:
            return


async def _prune_every(store: JobStore, period_s: float) -> None:
    """Prune ``store`` every ``period_s`` until cancelled (with the gateway's nursery)."""
    while True:
        await trio.sleep(period_s)
        await store.prune()


async def serve(config_path: str, db: str, prune_every_s: float | None = None) -> None:
    """Serve until SIGINT or SIGTERM; the gateway shuts down gracefully, then the
    pruner (if any) is cancelled and the router and store close."""
    config = load_config(config_path)
    server = config.server
    async with (
        open_store(
            db,
            retention_count=server.job_retention_count,
            retention_days=server.job_retention_days,
        ) as store,
        open_router(config, store=store) as router,
        trio.open_nursery() as nursery,
    ):

        async def gateway(*, task_status: trio.TaskStatus[tuple[str, int]]) -> None:
            await serve_gateway(
                router,
                host="127.0.0.1",
                port=0,
                store=store,
                shutdown_trigger=_wait_for_signal,
                task_status=task_status,
            )
            nursery.cancel_scope.cancel()  # shut down: the pruner goes too

        if prune_every_s is not None:
            nursery.start_soon(_prune_every, store, prune_every_s)
        host, port = await nursery.start(gateway)
        print(f"switchman gateway on http://{host}:{port}", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks._gateway_host")
    parser.add_argument("--config", required=True)
    parser.add_argument("--db", required=True)
    parser.add_argument("--prune-every", type=float, help="prune the job store every S seconds")
    parser.add_argument("--profile", help="write a pyinstrument HTML profile here")
    args = parser.parse_args(argv)
    if args.profile:
        from pyinstrument import Profiler

        profiler = Profiler(interval=0.0005, async_mode="disabled")
        profiler.start()
        try:
            trio.run(serve, args.config, args.db, args.prune_every)
        finally:
            profiler.stop()
            with open(args.profile, "w", encoding="utf-8") as f:
                f.write(profiler.output_html())
        return 0
    trio.run(serve, args.config, args.db, args.prune_every)
    return 0


if __name__ == "__main__":
    sys.exit(main())
