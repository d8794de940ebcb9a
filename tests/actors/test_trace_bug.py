"""A bug in tracing (an exception while an event of a call is published) is logged, and
the call it traces goes on: it failed the call, its answer lost to the caller."""

from __future__ import annotations

import logging

import pytest
import trio

import switchman
from switchman import Call
from switchman.actors._hub import TraceHub
from switchman.catalog import SimProfile
from tests._simfleet import fleet, sim_model


def _break_publishing(monkeypatch: pytest.MonkeyPatch, kind: str) -> None:
    """Every trace event of type ``kind`` raises as it is published (a bug in tracing)."""
    publish = TraceHub.publish

    def broken(self: TraceHub, event: switchman.TraceEvent) -> None:
        if event.type == kind:
            raise RuntimeError("a bug in tracing")
        publish(self, event)

    monkeypatch.setattr(TraceHub, "publish", broken)


async def test_a_call_whose_trace_event_cannot_be_published_is_answered(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    _break_publishing(monkeypatch, "attempt.started")
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


async def test_a_breaker_change_that_cannot_be_announced_fails_no_call(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The provider actor announces a breaker change: a bug there crashed the actor, and
    every call in flight on its provider failed with it."""
    _break_publishing(monkeypatch, "breaker.changed")
    failing = sim_model("failing", SimProfile(error_rate=1.0))
    slow = sim_model("slow", SimProfile(latency_ms=3_000.0))
    slow_results: list[switchman.Result] = []
    with caplog.at_level(logging.ERROR), trio.fail_after(60):
        async with switchman.open_router(fleet(failing, slow)) as router:
            events = router.subscribe()
            async with events, trio.open_nursery() as nursery:

                async def watch() -> None:
                    async for _ in events:
                        pass

                async def one() -> None:
                    slow_results.append(await router.call(Call(prompt="s", model="slow")))

                nursery.start_soon(watch)
                async with trio.open_nursery() as calls:
                    for _ in range(5):
                        calls.start_soon(one)
                    await trio.sleep(0.3)
                    for _ in range(6):  # its breaker opens
                        await router.call(Call(prompt="f", model="failing"))
                breaker = {m.alias: m.breaker for p in router.status().providers for m in p.models}
                nursery.cancel_scope.cancel()
    assert breaker["failing"] == "open"
    assert [r.status for r in slow_results] == ["complete"] * 5
    assert "trace event breaker.changed" in caplog.text and "crashed" not in caplog.text
