"""Scenario (d): the gateway's resident memory after N calls (flat is the goal).

The gateway runs in its own process (with its SQLite job store in a file, as
``switchman serve`` keeps it, and a gateway key sent with every request); this
process drives a closed loop at a fixed concurrency and reads the gateway's RSS
at each checkpoint. Growth is reported from the first checkpoint to the last.

The job store: ``switchman serve`` prunes it every few minutes, longer than
this scenario runs, down to ``job_retention_count`` (10,000 by default, more
jobs than the quick profile makes). So the scenario's own config sets a
retention of a fraction of the first checkpoint and the gateway host prunes
every half second: from the first checkpoint on, the store holds about its
retention limit, and the table shows how many jobs it held at each checkpoint
(read from the database file). What the ±10% band can see is printed too: the
smallest leak per call that would carry RSS past it between the first
checkpoint and the last.

Two bounded caches fill over the first 10,000 calls, so part of a short run's
growth is theirs, not a leak: the dispatcher's memory of recent calls for
feedback (``FEEDBACK_MEMORY``, 10,000 calls, about 2 MB) and SQLite's page cache
(about 2 MiB). A longer investigation (the seventh session) saw RSS level off
once they were full: about 200 bytes a call after 12,000 calls, and slowing.
"""

from __future__ import annotations

import contextlib
import functools
import sqlite3
from pathlib import Path
from typing import Any, Final

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
from benchmarks._util import fmt, markdown_table

MIB = 1024 * 1024
#: the growth band the target allows, in percent of the first checkpoint's RSS
BAND_PCT: Final = 10.0
#: how often the memory scenario's gateway prunes its job store
PRUNE_EVERY_S: Final = 0.5


def retention_for(checkpoints: tuple[int, ...]) -> int:
    """The job retention the scenario's gateway keeps: half the first checkpoint."""
    return max(10, checkpoints[0] // 2)


def stored_jobs(db: Path) -> int | None:
    """Jobs in the gateway's store file (read-only; None if it cannot be read now)."""
    try:
        # (closing: a connection's own "with" commits and leaves it open)
        with contextlib.closing(
            sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5.0)
        ) as conn:
            return int(conn.execute("SELECT count(*) FROM jobs").fetchone()[0])
    except sqlite3.Error:
        return None


def visible_leak_bytes(points: list[dict[str, Any]]) -> float:
    """The smallest leak per call that would carry RSS out of the band between the first
    checkpoint and the last."""
    first, last = points[1], points[-1]
    calls = last["calls"] - first["calls"]
    return first["rss_mib"] * MIB * BAND_PCT / 100.0 / calls if calls else float("nan")


def rss_series(
    server: Child,
    target: Target,
    checkpoints: tuple[int, ...],
    concurrency: int,
    db: Path | None = None,
) -> dict[str, Any]:
    """Drive calls through ``target`` up to each checkpoint; RSS (MiB) there, and the
    jobs in the store file ``db`` when given."""
    body = chat_body(ALIAS)
    warm = max(concurrency, checkpoints[0] // 10)
    trio.run(lambda: send_requests(target, body, concurrency=concurrency, requests=warm))
    jobs = stored_jobs(db) if db is not None else None
    points: list[dict[str, Any]] = [
        {"calls": 0, "rss_mib": server.rss_bytes() / MIB, "errors": 0, "jobs": jobs}
    ]
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
        jobs = stored_jobs(db) if db is not None else None
        rss = server.rss_bytes() / MIB
        points.append({"calls": checkpoint, "rss_mib": rss, "errors": errors, "jobs": jobs})
        print(
            f"    {target.name:<18} after {checkpoint:>7,} calls: {rss:.1f} MiB"
            f" ({errors} errors" + (f", {jobs:,} jobs stored)" if jobs is not None else ")"),
            flush=True,
        )
    first, last = points[1]["rss_mib"], points[-1]["rss_mib"]
    return {
        "points": points,
        "growth_pct": (last - first) / first * 100.0 if first else float("nan"),
        "warmup_calls": warm,
        "visible_leak_bytes_per_call": visible_leak_bytes(points),
    }


def run(ctx: Context) -> Section:
    p = ctx.profile
    series: dict[str, Any] = {}
    notes: list[str] = []
    retention = retention_for(p.memory_checkpoints)
    with upstream(ctx.workdir / "up") as up:
        workdir = ctx.workdir / "mem"
        path, _ = write_switchman_config(
            workdir, up.base_url, {ALIAS: "healthy"}, gateway_key=True, job_retention=retention
        )
        with switchman_gateway(workdir, path, env=GATEWAY_ENV, prune_every_s=PRUNE_EVERY_S) as gw:
            target = Target(
                name="switchman gateway", host="127.0.0.1", port=gw.port, headers=gateway_auth()
            )
            series[target.name] = rss_series(
                gw, target, p.memory_checkpoints, p.memory_concurrency, workdir / "gateway.db"
            )
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
    data = {
        "series": series,
        "concurrency": p.memory_concurrency,
        "job_retention": retention,
        "prune_every_s": PRUNE_EVERY_S,
        "notes": notes,
    }
    return Section(key="memory", title="(d) Memory", markdown=render(data), data=data)


def render(data: dict[str, Any]) -> str:
    series = data["series"]
    names = list(series)
    calls = [pt["calls"] for pt in next(iter(series.values()))["points"]]
    headers = ["calls", *(f"{n} RSS MiB" for n in names), "switchman jobs stored"]
    sm = series.get("switchman gateway")
    rows = [
        [
            f"{c:,}" + (" (after warm-up)" if c == 0 else ""),
            *(s["points"][i]["rss_mib"] for s in series.values()),
            sm["points"][i].get("jobs") if sm else None,
        ]
        for i, c in enumerate(calls)
    ]
    rows.append(
        [
            "growth first→last checkpoint",
            *(f"{s['growth_pct']:+.1f}%" for s in series.values()),
            None,
        ]
    )
    lines = [
        f"Closed loop of {data['concurrency']} clients. The gateway's job store keeps "
        f"{data['job_retention']:,} jobs and is pruned every {data['prune_every_s']:g} s "
        "(`switchman serve` prunes every few minutes), so from the first checkpoint on it "
        "holds about that many.",
        "",
        markdown_table(headers, rows),
    ]
    for name, s in series.items():
        lines += [
            "",
            f"{name}: a leak of **{fmt(s['visible_leak_bytes_per_call'])} bytes per call** or "
            f"more would carry RSS past ±{BAND_PCT:g}% between the first checkpoint and the "
            "last; a smaller one stays inside the band.",
        ]
    lines += [f"\n> {n}" for n in data["notes"]]
    return "\n".join(lines)
