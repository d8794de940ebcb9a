"""Clients that ignore ``retry-after``: ``python -m benchmarks.flood [--connections 50,400]``.

switchman's gateway in its own process (``router.capacity`` 4, so at most 16 jobs in
flight, and a simulated model that answers at once: the router's slots and the CPU are
the limits) takes ``POST /call?wait=30`` from C connections whose clients send again as
soon as they have an answer, whatever it is: a 503 ``overloaded`` is sent again at once,
its ``retry-after`` ignored, and a connection the gateway closes is opened again. In a
window of S seconds after a warm-up, for each C: the answers (200s: the goodput), the
refusals (503s), and the gateway's CPU per answer.

The baseline, in the same run, is the first C (few connections, the gateway's peak
goodput); each row after it says how much of that a flood of C connections leaves
(``of peak``). The load generator is one trio process beside the gateway: both share
the machine's cores, as any load test on one machine does.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import trio

from benchmarks._loadgen import LoadResult, Target, closed_loop
from benchmarks._procs import switchman_gateway
from benchmarks._util import load_average, markdown_table, percentile, source_commit

CONFIG = """
[router]
capacity = 4

[server]
grace_s = 1.0

[[models]]
alias = "zero"
provider = "sim"
model_id = "zero"
input_per_mtok = 1.0
output_per_mtok = 4.0
"""
BODY = json.dumps({"prompt": "hi", "model": "zero"}).encode()


def _row(result: LoadResult, cpu_s: float | None, peak: float | None) -> dict[str, Any]:
    window = result.duration_s
    refused = result.error_kinds.get("http_503", 0)
    other = result.errors - refused
    goodput = result.ok / window
    return {
        "connections": result.concurrency,
        "answers_per_s": round(goodput, 1),
        "of_peak": None if not peak else round(goodput / peak, 3),
        "refusals_per_s": round(refused / window, 1),
        "other_errors": other,
        "p50_ms": round(percentile(result.latencies, 50) * 1000.0, 1) if result.latencies else None,
        "gateway_cpu_ms_per_answer": round(cpu_s / result.ok * 1000.0, 2)
        if cpu_s is not None and result.ok
        else None,
    }


async def _flood(target: Target, connections: list[int], seconds: float, cpu: Any) -> list[Any]:
    rows: list[dict[str, Any]] = []
    peak: float | None = None
    for c in connections:
        result = await closed_loop(
            target,
            BODY,
            concurrency=c,
            duration_s=seconds,
            warmup_s=2.0,
            warmup_round_trips=1.0,
            max_warmup_s=20.0,
            timeout_s=60.0,
            sample=cpu,
        )
        spent = None if result.sampled is None else result.sampled[1] - result.sampled[0]
        row = _row(result, spent, peak)
        if peak is None:
            peak = row["answers_per_s"]
            row["of_peak"] = 1.0
        rows.append(row)
        print(json.dumps(row), flush=True)
        await trio.sleep(2.0)  # (the jobs of the flood end before the next)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.flood")
    parser.add_argument("--seconds", type=float, default=15.0, help="each window (15)")
    parser.add_argument(
        "--connections", default="50,400,1000", help="C of each flood, the baseline first"
    )
    args = parser.parse_args(argv)
    connections = [int(c) for c in args.connections.split(",")]
    print(f"load average at start {load_average():.2f}; code at {source_commit()}")
    env = {k: "" for k in os.environ if k.endswith("_API_KEY")}  # (the simulator alone)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        config = work / "flood.toml"
        config.write_text(CONFIG)
        with switchman_gateway(work, config, env=env) as gw:
            target = Target(name="switchman", host="127.0.0.1", port=gw.port, path="/call?wait=30")
            rows = trio.run(_flood, target, connections, args.seconds, gw.cpu_seconds)
    print(markdown_table(list(rows[0]), [list(r.values()) for r in rows]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
