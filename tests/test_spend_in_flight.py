"""Spend while a call is still running: an attempt's bill reaches the ledger when the
attempt ends, not when its call does (a process killed during the fallback keeps it), and
two calls an application gives the same job id each hold their own budget. The real
router on the simulator."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import trio

import switchman
from switchman import Call, Caller, Options, Params, Timeouts
from switchman.catalog import BudgetsConfig, SimProfile
from tests._simfleet import at_once, fleet, sim_model

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


async def test_an_attempt_under_a_budget_goes_once_its_hold_is_saved(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each attempt of a burst under a budget, when it reaches its provider, finds its
    reservation in the store already: a process killed outright then counts it once it
    restarts (saved 50 ms after, a burst killed in between was forgotten: 4 to 11 of 50
    attempts a provider had received, then a budget could be overspent by their cost)."""
    import switchman.sim
    from switchman.store import open_store

    dear = sim_model("dear", SimProfile(latency_ms=300.0), input_per_mtok=1000.0)
    config = fleet(dear, budgets=BudgetsConfig(global_daily_usd=100.0))
    real = switchman.sim.run_sim_attempt
    found: list[bool] = []

    async def sent(*args: Any, **kwargs: Any) -> Any:
        spend = await store.load_spend()  # what a process started after a kill would read
        found.append(len(spend.get("held", ())) >= 1)
        return await real(*args, **kwargs)

    monkeypatch.setattr(switchman.sim, "run_sim_attempt", sent)
    with trio.fail_after(30):
        async with (
            open_store(tmp_path / "server.db") as store,
            switchman.open_router(config, store=store) as router,
            trio.open_nursery() as nursery,
        ):
            for i in range(20):
                nursery.start_soon(router.call, Call(prompt=f"call {i}", model="dear"))
    assert len(found) == 20 and all(found), found


def _sent(router: switchman.Router, provider: str) -> int:
    """The attempts ``provider`` has been given and not finished."""
    return sum(p.in_flight for p in router.status().providers if p.name == provider)


async def test_a_save_of_holds_writes_the_holds_that_changed_not_all_open(
    tmp_path: Path,
) -> None:
    """With 40 attempts holding (a slow model), each quick call after them saves its own
    hold as it opens and ends, not the 40 others: every save had written every hold open,
    20 ms a save with a thousand, which each attempt under a budget waits for. The store
    still has them all, as a process started after a kill would read them."""
    from switchman.store import open_store

    slow = sim_model("slow", SimProfile(ttft_ms=3_000.0), input_per_mtok=1.0, provider="p")
    quick = sim_model("quick", input_per_mtok=1.0)
    config = fleet(slow, quick, budgets=BudgetsConfig(global_daily_usd=100.0))
    whole: list[int] = []  # the holds each save of them all wrote
    changed: list[int] = []  # the holds each save of changes added or dropped
    with trio.fail_after(30):
        async with open_store(tmp_path / "server.db") as store:
            save_spend, save_change = store.save_spend, store.save_spend_change

            async def save_all(data: Any) -> None:
                whole.append(len(data.get("held", ())))
                await save_spend(data)

            async def save_some(settled: Any, added: Any, ended: Any) -> None:
                changed.append(len(added) + len(ended))
                await save_change(settled, added, ended)

            store.save_spend = save_all  # type: ignore[method-assign]
            store.save_spend_change = save_some  # type: ignore[method-assign]
            async with (
                switchman.open_router(config, store=store) as router,
                trio.open_nursery() as nursery,
            ):
                for i in range(40):
                    nursery.start_soon(router.call, Call(prompt=f"wait {i}", model="slow"))
                while _sent(router, "p") < 40:  # noqa: ASYNC110 (no event says so: polled)
                    await trio.sleep(0.01)
                whole_before, changed_before = len(whole), len(changed)
                assert whole_before == 1, whole  # (the first save alone, of the holds open)
                for i in range(10):
                    result = await router.call(Call(prompt=f"quick {i}", model="quick"))
                    assert result.status == "complete", result.errors
                    assert len((await store.load_spend())["held"]) >= 40
                assert len(whole) == whole_before, whole[whole_before:]
                during = changed[changed_before:]
                assert len(during) >= 10 and max(during) <= 2, during
            assert "held" not in await store.load_spend()


async def test_a_store_refusing_writes_does_not_hold_attempts_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The store cannot save spend (its disk full): attempts under a budget go on at once,
    none waiting for a save that will not come (each would wait an hour here)."""
    from switchman.actors import _persister
    from switchman.store import open_store

    monkeypatch.setattr(_persister, "HOLD_SAVE_S", 3600.0)
    quick = sim_model("quick", SimProfile(latency_ms=0.0, ttft_ms=0.0), input_per_mtok=1.0)
    config = fleet(quick, budgets=BudgetsConfig(global_daily_usd=100.0))
    with trio.fail_after(30):
        async with open_store(tmp_path / "server.db") as store:

            async def full(data: object) -> None:
                raise OSError(28, "No space left on device")

            store.save_spend = full  # type: ignore[method-assign]
            async with switchman.open_router(config, store=store) as router:
                for i in range(20):
                    result = await router.call(Call(prompt=f"call {i}", model="quick"))
                    assert result.status == "complete"


async def test_spend_no_budget_holds_counts_in_the_hour_its_attempt_began(
    autojump_clock: trio.abc.Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A call begun a second before the hour turns and answered after: its spend counts in
    the hour it began, with a budget (its reservation's periods) or without (it counted in
    the next hour then: /budgets mixed the two)."""
    from switchman.actors import _ledger

    offset = time.time() - trio.current_time()  # the router's wall clock, on virtual time
    monkeypatch.setitem(
        _ledger.run_ledger.__kwdefaults__, "wall", lambda: offset + trio.current_time()
    )
    slow = sim_model("slow", SimProfile(latency_ms=3_000.0), input_per_mtok=1000.0)
    for budgets in (BudgetsConfig(), BudgetsConfig(global_daily_usd=100.0)):
        async with switchman.open_router(fleet(slow, budgets=budgets)) as router:
            now = offset + trio.current_time()
            await trio.sleep(3600.0 - now % 3600.0 - 1.0)  # a second before the hour ends
            result = await router.call(Call(prompt="hello", model="slow"))
            assert result.status == "complete" and result.cost_usd > 0
            assert (offset + trio.current_time()) % 3600.0 < 60.0  # (answered in the next)
            spent = await router.spend("global")
        assert spent["hour"] == 0.0, (budgets, spent)


async def test_a_burst_waits_for_the_room_its_own_calls_in_flight_hold(
    autojump_clock: trio.abc.Clock,
) -> None:
    """Twenty calls at once against a budget that holds four of them at a time (each holds
    what it could cost, and is billed a tenth of it): the others wait for room as the
    first ones settle, and all twenty are answered within the budget (all but four were
    refused at once, the budget 3% spent). Room the budget has spent is not waited for."""
    m = sim_model("m", SimProfile(latency_ms=800.0), input_per_mtok=1.0, output_per_mtok=4.0)
    config = fleet(m, budgets=BudgetsConfig(global_daily_usd=0.02))
    async with switchman.open_router(config) as router:
        results = await at_once(router, [Call(prompt=f"call {i}", model="m") for i in range(20)])
        spent = (await router.spend("global"))["day"]
        assert all(r.status == "complete" for r in results), [r.errors for r in results]
        assert spent == pytest.approx(sum(r.cost_usd for r in results)) and spent <= 0.02
        waited = [w for r in results for w in r.trace.waits if w.reason.startswith("budget room")]
        assert len(waited) >= 16 and all(w.ms > 0 for w in waited)
        # one wait each in its trace, however often the room it saw went to another (a wait
        # and a refusal for every hold that ended meanwhile, before)
        each = [sum(w.reason.startswith("budget room") for w in r.trace.waits) for r in results]
        assert max(each) == 1, sorted(each)
        # the room is spent, not held: refused at once, no wait
        tight = fleet(m, budgets=BudgetsConfig(global_daily_usd=spent + 0.001))
    async with switchman.open_router(tight) as router:
        await router.call(Call(prompt="first", model="m"))
        started = trio.current_time()
        refused = await router.call(Call(prompt="x" * 4000, model="m"))
        assert refused.status == "failed" and refused.errors[0].code == "budget_exceeded"
        assert trio.current_time() == started and not refused.trace.waits


async def test_budget_room_goes_to_the_calls_waiting_for_it_in_the_order_they_came(
    autojump_clock: trio.abc.Clock,
) -> None:
    """Twenty calls, 10 ms apart, against a budget that holds four of them at a time: the
    room each settled call leaves goes to the call that has waited longest (all woken at
    once, whichever ran first took it, and a call could wait out its whole wait while
    calls that came after it were answered)."""
    m = sim_model("m", SimProfile(latency_ms=800.0), input_per_mtok=1.0, output_per_mtok=4.0)
    config = fleet(m, budgets=BudgetsConfig(global_daily_usd=0.02))
    results: dict[int, switchman.Result] = {}
    async with switchman.open_router(config) as router:

        async def one(i: int) -> None:
            results[i] = await router.call(Call(prompt=f"call {i}", model="m"))

        async with trio.open_nursery() as nursery:
            for i in range(20):
                nursery.start_soon(one, i)
                await trio.sleep(0.01)
    assert all(r.status == "complete" for r in results.values())
    sent = [results[i].trace.attempts[0].started_at for i in range(20)]
    assert sent == sorted(sent), [sorted(range(20), key=sent.__getitem__)]
    waited = [sum(w.ms for w in results[i].trace.waits) for i in range(20)]
    assert max(waited) < 4 * 800.0, waited  # (the fifth group's wait, at the most)


_PRICED = ("input_per_mtok", "output_per_mtok", "context_window", "max_output_tokens")


async def test_budget_room_is_kept_for_a_large_call_once_it_has_let_others_pass(
    autojump_clock: trio.abc.Clock,
) -> None:
    """A call needing two thirds of the budget while small calls (3 s each) keep arriving,
    0.3 s apart: it lets them pass for a second, then the room is kept for it, the small
    calls submitted after it (waiting, or new) wait behind it. It waited its whole 30 s
    and was refused, the budget mostly unspent, while a hundred calls after it were
    answered. The small calls name a route whose second model shares the budget: they wait
    for their first model rather than fall back (the room is kept on both)."""
    m = sim_model(
        "m",
        SimProfile(latency_ms=3_000.0),
        input_per_mtok=1.0,
        output_per_mtok=4.0,
        context_window=64_000,
        max_output_tokens=32_000,
    )
    other = sim_model("other", m.sim, **{k: getattr(m, k) for k in _PRICED})
    config = fleet(
        m, other, budgets=BudgetsConfig(global_daily_usd=0.12), routes={"r": ("m", "other")}
    )
    results: dict[str, switchman.Result] = {}
    async with switchman.open_router(config) as router:

        async def one(name: str, max_tokens: int) -> None:
            model = "m" if name == "big" else "r"
            call = Call(prompt=name, model=model, params=Params(max_tokens=max_tokens))
            results[name] = await router.call(call)

        async with trio.open_nursery() as nursery:
            for i in range(12):
                nursery.start_soon(one, f"small {i}", 2_000)
            await trio.sleep(0.01)
            nursery.start_soon(one, "big", 20_000)
            i = 12
            while "big" not in results:
                nursery.start_soon(one, f"small {i}", 2_000)
                await trio.sleep(0.3)
                i += 1
    big = results["big"]
    assert big.status == "complete", big.errors
    waited = [w for w in big.trace.waits if w.reason.startswith("budget room")]
    assert len(waited) == 1 and waited[0].ms < 6_000  # its second, then the holds' 3 s
    assert all(r.status == "complete" for r in results.values())
    # the small calls that waited behind it say why
    behind = [
        r
        for r in results.values()
        for w in r.trace.waits or ()
        if w.reason.endswith(": a call waiting since before it held it")
    ]
    # behind it, a small call waits for its first model: the second shares the budget
    assert behind and {r.model for r in behind} == {"m"}


async def test_budget_room_is_not_kept_for_a_call_waiting_on_an_older_hold(
    autojump_clock: trio.abc.Clock,
) -> None:
    """The large call waits on a long call's hold, older than its wait: keeping room for
    it would make the small calls after it wait as long, for nothing (each of them, with a
    5 s deadline, was refused while the budget had room for five)."""
    slow = sim_model("slow", SimProfile(latency_ms=50_000.0), **_ROOMY)
    m = sim_model("m", SimProfile(latency_ms=2_000.0), **_ROOMY)
    config = fleet(slow, m, budgets=BudgetsConfig(global_daily_usd=0.12), default_hard_ms=60_000)
    small = Call(prompt="s", model="m", params=Params(max_tokens=4_000), options=_hard(5_000))
    results: list[switchman.Result] = []
    async with switchman.open_router(config) as router, trio.open_nursery() as nursery:
        long = Call(prompt="long", model="slow", params=Params(max_tokens=80_000))
        nursery.start_soon(router.call, long)
        await trio.sleep(0.1)
        big = Call(prompt="big", model="m", params=Params(max_tokens=80_000), options=_hard(15_000))

        async def the_big() -> None:
            big_waits.extend((await router.call(big)).trace.waits or ())

        big_waits: list[Any] = []
        nursery.start_soon(the_big)
        for _ in range(10):
            await trio.sleep(1.0)
            results.append(await router.call(small))
        await trio.sleep(5.0)  # (the large call's deadline has passed)
        nursery.cancel_scope.cancel()
    assert [r.status for r in results] == ["complete"] * 10, [r.errors for r in results]
    assert max(r.latency_ms for r in results) < 2_500
    assert len(big_waits) == 1  # (it did wait, for room the long call holds)


async def test_a_budget_refusing_only_for_what_calls_in_flight_hold_is_not_told_as_refusing(
    autojump_clock: trio.abc.Clock,
) -> None:
    """A call refused for room a long call holds (its budget could pay once that ends) did
    put the global budget on the board as refusing: /health read degraded with two thirds
    of the day's budget left."""
    slow = sim_model("slow", SimProfile(latency_ms=50_000.0), **_ROOMY)
    config = fleet(slow, budgets=BudgetsConfig(global_daily_usd=0.12))
    async with switchman.open_router(config) as router, trio.open_nursery() as nursery:
        long = Call(prompt="long", model="slow", params=Params(max_tokens=80_000))
        nursery.start_soon(router.call, long)
        await trio.sleep(0.1)
        soon = Call(
            prompt="soon", model="slow", params=Params(max_tokens=80_000), options=_hard(3_000)
        )
        refused = await router.call(soon)
        assert refused.errors[0].code == "budget_exceeded"
        assert router.status().global_budget_refusing == ()
        nursery.cancel_scope.cancel()


def _hard(ms: int) -> Options:
    return Options(timeouts=Timeouts(hard_ms=ms))


#: $1 a million tokens in and out, room for 80,000 of output: $0.08
_ROOMY: dict[str, Any] = dict(
    input_per_mtok=1.0, output_per_mtok=1.0, context_window=200_000, max_output_tokens=100_000
)


async def test_a_wait_for_budget_room_ends_before_the_deadline_and_before_a_slot_is_needed(
    autojump_clock: trio.abc.Clock,
) -> None:
    """A call of a team whose budget one long call holds waits for room, but: with a
    5 s deadline, it is refused (budget_exceeded, not the deadline's timeout) before the
    deadline; and once another caller waits for one of the router's slots, it gives its
    slot up (it held one idle while other teams queued)."""
    slow = sim_model("slow", SimProfile(latency_ms=45_000.0), input_per_mtok=1.0)
    budgets = BudgetsConfig(callers={"tight": {"daily_usd": 0.005}})
    tight = Caller(handle="tight")
    async with (
        switchman.open_router(fleet(slow, budgets=budgets, capacity=2)) as router,
        trio.open_nursery() as nursery,
    ):
        nursery.start_soon(router.call, Call(prompt="long", model="slow", caller=tight))
        await trio.sleep(1.0)
        hurried = Call(
            prompt="soon",
            model="slow",
            caller=tight,
            options=Options(timeouts=Timeouts(hard_ms=5_000)),
        )
        started = trio.current_time()
        refused = await router.call(hurried)
        assert refused.errors[0].code == "budget_exceeded", refused.errors
        assert 3.5 <= trio.current_time() - started < 5.0
        assert [w.reason for w in refused.trace.waits] == [
            "budget room for slow: calls in flight held it"
        ]
        # a wait for room gives the slot up once another call needs it
        waiting: list[switchman.Result] = []

        async def patient() -> None:
            waiting.append(await router.call(Call(prompt="later", model="slow", caller=tight)))

        nursery.start_soon(patient)
        await trio.sleep(2.0)
        assert router.status().in_flight_calls == 2 and not waiting  # it waits for room
        started = trio.current_time()
        other = await router.call(Call(prompt="other team", model="slow"))
        assert other.status == "complete"
        assert waiting and waiting[0].errors[0].code == "budget_exceeded"
        assert trio.current_time() - started < 46.0  # (not behind the wait for room)
        nursery.cancel_scope.cancel()


class _SlowStore:
    """A store whose every save of spend takes 3 s (a disk that crawls)."""

    async def load_spend(self) -> dict[str, Any]:
        return {}

    async def load_stats(self) -> dict[str, Any]:
        return {}

    async def save_spend(self, data: object) -> None:
        await trio.sleep(3.0)

    async def save_stats(self, data: object) -> None:
        pass


async def test_a_slow_store_holds_up_an_attempt_a_second_at_most_and_says_so(
    autojump_clock: trio.abc.Clock,
) -> None:
    """Each save of spend takes 3 s: an attempt waits a second for its hold to be saved,
    in its trace, and the next ones do not wait while that save is still going (each
    call took a second longer, unexplained, before)."""
    quick = sim_model("quick", SimProfile(latency_ms=20.0), input_per_mtok=1.0)
    config = fleet(quick, budgets=BudgetsConfig(global_daily_usd=100.0))
    async with switchman.open_router(config, store=_SlowStore()) as router:
        started = trio.current_time()
        results = [await router.call(Call(prompt=f"call {i}", model="quick")) for i in range(10)]
        took = trio.current_time() - started
    assert all(r.status == "complete" for r in results)
    first = [w.reason for w in results[0].trace.waits]
    assert first == ["its budget hold saved to the store"], first
    assert took < 4.0, took  # (virtual time: ten waits of a second were 10.2 s)


async def test_an_attempt_reserves_no_more_input_than_its_model_s_window_can_bill() -> None:
    """A prompt of more bytes than the model's window (its token estimate fits it) is
    reserved at the window's worth of input, the most any report is billed for: it was
    reserved a token a byte, at the long-input price, and a budget that covers the most
    the call could cost refused it."""
    m = sim_model(
        "m",
        context_window=1_000,
        max_output_tokens=100,
        input_per_mtok=1_000.0,
        output_per_mtok=0.0,
    )
    prompt = "word " * 600  # 3,000 bytes; about 750 tokens
    for limit, status in ((1.05, "complete"), (0.95, "failed")):
        config = fleet(m, budgets=BudgetsConfig(global_daily_usd=limit))
        async with switchman.open_router(config) as router:
            result = await router.call(Call(prompt=prompt, model="m", params=Params(max_tokens=10)))
        assert result.status == status, (limit, result.errors)
        if status == "failed":  # (the window's worth, $1.00, does not fit $0.95)
            assert result.errors[0].code == "budget_exceeded"
            assert "$1.000000 m could cost" in result.errors[0].message


@pytest.mark.parametrize("price", [1.2, 1.3])
async def test_room_that_exactly_covers_a_need_lets_it_in_whatever_the_float_noise(
    price: float, autojump_clock: trio.testing.MockClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The room freed was weighed in whole nano-dollars against the raw estimate: at $1.3
    a million tokens the estimate reads 0.00043030000000000005, and room of exactly
    0.0004303 did not cover it. B waited out A2's whole attempt (or, the room being the
    whole budget, was refused at once), where at $1.2 it went in as A1's hold ended."""
    import switchman.sim
    from switchman._errors import BadRequest
    from switchman._result import Usage
    from switchman.adapters._base import ResponseStarted, StreamEnd, TextDelta
    from switchman.policy._billing import most_bill
    from switchman.policy._budget import from_nanos, to_nanos
    from switchman.policy._eligibility import output_tokens
    from switchman.policy._estimate import estimate_input_tokens

    started: list[int] = []
    a2 = [True]

    async def player(model: Any, request: Any, rng: Any, emit: Any, **_: Any) -> None:
        started.append(len(started) + 1)
        if started[-1] == 1:  # A1 holds its room a second, and fails: its hold released
            await trio.sleep(1.0)
            raise BadRequest("bad request", provider=model.provider, status=400)
        await trio.sleep(40.0 if started[-1] == 2 and a2[0] else 0.5)  # A2 holds its room long
        await emit(ResponseStarted(status=200, headers={}))
        await emit(TextDelta(text="ok"))
        await emit(StreamEnd(usage=Usage(input_tokens=10, output_tokens=1), finish_reason="stop"))

    monkeypatch.setattr(switchman.sim, "run_sim_attempt", player)
    model = sim_model("a", input_per_mtok=price, output_per_mtok=price * 3)
    call = Call(
        prompt="hello there",
        model="a",
        params=Params(max_tokens=100),
        options=Options(timeouts=Timeouts(hard_ms=120_000, soft_ms=120_000)),
    )
    need = most_bill(model, call, "", output_tokens(call, model, estimate_input_tokens(call)))
    if price == 1.3:
        assert need > from_nanos(to_nanos(need))  # (the noise this is about)
    for attempts in (2, 1):  # the budget two attempts' worth, then one's (the refusal side)
        started.clear()
        a2[0] = attempts == 2
        budget = BudgetsConfig(global_daily_usd=from_nanos(attempts * to_nanos(need)))
        seconds, result = await _b_after_a1(fleet(model, budgets=budget), call, attempts == 2)
        assert result.status == "complete", (attempts, result.errors)
        # in as A1 ended (at 1 s), answered half a second on
        assert seconds == pytest.approx(1.3, abs=0.05), (attempts, seconds)


async def _b_after_a1(config: Any, call: Call, with_a2: bool) -> tuple[float, switchman.Result]:
    """A1 at once (and A2 just after), B at 0.2 s: how long B took, and its result."""
    took: dict[str, tuple[float, switchman.Result]] = {}
    async with switchman.open_router(config) as router:

        async def one(name: str, delay: float) -> None:
            await trio.sleep(delay)
            began = trio.current_time()
            result = await router.call(call)
            took[name] = (trio.current_time() - began, result)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(one, "A1", 0.0)
            if with_a2:
                nursery.start_soon(one, "A2", 0.01)
            nursery.start_soon(one, "B", 0.2)
    return took["B"]
