"""Scenario (a): in-process overhead, sequential calls to the fake upstream.

In this process, one trio run holds both a plain ``httpx.AsyncClient`` (the
direct baseline) and an embedded switchman router; they take turns in
interleaved blocks, so drift in machine load hits both alike. Per block: wall
latency of each call and the process CPU time (``time.process_time``) of the
block. LiteLLM's ``Router`` is measured the same way in its own process and
virtual environment (``benchmarks._litellm``), against its own direct httpx
baseline on asyncio.

Added latency = router percentile - direct percentile (same process, same
upstream, same percentile); CPU per call = process CPU seconds / calls.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import trio

import switchman
from benchmarks import _litellm
from benchmarks._configs import (
    ALIAS,
    KEY_ENV,
    KEY_VALUE,
    litellm_model_list,
    write_switchman_config,
)
from benchmarks._procs import upstream
from benchmarks._suite import Context, Section
from benchmarks._util import fmt, fmt_spread, markdown_table, spread, summary_ms

PROMPT = "Say something short."


class Series:
    """Latencies (s) of every call, failed ones included, the failures among them, and
    CPU seconds, accumulated over blocks."""

    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.cpu_s = 0.0
        self.failures = 0

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = summary_ms(self.latencies)
        calls = len(self.latencies)  # every call made, failed ones included
        out["calls"] = calls
        out["failures"] = self.failures
        out["cpu_us_per_call"] = self.cpu_s / calls * 1e6 if calls else float("nan")
        return out


async def _block(
    series: Series, one: Callable[[], Awaitable[bool]], n: int, *, record: bool
) -> None:
    cpu0 = time.process_time()
    latencies: list[float] = []
    failures = 0
    for _ in range(n):
        t0 = time.perf_counter()
        ok = await one()
        latencies.append(time.perf_counter() - t0)
        failures += not ok
    if record:
        series.cpu_s += time.process_time() - cpu0
        series.latencies.extend(latencies)
        series.failures += failures


def direct_call(client: httpx.AsyncClient, url: str, model: str) -> Callable[[], Awaitable[bool]]:
    body = {"model": model, "messages": [{"role": "user", "content": PROMPT}]}
    headers = {"authorization": f"Bearer {KEY_VALUE}"}

    async def one() -> bool:
        response = await client.post(url, json=body, headers=headers)
        data = response.json()
        return response.status_code == 200 and bool(data["choices"][0]["message"]["content"])

    return one


def router_call(router: switchman.Router, model: str) -> Callable[[], Awaitable[bool]]:
    call = switchman.Call(prompt=PROMPT, model=model)

    async def one() -> bool:
        result = await router.call(call)
        return result.status == "complete" and bool(result.answer)

    return one


async def measure(
    upstream_url: str,
    config: switchman.Config,
    *,
    calls: int,
    warmup: int,
    rounds: int = 5,
    model_id: str = "healthy",
) -> dict[str, dict[str, Any]]:
    """Direct httpx vs embedded switchman, ``calls`` each in ``rounds`` interleaved blocks
    after ``warmup`` uncounted calls each. Returns each one's summary."""
    direct, routed = Series(), Series()
    per_block = max(1, calls // rounds)
    async with (
        httpx.AsyncClient() as client,
        switchman.open_router(config, env={KEY_ENV: KEY_VALUE}) as router,
    ):
        d = direct_call(client, f"{upstream_url}/v1/chat/completions", model_id)
        r = router_call(router, ALIAS)
        await _block(direct, d, warmup, record=False)
        await _block(routed, r, warmup, record=False)
        for _ in range(rounds):
            await _block(direct, d, per_block, record=True)
            await _block(routed, r, per_block, record=True)
    return {DIRECT_TRIO: direct.summary(), "switchman embedded": routed.summary()}


def run(
    upstream_url: str, config: switchman.Config, *, calls: int, warmup: int
) -> dict[str, dict[str, Any]]:
    """``measure`` in its own trio run."""
    result: dict[str, dict[str, Any]] = trio.run(
        lambda: measure(upstream_url, config, calls=calls, warmup=warmup)
    )
    return result


def added(rows: dict[str, dict[str, Any]], direct: str, system: str) -> dict[str, float]:
    """``system``'s latency minus ``direct``'s, at p50 and p99, in milliseconds."""
    return {
        "added_p50_ms": rows[system]["p50_ms"] - rows[direct]["p50_ms"],
        "added_p99_ms": rows[system]["p99_ms"] - rows[direct]["p99_ms"],
        "added_cpu_us_per_call": rows[system]["cpu_us_per_call"] - rows[direct]["cpu_us_per_call"],
    }


DIRECT_TRIO = "direct (httpx, trio)"
DIRECT_ASYNCIO = "direct (httpx, asyncio)"
PAIRS = ((DIRECT_TRIO, "switchman embedded"), (DIRECT_ASYNCIO, "LiteLLM Router"))


def _litellm_run(ctx: Context, base_url: str) -> dict[str, dict[str, Any]]:
    """One run of LiteLLM's side in its own process (its venv)."""
    assert ctx.litellm is not None
    p = ctx.profile
    spec = {
        "mode": "inproc",
        "upstream_url": base_url,
        "model_id": "healthy",
        "alias": ALIAS,
        "api_key": KEY_VALUE,
        "model_list": litellm_model_list(base_url, {ALIAS: "healthy"}),
        "prompt": PROMPT,
        "calls": p.inproc_calls,
        "warmup": p.inproc_warmup,
        "rounds": 5,
    }
    out: dict[str, dict[str, Any]] = _litellm.run_runner(
        ctx.litellm, spec, ctx.workdir / "ll", timeout_s=900
    )
    out.pop("_litellm_version", None)
    return out


def derive(rows: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """One run's added figures per system and, with both measured, the CPU ratios."""
    added_rows = {system: added(rows, direct, system) for direct, system in PAIRS if system in rows}
    out: dict[str, Any] = {"added": added_rows}
    sm, ll = added_rows.get("switchman embedded"), added_rows.get("LiteLLM Router")
    if sm and ll:
        out["cpu_ratio"] = (
            rows["LiteLLM Router"]["cpu_us_per_call"]
            / (rows["switchman embedded"]["cpu_us_per_call"])
        )
        out["added_cpu_ratio"] = ll["added_cpu_us_per_call"] / sm["added_cpu_us_per_call"]
    return out


def combine(runs: list[dict[str, dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    """Per system, the median over runs of each figure (calls and failures: the sum)."""
    out: dict[str, dict[str, Any]] = {}
    for system in runs[0]:
        present = [run[system] for run in runs if system in run]
        row: dict[str, Any] = {}
        for key, value in present[0].items():
            values = [r[key] for r in present]
            if key in ("calls", "failures", "n"):
                row[key] = sum(values)
            elif isinstance(value, int | float):
                row[key] = spread(values)["median"]
        out[system] = row
    return out


def run_section(ctx: Context) -> Section:
    """Scenario (a) for the suite: switchman here, LiteLLM in its venv, same upstream,
    in ``repeats`` runs that alternate which goes first."""
    p = ctx.profile
    runs: list[dict[str, dict[str, Any]]] = []
    notes: list[str] = []
    with upstream(ctx.workdir / "up") as up:
        _, config = write_switchman_config(ctx.workdir / "inproc", up.base_url, {ALIAS: "healthy"})
        litellm_ok = ctx.litellm is not None
        for i in range(p.repeats):
            rows: dict[str, dict[str, Any]] = {}
            order = ["switchman", "litellm"] if i % 2 == 0 else ["litellm", "switchman"]
            for side in order:
                if side == "switchman":
                    rows.update(
                        run(up.base_url, config, calls=p.inproc_calls, warmup=p.inproc_warmup)
                    )
                elif litellm_ok:
                    try:
                        rows.update(_litellm_run(ctx, up.base_url))
                    except Exception as exc:  # reported, not fatal
                        notes.append(f"LiteLLM Router could not run here: {exc}")
                        litellm_ok = False
            runs.append(rows)
            _print_run(i, p.repeats, rows)
        if ctx.litellm is None and ctx.litellm_note:
            notes.append(ctx.litellm_note)
    per_run = [derive(rows) for rows in runs]
    rows = combine(runs)
    extra = {
        system: {key: spread([d["added"][system][key] for d in per_run])["median"] for key in fig}
        for system, fig in per_run[0]["added"].items()
    }
    spreads = {
        "added_p50_ms": spread([d["added"]["switchman embedded"]["added_p50_ms"] for d in per_run]),
    }
    data: dict[str, Any] = {"rows": rows, "added": extra, "runs": runs, "notes": notes}
    if all("cpu_ratio" in d for d in per_run):
        spreads["cpu_ratio"] = spread([d["cpu_ratio"] for d in per_run])
        spreads["added_cpu_ratio"] = spread([d["added_cpu_ratio"] for d in per_run])
        data["cpu_ratio_litellm_over_switchman"] = spreads["cpu_ratio"]["median"]
        data["added_cpu_ratio_litellm_over_switchman"] = spreads["added_cpu_ratio"]["median"]
    data["spread"] = spreads
    return Section(key="inproc", title="(a) In-process overhead", markdown=render(data), data=data)


def _print_run(i: int, n: int, rows: dict[str, dict[str, Any]]) -> None:
    d = derive(rows)
    parts = [
        f"{system} +{fmt(a['added_p50_ms'])} ms p50, {fmt(rows[system]['cpu_us_per_call'])} µs CPU"
        for system, a in d["added"].items()
    ]
    print(f"    run {i + 1}/{n}: " + "; ".join(parts), flush=True)


def render(data: dict[str, Any]) -> str:
    headers = [
        "system",
        "p50 ms",
        "p99 ms",
        "added p50 ms",
        "added p99 ms",
        "CPU µs/call",
        "added CPU µs/call",
        "calls",
        "failures",
    ]
    table = []
    for name, r in data["rows"].items():
        a = data["added"].get(name)
        table.append(
            [
                name,
                r["p50_ms"],
                r["p99_ms"],
                a["added_p50_ms"] if a else None,
                a["added_p99_ms"] if a else None,
                r["cpu_us_per_call"],
                a["added_cpu_us_per_call"] if a else None,
                r["calls"],
                r["failures"],
            ]
        )
    n = len(data["runs"])
    out = [
        f"Each figure is the median of {n} runs; in each run switchman and LiteLLM (taking "
        "turns to go first) make their calls in blocks interleaved with their own direct "
        "baseline. Calls and failures are totals over the runs.",
        "",
        markdown_table(headers, table),
        "",
        "switchman embedded, added latency p50 over direct: "
        f"**{fmt_spread(data['spread']['added_p50_ms'], ' ms')}**.",
    ]
    if "cpu_ratio" in data["spread"]:
        out.append(
            f"\nLiteLLM Router / switchman CPU per call, each run's two measured back to back: "
            f"**{fmt_spread(data['spread']['cpu_ratio'], 'x')}** total, "
            f"**{fmt_spread(data['spread']['added_cpu_ratio'], 'x')}** on CPU added over direct."
        )
    out += [f"\n> {n}" for n in data["notes"]]
    return "\n".join(out)
