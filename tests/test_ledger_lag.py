"""The budget ledger under overload, through the real router: its inbox full behind a
lagging ledger loses no settle or release (each was dropped after 5 s, its spend with it),
and a model asked again under one attempt number holds under a new id each time (a
release lost had left the id open, and the next ask crashed the ledger until the whole
router gave up: ``SupervisorEscalation`` in an embedding application)."""

from __future__ import annotations

from typing import Any

import attrs
import pytest
import trio

import switchman
import switchman._router as router_module
from switchman import Call
from switchman.actors import _attempts
from switchman.actors._messages import Settle
from switchman.catalog import BudgetsConfig, SimProfile
from tests._simfleet import at_once, fleet, sim_model


async def test_settles_behind_a_lagging_ledger_are_all_counted(
    autojump_clock: trio.abc.Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The ledger stops reading for 20 s at its first settle while 400 calls end: every
    one of their settles is counted once it reads again, the spend their results say."""
    real = router_module.run_ledger

    async def lagging(inbox: Any, *args: Any, **kwargs: Any) -> None:
        lagged = False

        class Lagging:
            def __aiter__(self) -> Lagging:
                return self

            async def __anext__(self) -> Any:
                nonlocal lagged
                try:
                    msg = await inbox.receive()
                except trio.EndOfChannel:
                    raise StopAsyncIteration from None
                if isinstance(msg, Settle) and not lagged:
                    lagged = True
                    await trio.sleep(20.0)  # (a starved loop, a slow disk)
                return msg

        await real(Lagging(), *args, **kwargs)

    monkeypatch.setattr(router_module, "run_ledger", lagging)
    paid = sim_model("paid", SimProfile(latency_ms=2_000.0), input_per_mtok=100.0)
    config = fleet(paid, budgets=BudgetsConfig(global_daily_usd=1_000.0), capacity=1024)
    with trio.fail_after(600):
        async with switchman.open_router(config) as router:
            calls = [Call(prompt=f"call {i}", model="paid") for i in range(400)]
            results = await at_once(router, calls)
            await trio.sleep(30.0)  # (the ledger reads again)
            spent = (await router.spend("global"))["day"]
    assert [r.status for r in results] == ["complete"] * 400
    assert spent == pytest.approx(sum(r.cost_usd for r in results), abs=1e-9)


async def test_a_model_asked_again_holds_under_a_new_id_and_a_lost_release_harms_none(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Eight calls to a model one at a time (its provider's one slot): each waiting call
    asks again as the slot frees. With every release lost, the router still answers all
    of them; before, the second ask reused the id, and the ledger crashed four times."""
    reserved: list[str] = []
    real_reserve = _attempts.reserve_hold

    async def spy(env: Any, rid: str, *args: Any) -> Any:
        reserved.append(rid)
        return await real_reserve(env, rid, *args)

    async def lost(env: Any, rid: str) -> None:
        pass  # (a release the ledger never got)

    monkeypatch.setattr(_attempts, "reserve_hold", spy)
    monkeypatch.setattr(_attempts, "release_hold", lost)
    config = fleet(
        sim_model("slow", SimProfile(latency_ms=200.0)),
        budgets=BudgetsConfig(global_daily_usd=100.0),
    )
    one_slot = attrs.evolve(config.providers["sim"], max_concurrency=1)
    config = attrs.evolve(config, providers={"sim": one_slot})
    with trio.fail_after(60):
        async with switchman.open_router(config) as router:
            results = await at_once(router, [Call(prompt=f"q{i}", model="slow") for i in range(8)])
    assert [r.status for r in results] == ["complete"] * 8, [r.errors for r in results]
    assert len(reserved) > 8 and len(set(reserved)) == len(reserved), reserved
