"""A bug in tracing (an exception while an event of a call is published) is logged, and
the call it traces goes on: it failed the call, its answer lost to the caller."""

from __future__ import annotations

import logging

import pytest
import trio

import switchman
from switchman import Call
from switchman.actors._hub import TraceHub
from tests._simfleet import fleet, sim_model


async def test_a_call_whose_trace_event_cannot_be_published_is_answered(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    publish = TraceHub.publish

    def broken(self: TraceHub, event: switchman.TraceEvent) -> None:
        if event.type == "attempt.started":
            raise RuntimeError("a bug in tracing")
        publish(self, event)

    monkeypatch.setattr(TraceHub, "publish", broken)
    seen: list[str] = []
    with caplog.at_level(logging.ERROR), trio.fail_after(10):
        async with switchman.open_router(fleet(sim_model("m"))) as router:
            events = router.subscribe()
            async with events, trio.open_nursery() as nursery:

                async def watch() -> None:
                    async for event in events:
                        seen.append(event.type)

                nursery.start_soon(watch)
                result = await router.call(Call(prompt="hello", model="m"))
                await trio.testing.wait_all_tasks_blocked()
                nursery.cancel_scope.cancel()
    assert result.status == "complete", result.errors
    assert "call.completed" in seen and "attempt.started" not in seen
    assert "trace event attempt.started of call" in caplog.text
