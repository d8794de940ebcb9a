"""``python -m benchmarks._gateway_host --config FILE --db FILE``: switchman's gateway.

What ``switchman serve`` runs (router, SQLite store, hypercorn gateway in one
trio process), on a free loopback port printed as ``http://127.0.0.1:PORT``
once it listens. SIGTERM or SIGINT stops it gracefully. API keys come from the
environment as usual. ``--profile FILE`` writes a pyinstrument HTML profile of
the whole run (pyinstrument must be installed).
"""

from __future__ import annotations

import argparse
import signal
import sys

import trio

from switchman import load_config, open_router
from switchman.gateway import serve_gateway
from switchman.store import open_store


async def _wait_for_signal() -> None:
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for _ in signals:
            return


async def serve(config_path: str, db: str) -> None:
    config = load_config(config_path)
    async with (
        open_store(db) as store,
        open_router(config, store=store) as router,
        trio.open_nursery() as nursery,
    ):
        host, port = await nursery.start(
            lambda task_status: serve_gateway(
                router,
                host="127.0.0.1",
                port=0,
                store=store,
                shutdown_trigger=_wait_for_signal,
                task_status=task_status,
            )
        )
        print(f"switchman gateway on http://{host}:{port}", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks._gateway_host")
    parser.add_argument("--config", required=True)
    parser.add_argument("--db", required=True)
    parser.add_argument("--profile", help="write a pyinstrument HTML profile here")
    args = parser.parse_args(argv)
    if args.profile:
        from pyinstrument import Profiler

        profiler = Profiler(interval=0.0005, async_mode="disabled")
        profiler.start()
        try:
            trio.run(serve, args.config, args.db)
        finally:
            profiler.stop()
            with open(args.profile, "w", encoding="utf-8") as f:
                f.write(profiler.output_html())
        return 0
    trio.run(serve, args.config, args.db)
    return 0


if __name__ == "__main__":
    sys.exit(main())
