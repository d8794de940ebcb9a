"""Scenario (d): the gateway's resident memory after N calls (flat is the goal).

The gateway runs in its own process (with its SQLite job store in a file, as
``switchman serve`` keeps it); this process drives a closed loop at a fixed
concurrency and reads the gateway's RSS at each checkpoint. Growth is
reported from the first checkpoint to the last, which is what "flat" means
here: after the first checkpoint the job store has reached its retention
limit (10,000 jobs by default) and caches are warm.
"""

from __future__ import annotations

import functools
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
from benchmarks._loadgen import Target, send_requests
from benchmarks._procs import Child, switchman_gateway, upstream
from benchmarks._suite import Context, Section
from benchmarks._util import markdown_table

MIB = 1024 * 1024


def rss_series(
    server: Child, target: Target, checkpoints: tuple[int, ...], concurrency: int
) -> dict[str, Any]:
    """Drive calls through ``target`` up to each checkpoint; RSS (MiB) there."""
    body = chat_body(ALIAS)
    warm = max(concurrency, checkpoints[0] // 10)
    trio.run(lambda: send_requests(target, body, concurrency=concurrency, requests=warm))
    points = [{"calls": 0, "rss_mib": server.rss_bytes() / MIB, "errors": 0}]
    done = 0
    errors = 0
    for checkpoint in checkpoints:
        todo = checkpoint - done
        drive = functools.partial(
            send_requests, target, body, concurrency=concurrency, requests=todo
        )
        result = trio.run(drive)
        done = checkpoint
        errors += result.errors
        points.append({"calls": checkpoint, "rss_mib": server.rss_bytes() / MIB, "errors": errors})
        print(
            f"    {target.name:<18} after {checkpoint:>7,} calls: {points[-1]['rss_mib']:.1f} MiB"
            f" ({errors} errors)",
            flush=True,
        )
    first, last = points[1]["rss_mib"], points[-1]["rss_mib"]
    return {
        "points": points,
        "growth_pct": (last - first) / first * 100.0 if first else float("nan"),
        "warmup_calls": warm,
    }


def run(ctx: Context) -> Section:
    p = ctx.profile
    series: dict[str, Any] = {}
    notes: list[str] = []
    with upstream(ctx.workdir / "up") as up:
        path, _ = write_switchman_config(
            ctx.workdir / "gw", up.base_url, {ALIAS: "healthy"}, gateway_key=True
        )
        with switchman_gateway(ctx.workdir / "gw", path, env=GATEWAY_ENV) as gw:
            target = Target(
                name="switchman gateway", host="127.0.0.1", port=gw.port, headers=gateway_auth()
            )
            series[target.name] = rss_series(gw, target, p.memory_checkpoints, p.memory_concurrency)
        if p.memory_litellm and ctx.litellm is not None:
            try:
                with _litellm.proxy(
                    ctx.litellm, ctx.workdir / "ll", up.base_url, {ALIAS: "healthy"}
                ) as px:
                    target = Target(
                        name="LiteLLM proxy",
                        host="127.0.0.1",
                        port=px.port,
                        headers=_litellm.auth_headers(),
                    )
                    series[target.name] = rss_series(
                        px, target, p.memory_checkpoints, p.memory_concurrency
                    )
            except Exception as exc:  # reported, not fatal
                notes.append(f"LiteLLM proxy memory could not be measured: {exc}")
    data = {"series": series, "concurrency": p.memory_concurrency, "notes": notes}
    return Section(key="memory", title="(d) Memory", markdown=render(data), data=data)


def render(data: dict[str, Any]) -> str:
    series = data["series"]
    names = list(series)
    calls = [pt["calls"] for pt in next(iter(series.values()))["points"]]
    headers = ["calls", *(f"{n} RSS MiB" for n in names)]
    rows = [
        [
            f"{c:,}" + (" (after warm-up)" if c == 0 else ""),
            *(s["points"][i]["rss_mib"] for s in series.values()),
        ]
        for i, c in enumerate(calls)
    ]
    rows.append(
        ["growth first→last checkpoint", *(f"{s['growth_pct']:+.1f}%" for s in series.values())]
    )
    notes = "".join(f"\n\n> {n}" for n in data["notes"])
    return markdown_table(headers, rows) + notes
