"""LiteLLM's side of the in-process scenarios, run by the Python of LiteLLM's own venv.

``python _litellm_runner.py SPEC.json OUT.json``. This file imports only the
standard library, httpx and litellm (it runs outside switchman's environment):
asyncio, a ``litellm.Router`` and a plain ``httpx.AsyncClient`` baseline in the
same event loop, measured in interleaved blocks exactly like the switchman
side (``benchmarks._inproc``). SPEC's ``mode``:

- ``inproc``: sequential calls; latency and process CPU per call;
- ``stream``: sequential streamed calls; time to first content chunk and to
  the end of the stream;
- ``failover``: ``concurrency`` workers over a mix of model groups whose
  primaries fail in different ways, with fallbacks to a healthy group.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import sys
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("LITELLM_TELEMETRY", "False")

import httpx
import litellm  # type: ignore[import-not-found,unused-ignore]

litellm.suppress_debug_info = True
litellm.telemetry = False
#: the prompt when the spec gives none (the suite always gives the one its switchman side sends)
PROMPT = "Say something short."


def _pct(values: list[float], q: float) -> float:
    if not values:
        return math.nan
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100.0
    low = math.floor(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def _summary(latencies: list[float], cpu_s: float, failures: int) -> dict[str, Any]:
    """``latencies`` holds every call, failed ones included (``failures`` of them)."""
    ms = [x * 1000.0 for x in latencies]
    calls = len(ms)
    return {
        "n": float(len(ms)),
        "p50_ms": _pct(ms, 50),
        "p90_ms": _pct(ms, 90),
        "p99_ms": _pct(ms, 99),
        "mean_ms": sum(ms) / len(ms) if ms else math.nan,
        "max_ms": max(ms) if ms else math.nan,
        "calls": calls,
        "failures": failures,
        "cpu_us_per_call": cpu_s / calls * 1e6 if calls else math.nan,
    }


class _Series:
    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.cpu_s = 0.0
        self.failures = 0


async def _block(series: _Series, one: Callable[[], Awaitable[bool]], n: int, record: bool) -> None:
    cpu0 = time.process_time()
    lat: list[float] = []
    failures = 0
    for _ in range(n):
        t0 = time.perf_counter()
        ok = await one()
        lat.append(time.perf_counter() - t0)
        failures += not ok
    if record:
        series.cpu_s += time.process_time() - cpu0
        series.latencies.extend(lat)
        series.failures += failures


def _router(spec: dict[str, Any]) -> litellm.Router:
    """A Router for the spec's model list; with its ``fallbacks`` and, when the spec gives
    one, its ``num_retries`` (otherwise LiteLLM's default)."""
    kwargs: dict[str, Any] = {"model_list": spec["model_list"]}
    if spec.get("fallbacks"):
        kwargs["fallbacks"] = [{k: v} for k, v in spec["fallbacks"].items()]
    if spec.get("num_retries") is not None:
        kwargs["num_retries"] = spec["num_retries"]
    return litellm.Router(**kwargs)


async def inproc(spec: dict[str, Any]) -> dict[str, Any]:
    url = spec["upstream_url"] + "/v1/chat/completions"
    router = _router(spec)
    messages = [{"role": "user", "content": spec.get("prompt", PROMPT)}]
    body = {"model": spec["model_id"], "messages": messages}
    headers = {"authorization": f"Bearer {spec['api_key']}"}
    direct, routed = _Series(), _Series()
    async with httpx.AsyncClient() as client:

        async def d() -> bool:
            response = await client.post(url, json=body, headers=headers)
            data = response.json()
            return response.status_code == 200 and bool(data["choices"][0]["message"]["content"])

        async def r() -> bool:
            try:
                response = await router.acompletion(model=spec["alias"], messages=messages)
            except Exception:
                return False
            return bool(response.choices[0].message.content)

        per_block = max(1, spec["calls"] // spec["rounds"])
        await _block(direct, d, spec["warmup"], False)
        await _block(routed, r, spec["warmup"], False)
        for _ in range(spec["rounds"]):
            await _block(direct, d, per_block, True)
            await _block(routed, r, per_block, True)
    return {
        "direct (httpx, asyncio)": _summary(direct.latencies, direct.cpu_s, direct.failures),
        "LiteLLM Router": _summary(routed.latencies, routed.cpu_s, routed.failures),
    }


def _first_content(line: str) -> bool:
    if not line.startswith("data:") or "[DONE]" in line:
        return False
    try:
        chunk = json.loads(line[5:])
    except ValueError:
        return False
    choices = chunk.get("choices") or []
    return bool(choices and (choices[0].get("delta") or {}).get("content"))


class _Stream:
    """Streamed calls of one system: TTFT, total and content chunks of each answered
    call; a call that fails (an error, a non-200 status, no content) is counted, not
    dropped."""

    def __init__(self) -> None:
        self.ttft: list[float] = []
        self.total: list[float] = []
        self.chunks: list[float] = []
        self.failures = 0

    def add(self, sample: tuple[float, float, int] | None) -> None:
        if sample is None:
            self.failures += 1
        else:
            self.ttft.append(sample[0])
            self.total.append(sample[1])
            self.chunks.append(float(sample[2]))

    def summary(self) -> dict[str, Any]:
        ttft = [x * 1000.0 for x in self.ttft]
        total = [x * 1000.0 for x in self.total]
        tail = [b - a for a, b in zip(ttft, total, strict=True)]
        return {
            "n": len(ttft),
            "failures": self.failures,
            "ttft_p50_ms": _pct(ttft, 50),
            "ttft_p99_ms": _pct(ttft, 99),
            "total_p50_ms": _pct(total, 50),
            "tail_p50_ms": _pct(tail, 50),
            "chunks_mean": sum(self.chunks) / len(self.chunks) if self.chunks else math.nan,
        }


async def stream(spec: dict[str, Any]) -> dict[str, Any]:
    """Streamed calls, the Router and direct httpx alternating call by call, with the
    spec's ``prompt`` (the one every system of the suite is asked)."""
    url = spec["upstream_url"] + "/v1/chat/completions"
    router = _router(spec)
    messages = [{"role": "user", "content": spec.get("prompt", PROMPT)}]
    body = {"model": spec["model_id"], "messages": messages, "stream": True}
    headers = {"authorization": f"Bearer {spec['api_key']}"}
    out = {"direct (httpx, asyncio)": _Stream(), "LiteLLM Router": _Stream()}
    async with httpx.AsyncClient() as client:

        async def d() -> tuple[float, float, int] | None:
            t0 = time.perf_counter()
            ttft = None
            chunks = 0
            try:
                async with client.stream("POST", url, json=body, headers=headers) as response:
                    if response.status_code != 200:
                        await response.aread()
                        return None
                    async for line in response.aiter_lines():
                        if _first_content(line):
                            chunks += 1
                            if ttft is None:
                                ttft = time.perf_counter() - t0
            except httpx.HTTPError:
                return None
            return None if ttft is None else (ttft, time.perf_counter() - t0, chunks)

        async def r() -> tuple[float, float, int] | None:
            t0 = time.perf_counter()
            ttft = None
            chunks = 0
            try:
                response = await router.acompletion(
                    model=spec["alias"], messages=messages, stream=True
                )
                async for chunk in response:
                    if chunk.choices and chunk.choices[0].delta.content:
                        chunks += 1
                        if ttft is None:
                            ttft = time.perf_counter() - t0
            except Exception:
                return None
            return None if ttft is None else (ttft, time.perf_counter() - t0, chunks)

        for _ in range(spec["warmup"]):
            await d()
            await r()
        for _ in range(spec["calls"]):
            out["direct (httpx, asyncio)"].add(await d())
            out["LiteLLM Router"].add(await r())
    return {name: v.summary() for name, v in out.items()}


async def failover(spec: dict[str, Any]) -> dict[str, Any]:
    router = _router(spec)
    messages = [{"role": "user", "content": spec.get("prompt", PROMPT)}]
    plan: list[str] = spec["plan"]
    latencies: list[float] = []
    ok = 0
    failed = 0
    next_i = 0

    async def worker() -> None:
        nonlocal ok, failed, next_i
        while next_i < len(plan):
            group = plan[next_i]
            next_i += 1
            t0 = time.perf_counter()
            try:
                response = await asyncio.wait_for(
                    router.acompletion(model=group, messages=messages), spec["timeout_s"]
                )
                good = bool(response.choices[0].message.content)
            except Exception:
                good = False
            latencies.append(time.perf_counter() - t0)
            ok += good
            failed += not good

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(spec["concurrency"])))
    elapsed = time.perf_counter() - t0
    ms = [x * 1000.0 for x in latencies]
    return {
        "num_retries": router.num_retries,
        "calls": ok + failed,
        "ok": ok,
        "success_rate": ok / (ok + failed) if ok + failed else math.nan,
        "p50_ms": _pct(ms, 50),
        "p99_ms": _pct(ms, 99),
        "throughput_rps": (ok + failed) / elapsed if elapsed > 0 else math.nan,
    }


MODES: dict[str, Callable[[dict[str, Any]], Coroutine[Any, Any, dict[str, Any]]]] = {
    "inproc": inproc,
    "stream": stream,
    "failover": failover,
}


def main() -> int:
    with open(sys.argv[1], encoding="utf-8") as f:
        spec = json.load(f)
    result: dict[str, Any] = asyncio.run(MODES[spec["mode"]](spec))
    result["_litellm_version"] = getattr(litellm, "__version__", None) or _version()
    with open(sys.argv[2], "w", encoding="utf-8") as f:
        json.dump(result, f)
    return 0


def _version() -> str:
    from importlib.metadata import version

    return version("litellm")


if __name__ == "__main__":
    sys.exit(main())
