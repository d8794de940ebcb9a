"""Scenario (e): failover under load, with 20% of calls aimed at failing upstreams.

The workload (seeded, the same for every system): 80% of calls name the
healthy model ``bench``; 20% name a route whose primary fails in one of six
ways on the fake upstream (503 ``down``, 529 ``overloaded``, connection
``reset``, 429 ``rate-limited`` with Retry-After 1 s, a reply ``cut`` mid-way,
and ``flapping-1-4``: 503 for one second in every five), falling back to
``bench``. ``concurrency`` workers run the calls in this process:

- direct: httpx straight to the named primary, no failover (the baseline:
  what callers see without a router);
- switchman embedded: routes ``r-<kind>`` = [failing primary, bench], the
  primaries on provider ``primary`` and bench on provider ``fake`` (failover
  across providers, both pointing at the same upstream); and once more with
  all of them on one provider, which shows that a 429 holds back only the model
  it answered for: the healthy fallback on the same provider keeps serving;
- LiteLLM ``Router`` (its venv): model groups with ``fallbacks`` to bench, three
  times: with LiteLLM's default ``num_retries``, with 1 (switchman retries a 5xx
  once before falling back) and with 0.

Reported: success rate, p50/p99 latency, throughput; for switchman also the
outcome of every upstream attempt from the traces (circuit breakers soon stop
sending to models that always fail, so fewer than 20% of upstream attempts
fail after the first seconds: that is the router working).
"""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any, Final

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
from benchmarks._util import markdown_table, percentile

FAILING: Final = ("down", "overloaded", "reset", "rate-limited", "cut", "flapping-1-4")
#: LiteLLM's rows: (label, num_retries; None for its default, whose value the label shows)
LITELLM_ROWS: Final = (
    ("LiteLLM Router, default retries (num_retries={n})", None),
    ("LiteLLM Router, num_retries=1", 1),
    ("LiteLLM Router, num_retries=0", 0),
)
FAILING_SHARE: Final = 0.2
PROMPT = "Say something short."
TIMEOUT_S: Final = 30.0


def route_name(kind: str) -> str:
    return f"r-{kind}"


def workload(calls: int, seed: int = 5) -> list[str]:
    """Model names to call, in order: ``bench`` or ``r-<kind>`` (20%, kinds in turn)."""
    rng = random.Random(seed)
    out: list[str] = []
    k = 0
    for _ in range(calls):
        if rng.random() < FAILING_SHARE:
            out.append(route_name(FAILING[k % len(FAILING)]))
            k += 1
        else:
            out.append(ALIAS)
    return out


def upstream_models() -> dict[str, str]:
    """alias -> upstream model name: ``bench`` and one failing primary per kind."""
    return {ALIAS: "healthy", **{f"fo-{k}": k for k in FAILING}}


def routes() -> dict[str, list[str]]:
    return {route_name(k): [f"fo-{k}", ALIAS] for k in FAILING}


async def drive(
    plan: list[str], concurrency: int, one: Callable[[str], Awaitable[bool]]
) -> dict[str, Any]:
    """Run ``plan`` with ``concurrency`` workers; success rate, latency, throughput."""
    latencies: list[float] = []
    ok = 0
    it = iter(plan)

    async def worker() -> None:
        nonlocal ok
        for name in it:
            t0 = time.perf_counter()
            good = False
            with trio.move_on_after(TIMEOUT_S):
                good = await one(name)
            latencies.append(time.perf_counter() - t0)
            ok += good

    t0 = time.perf_counter()
    async with trio.open_nursery() as nursery:
        for _ in range(concurrency):
            nursery.start_soon(worker)
    elapsed = time.perf_counter() - t0
    ms = [x * 1000.0 for x in latencies]
    return {
        "calls": len(plan),
        "ok": ok,
        "success_rate": ok / len(plan) if plan else float("nan"),
        "p50_ms": percentile(ms, 50),
        "p99_ms": percentile(ms, 99),
        "throughput_rps": len(plan) / elapsed if elapsed > 0 else float("nan"),
    }


async def _direct(upstream_url: str, plan: list[str], concurrency: int) -> dict[str, Any]:
    names = {route_name(k): k for k in FAILING} | {ALIAS: "healthy"}
    url = upstream_url + "/v1/chat/completions"
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(
        limits=limits, timeout=TIMEOUT_S, headers={"authorization": "Bearer sk-bench-direct"}
    ) as client:

        async def one(name: str) -> bool:
            body = {"model": names[name], "messages": [{"role": "user", "content": PROMPT}]}
            try:
                response = await client.post(url, json=body)
                return response.status_code == 200 and bool(
                    response.json()["choices"][0]["message"]["content"]
                )
            except (httpx.HTTPError, ValueError, KeyError):
                return False

        return await drive(plan, concurrency, one)


async def _switchman(config: switchman.Config, plan: list[str], concurrency: int) -> dict[str, Any]:
    outcomes: Counter[str] = Counter()
    async with switchman.open_router(config, env={KEY_ENV: KEY_VALUE}) as router:

        async def one(name: str) -> bool:
            result = await router.call(switchman.Call(prompt=PROMPT, model=name))
            for attempt in result.trace.attempts:
                outcomes[attempt.outcome] += 1
            return result.status == "complete" and bool(result.answer)

        out = await drive(plan, concurrency, one)
    out["attempt_outcomes"] = dict(outcomes)
    sent = sum(n for o, n in outcomes.items() if o != "unavailable")
    failed = sum(n for o, n in outcomes.items() if o not in ("success", "unavailable"))
    out["upstream_attempts"] = sent
    out["upstream_failed_share"] = failed / sent if sent else float("nan")
    return out


def run(ctx: Context) -> Section:
    p = ctx.profile
    plan = workload(p.failover_calls)
    share = sum(name != ALIAS for name in plan) / len(plan)
    rows: dict[str, dict[str, Any]] = {}
    notes: list[str] = []
    with upstream(ctx.workdir / "up") as up:
        rows["direct (no failover)"] = trio.run(_direct, up.base_url, plan, p.failover_concurrency)
        for label, provider_of in (
            ("switchman embedded", {f"fo-{k}": "primary" for k in FAILING}),
            ("switchman embedded, one provider", {}),
        ):
            _, config = write_switchman_config(
                ctx.workdir / "fo",
                up.base_url,
                upstream_models(),
                routes=routes(),
                provider_of=provider_of,
                name=f"{label.replace(' ', '-').replace(',', '')}.toml",
            )
            rows[label] = trio.run(_switchman, config, plan, p.failover_concurrency)
        if ctx.litellm is not None:
            spec = {
                "mode": "failover",
                "model_list": litellm_model_list(
                    up.base_url,
                    {ALIAS: "healthy", **{route_name(k): k for k in FAILING}},
                ),
                "fallbacks": {route_name(k): [ALIAS] for k in FAILING},
                "prompt": PROMPT,
                "plan": plan,
                "concurrency": p.failover_concurrency,
                "timeout_s": TIMEOUT_S,
            }
            try:
                for label, retries in LITELLM_ROWS:
                    out = _litellm.run_runner(
                        ctx.litellm,
                        {**spec, "num_retries": retries},
                        ctx.workdir / "ll",
                        timeout_s=900,
                    )
                    out.pop("_litellm_version", None)
                    rows[label.format(n=out.get("num_retries"))] = out
            except Exception as exc:  # reported, not fatal
                notes.append(f"LiteLLM failover could not run here: {exc}")
        elif ctx.litellm_note:
            notes.append(ctx.litellm_note)
    for name, row in rows.items():
        print(
            f"    {name:<22} success {row['success_rate']:.1%}  p99 {row['p99_ms']:.1f} ms",
            flush=True,
        )
    data = {
        "failing_share_of_calls": share,
        "kinds": list(FAILING),
        "concurrency": p.failover_concurrency,
        "rows": rows,
        "notes": notes,
    }
    return Section(
        key="failover", title="(e) Failover under load", markdown=render(data), data=data
    )


ROWS_MEAN: Final = (
    "What each row does with a failing primary: *direct* nothing (the caller gets the "
    "failure). *switchman* retries a 5xx, a 529 or a connection that fails before any output "
    "once on the same model, at least 0.75 s later (until that model's breaker opens and it "
    "is skipped), retries a 429 once after a short Retry-After, never retries a reply cut "
    "mid-way, and otherwise falls back to the route's next model; *one provider* is the same "
    "with the primaries and the fallback on one provider. *LiteLLM Router* retries the "
    "primary `num_retries` times, then falls back to `bench`: its default, then 1 (as "
    "switchman's one retry), then 0 (straight to the fallback)."
)


def render(data: dict[str, Any]) -> str:
    headers = ["system", "calls", "success rate", "p50 ms", "p99 ms", "calls/s"]
    table = markdown_table(
        headers,
        (
            [
                name,
                r["calls"],
                f"{r['success_rate']:.2%}",
                r["p50_ms"],
                r["p99_ms"],
                r["throughput_rps"],
            ]
            for name, r in data["rows"].items()
        ),
    )
    lines = [
        f"{data['failing_share_of_calls']:.1%} of calls name a failing primary "
        f"({', '.join(data['kinds'])}); concurrency {data['concurrency']}.",
        "",
        table,
        "",
        ROWS_MEAN,
    ]
    sm = data["rows"].get("switchman embedded")
    if sm is not None:
        outcomes = ", ".join(f"{k} {v}" for k, v in sorted(sm["attempt_outcomes"].items()))
        lines += [
            "",
            f"switchman attempt outcomes: {outcomes}; "
            f"{sm['upstream_failed_share']:.1%} of {sm['upstream_attempts']} upstream "
            "attempts failed (breakers stop sending to primaries that always fail).",
        ]
    lines += [f"\n> {n}" for n in data["notes"]]
    return "\n".join(lines)
