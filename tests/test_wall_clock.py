"""Trace times follow a wall clock that moved (an NTP step, a machine resumed from sleep,
which trio's monotonic clock does not count): they were anchored once, at start, and read
hours behind the jobs they belong to."""

from __future__ import annotations

import time

import pytest
import trio

import switchman
from switchman import Call, TraceEvent
from tests._simfleet import fleet, sim_model


async def test_trace_times_follow_a_wall_clock_that_moved(monkeypatch: pytest.MonkeyPatch) -> None:
    real = time.time
    async with switchman.open_router(fleet(sim_model("m"))) as router:
        before = await router.call(Call(prompt="hi", model="m"))
        assert abs(before.trace.attempts[0].started_at - real()) < 5.0
        monkeypatch.setattr(time, "time", lambda: real() + 7200.0)  # two hours on
        events: list[TraceEvent] = []
        async with router.subscribe() as stream:
            after = await router.call(Call(prompt="hi", model="m"))
            with trio.move_on_after(1.0):
                async for event in stream:
                    events.append(event)
                    if event.type in ("call.completed", "call.failed"):
                        break
    attempt = after.trace.attempts[0]
    assert abs(attempt.started_at - (real() + 7200.0)) < 5.0
    assert attempt.ended_at >= attempt.started_at
    assert events and all(abs(e.ts - (real() + 7200.0)) < 5.0 for e in events)


async def test_a_step_during_a_call_keeps_its_times_in_order(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The clock stepped back an hour while a call ran: its attempt ended an hour before it
    began, and its events went back in time. A call keeps the wall time it began with; the
    next call follows the step."""
    from switchman.catalog import SimProfile

    real = time.time
    slow = sim_model("slow", SimProfile(latency_ms=300, ttft_ms=100))
    async with switchman.open_router(fleet(slow)) as router:
        events: list[TraceEvent] = []
        async with router.subscribe() as stream, trio.open_nursery() as nursery:

            async def step() -> None:
                await trio.sleep(0.15)
                monkeypatch.setattr(time, "time", lambda: real() - 3600.0)

            async def watch() -> None:
                async for event in stream:
                    events.append(event)

            nursery.start_soon(step)
            nursery.start_soon(watch)
            during = await router.call(Call(prompt="hi", model="slow"))
            after = await router.call(Call(prompt="hi", model="slow"))
            await trio.sleep(0.05)
            nursery.cancel_scope.cancel()
    (attempt,) = during.trace.attempts
    assert attempt.ended_at - attempt.started_at == pytest.approx(0.3, abs=0.2)
    mine = [e.ts for e in events if e.call_id == during.call_id]
    assert len(mine) >= 3 and mine == sorted(mine)
    assert abs(after.trace.attempts[0].started_at - (real() - 3600.0)) < 5.0
