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
from benchmarks._util import markdown_table, summary_ms

PROMPT = "Say something short."


class Series:
    """Latencies (s) and CPU seconds accumulated over blocks."""

    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.cpu_s = 0.0
        self.failures = 0

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = summary_ms(self.latencies)
        calls = len(self.latencies) + self.failures
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


def run_section(ctx: Context) -> Section:
    """Scenario (a) for the suite: switchman here, LiteLLM in its venv, same upstream."""
    p = ctx.profile
    rows: dict[str, dict[str, Any]] = {}
    notes: list[str] = []
    with upstream(ctx.workdir / "up") as up:
        _, config = write_switchman_config(ctx.workdir / "inproc", up.base_url, {ALIAS: "healthy"})
        rows.update(run(up.base_url, config, calls=p.inproc_calls, warmup=p.inproc_warmup))
        if ctx.litellm is not None:
            spec = {
                "mode": "inproc",
                "upstream_url": up.base_url,
                "model_id": "healthy",
                "alias": ALIAS,
                "api_key": KEY_VALUE,
                "model_list": litellm_model_list(up.base_url, {ALIAS: "healthy"}),
                "calls": p.inproc_calls,
                "warmup": p.inproc_warmup,
                "rounds": 5,
            }
            try:
                out = _litellm.run_runner(ctx.litellm, spec, ctx.workdir / "ll", timeout_s=900)
                out.pop("_litellm_version", None)
                rows.update(out)
            except Exception as exc:  # reported, not fatal
                notes.append(f"LiteLLM Router could not run here: {exc}")
        elif ctx.litellm_note:
            notes.append(ctx.litellm_note)
    extra = {system: added(rows, direct, system) for direct, system in PAIRS if system in rows}
    data: dict[str, Any] = {"rows": rows, "added": extra, "notes": notes}
    sm, ll = rows.get("switchman embedded"), rows.get("LiteLLM Router")
    if sm and ll:
        data["cpu_ratio_litellm_over_switchman"] = ll["cpu_us_per_call"] / sm["cpu_us_per_call"]
        data["added_cpu_ratio_litellm_over_switchman"] = (
            extra["LiteLLM Router"]["added_cpu_us_per_call"]
            / extra["switchman embedded"]["added_cpu_us_per_call"]
        )
    return Section(key="inproc", title="(a) In-process overhead", markdown=render(data), data=data)


def render(data: dict[str, Any]) -> str:
    headers = [
        "system",
        "p50 ms",
        "p99 ms",
        "added p50 ms",
        "added p99 ms",
        "CPU µs/call",
        "added CPU µs/call",
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
                r["failures"],
            ]
        )
    out = [markdown_table(headers, table)]
    if "cpu_ratio_litellm_over_switchman" in data:
        out.append(
            f"\nLiteLLM Router / switchman CPU per call: "
            f"**{data['cpu_ratio_litellm_over_switchman']:.1f}x** total, "
            f"**{data['added_cpu_ratio_litellm_over_switchman']:.1f}x** added over direct."
        )
    out += [f"\n> {n}" for n in data["notes"]]
    return "\n".join(out)
