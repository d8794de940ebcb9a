"""Small simulator fleets for router tests: every behaviour named, nothing random unless asked."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs
import trio

import switchman
from switchman.actors._callrun import CallRun
from switchman.catalog import (
    BudgetsConfig,
    Config,
    KeySpec,
    ModelSpec,
    ProviderSpec,
    RouterConfig,
    RouteSpec,
    SimProfile,
)


def sim_model(alias: str, profile: SimProfile | None = None, **fields: Any) -> ModelSpec:
    base: dict[str, Any] = dict(
        alias=alias,
        provider="sim",
        model_id=alias,
        trust_tier="standard",
        context_window=32_000,
        max_output_tokens=4_096,
        input_per_mtok=1.0,
        output_per_mtok=4.0,
        supports_seed=True,
        sim=profile or SimProfile(),
    )
    base.update(fields)
    return ModelSpec(**base)


def fleet(
    *models: ModelSpec,
    routes: Mapping[str, tuple[str, ...]] | None = None,
    budgets: BudgetsConfig | None = None,
    keys: tuple[KeySpec, ...] = (),
    seed: int = 7,
    **router: Any,
) -> Config:
    router_cfg = attrs.evolve(RouterConfig(seed=seed), **router)
    return Config(
        providers={
            name: ProviderSpec(name=name, kind="sim", max_concurrency=1000)
            for name in sorted({m.provider for m in models})
        },
        models={m.alias: m for m in models},
        routes={n: RouteSpec(name=n, chain=c) for n, c in (routes or {}).items()},
        budgets=budgets or BudgetsConfig(),
        keys=keys,
        router=router_cfg,
        simulated=True,
    )


def routed(*models: ModelSpec, **fields: Any) -> Config:
    """``fleet(*models)`` with the route ``r``: the models, in the order given."""
    return fleet(*models, routes={"r": tuple(m.alias for m in models)}, **fields)


async def streamed(router: switchman.Router, call: switchman.Call) -> tuple[switchman.Result, str]:
    """Stream ``call``: its final result and the text its deltas carried before it (a
    delta after the result, or no result, fails the test)."""
    pieces: list[str] = []
    result: switchman.Result | None = None
    async with router.stream(call) as events:
        async for event in events:
            assert result is None, "an event after the result"
            if isinstance(event, switchman.Delta):
                pieces.append(event.text)
            else:
                result = event
    assert result is not None, "the stream ended without a result"
    return result, "".join(pieces)


async def at_once(router: switchman.Router, calls: list[switchman.Call]) -> list[switchman.Result]:
    """``calls`` sent together, each from its own task: their results, as they finish."""
    results: list[switchman.Result] = []

    async def one(call: switchman.Call) -> None:
        results.append(await router.call(call))

    async with trio.open_nursery() as nursery:
        for call in calls:
            nursery.start_soon(one, call)
    return results


def call_run(call: switchman.Call, **fields: Any) -> CallRun:
    """A call's working state, for the pure steps tested on their own (summaries, merged
    waits, a continuation's messages): nothing is sent on it."""
    base: dict[str, Any] = dict(
        call=call,
        call_id="c",
        job_id=None,
        stream=False,
        reply_to=None,
        input_tokens=1,
        deadline=10.0,
        started=0.0,
    )
    return CallRun(**(base | fields))


def drained(events: trio.MemoryReceiveChannel[switchman.TraceEvent]) -> list[switchman.TraceEvent]:
    """The events waiting in ``events`` now, without waiting for more."""
    out = []
    while True:
        try:
            out.append(events.receive_nowait())
        except trio.WouldBlock:
            return out
