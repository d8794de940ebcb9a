"""A provider with every attempt slot taken (its ``max_concurrency``): a call with nowhere
else to go waits for a slot, and is woken as one of the attempts on it ends."""

from __future__ import annotations

import attrs
import trio

import switchman
from switchman import Call, Caller
from switchman.catalog import Config, SimProfile

from ._simfleet import fleet, sim_model


def _limited(slots: int, latency_ms: float) -> Config:
    config = fleet(sim_model("slow", SimProfile(latency_ms=latency_ms, ttft_ms=10)))
    sim = attrs.evolve(config.providers["sim"], max_concurrency=slots)
    return attrs.evolve(config, providers={"sim": sim})


async def _a_then_b(
    slots: int, latency_ms: float, a_calls: int, gap_s: float = 0.0
) -> dict[str, switchman.Result]:
    """Team a's calls (``gap_s`` apart), then 0.1 s later team b's one, each result by
    name (a0, a1, ..., b)."""
    results: dict[str, switchman.Result] = {}
    async with switchman.open_router(_limited(slots, latency_ms)) as router:

        async def one(team: str, name: str) -> None:
            call = Call(prompt=name, model="slow", caller=Caller(handle=team))
            results[name] = await router.call(call)

        async with trio.open_nursery() as nursery:
            for i in range(a_calls):
                nursery.start_soon(one, "a", f"a{i}")
                if gap_s:
                    await trio.sleep(gap_s)
            await trio.sleep(0.1)
            nursery.start_soon(one, "b", "b")
    return results


async def test_a_call_waits_for_a_slot_not_failed(autojump_clock: trio.abc.Clock) -> None:
    """Another team's calls held every slot: the call failed at once ("at concurrency
    limit"); it now waits until a slot frees."""
    results = await _a_then_b(2, 1_000, 2)
    b = results["b"]
    assert b.status == "complete", b.errors
    first, answered = b.trace.attempts
    assert first.outcome == "unavailable" and first.error == "at concurrency limit 2"
    assert answered.outcome == "success"
    (wait,) = b.trace.waits
    assert wait.reason == "slow paused: at concurrency limit 2"
    # woken as the first of a's attempts ended, not at a later poll (1 s after it asked)
    freed = min(results[a].trace.attempts[-1].ended_at for a in ("a0", "a1"))
    assert 0 <= answered.started_at - freed < 0.01


async def test_freed_slots_are_taken_at_once(autojump_clock: trio.abc.Clock) -> None:
    """40 calls of 100 ms on 4 slots: each slot is taken again as it frees (every waiter
    asked again on its own 0.25 s timer: the last answered at 2.4 s, the slots idle more
    than half the time)."""
    done: list[float] = []
    async with switchman.open_router(_limited(4, 100)) as router:
        start = trio.current_time()

        async def one(i: int) -> None:
            result = await router.call(Call(prompt=f"hi {i}", model="slow"))
            assert result.status == "complete", result.errors
            done.append(trio.current_time() - start)

        async with trio.open_nursery() as nursery:
            for i in range(40):
                nursery.start_soon(one, i)
    assert len(done) == 40
    assert max(done) < 1.2  # 10 rounds of 100 ms (and what each round's sim adds)


async def test_teams_take_a_full_providers_freed_slots_in_turn(
    autojump_clock: trio.abc.Clock,
) -> None:
    """Team a has six calls waiting for the provider's two slots when team b's one comes:
    b's call is woken on the next turn, not after all of a's (first come, first served
    held it three rounds)."""
    start = trio.current_time()
    results = await _a_then_b(2, 300, 8, gap_s=0.01)
    b = results["b"]
    assert b.status == "complete", b.errors
    answered = b.trace.attempts[-1]
    assert answered.outcome == "success"
    # the first of a's calls ended about 0.2 s after b came: b's turn came with the next
    assert answered.started_at - b.trace.started_at < 0.5
    assert all(r.status == "complete" for r in results.values())
    assert trio.current_time() - start < 2.0
