"""A caller that leaves while the router is past its backlog: its cancel finds the
dispatcher's inbox full and gives up after a second (``Router._cancel``), so the call
itself notices, when its wait ends, that nobody reads its answer, and ends then: it never
takes a slot, tries a model or spends for nobody."""

from __future__ import annotations

import pytest
import trio

import switchman
import switchman._router as router_module
from switchman import Call, TraceEvent
from switchman.actors import _dispatcher
from switchman.catalog import BudgetsConfig, SimProfile
from tests._simfleet import fleet, sim_model


async def test_a_caller_gone_while_its_call_waited_spends_nothing(
    autojump_clock: trio.abc.Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    # one slot, two calls waiting for it, two messages in the inbox: the sixth call's
    # caller waits to send, and the fifth's cancel waits behind it
    monkeypatch.setattr(_dispatcher, "BACKLOG", 2)
    monkeypatch.setattr(router_module, "INBOX_SIZE", 2)
    slow = sim_model("slow", SimProfile(latency_ms=10_000.0), input_per_mtok=100.0)
    config = fleet(slow, budgets=BudgetsConfig(global_daily_usd=1_000.0), capacity=1)
    events: list[TraceEvent] = []
    results: dict[str, switchman.Result] = {}
    with trio.fail_after(600):
        async with switchman.open_router(config) as router:

            async def watch() -> None:
                with router.subscribe(buffer=10_000) as feed:
                    async for event in feed:
                        events.append(event)

            async def call(job: str) -> None:
                results[job] = await router.call(Call(prompt=job, model="slow"), job_id=job)

            async def leaves(job: str) -> None:
                with trio.move_on_after(2.0):  # (its cancel then waits 1 s, and gives up)
                    await call(job)

            async with trio.open_nursery() as nursery:
                nursery.start_soon(watch)
                await trio.sleep(0.001)
                for n in range(1, 5):
                    nursery.start_soon(call, f"job-{n}")
                    await trio.sleep(0.01)
                nursery.start_soon(leaves, "gone")
                await trio.sleep(0.01)
                nursery.start_soon(call, "job-6")
                nursery.start_soon(call, "job-7")
                await trio.sleep(200.0)
                spent = (await router.spend("global"))["day"]
                nursery.cancel_scope.cancel()
    assert "gone" not in results
    assert sorted(results) == ["job-1", "job-2", "job-3", "job-4", "job-6", "job-7"]
    assert {r.status for r in results.values()} == {"complete"}
    gone = [e for e in events if e.job_id == "gone"]
    assert [e.type for e in gone] == ["call.accepted", "call.failed"]
    assert "its caller left while it waited" in str(gone[-1].data)
    assert spent == pytest.approx(sum(r.cost_usd for r in results.values()), abs=1e-12)
