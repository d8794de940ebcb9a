"""What the router learned of a model moves with the model, through the whole router on the
simulator (virtual time):

- a model slow for a while gets its share back sooner after it recovers: the ranking's
  fresh look at it counts for half its average (blended a fifth at a time, it took 1,040 to
  1,190 calls at five a second, three seeds; 225 to 463 now);
- what a model refuses for one intent is not held against it for intents it has not served
  (one refusal of ``code`` had it ranked last for ``summarize``: 0 of 30 calls)."""

from __future__ import annotations

import collections
from typing import Any

import attrs
import pytest
import trio

import switchman
import switchman.sim
from switchman import Call, Options
from switchman.catalog import SimProfile

from ._simfleet import fleet, sim_model

ALIKE = SimProfile(latency_ms=800, ttft_ms=200)


async def test_a_model_slow_for_a_while_gets_its_share_back_soon_after(
    autojump_clock: trio.abc.Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    slowed: set[str] = set()
    play = switchman.sim.run_sim_attempt

    async def slowed_sim(model: Any, *args: Any, **kw: Any) -> Any:
        if model.alias in slowed:  # five times slower
            slow = attrs.evolve(model.sim, latency_ms=4_000, ttft_ms=1_000)
            model = attrs.evolve(model, sim=slow)
        return await play(model, *args, **kw)

    monkeypatch.setattr(switchman.sim, "run_sim_attempt", slowed_sim)
    firsts: dict[int, str] = {}

    async def one(i: int) -> None:
        result = await router.call(Call(prompt="Summarise the report.", intent="summarize"))
        assert result.status == "complete"
        firsts[i] = result.trace.attempts[0].alias

    models = [sim_model(name, ALIKE) for name in ("a", "b", "c")]
    async with (
        switchman.open_router(fleet(*models, seed=1)) as router,
        trio.open_nursery() as nursery,
    ):
        for i in range(1_600):
            if i == 300:  # the model most calls go to slows down...
                recent = collections.Counter(firsts[k] for k in range(200, 290))
                victim = recent.most_common(1)[0][0]
                slowed.add(victim)
            if i == 700:  # ... and recovers
                slowed.clear()
            nursery.start_soon(one, i)
            await trio.sleep(0.2)
    order = [firsts[i] for i in range(1_600)]
    assert order[400:700].count(victim) < 30  # it was left while slow
    back = next((k for k in range(700, 1_550) if order[k : k + 50].count(victim) >= 10), None)
    assert back is not None and back - 700 < 600, back  # (401 calls; 1,040-1,190 blended)


async def test_a_refusal_for_one_intent_is_not_held_against_the_model_for_others(
    autojump_clock: trio.abc.Clock,
) -> None:
    strict = sim_model("strict", SimProfile(latency_ms=100, refusal_rate=1.0))
    other = sim_model("other", SimProfile(latency_ms=100))
    async with switchman.open_router(fleet(strict, other, seed=3)) as router:
        named = Call(prompt="write a parser", intent="code", model="strict")
        call = attrs.evolve(named, options=Options(fallback=("other",)))
        result = await router.call(call)
        assert [a.outcome for a in result.trace.attempts] == ["refused", "success"]
        (status,) = [m for p in router.status().providers for m in p.models if m.alias == "strict"]
    assert status.stats["code"]["refusal_rate"] == 1.0
    # what the model is for intents it has not served: its refusal of code is not in it
    assert "*" not in status.stats or not status.stats["*"]["refusal_rate"]
