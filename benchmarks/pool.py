"""Connection pools side by side: ``python -m benchmarks.pool [--requests N]``.

The provider actors' HTTP clients (``switchman.adapters.make_client``) run on
``LeanPool``, httpcore's pool with its per-request bookkeeping done lazily; the baseline
is httpx's own client over httpcore's ``AsyncConnectionPool``. Both send the same
non-streamed chat completion to the benchmarks' upstream (another process), at several
concurrencies, in alternated rounds within one run; printed: CPU microseconds of this
process per request (the pool's work, httpx's and trio's; the upstream's is not in it)
and requests per second, the median of the rounds.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import trio

from benchmarks._configs import KEY_VALUE
from benchmarks._procs import upstream
from switchman.adapters._pool import LeanTransport

BODY = {"model": "healthy", "messages": [{"role": "user", "content": "hi"}], "stream": False}
CONCURRENCY = (8, 64, 256)


def clients(size: int) -> dict[str, httpx.AsyncClient]:
    limits = httpx.Limits(max_connections=size, max_keepalive_connections=size)
    return {
        "httpcore's pool (httpx default)": httpx.AsyncClient(limits=limits, timeout=60.0),
        "LeanPool (switchman)": httpx.AsyncClient(transport=LeanTransport(limits), timeout=60.0),
    }


async def load(
    client: httpx.AsyncClient, url: str, concurrency: int, requests: int
) -> tuple[float, float]:
    """CPU µs of this process per request, and requests per second."""
    headers = {"authorization": f"Bearer {KEY_VALUE}"}
    failed = 0

    async def worker(n: int) -> None:
        nonlocal failed
        for _ in range(n):
            response = await client.post(url, json=BODY, headers=headers)
            failed += response.status_code != 200

    cpu0, t0 = time.process_time(), time.perf_counter()
    async with trio.open_nursery() as nursery:
        for _ in range(concurrency):
            nursery.start_soon(worker, requests // concurrency)
    done = requests // concurrency * concurrency
    if failed:
        raise RuntimeError(f"{failed} of {done} requests failed")
    return (time.process_time() - cpu0) / done * 1e6, done / (time.perf_counter() - t0)


async def measure(base_url: str, requests: int, rounds: int) -> dict[int, dict[str, Any]]:
    url = base_url + "/v1/chat/completions"
    out: dict[int, dict[str, Any]] = {}
    for concurrency in CONCURRENCY:
        pools = clients(concurrency)
        samples: dict[str, list[tuple[float, float]]] = {name: [] for name in pools}
        try:
            for client in pools.values():  # warm-up: every connection made
                await load(client, url, concurrency, concurrency * 4)
            for i in range(rounds):
                order = list(pools.items())
                for name, client in order if i % 2 == 0 else reversed(order):
                    samples[name].append(await load(client, url, concurrency, requests))
        finally:
            for client in pools.values():
                await client.aclose()
        out[concurrency] = {
            name: {
                "cpu_us_per_request": statistics.median(s[0] for s in runs),
                "requests_per_s": statistics.median(s[1] for s in runs),
            }
            for name, runs in samples.items()
        }
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--requests", type=int, default=4096, help="per round and pool")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as workdir, upstream(Path(workdir)) as up:
        figures = trio.run(measure, up.base_url, args.requests, args.rounds)
    print(f"{args.requests} requests per round, {args.rounds} rounds, medians:")
    for concurrency, rows in figures.items():
        for name, row in rows.items():
            print(
                f"  c={concurrency:<4} {name:<32} {row['cpu_us_per_request']:7.1f} µs CPU"
                f" per request  {row['requests_per_s']:7.0f} requests/s"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
