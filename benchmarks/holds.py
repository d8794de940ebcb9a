"""What budget holds in flight cost other calls: ``python -m benchmarks.holds [--in-flight N]``.

An embedded router with a SQLite store (in a temporary folder) and a global daily budget,
so every attempt holds a reservation that the store saves before the attempt is sent (a
process killed outright then still counts it). ``N`` calls are sent at once to a slow
simulated model (their first token 6 s away), each holding one: timed, until the last of
them was sent, with the process's CPU. Then, while they hold, sequential probe calls to an
instant model are timed: their wall time, and the process's CPU per probe. The baseline,
in the same run, is the same probes with no call in flight; the two alternate, twice.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

import trio

import switchman
from benchmarks._util import percentile
from switchman.catalog import (
    BudgetsConfig,
    Config,
    ModelSpec,
    ProviderSpec,
    RouterConfig,
    SimProfile,
)
from switchman.store import open_store


def _config() -> Config:
    def model(alias: str, provider: str, profile: SimProfile) -> ModelSpec:
        return ModelSpec(
            alias=alias,
            provider=provider,
            model_id=alias,
            input_per_mtok=1.0,
            output_per_mtok=4.0,
            sim=profile,
        )

    return Config(
        providers={
            name: ProviderSpec(name=name, kind="sim", max_concurrency=4096)
            for name in ("sim", "slow_sim")
        },
        models={
            "slow": model("slow", "slow_sim", SimProfile(ttft_ms=6_000.0)),
            "instant": model("instant", "sim", SimProfile()),
        },
        budgets=BudgetsConfig(global_daily_usd=1_000.0),
        router=RouterConfig(capacity=8192),
        simulated=True,
    )


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _sent(router: switchman.Router) -> int:
    """Attempts the slow model's provider has been given (each held, its hold saved)."""
    return sum(p.in_flight for p in router.status().providers if p.name == "slow_sim")


async def measure(in_flight: int, probes: int) -> dict[str, float]:
    """With ``in_flight`` calls sent at once to the slow model: how long until all of them
    were sent (their holds saved), and the CPU of that, in ms; then probe calls' wall time
    (p50, p90, ms) and CPU each (ms) while those hold."""
    with tempfile.TemporaryDirectory() as folder:
        async with (
            open_store(Path(folder) / "holds.db") as store,
            switchman.open_router(_config(), store=store) as router,
            trio.open_nursery() as nursery,
        ):
            began, cpu = time.perf_counter(), _cpu_s()
            for _ in range(in_flight):
                nursery.start_soon(router.call, switchman.Call(prompt="wait", model="slow"))
            while _sent(router) < in_flight:  # noqa: ASYNC110 (no event says so: polled)
                await trio.sleep(0.005)
            burst, burst_cpu = time.perf_counter() - began, _cpu_s() - cpu
            walls: list[float] = []
            cpu = _cpu_s()
            for _ in range(probes):
                began = time.perf_counter()
                result = await router.call(switchman.Call(prompt="hi", model="instant"))
                walls.append(time.perf_counter() - began)
                if result.status != "complete":
                    raise RuntimeError(f"a probe failed: {result.errors}")
            cpu = _cpu_s() - cpu
            nursery.cancel_scope.cancel()
    return {
        "burst_ms": burst * 1e3,
        "burst_cpu_ms": burst_cpu * 1e3,
        "p50_ms": percentile(walls, 50) * 1e3,
        "p90_ms": percentile(walls, 90) * 1e3,
        "cpu_ms": cpu / probes * 1e3,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--in-flight", type=int, default=900, help="calls holding (default 900)")
    parser.add_argument("--probes", type=int, default=200, help="timed calls (default 200)")
    args = parser.parse_args()
    print(
        f"{'in flight':>10} {'all sent ms':>12} {'its CPU ms':>11}   probes: {'p50 ms':>7}"
        f" {'p90 ms':>7} {'CPU ms each':>12}"
    )
    for n in (0, args.in_flight, 0, args.in_flight):
        row = trio.run(measure, n, args.probes)
        print(
            f"{n:>10} {row['burst_ms']:>12.1f} {row['burst_cpu_ms']:>11.1f}           "
            f"{row['p50_ms']:>7.2f} {row['p90_ms']:>7.2f} {row['cpu_ms']:>12.2f}"
        )


if __name__ == "__main__":
    main()
