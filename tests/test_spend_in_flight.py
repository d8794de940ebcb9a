"""Spend while a call is still running: an attempt's bill reaches the ledger when the
attempt ends, not when its call does (a process killed during the fallback keeps it), and
two calls an application gives the same job id each hold their own budget. The real
router on the simulator."""

from __future__ import annotations

import trio

import switchman
from switchman import Call, Params
from switchman.catalog import BudgetsConfig, SimProfile
from tests._simfleet import fleet, sim_model

# a model whose answers break after text began (billed), and a slow one to fall back on
CUTS = sim_model("cuts", SimProfile(cut_rate=1.0), input_per_mtok=1000.0, output_per_mtok=1000.0)
SLOW = sim_model("slow", SimProfile(latency_ms=2_000.0), input_per_mtok=1.0, output_per_mtok=1.0)


async def test_a_cut_attempt_s_bill_is_spent_before_its_call_ends() -> None:
    config = fleet(CUTS, SLOW, routes={"r": ("cuts", "slow")})
    with trio.fail_after(30):
        async with switchman.open_router(config) as router, trio.open_nursery() as nursery:
            results: list[switchman.Result] = []

            async def call() -> None:
                results.append(await router.call(Call(prompt="hello there", model="r")))

            nursery.start_soon(call)
            for _ in range(200):  # the first attempt breaks at once; the fallback is slow
                await trio.sleep(0.05)
                if (await router.spend("global"))["day"] > 0:
                    break
            assert not results, "the call ended before its first attempt's bill was seen"
            assert (await router.spend("global"))["day"] > 0
    (result,) = results
    assert result.status == "complete" and result.model == "slow"
    cut = result.trace.attempts[0]
    assert cut.alias == "cuts" and cut.cost_usd > 0


async def test_two_calls_given_one_job_id_each_hold_their_budget() -> None:
    config = fleet(SLOW, budgets=BudgetsConfig(global_daily_usd=10.0))
    call = Call(prompt="hi", model="slow", params=Params(max_tokens=10))
    with trio.fail_after(30):
        async with switchman.open_router(config) as router, trio.open_nursery() as nursery:
            results: list[switchman.Result] = []

            async def one() -> None:
                results.append(await router.call(call, job_id="same"))

            nursery.start_soon(one)
            nursery.start_soon(one)
    assert [r.status for r in results] == ["complete", "complete"], [r.errors for r in results]
