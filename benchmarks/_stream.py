"""Scenario (c): streaming, added time to first token and per-chunk relay cost.

Sequential streamed calls, each system interleaved call by call with a direct
streamed request to the same upstream from the same process:

- embedded: ``router.stream(call)`` vs httpx streaming, in this process;
- gateway: switchman's gateway (SSE from ``/v1/chat/completions``) vs direct,
  then the bare relay (hypercorn + httpcore passing bytes on: the cost of the extra
  hop alone) vs direct, then LiteLLM's proxy vs direct, all from this process
  with httpx;
- LiteLLM ``Router`` streaming vs httpx, in LiteLLM's venv.

Every system is asked the same prompt (LiteLLM's runner gets it in its spec).
Time to first token (TTFT) = request start to the first non-empty content
delta. Relay cost per chunk = (median of total - TTFT for the system - the same
for direct) / the upstream's content chunks per answer (as the direct run read
them; a system that merges chunks is not charged per chunk of its own count):
what passing the rest of the answer on costs, per chunk the upstream sent.
switchman's own share = its gateway's figures minus the bare relay's (each
first taken over its own interleaved direct run).
"""

from __future__ import annotations

import contextlib
import json
import statistics
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import httpx
import trio

import switchman
from benchmarks import _litellm
from benchmarks._configs import (
    ALIAS,
    GATEWAY_ENV,
    KEY_VALUE,
    gateway_auth,
    litellm_model_list,
    write_switchman_config,
)
from benchmarks._procs import BARE_RELAY, Child, bare_relay, switchman_gateway, upstream
from benchmarks._suite import Context, Section
from benchmarks._util import fmt_spread, markdown_table, percentile, spread

PROMPT = "Explain recursion briefly."
#: one streamed call: (ttft seconds, total seconds, content chunks), or None if it failed
Probe = Callable[[], Awaitable[tuple[float, float, int] | None]]

#: the upstream wants a key, as a provider does (direct runs and the relay send it)
UPSTREAM_AUTH: Mapping[str, str] = {"authorization": f"Bearer {KEY_VALUE}"}


class StreamSeries:
    def __init__(self) -> None:
        self.ttft: list[float] = []
        self.total: list[float] = []
        self.chunks: list[int] = []
        self.failures = 0

    def add(self, sample: tuple[float, float, int] | None) -> None:
        if sample is None:
            self.failures += 1
            return
        self.ttft.append(sample[0])
        self.total.append(sample[1])
        self.chunks.append(sample[2])

    def summary(self) -> dict[str, Any]:
        ttft = [x * 1000.0 for x in self.ttft]
        total = [x * 1000.0 for x in self.total]
        tail = [b - a for a, b in zip(ttft, total, strict=True)]
        return {
            "n": len(ttft),
            "failures": self.failures,
            "ttft_p50_ms": percentile(ttft, 50),
            "ttft_p99_ms": percentile(ttft, 99),
            "total_p50_ms": percentile(total, 50),
            "tail_p50_ms": percentile(tail, 50),
            "chunks_mean": statistics.fmean(self.chunks) if self.chunks else float("nan"),
        }


def content_of(line: str) -> str:
    """The content delta of one SSE line of an OpenAI stream ('' for anything else)."""
    if not line.startswith("data:"):
        return ""
    payload = line[5:].strip()
    if payload == "[DONE]":
        return ""
    try:
        chunk = json.loads(payload)
    except ValueError:
        return ""
    choices = chunk.get("choices") or []
    if not choices:
        return ""
    return str((choices[0].get("delta") or {}).get("content") or "")


def http_probe(
    client: httpx.AsyncClient, url: str, model: str, headers: Mapping[str, str]
) -> Probe:
    body = {"model": model, "messages": [{"role": "user", "content": PROMPT}], "stream": True}

    async def one() -> tuple[float, float, int] | None:
        t0 = time.perf_counter()
        ttft: float | None = None
        chunks = 0
        async with client.stream("POST", url, json=body, headers=dict(headers)) as response:
            if response.status_code != 200:
                await response.aread()
                return None
            async for line in response.aiter_lines():
                if content_of(line):
                    chunks += 1
                    if ttft is None:
                        ttft = time.perf_counter() - t0
        if ttft is None:
            return None
        return ttft, time.perf_counter() - t0, chunks

    return one


def router_probe(router: switchman.Router, model: str) -> Probe:
    call = switchman.Call(prompt=PROMPT, model=model)

    async def one() -> tuple[float, float, int] | None:
        t0 = time.perf_counter()
        ttft: float | None = None
        chunks = 0
        result: switchman.Result | None = None
        async with router.stream(call) as events:
            async for item in events:
                if isinstance(item, switchman.Delta):
                    if item.text:
                        chunks += 1
                        if ttft is None:
                            ttft = time.perf_counter() - t0
                else:
                    result = item
        if ttft is None or result is None or result.status != "complete":
            return None
        return ttft, time.perf_counter() - t0, chunks

    return one


async def interleaved(
    probes: Mapping[str, Probe], *, calls: int, warmup: int
) -> dict[str, dict[str, Any]]:
    """Run each probe once per round, ``warmup`` rounds uncounted, then ``calls`` rounds."""
    series = {name: StreamSeries() for name in probes}
    for i in range(warmup + calls):
        for name, probe in probes.items():
            sample = await probe()
            if i >= warmup:
                series[name].add(sample)
    return {name: s.summary() for name, s in series.items()}


async def _embedded(upstream_url: str, config: switchman.Config, calls: int, warmup: int) -> Any:
    async with (
        httpx.AsyncClient() as client,
        switchman.open_router(config, env=GATEWAY_ENV) as router,
    ):
        probes = {
            "direct (httpx, trio)": http_probe(
                client,
                upstream_url + "/v1/chat/completions",
                "healthy",
                UPSTREAM_AUTH,
            ),
            "switchman embedded": router_probe(router, ALIAS),
        }
        return await interleaved(probes, calls=calls, warmup=warmup)


async def _over_http(
    upstream_url: str,
    name: str,
    gateway: Child,
    headers: Mapping[str, str],
    calls: int,
    warmup: int,
    model: str = ALIAS,
) -> Any:
    """``gateway`` (asked for ``model``) and the upstream directly, call by call."""
    async with httpx.AsyncClient(timeout=30.0) as client:
        probes = {
            f"direct (for {name})": http_probe(
                client, upstream_url + "/v1/chat/completions", "healthy", UPSTREAM_AUTH
            ),
            name: http_probe(client, gateway.base_url + "/v1/chat/completions", model, headers),
        }
        return await interleaved(probes, calls=calls, warmup=warmup)


def overheads(rows: Mapping[str, Mapping[str, Any]], direct: str, system: str) -> dict[str, float]:
    """Added TTFT (ms) and relay cost per upstream chunk (µs) of ``system`` over ``direct``.

    The divisor is the upstream's content chunks per answer (what the direct run read),
    the same for every system: a system that merges chunks (switchman passes deltas that
    arrived together as one) would otherwise be charged per chunk of its own count."""
    d, s = rows[direct], rows[system]
    chunks = d["chunks_mean"] or float("nan")
    return {
        "added_ttft_p50_ms": s["ttft_p50_ms"] - d["ttft_p50_ms"],
        "relay_us_per_chunk": (s["tail_p50_ms"] - d["tail_p50_ms"]) / chunks * 1000.0,
    }


def own_share(added: Mapping[str, Mapping[str, float]], system: str, baseline: str) -> Any:
    """``system``'s added TTFT and relay cost per chunk over ``baseline``'s (both already
    over their own direct runs), or None unless both were measured."""
    if system not in added or baseline not in added:
        return None
    s, b = added[system], added[baseline]
    return {
        "system": system,
        "baseline": baseline,
        "added_ttft_p50_ms": s["added_ttft_p50_ms"] - b["added_ttft_p50_ms"],
        "relay_us_per_chunk": s["relay_us_per_chunk"] - b["relay_us_per_chunk"],
    }


#: one pair's measurement: its rows (the direct run and the system), in one run
PairRun = Callable[[int, int], dict[str, dict[str, Any]]]


def run(ctx: Context) -> Section:
    """Every system's pair measured in ``profile.repeats`` runs (the pairs' order rotated
    each run), with every gateway process started first; figures are medians over the
    runs, and the added TTFT of each system is also given as a range over them."""
    p = ctx.profile
    runs_n = max(1, p.repeats)
    calls = max(1, p.stream_calls // runs_n)
    warmup = max(2, calls // 10)
    pairs: list[tuple[str, str]] = []
    measure: list[PairRun] = []
    notes: list[str] = []
    runs: list[dict[str, dict[str, Any]]] = []
    with upstream(ctx.workdir / "up") as up, contextlib.ExitStack() as stack:
        path, config = write_switchman_config(
            ctx.workdir / "gw", up.base_url, {ALIAS: "healthy"}, gateway_key=True
        )
        base = up.base_url
        measure.append(lambda n, w: trio.run(_embedded, base, config, n, w))
        pairs.append(("direct (httpx, trio)", "switchman embedded"))
        gw = stack.enter_context(switchman_gateway(ctx.workdir / "gw", path, env=GATEWAY_ENV))
        measure.append(_http_pair(base, "switchman gateway", gw, gateway_auth()))
        pairs.append(("direct (for switchman gateway)", "switchman gateway"))
        relay = stack.enter_context(bare_relay(ctx.workdir / "relay", base))
        # the relay forwards the body unchanged: it names the upstream's model, and passes
        # the caller's key on to the upstream, which wants one
        measure.append(_http_pair(base, BARE_RELAY, relay, UPSTREAM_AUTH, model="healthy"))
        pairs.append((f"direct (for {BARE_RELAY})", BARE_RELAY))
        if ctx.litellm is not None:
            try:
                _litellm_pairs(ctx, stack, up, measure, pairs)
            except Exception as exc:  # reported, not fatal: the switchman side still stands
                notes.append(f"LiteLLM streaming could not run here: {exc}")
        elif ctx.litellm_note:
            notes.append(ctx.litellm_note)
        for r in range(runs_n):
            rows: dict[str, dict[str, Any]] = {}
            for one in measure[r:] + measure[:r]:
                try:
                    rows.update(one(calls, warmup))
                except _litellm.Unavailable as exc:  # LiteLLM's runner: reported, not fatal
                    notes.append(f"LiteLLM Router streaming could not run here: {exc}")
            runs.append(rows)
    data = summarize(runs, pairs, notes)
    return Section(key="streaming", title="(c) Streaming", markdown=render(data), data=data)


def summarize(
    runs: list[dict[str, dict[str, Any]]], pairs: list[tuple[str, str]], notes: list[str]
) -> dict[str, Any]:
    """Rows (medians over runs; call and failure counts summed), each pair's added
    figures (medians) and their spread over the runs, and switchman's share over the relay."""
    pairs = [(d, s) for d, s in pairs if all(d in r and s in r for r in runs)]
    names = [name for pair in pairs for name in pair]
    rows: dict[str, dict[str, Any]] = {}
    for name in names:
        present = [run[name] for run in runs]
        row: dict[str, Any] = {}
        for key in present[0]:
            values = [r[key] for r in present]
            row[key] = sum(values) if key in ("n", "failures") else spread(values)["median"]
        rows[name] = row
    per_run = [{system: overheads(run, direct, system) for direct, system in pairs} for run in runs]
    shares = [own_share(added, "switchman gateway", BARE_RELAY) for added in per_run]
    spreads: dict[str, Any] = {
        system: {key: spread([a[system][key] for a in per_run]) for key in per_run[0][system]}
        for _, system in pairs
    }
    if all(share is not None for share in shares):
        spreads["gateway_over_relay"] = {
            key: spread([share[key] for share in shares])
            for key in ("added_ttft_p50_ms", "relay_us_per_chunk")
        }
    added = {
        system: {key: s["median"] for key, s in figures.items()}
        for system, figures in spreads.items()
        if system != "gateway_over_relay"
    }
    over_relay = None
    if "gateway_over_relay" in spreads:
        over_relay = {
            "system": "switchman gateway",
            "baseline": BARE_RELAY,
            **{key: s["median"] for key, s in spreads["gateway_over_relay"].items()},
        }
    return {
        "rows": rows,
        "pairs": pairs,
        "added": added,
        "spread": spreads,
        "gateway_over_relay": over_relay,
        "runs": runs,
        "notes": list(dict.fromkeys(notes)),
    }


def _http_pair(
    base: str, name: str, server: Child, headers: Mapping[str, str], *, model: str = ALIAS
) -> PairRun:
    def one(calls: int, warmup: int) -> dict[str, dict[str, Any]]:
        rows: dict[str, dict[str, Any]] = trio.run(
            _over_http, base, name, server, headers, calls, warmup, model
        )
        return rows

    return one


def _litellm_pairs(
    ctx: Context,
    stack: contextlib.ExitStack,
    up: Child,
    measure: list[PairRun],
    pairs: list[tuple[str, str]],
) -> None:
    """LiteLLM's Router (its runner, in its venv, once per run) and its proxy."""
    ll = ctx.litellm
    assert ll is not None

    def router(calls: int, warmup: int) -> dict[str, dict[str, Any]]:
        spec = {
            "mode": "stream",
            "upstream_url": up.base_url,
            "model_id": "healthy",
            "alias": ALIAS,
            "api_key": KEY_VALUE,
            "model_list": litellm_model_list(up.base_url, {ALIAS: "healthy"}),
            "prompt": PROMPT,  # the one every other system is asked
            "calls": calls,
            "warmup": warmup,
        }
        out = _litellm.run_runner(ll, spec, ctx.workdir / "ll", timeout_s=600)
        return {name: out[name] for name in ("direct (httpx, asyncio)", "LiteLLM Router")}

    measure.append(router)
    pairs.append(("direct (httpx, asyncio)", "LiteLLM Router"))
    name = "LiteLLM proxy"
    px = stack.enter_context(
        _litellm.proxy(ll, ctx.workdir / "ll", up.base_url, {ALIAS: "healthy"})
    )
    measure.append(_http_pair(up.base_url, name, px, _litellm.auth_headers()))
    pairs.append((f"direct (for {name})", name))


def render(data: dict[str, Any]) -> str:
    headers = [
        "system",
        "TTFT p50 ms",
        "TTFT p99 ms",
        "total p50 ms",
        "content chunks",
        "failures",
        "added TTFT p50 ms",
        "relay µs/upstream chunk",
    ]
    out = []
    for direct, system in data["pairs"]:
        for name in (direct, system):
            r = data["rows"][name]
            extra = data["spread"].get(name) if name == system else None
            out.append(
                [
                    name,
                    r["ttft_p50_ms"],
                    r["ttft_p99_ms"],
                    r["total_p50_ms"],
                    r["chunks_mean"],
                    r.get("failures"),
                    fmt_spread(extra["added_ttft_p50_ms"]) if extra else None,
                    fmt_spread(extra["relay_us_per_chunk"]) if extra else None,
                ]
            )
    runs = len(data["runs"])
    intro = (
        f"{runs} runs; in each, every system's streamed calls alternate call by call with "
        "direct calls to the upstream, and the systems take turns going first. Times are "
        "medians over the runs; added figures give the median and range of the runs' values."
    )
    share = data["spread"].get("gateway_over_relay")
    own = ""
    if share is not None:
        own = (
            f"\n\nswitchman gateway over the {BARE_RELAY} (switchman's own share of the "
            f"gateway figures): added TTFT p50 **{fmt_spread(share['added_ttft_p50_ms'], ' ms')}**"
            f", relay **{fmt_spread(share['relay_us_per_chunk'], ' µs per upstream chunk')}**."
        )
    notes = "".join(f"\n\n> {n}" for n in data["notes"])
    return intro + "\n\n" + markdown_table(headers, out) + own + notes
