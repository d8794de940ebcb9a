"""A call's trace explains it on its own: why each attempt followed the one before, where
the time went outside the attempts, and which candidates were passed over once attempts
began (an audit could not tell these from the stored trace; only live events had some)."""

from __future__ import annotations

import re

import pytest
import trio
import trio.testing

import switchman
from switchman import Call, Caller, Options, Params, Timeouts
from switchman.catalog import BudgetsConfig, SimProfile
from switchman.policy._breaker import BreakerConfig

from ._simfleet import fleet, routed, sim_model, streamed

GOOD = sim_model("good", SimProfile(latency_ms=100, ttft_ms=50))
DOWN = sim_model("down", SimProfile(error_rate=1.0, latency_ms=50))


def _accounted_ms(result: switchman.Result) -> float:
    """The call's time as its trace accounts for it: attempts and waits."""
    trace = result.trace
    attempts = sum(a.ended_at - a.started_at for a in trace.attempts) * 1000.0
    return attempts + sum(w.ms for w in trace.waits)


async def test_a_wait_for_a_free_slot_is_in_the_trace(autojump_clock: trio.abc.Clock) -> None:
    slow = sim_model("slow", SimProfile(latency_ms=500, ttft_ms=10))
    results: dict[str, switchman.Result] = {}
    async with switchman.open_router(fleet(slow, capacity=1)) as router:

        async def one(name: str) -> None:
            results[name] = await router.call(Call(prompt=name, model="slow"))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(one, "first")
            await trio.sleep(0.1)
            nursery.start_soon(one, "second")
    first, second = results["first"], results["second"]
    assert first.trace.waits == ()
    (wait,) = second.trace.waits
    assert wait.after_attempt == 0
    assert wait.reason == "a free slot: the router's 1 were all taken"
    # from its start, 0.1 s after the first call's, until the first call was done
    assert wait.ms == pytest.approx(first.latency_ms - 100, abs=2)
    (attempt,) = second.trace.attempts
    assert (attempt.started_at - second.trace.started_at) * 1000 == pytest.approx(wait.ms, abs=1)
    assert _accounted_ms(second) == pytest.approx(second.latency_ms, abs=2)


async def test_each_attempt_says_why_it_followed_and_a_backoff_is_a_wait(
    autojump_clock: trio.abc.Clock,
) -> None:
    config = routed(DOWN, GOOD)
    async with switchman.open_router(config) as router:
        result = await router.call(Call(prompt="hi", model="r"))
    assert result.status == "complete" and result.model == "good"
    trace = result.trace
    assert trace.order == "named"  # the route's chain, whatever the ranking says
    afters = [a.after for a in trace.attempts]
    assert afters[0] is None
    # (0.75 s, and up to a quarter of a second more at random)
    said = re.fullmatch(
        r"retry: upstream error 529, retry in (0\.7[5-9]|0\.[89]\d|1\.00) s", afters[1] or ""
    )
    assert said is not None, afters[1]
    assert afters[2] is not None and afters[2].startswith("fallback: ")
    (wait,) = trace.waits
    assert wait.after_attempt == 1
    assert wait.reason == f"backoff before retrying down: {afters[1].removeprefix('retry: ')}"
    assert wait.ms == pytest.approx(1000 * float(said[1]), abs=6)
    assert trace.skipped == ()
    assert _accounted_ms(result) == pytest.approx(result.latency_ms, abs=2)


async def test_auto_orders_by_score(autojump_clock: trio.abc.Clock) -> None:
    async with switchman.open_router(fleet(GOOD)) as router:
        result = await router.call(Call(prompt="hi"))
    assert result.trace.order == "score"
    assert result.trace.attempts[0].after is None


async def test_a_retry_its_breaker_forbids_is_a_skip_with_the_time(
    autojump_clock: trio.abc.Clock,
) -> None:
    """Its failure opened the breaker: no retry, and the trace says so (it said only
    "fallback" in a live event)."""
    breaker = BreakerConfig(consecutive_failures=1, cooldown_s=5.0)
    config = routed(DOWN, GOOD)
    async with switchman.open_router(config, breaker=breaker) as router:
        result = await router.call(Call(prompt="hi", model="r"))
    assert result.model == "good"
    assert [a.alias for a in result.trace.attempts] == ["down", "good"]
    (skip,) = result.trace.skipped
    assert skip.alias == "down"
    assert skip.reason == "not retried: its breaker opened, for 5.0s"
    assert result.trace.attempts[1].after == f"fallback: down {skip.reason}"


async def test_a_model_its_budget_refused_is_a_skip_though_the_call_succeeded(
    autojump_clock: trio.abc.Clock,
) -> None:
    pricey = sim_model("pricey", input_per_mtok=1000.0, output_per_mtok=1000.0)
    config = routed(pricey, GOOD, budgets=BudgetsConfig(global_daily_usd=0.05))
    async with switchman.open_router(config) as router:
        result = await router.call(Call(prompt="hi", model="r", params=Params(max_tokens=100)))
    assert result.status == "complete" and result.model == "good"
    assert "pricey" in result.trace.eligibility.eligible
    assert [a.alias for a in result.trace.attempts] == ["good"]
    (skip,) = result.trace.skipped
    assert skip.alias == "pricey" and "budget" in skip.reason
    assert result.trace.attempts[0].after == "fallback: pricey not tried"


async def test_a_continuation_says_so_and_a_cut_attempts_bill_is_marked_estimated(
    autojump_clock: trio.abc.Clock,
) -> None:
    cut = sim_model("cut", SimProfile(cut_rate=1.0, tokens_per_s=100))
    config = routed(cut, sim_model("rescue", supports_prefill=True))
    async with switchman.open_router(config) as router:
        result, text = await streamed(router, Call(prompt="Explain recursion", model="r"))
    assert result.status == "complete" and text == result.answer
    broken, rescued = result.trace.attempts
    # the simulator reports no usage for a cut answer: billed at switchman's bound
    assert broken.outcome == "error" and broken.usage_estimated and broken.cost_usd > 0
    assert rescued.outcome == "success" and not rescued.usage_estimated
    assert rescued.after is not None and rescued.after.startswith("fallback: ")
    sent = re.search(r"; it continues the ([\d,]+) characters already sent$", rescued.after)
    assert sent is not None and 0 < int(sent[1].replace(",", "")) < len(result.answer)


async def test_a_model_too_small_to_continue_is_a_skip(autojump_clock: trio.abc.Clock) -> None:
    cuts = sim_model("a", SimProfile(cut_rate=1.0), context_window=40_000)
    small = sim_model("b", context_window=32_000, context_includes_output=False)
    call = Call(
        prompt="Summarize: " + "the quick brown fox " * 6398,  # about 32,000 tokens
        model="r",
        options=Options(verbosity="standard"),
    )
    async with switchman.open_router(fleet(cuts, small, routes={"r": ("a", "b")})) as router:
        result, _ = await streamed(router, call)
    assert result.status == "failed"
    (skip,) = result.trace.skipped
    assert skip.alias == "b" and skip.reason.startswith("context window 32000 too small")


async def test_a_breaker_change_is_stamped_no_earlier_than_the_attempt_that_caused_it() -> None:
    """It is published after the call's own ``attempt.finished`` (a watcher reads the
    attempt, then what it did to the breaker), and was stamped before it: its time came
    before the attempt's, against the order it arrived in."""
    downs = [sim_model(f"down{i}", SimProfile(error_rate=1.0)) for i in range(30)]
    # (its first failure opens it, for longer than a retry's backoff: no retry)
    breaker = BreakerConfig(consecutive_failures=1, cooldown_s=5.0)
    pairs: list[tuple[float, float]] = []
    async with switchman.open_router(fleet(*downs), breaker=breaker) as router:
        with router.subscribe(buffer=10_000) as events:
            for down in downs:
                await router.call(Call(prompt="hi", model=down.alias))
            await trio.testing.wait_all_tasks_blocked()
            finished = 0.0
            while True:
                try:
                    event = events.receive_nowait()
                except trio.WouldBlock:
                    break
                if event.type == "attempt.finished":
                    finished = event.ts
                elif event.type == "breaker.changed" and event.data["to"] == "open":
                    pairs.append((finished, event.ts))
    assert len(pairs) >= 20
    assert all(opened >= attempt for attempt, opened in pairs), pairs


async def test_time_is_accounted_once_when_calls_wait_on_a_flapping_breaker(
    autojump_clock: trio.abc.Clock,
) -> None:
    """Calls that ask again and again for a model whose breaker keeps opening: the asks
    are one record from the first to the latest, and the waits between them were counted
    a second time (and numbered after attempts that never came)."""
    flaky = sim_model("flaky", SimProfile(error_rate=0.7, latency_ms=40, ttft_ms=5))
    breaker = BreakerConfig(consecutive_failures=1, cooldown_s=0.2)
    results: list[switchman.Result] = []
    async with switchman.open_router(fleet(flaky), breaker=breaker) as router:

        async def one(i: int) -> None:
            results.append(await router.call(Call(prompt=f"hi {i}", model="flaky")))

        async with trio.open_nursery() as nursery:
            for i in range(30):
                nursery.start_soon(one, i)
    merged = [r for r in results if any(a.outcome == "unavailable" for a in r.trace.attempts)]
    assert merged  # (the case in question happened)
    for result in results:
        assert _accounted_ms(result) == pytest.approx(result.latency_ms, abs=2), result.trace
        assert all(0 <= w.after_attempt <= len(result.trace.attempts) for w in result.trace.waits)


async def test_a_wait_the_deadline_cut_short_is_in_the_trace(
    autojump_clock: trio.abc.Clock,
) -> None:
    slow = sim_model("slow", SimProfile(latency_ms=1_000, ttft_ms=10))
    results: dict[str, switchman.Result] = {}
    async with switchman.open_router(fleet(slow, capacity=1)) as router:

        async def one(name: str, hard_ms: int) -> None:
            timeouts = Timeouts(hard_ms=hard_ms)
            call = Call(prompt=name, model="slow", options=Options(timeouts=timeouts))
            results[name] = await router.call(call)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(one, "holder", 5_000)
            await trio.sleep(0.1)
            nursery.start_soon(one, "impatient", 300)
    impatient = results["impatient"]
    assert impatient.status == "failed" and impatient.trace.attempts == ()
    (wait,) = impatient.trace.waits
    assert wait.after_attempt == 0 and wait.reason.startswith("a free slot")
    assert wait.ms == pytest.approx(300, abs=1) == pytest.approx(impatient.latency_ms, abs=1)


async def test_one_teams_flood_waits_behind_itself_not_in_front_of_others(
    autojump_clock: trio.abc.Clock,
) -> None:
    """Capacity 2, team a sends 6 calls of 1 s, then team b one: b's call takes the next
    slot that frees (it waited behind all of a's, about 3 s)."""
    slow = sim_model("slow", SimProfile(latency_ms=1_000, ttft_ms=10))
    done: dict[str, float] = {}
    async with switchman.open_router(fleet(slow, capacity=2)) as router:
        started = trio.current_time()

        async def one(team: str, name: str) -> None:
            call = Call(prompt=name, model="slow", caller=Caller(handle=team))
            result = await router.call(call)
            assert result.ok
            done[name] = trio.current_time() - started

        async with trio.open_nursery() as nursery:
            for i in range(6):
                nursery.start_soon(one, "a", f"a{i}")
            await trio.sleep(0.1)
            assert router.status().waiting_calls == 4
            nursery.start_soon(one, "b", "b")
    assert 1.0 < done["b"] < 2.2  # the first slot to free, at about 1 s: then its own 1 s
    assert len(done) == 7  # and a's all ran, in their turn


async def test_a_failure_names_the_fallbacks_the_call_itself_kept_out(
    autojump_clock: trio.abc.Clock,
) -> None:
    """A route's or a fallback's model left out by what the call asked (its max_tokens
    above the model's limit) is named in the failure's error with why, not only in the
    trace: the error had blamed the model tried alone, as if it had been the whole chain.
    An ``auto`` call's error does not list every other model."""
    down = sim_model("down", SimProfile(error_rate=1.0), max_output_tokens=30_000)
    small = sim_model("small", max_output_tokens=8_000)
    config = fleet(down, small, routes={"r": ("down", "small")})
    left_out = "not tried: small: max_tokens 20000 above the model's limit of 8000 output tokens"
    big = Params(max_tokens=20_000)
    async with switchman.open_router(config) as router:
        by_route = await router.call(Call(prompt="hi", model="r", params=big))
        by_fallback = await router.call(
            Call(prompt="hi", model="down", params=big, options=Options(fallback=("small",)))
        )
        fits = await router.call(Call(prompt="hi", model="r", params=Params(max_tokens=100)))
        anything = await router.call(Call(prompt="hi", model="auto", params=big))
    for result in (by_route, by_fallback):
        assert result.status == "failed"
        assert result.errors[0].message.endswith(left_out), result.errors[0].message
        assert result.errors[0].code == "all_models_failed" or result.errors[0].provider
    assert fits.status == "complete" and fits.model == "small"
    assert anything.status == "failed" and "not tried" not in anything.errors[0].message
