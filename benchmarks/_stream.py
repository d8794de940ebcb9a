"""Scenario (c): streaming, added time to first token and per-chunk relay cost.

Sequential streamed calls, each system interleaved call by call with a direct
streamed request to the same upstream from the same process:

- embedded: ``router.stream(call)`` vs httpx streaming, in this process;
- gateway: switchman's gateway (SSE from ``/v1/chat/completions``) vs direct,
  then the bare relay (hypercorn + httpx passing bytes on: the cost of the extra
  hop alone) vs direct, then LiteLLM's proxy vs direct, all from this process
  with httpx;
- LiteLLM ``Router`` streaming vs httpx, in LiteLLM's venv.

Time to first token (TTFT) = request start to the first non-empty content
delta. Relay cost per chunk = (median of total - TTFT for the system - the same
for direct) / the system's chunks per answer: what passing each later chunk on
costs. switchman's own share = its gateway's figures minus the bare relay's
(each first taken over its own interleaved direct run).
"""

from __future__ import annotations

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
from benchmarks._util import fmt, markdown_table, percentile

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
    """Added TTFT (ms) and relay cost per chunk (µs) of ``system`` over ``direct``."""
    d, s = rows[direct], rows[system]
    chunks = s["chunks_mean"] or float("nan")
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


def run(ctx: Context) -> Section:
    p = ctx.profile
    calls, warmup = p.stream_calls, max(2, p.stream_calls // 10)
    rows: dict[str, dict[str, Any]] = {}
    pairs: list[tuple[str, str]] = []
    notes: list[str] = []
    with upstream(ctx.workdir / "up") as up:
        path, config = write_switchman_config(
            ctx.workdir / "gw", up.base_url, {ALIAS: "healthy"}, gateway_key=True
        )
        rows.update(trio.run(_embedded, up.base_url, config, calls, warmup))
        pairs.append(("direct (httpx, trio)", "switchman embedded"))
        with switchman_gateway(ctx.workdir / "gw", path, env=GATEWAY_ENV) as gw:
            name = "switchman gateway"
            auth = gateway_auth()  # as LiteLLM's proxy gets its master key
            rows.update(trio.run(_over_http, up.base_url, name, gw, auth, calls, warmup))
            pairs.append((f"direct (for {name})", name))
        with bare_relay(ctx.workdir / "relay", up.base_url) as relay:
            # the relay forwards the body unchanged: it names the upstream's model
            rows.update(
                trio.run(
                    _over_http,
                    up.base_url,
                    BARE_RELAY,
                    relay,
                    UPSTREAM_AUTH,  # passed on to the upstream, which wants a key
                    calls,
                    warmup,
                    "healthy",
                )
            )
            pairs.append((f"direct (for {BARE_RELAY})", BARE_RELAY))
        if ctx.litellm is not None:
            try:
                _litellm_rows(ctx, up, calls, warmup, rows, pairs)
            except Exception as exc:  # reported, not fatal: the switchman side still stands
                notes.append(f"LiteLLM streaming could not run here: {exc}")
        elif ctx.litellm_note:
            notes.append(ctx.litellm_note)
    added = {system: overheads(rows, direct, system) for direct, system in pairs}
    over_relay = own_share(added, "switchman gateway", BARE_RELAY)
    data = {
        "rows": rows,
        "pairs": pairs,
        "added": added,
        "gateway_over_relay": over_relay,
        "notes": notes,
    }
    return Section(key="streaming", title="(c) Streaming", markdown=render(data), data=data)


def _litellm_rows(
    ctx: Context,
    up: Child,
    calls: int,
    warmup: int,
    rows: dict[str, dict[str, Any]],
    pairs: list[tuple[str, str]],
) -> None:
    assert ctx.litellm is not None
    spec = {
        "mode": "stream",
        "upstream_url": up.base_url,
        "model_id": "healthy",
        "alias": ALIAS,
        "api_key": KEY_VALUE,
        "model_list": litellm_model_list(up.base_url, {ALIAS: "healthy"}),
        "calls": calls,
        "warmup": warmup,
    }
    out = _litellm.run_runner(ctx.litellm, spec, ctx.workdir / "ll", timeout_s=600)
    rows["direct (httpx, asyncio)"] = out["direct (httpx, asyncio)"]
    rows["LiteLLM Router"] = out["LiteLLM Router"]
    for row in (rows["direct (httpx, asyncio)"], rows["LiteLLM Router"]):
        row.setdefault("tail_p50_ms", row["total_p50_ms"] - row["ttft_p50_ms"])
    pairs.append(("direct (httpx, asyncio)", "LiteLLM Router"))
    name = "LiteLLM proxy"
    with _litellm.proxy(ctx.litellm, ctx.workdir / "ll", up.base_url, {ALIAS: "healthy"}) as px:
        headers = _litellm.auth_headers()
        rows.update(trio.run(_over_http, up.base_url, name, px, headers, calls, warmup))
    pairs.append((f"direct (for {name})", name))


def render(data: dict[str, Any]) -> str:
    headers = [
        "system",
        "TTFT p50 ms",
        "TTFT p99 ms",
        "total p50 ms",
        "chunks",
        "added TTFT p50 ms",
        "relay µs/chunk",
    ]
    out = []
    for direct, system in data["pairs"]:
        for name in (direct, system):
            r = data["rows"][name]
            extra = data["added"].get(name) if name == system else None
            out.append(
                [
                    name,
                    r["ttft_p50_ms"],
                    r["ttft_p99_ms"],
                    r["total_p50_ms"],
                    r["chunks_mean"],
                    extra["added_ttft_p50_ms"] if extra else None,
                    extra["relay_us_per_chunk"] if extra else None,
                ]
            )
    share = data.get("gateway_over_relay")
    own = ""
    if share is not None:
        own = (
            f"\n\nswitchman gateway over the {share['baseline']} (switchman's own share of the "
            f"gateway figures): added TTFT p50 **{fmt(share['added_ttft_p50_ms'])} ms**, "
            f"relay **{fmt(share['relay_us_per_chunk'])} µs/chunk**."
        )
    notes = "".join(f"\n\n> {n}" for n in data["notes"])
    return markdown_table(headers, out) + own + notes
