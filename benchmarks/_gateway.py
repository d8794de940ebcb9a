"""Scenario (b): gateway throughput; and the fake upstream's own ceiling.

Processes: the fake upstream (one), every gateway under test (switchman's, the
bare relay, LiteLLM's proxy: all started first, the idle ones waiting while
another is measured) and this process as the load generator
(``benchmarks._loadgen``). Each load point is measured on each system in turn
(direct, switchman, relay, LiteLLM), so drift in the machine's load hits them
alike; the decisive point (c=64) is measured ``profile.repeats`` times with
the order rotated, and its ratios are reported run by run (median and range).
"direct" sends the same requests straight to the upstream: the ceiling of
upstream plus load generator, which no gateway can beat on this machine. The
bare relay (``benchmarks._relay_host``) is the extra HTTP hop alone.

Per point: throughput (200 answers per second), p50/p99 latency, errors, and
the CPU seconds the gateway process spent per answer.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import trio

from benchmarks import _litellm
from benchmarks._configs import (
    ALIAS,
    GATEWAY_ENV,
    chat_body,
    gateway_auth,
    write_switchman_config,
)
from benchmarks._loadgen import LoadResult, Target, closed_loop, open_loop
from benchmarks._procs import BARE_RELAY, Child, bare_relay, switchman_gateway, upstream
from benchmarks._suite import Context, Section
from benchmarks._util import fmt, fmt_spread, markdown_table, spread

#: the fake upstream wants a key, as OpenAI does: the direct baseline sends one too
UPSTREAM_AUTH = {"authorization": "Bearer sk-bench-upstream"}


def measure_point(
    target: Target,
    body: bytes,
    server: Child | None,
    *,
    concurrency: int = 0,
    rate: float = 0.0,
    duration_s: float,
    warmup_s: float,
) -> dict[str, Any]:
    """One closed-loop (``concurrency``) or open-loop (``rate``) point, with the
    server process's CPU per answer when ``server`` is given.

    Closed loop: the answers completed in the measurement window and the server's CPU
    seconds read at that window's two ends, so both figures cover the same time.
    Open loop: a warm-up run at the same rate first; then the CPU from the first
    scheduled request to the last answer, over every request of the schedule.
    """
    sample = server.cpu_seconds if server is not None else None
    result: LoadResult
    if concurrency:
        result = trio.run(
            lambda: closed_loop(
                target,
                body,
                concurrency=concurrency,
                duration_s=duration_s,
                warmup_s=warmup_s,
                sample=sample,
            )
        )
        spent = result.sampled[1] - result.sampled[0] if result.sampled else 0.0
    else:
        if warmup_s > 0:
            trio.run(lambda: open_loop(target, body, rate=rate, duration_s=warmup_s))
        cpu0 = sample() if sample is not None else 0.0
        result = trio.run(lambda: open_loop(target, body, rate=rate, duration_s=duration_s))
        spent = sample() - cpu0 if sample is not None else 0.0
    row = result.row()
    if server is not None:
        answers = result.ok + result.errors
        row["server_cpu_us_per_answer"] = spent / answers * 1e6 if answers else float("nan")
        row["server_cpu_share"] = spent / result.duration_s
    return row


def ceiling(ctx: Context, up: Child) -> dict[str, Any]:
    """The upstream's own ceiling: direct requests per second at concurrency 64."""
    target = Target(name="direct", host="127.0.0.1", port=up.port, headers=UPSTREAM_AUTH)
    p = ctx.profile
    row = measure_point(
        target, chat_body("healthy"), up, concurrency=64, duration_s=p.point_s, warmup_s=p.warmup_s
    )
    ctx.notes["upstream_ceiling_rps"] = row["throughput_rps"]
    return row


@contextlib.contextmanager
def _switchman(ctx: Context, up: Child) -> Iterator[tuple[Target, Child]]:
    path, _ = write_switchman_config(
        ctx.workdir / "gw", up.base_url, {ALIAS: "healthy"}, gateway_key=True
    )
    with switchman_gateway(ctx.workdir / "gw", path, env=GATEWAY_ENV) as gw:
        # a gateway key on every request, as LiteLLM's proxy gets its master key
        target = Target(
            name="switchman gateway", host="127.0.0.1", port=gw.port, headers=gateway_auth()
        )
        yield target, gw


@contextlib.contextmanager
def _bare_relay(ctx: Context, up: Child) -> Iterator[tuple[Target, Child]]:
    with bare_relay(ctx.workdir / "relay", up.base_url) as relay:
        # the relay passes the caller's key on, as a proxy in front of a provider would
        target = Target(name=BARE_RELAY, host="127.0.0.1", port=relay.port, headers=UPSTREAM_AUTH)
        yield target, relay


@contextlib.contextmanager
def _litellm_proxy(ctx: Context, up: Child) -> Iterator[tuple[Target, Child]]:
    assert ctx.litellm is not None
    with _litellm.proxy(ctx.litellm, ctx.workdir / "ll", up.base_url, {ALIAS: "healthy"}) as px:
        target = Target(
            name="LiteLLM proxy", host="127.0.0.1", port=px.port, headers=_litellm.auth_headers()
        )
        yield target, px


def _loads(ctx: Context) -> list[tuple[int, float, int]]:
    """(concurrency, rate, runs) of every point: closed loops, then open loops."""
    p = ctx.profile
    closed = [(c, 0.0, p.repeats if c == p.decisive_concurrency else 1) for c in p.concurrencies]
    return closed + [(0, rate, 1) for rate in p.rates]


def _print_row(row: dict[str, Any]) -> None:
    load = f"c={row['concurrency']}" if row["mode"] == "closed" else f"rate={row['rate']:g}/s"
    print(
        f"    {row['target']:<31} {load:<11} {fmt(row['throughput_rps']):>8} rps  "
        f"p50 {fmt(row['p50_ms'])} ms  p99 {fmt(row['p99_ms'])} ms  errors {row['errors']}",
        flush=True,
    )


System = tuple[Target, bytes, "Child | None"]


def run(ctx: Context) -> Section:
    """Every system under test runs at once (idle ones wait); each load point is measured
    on each system in turn, so drift in the machine's load hits them alike. The
    decisive point (c=64) is measured ``repeats`` times, the order rotated each time."""
    p = ctx.profile
    raw: list[dict[str, Any]] = []
    notes: list[str] = []
    with upstream(ctx.workdir / "up") as up, contextlib.ExitStack() as stack:
        ceiling_row = ceiling(ctx, up)
        print(
            f"  upstream ceiling (direct, c=64): {fmt(ceiling_row['throughput_rps'])} rps, "
            f"upstream CPU {fmt(ceiling_row['server_cpu_share'])} cores",
            flush=True,
        )
        direct = Target(name="direct", host="127.0.0.1", port=up.port, headers=UPSTREAM_AUTH)
        systems: list[System] = [(direct, chat_body("healthy"), None)]
        target, gw = stack.enter_context(_switchman(ctx, up))
        systems.append((target, chat_body(ALIAS), gw))
        target, relay = stack.enter_context(_bare_relay(ctx, up))
        # the relay forwards the body unchanged: it names the upstream's model
        systems.append((target, chat_body("healthy"), relay))
        if ctx.litellm is not None:
            try:
                target, px = stack.enter_context(_litellm_proxy(ctx, up))
                systems.append((target, chat_body(ALIAS), px))
            except Exception as exc:  # the proxy failing to start is a finding, not a crash
                notes.append(f"LiteLLM proxy could not run here: {exc}")
        elif ctx.litellm_note:
            notes.append(ctx.litellm_note)
        for concurrency, rate, runs in _loads(ctx):
            for r in range(runs):
                for target, body, server in systems[r:] + systems[:r]:
                    row = measure_point(
                        target,
                        body,
                        server,
                        concurrency=concurrency,
                        rate=rate,
                        duration_s=p.point_s,
                        warmup_s=p.warmup_s if concurrency else p.warmup_s / 2,
                    )
                    row["run"] = r
                    raw.append(row)
                    _print_row(row)
    decisive = p.decisive_concurrency
    data = {
        "upstream_ceiling": ceiling_row,
        "decisive_concurrency": decisive,
        "points": combine(raw),
        "runs": raw,
        "spread": spreads(raw, decisive),
        "notes": notes,
    }
    return Section(
        key="gateway",
        title="(b) Gateway throughput",
        markdown=render(data),
        data=data,
    )


def _load_key(row: dict[str, Any]) -> tuple[str, str, int, float]:
    return row["target"], row["mode"], row["concurrency"], row["rate"]


def combine(raw: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per system and load: a point measured more than once gets the median of
    each figure, its run count and its throughputs."""
    groups: dict[tuple[str, str, int, float], list[dict[str, Any]]] = {}
    for row in raw:
        groups.setdefault(_load_key(row), []).append(row)
    out = []
    for rows in groups.values():
        if len(rows) == 1:
            out.append({**rows[0], "runs": 1})
            continue
        merged: dict[str, Any] = dict(rows[0])
        for key, value in rows[0].items():
            if isinstance(value, int | float) and key not in ("run", "concurrency", "rate"):
                merged[key] = spread([r.get(key, float("nan")) for r in rows])["median"]
        merged["errors"] = sum(r["errors"] for r in rows)
        merged["runs"] = len(rows)
        merged["throughput_values"] = [r["throughput_rps"] for r in rows]
        merged.pop("run", None)
        out.append(merged)
    return out


def per_run_ratio(
    raw: list[dict[str, Any]], concurrency: int, a: str, b: str, key: str = "throughput_rps"
) -> list[float]:
    """``a``'s figure over ``b``'s at a closed-loop ``concurrency``, run by run (each run's
    pair measured one after the other)."""
    at: dict[tuple[str, int], float] = {
        (r["target"], r["run"]): r.get(key, float("nan"))
        for r in raw
        if r["mode"] == "closed" and r["concurrency"] == concurrency
    }
    runs = sorted({run for _, run in at})
    return [at[(a, run)] / at[(b, run)] for run in runs if (a, run) in at and (b, run) in at]


def spreads(raw: list[dict[str, Any]], c: int) -> dict[str, Any]:
    """The ratios the headline reads at concurrency ``c``: median and range over the runs
    (keys say c64, the quick and full profiles' decisive point)."""
    sm = "switchman gateway"
    out = {
        "direct_ratio_c64": spread(per_run_ratio(raw, c, sm, "direct")),
        "relay_ratio_c64": spread(per_run_ratio(raw, c, sm, BARE_RELAY)),
        "litellm_ratio_c64": spread(per_run_ratio(raw, c, sm, "LiteLLM proxy")),
        "litellm_cpu_ratio_c64": spread(
            per_run_ratio(raw, c, "LiteLLM proxy", sm, "server_cpu_us_per_answer")
        ),
    }
    return {k: v for k, v in out.items() if v["runs"]}


def render(data: dict[str, Any]) -> str:
    ceiling_row = data["upstream_ceiling"]
    rows = data["points"]
    headers = [
        "target",
        "load",
        "rps",
        "p50 ms",
        "p99 ms",
        "errors",
        "gateway CPU µs/answer",
        "runs",
    ]
    order = {name: i for i, name in enumerate(dict.fromkeys(r["target"] for r in rows))}
    ordered = sorted(
        rows, key=lambda r: (order[r["target"]], r["mode"], r["concurrency"], r["rate"])
    )
    table = markdown_table(headers, (_cells(r) for r in ordered))
    parts = [
        f"Upstream ceiling (direct, closed loop, c=64): **{fmt(ceiling_row['throughput_rps'])} "
        f"rps** with the upstream process at {fmt(ceiling_row['server_cpu_share'])} cores.",
        "",
        "Every system ran at once (the idle ones waiting) and each load point was measured on "
        f"each in turn; c={data['decisive_concurrency']} was measured in several runs, the "
        "order rotated each time, and its row gives the medians (errors: the total).",
        "",
        table,
    ]
    s = data["spread"]
    lines = [
        ("relay_ratio_c64", f"switchman gateway / {BARE_RELAY} throughput"),
        ("litellm_ratio_c64", "switchman gateway / LiteLLM proxy throughput"),
        ("litellm_cpu_ratio_c64", "LiteLLM proxy / switchman gateway CPU per answer"),
    ]
    for key, what in lines:
        if key in s:
            c = data["decisive_concurrency"]
            parts += ["", f"{what} at c={c}, run by run: **{fmt_spread(s[key], 'x')}**"]
    parts += [f"\n> {n}" for n in data["notes"]]
    return "\n".join(parts)


def _cells(r: dict[str, Any]) -> list[Any]:
    load = f"closed c={r['concurrency']}" if r["mode"] == "closed" else f"open {r['rate']:g}/s"
    return [
        r["target"],
        load,
        r["throughput_rps"],
        r["p50_ms"],
        r["p99_ms"],
        r["errors"],
        r.get("server_cpu_us_per_answer"),
        r["runs"],
    ]
