"""Scenario (b): gateway throughput; and the fake upstream's own ceiling.

Processes: the fake upstream (one), the gateway under test (one: switchman's,
then the bare relay, then LiteLLM's proxy, never two at once), and this process
as the load generator (``benchmarks._loadgen``). "direct" sends the same
requests straight to the upstream: the ceiling of upstream plus load generator,
which no gateway can beat on this machine. The bare relay (hypercorn + httpx
passing bytes on, ``benchmarks._relay_host``) is the ceiling of any gateway on
switchman's stack: the extra HTTP hop alone.

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
from benchmarks._util import fmt, markdown_table

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


def _sweep(
    ctx: Context, target: Target, body: bytes, server: Child | None, rows: list[dict[str, Any]]
) -> None:
    p = ctx.profile
    for c in p.concurrencies:
        row = measure_point(
            target, body, server, concurrency=c, duration_s=p.point_s, warmup_s=p.warmup_s
        )
        rows.append(row)
        _print_row(row)
    for rate in p.rates:
        row = measure_point(
            target, body, server, rate=rate, duration_s=p.point_s, warmup_s=p.warmup_s / 2
        )
        rows.append(row)
        _print_row(row)


def _print_row(row: dict[str, Any]) -> None:
    load = f"c={row['concurrency']}" if row["mode"] == "closed" else f"rate={row['rate']:g}/s"
    print(
        f"    {row['target']:<18} {load:<11} {fmt(row['throughput_rps']):>8} rps  "
        f"p50 {fmt(row['p50_ms'])} ms  p99 {fmt(row['p99_ms'])} ms  errors {row['errors']}",
        flush=True,
    )


def run(ctx: Context) -> Section:
    rows: list[dict[str, Any]] = []
    notes: list[str] = []
    with upstream(ctx.workdir / "up") as up:
        ceiling_row = ceiling(ctx, up)
        print(
            f"  upstream ceiling (direct, c=64): {fmt(ceiling_row['throughput_rps'])} rps, "
            f"upstream CPU {fmt(ceiling_row['server_cpu_share'])} cores",
            flush=True,
        )
        direct = Target(name="direct", host="127.0.0.1", port=up.port, headers=UPSTREAM_AUTH)
        _sweep(ctx, direct, chat_body("healthy"), None, rows)
        with _switchman(ctx, up) as (target, gw):
            _sweep(ctx, target, chat_body(ALIAS), gw, rows)
        with _bare_relay(ctx, up) as (target, relay):
            # the relay forwards the body unchanged: it names the upstream's model
            _sweep(ctx, target, chat_body("healthy"), relay, rows)
        if ctx.litellm is not None:
            try:
                with _litellm_proxy(ctx, up) as (target, px):
                    _sweep(ctx, target, chat_body(ALIAS), px, rows)
            except Exception as exc:  # the proxy failing to start is a finding, not a crash
                notes.append(f"LiteLLM proxy could not run here: {exc}")
        elif ctx.litellm_note:
            notes.append(ctx.litellm_note)
    data = {"upstream_ceiling": ceiling_row, "points": rows, "notes": notes}
    return Section(
        key="gateway",
        title="(b) Gateway throughput",
        markdown=render(data),
        data=data,
    )


def ratio_at(rows: list[dict[str, Any]], concurrency: int, a: str, b: str) -> float | None:
    """Throughput of ``a`` over ``b`` at a closed-loop concurrency, if both were measured."""
    found = {
        r["target"]: r["throughput_rps"]
        for r in rows
        if r["mode"] == "closed" and r["concurrency"] == concurrency
    }
    if a in found and b in found and found[b]:
        return float(found[a] / found[b])
    return None


def render(data: dict[str, Any]) -> str:
    ceiling_row = data["upstream_ceiling"]
    rows = data["points"]
    headers = ["target", "load", "rps", "p50 ms", "p99 ms", "errors", "gateway CPU µs/answer"]
    table = markdown_table(headers, (_cells(r) for r in rows))
    parts = [
        f"Upstream ceiling (direct, closed loop, c=64): **{fmt(ceiling_row['throughput_rps'])} "
        f"rps** with the upstream process at {fmt(ceiling_row['server_cpu_share'])} cores.",
        "",
        table,
    ]
    hop = ratio_at(rows, 64, "switchman gateway", BARE_RELAY)
    if hop is not None:
        parts += ["", f"switchman gateway / {BARE_RELAY} throughput at c=64: **{hop:.2f}x**"]
    ratio = ratio_at(rows, 64, "switchman gateway", "LiteLLM proxy")
    if ratio is not None:
        parts += ["", f"switchman / LiteLLM proxy throughput at c=64: **{ratio:.2f}x**"]
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
    ]
