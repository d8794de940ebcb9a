"""The router's own cost per call: ``python -m benchmarks.overhead [--calls N]``.

An embedded router whose only model is the simulator at zero latency (no
network, no sleeps), called sequentially: what remains is switchman itself:
validation, the dispatcher and provider actor hops, eligibility, scoring,
budget reservation and settlement, breaker and learning updates, trace
records and events, redaction of the answer. Prints the median (and p90,
p99) wall time per call in microseconds, and process CPU per call.
"""

from __future__ import annotations

import argparse
import functools
import sys
import time
from typing import Any

import trio

import switchman
from benchmarks._util import percentile
from switchman._call import Intent
from switchman.catalog import Config, ModelSpec, ProviderSpec, SimProfile

PROMPT = "Say something short."


def zero_latency_config() -> Config:
    """One simulator provider and one model that answers at once, never fails."""
    return Config(
        providers={"sim": ProviderSpec(name="sim", kind="sim", max_concurrency=1024)},
        models={
            "instant": ModelSpec(
                alias="instant",
                provider="sim",
                model_id="instant",
                input_per_mtok=1.0,
                output_per_mtok=2.0,
                sim=SimProfile(),
            )
        },
        simulated=True,
    )


def whole_catalog_config() -> Config:
    """Every model of the built-in catalog (10 providers), each on a zero-latency simulator
    under its own provider name: what routing costs when all providers have keys."""
    import attrs

    from switchman.catalog._catalog import builtin_catalog

    catalog = builtin_catalog()
    return Config(
        providers={
            name: ProviderSpec(name=name, kind="sim", max_concurrency=1024)
            for name in catalog.providers
        },
        models={alias: attrs.evolve(m, sim=SimProfile()) for alias, m in catalog.models.items()},
        routes=catalog.routes,
        simulated=True,
    )


def whole_catalog(calls: int, warmup: int) -> dict[str, float]:
    """Median µs per call with ``whole_catalog_config``, for ``auto`` (every eligible model
    ranked) and the route ``claude`` (its own chain only); each in its own trio run."""
    return {
        target: trio.run(
            functools.partial(
                measure,
                calls,
                warmup,
                config=whole_catalog_config(),
                model=target,
                intent="lookup",
            )
        )["median_us"]
        for target in ("auto", "claude")
    }


async def measure(
    calls: int,
    warmup: int,
    *,
    config: Config | None = None,
    model: str = "instant",
    intent: Intent = "unknown",
) -> dict[str, Any]:
    """Sequential calls; per-call wall microseconds and CPU microseconds per call."""
    call = switchman.Call(prompt=PROMPT, model=model, intent=intent)
    async with switchman.open_router(config or zero_latency_config()) as router:
        for _ in range(warmup):
            await router.call(call)
        us: list[float] = []
        failed = 0
        cpu0 = time.process_time()
        for _ in range(calls):
            t0 = time.perf_counter()
            result = await router.call(call)
            us.append((time.perf_counter() - t0) * 1e6)
            failed += result.status != "complete"
        cpu = time.process_time() - cpu0
    return {
        "calls": calls,
        "failed": failed,
        "median_us": percentile(us, 50),
        "p90_us": percentile(us, 90),
        "p99_us": percentile(us, 99),
        "cpu_us_per_call": cpu / calls * 1e6,
    }


async def hop_floor(calls: int, warmup: int, *, scopes: bool = False) -> float:
    """Baseline in the same run: bare trio doing only the hops a call makes.

    caller → dispatcher inbox → spawned call task → provider inbox → spawned attempt
    task → reply to the call task → reply to the caller, with no work at all: the part
    of the router's cost that is the actor design itself. Median µs per round trip.
    ``scopes``: also the three cancel scopes with deadlines every call needs (the call's
    hard deadline, the attempt's timer in the call task, the provider's attempt scope).
    """
    dispatch_send, dispatch_recv = trio.open_memory_channel[Any](256)
    provider_send, provider_recv = trio.open_memory_channel[Any](256)

    async def attempt(reply: Any) -> None:
        if scopes:
            # the provider's scope around the attempt: entered and left, which is its cost
            with trio.CancelScope(deadline=trio.current_time() + 60.0):  # noqa: ASYNC100
                reply.send_nowait("done")
        else:
            reply.send_nowait("done")

    async def provider(task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            task_status.started()
            async for reply in provider_recv:
                nursery.start_soon(attempt, reply)

    async def call_task(reply: Any) -> None:
        send, receive = trio.open_memory_channel[Any](64)
        provider_send.send_nowait(send)
        if scopes:
            now = trio.current_time()
            with trio.CancelScope(deadline=now + 60.0), trio.CancelScope(deadline=now + 30.0):
                await receive.receive()
        else:
            await receive.receive()
        reply.send_nowait("result")

    async def dispatcher(task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            task_status.started()
            async for reply in dispatch_recv:
                nursery.start_soon(call_task, reply)

    us: list[float] = []
    async with trio.open_nursery() as nursery:
        await nursery.start(provider)
        await nursery.start(dispatcher)
        for i in range(warmup + calls):
            t0 = time.perf_counter()
            send, receive = trio.open_memory_channel[Any](1)
            dispatch_send.send_nowait(send)  # as Router.call does: the wait is the checkpoint
            await receive.receive()
            if i >= warmup:
                us.append((time.perf_counter() - t0) * 1e6)
        nursery.cancel_scope.cancel()
    return percentile(us, 50)


async def sim_floor(calls: int, warmup: int) -> float:
    """Baseline in the same run: the simulator's own work for one attempt (its plan and
    its events, delivered to a no-op), which runs in-process and so is inside the
    router figure without being the router's. Median µs per attempt."""
    import random

    from switchman.adapters._base import ProviderRequest
    from switchman.sim import run_sim_attempt

    model = zero_latency_config().models["instant"]
    request = ProviderRequest(
        model_id=model.model_id,
        messages=switchman.Call(prompt=PROMPT, model="instant").chat(),
        max_tokens=1024,
    )
    rng = random.Random(0)

    async def ignore(event: Any) -> None:
        return None

    us: list[float] = []
    for i in range(warmup + calls):
        t0 = time.perf_counter()
        await run_sim_attempt(model, request, rng, ignore)
        if i >= warmup:
            us.append((time.perf_counter() - t0) * 1e6)
    return percentile(us, 50)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.overhead", description=__doc__)
    parser.add_argument("--calls", type=int, default=5000)
    parser.add_argument("--warmup", type=int, default=500)
    args = parser.parse_args(argv)
    out = trio.run(measure, args.calls, args.warmup)
    floor = trio.run(hop_floor, args.calls, args.warmup)
    scoped = trio.run(functools.partial(hop_floor, args.calls, args.warmup, scopes=True))
    sim = trio.run(sim_floor, args.calls, args.warmup)
    whole = whole_catalog(args.calls // 5, args.warmup // 5)
    print(
        f"switchman router overhead, simulator at zero latency, {out['calls']} sequential calls:\n"
        f"  median {out['median_us']:.0f} µs per call (p90 {out['p90_us']:.0f}, "
        f"p99 {out['p99_us']:.0f}); CPU {out['cpu_us_per_call']:.0f} µs per call; "
        f"{out['failed']} failed\n"
        f"  baseline, same run: bare trio making the same hops with no work: "
        f"median {floor:.0f} µs; with the three deadline scopes every call enters "
        f"(call, attempt timer, provider's attempt): {scoped:.0f} µs\n"
        f"  inside the figure but not the router's: the simulator's own work per attempt "
        f"(plan, events): median {sim:.0f} µs\n"
        f"  with the whole catalog ({len(whole_catalog_config().models)} models, 10 providers) "
        f"on the simulator: model=auto median {whole['auto']:.0f} µs "
        f"(every eligible model ranked), the route claude {whole['claude']:.0f} µs"
    )
    return 0 if out["failed"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
