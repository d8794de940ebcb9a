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
