"""The whole router on the simulator: routing, every fallback trigger, budgets, resilience."""

from __future__ import annotations

import math
import re

import attrs
import pytest
import trio
import trio.testing

import switchman
from switchman import Call, Options, Params, Timeouts
from switchman.catalog import BudgetsConfig, ServerConfig, SimProfile
from switchman.sim import expected_answer

from ._simfleet import call_run, drained, fleet, routed, sim_model, streamed

GOOD = sim_model("good", SimProfile(latency_ms=100, ttft_ms=50))


async def test_call_answers_with_model_cost_and_trace(autojump_clock: trio.abc.Clock) -> None:
    config = fleet(GOOD, sim_model("other", SimProfile(latency_ms=100), trust_tier="untrusted"))
    async with switchman.open_router(config) as router:
        result = await router.call(Call(prompt="What is the capital of France?", model="good"))
    assert result.status == "complete"
    assert result.model == "good" and result.provider == "sim"
    assert result.simulated
    assert result.answer == expected_answer("good", "What is the capital of France?", 1024)
    assert result.usage.output_tokens > 0
    expected_cost = GOOD.cost(result.usage.input_tokens, result.usage.output_tokens)
    assert result.cost_usd == pytest.approx(expected_cost)
    (attempt,) = result.trace.attempts
    assert attempt.outcome == "success" and attempt.alias == "good"
    assert attempt.cost_usd == pytest.approx(expected_cost)
    # a named model is the only candidate: "other" is neither checked nor scored for it
    assert result.trace.eligibility.eligible == ("good",)
    assert result.trace.eligibility.excluded == ()
    assert [r.alias for r in result.trace.ranking] == ["good"]
    assert result.ttft_ms is not None and result.ttft_ms >= 50


async def test_only_what_a_call_can_reach_is_ranked(autojump_clock: trio.abc.Clock) -> None:
    models = [sim_model(f"m{i}") for i in range(12)]
    config = fleet(*models, routes={"pair": ("m3", "m7")})
    async with switchman.open_router(config) as router:
        auto = await router.call(Call(prompt="hi", model="auto"))
        route = await router.call(Call(prompt="hi", model="pair"))
        more = await router.call(
            Call(prompt="hi", model="m1", options=Options(fallback=("m3", "m7")))
        )
        everything = await router.call(
            Call(prompt="hi", model="m1", options=Options(fallback=("auto",)))
        )
    assert len(auto.trace.ranking) == 12
    assert {r.alias for r in route.trace.ranking} == {"m3", "m7"}
    assert {r.alias for r in more.trace.ranking} == {"m1", "m3", "m7"}
    assert len(everything.trace.ranking) == 12  # "auto" as a fallback reaches every model
    # eligibility is checked for what a call can reach, in the order it names them
    assert route.trace.eligibility.eligible == ("m3", "m7")
    assert more.trace.eligibility.eligible == ("m1", "m3", "m7")
    assert len(auto.trace.eligibility.eligible) == len(everything.trace.eligibility.eligible) == 12
    assert route.model in ("m3", "m7") and more.model == "m1"


async def test_auto_excludes_with_reasons(autojump_clock: trio.abc.Clock) -> None:
    config = fleet(GOOD, sim_model("weak", trust_tier="untrusted"))
    async with switchman.open_router(config) as router:
        result = await router.call(Call(prompt="hi", model="auto", min_trust="standard"))
    assert result.model == "good"
    (excluded,) = result.trace.eligibility.excluded
    assert excluded.alias == "weak" and "trust" in excluded.reason


async def test_no_eligible_model_names_the_reasons(autojump_clock: trio.abc.Clock) -> None:
    async with switchman.open_router(fleet(GOOD)) as router:
        result = await router.call(Call(prompt="hi", min_trust="trusted"))
    assert result.status == "failed"
    assert result.errors[0].code == "no_eligible_model"
    assert "good" in result.errors[0].message and "trust" in result.errors[0].message
    assert result.errors[0].retry_after_s is None  # what the call asks: no point waiting


async def test_no_eligible_model_for_now_says_when_one_is_back(
    autojump_clock: trio.abc.Clock,
) -> None:
    """Its breaker open (a cool-down of 30 s), the only model the call names is left out
    for now: the error says when it is back, and the exception a caller catches too."""
    from switchman.policy._breaker import BreakerConfig

    broken = sim_model("broken", SimProfile(error_rate=1.0))
    breaker = BreakerConfig(consecutive_failures=2, min_calls=100, cooldown_s=30.0)
    async with switchman.open_router(fleet(broken), breaker=breaker) as router:
        for _ in range(2):
            assert (await router.call(Call(prompt="hi", model="broken"))).status == "failed"
        await trio.sleep(10.0)
        result = await router.call(Call(prompt="hi", model="broken"))
    lead = result.errors[0]
    assert lead.code == "no_eligible_model" and "breaker open" in lead.message
    assert lead.retry_after_s == pytest.approx(20.0, abs=0.1)
    with pytest.raises(switchman.NoEligibleModel) as caught:
        result.raise_for_status()
    assert caught.value.result is result


async def test_bad_calls_are_rejected_clearly(autojump_clock: trio.abc.Clock) -> None:
    async with switchman.open_router(fleet(GOOD)) as router:
        with pytest.raises(switchman.ValidationError, match="unknown model or route 'nope'"):
            await router.call(Call(prompt="hi", model="nope"))
        with pytest.raises(switchman.ValidationError, match=r"params\.seed"):
            await router.call(Call(prompt="hi", options=Options(determinism="strict")))
        warm = Call(prompt="hi", params=Params(temperature=1.2, seed=3))
        with pytest.raises(switchman.ValidationError, match=r"params\.temperature: is 1\.2, but"):
            await router.call(attrs.evolve(warm, options=Options(determinism="strict")))
        with pytest.raises(switchman.ValidationError, match=r"options\.fallback\[0\]"):
            await router.call(Call(prompt="hi", model="good", options=Options(fallback=("x",))))
    routed = fleet(GOOD, sim_model("other"), routes={"team": ("good", "other")})
    async with switchman.open_router(routed) as router:
        with pytest.raises(
            switchman.ValidationError,
            match=r"'team' is a route: fallbacks are model aliases \(its chain is good, other\)",
        ):
            await router.call(Call(prompt="hi", model="good", options=Options(fallback=("team",))))


async def test_a_model_named_by_its_providers_id_is_understood(
    autojump_clock: trio.abc.Clock,
) -> None:
    """Applications hard-code the provider's model name (gpt-5.4-mini), not switchman's
    alias (openai/gpt-5.4-mini): a model id that one model has reaches that model, as a
    call's model and as a fallback; so does one that two aliases of one provider's model
    share (the first configured answers); an id models of two providers share asks for
    the alias."""
    one = sim_model("lab/one", model_id="one-v2")
    other = sim_model("lab/other", SimProfile(refusal_rate=1.0), model_id="other-v1")
    twin_a = sim_model("a/shared", model_id="shared-7b")
    twin_b = sim_model("b/shared", model_id="shared-7b", provider="sim-b")
    mine = sim_model("my/one", model_id="one-v2")  # a second alias of lab/one
    async with switchman.open_router(fleet(one, other, twin_a, twin_b, mine)) as router:
        direct = await router.call(Call(prompt="hello", model="one-v2"))
        fallen = await router.call(
            Call(prompt="hello", model="other-v1", options=Options(fallback=("one-v2",)))
        )
        with pytest.raises(
            switchman.ValidationError,
            match=r"'shared-7b' is the id of several models: name one of a/shared, b/shared",
        ):
            await router.call(Call(prompt="hello", model="shared-7b"))
    assert direct.status == "complete" and direct.model == "lab/one"
    assert fallen.status == "complete" and fallen.model == "lab/one"
    assert fallen.trace.attempts[0].alias == "lab/other"


async def test_named_route_runs_its_chain_in_order(autojump_clock: trio.abc.Clock) -> None:
    broken = sim_model("broken", SimProfile(error_rate=1.0))
    config = fleet(broken, GOOD, sim_model("third"), routes={"team": ("broken", "good", "third")})
    async with switchman.open_router(config) as router:
        result = await router.call(Call(prompt="hello", model="team"))
    assert result.status == "complete" and result.model == "good"
    aliases = [a.alias for a in result.trace.attempts]
    assert aliases == ["broken", "broken", "good"]  # one retry of a 5xx, then the chain
    first, second = result.trace.attempts[:2]
    assert first.outcome == "error" and first.status_code is not None
    assert second.started_at - first.ended_at >= 0.75  # backoff, no tight loop
    assert result.cost_usd == pytest.approx(result.trace.attempts[-1].cost_usd)


async def test_named_model_does_not_fall_back_unless_allowed(
    autojump_clock: trio.abc.Clock,
) -> None:
    broken = sim_model("broken", SimProfile(error_rate=1.0))
    async with switchman.open_router(fleet(broken, GOOD)) as router:
        alone = await router.call(Call(prompt="hello", model="broken"))
        allowed = await router.call(
            Call(prompt="hello", model="broken", options=Options(fallback=("good",)))
        )
    assert alone.status == "failed"
    assert {a.alias for a in alone.trace.attempts} == {"broken"}
    # the real cause, not a generic "all failed": the last attempt's own error
    last = alone.trace.attempts[-1]
    assert last.error is not None and last.error in alone.errors[0].message
    assert [e.message for e in alone.errors[1:]] == [a.error for a in alone.trace.attempts]
    assert allowed.status == "complete" and allowed.model == "good"


@pytest.mark.parametrize(
    ("profile", "outcome"),
    [
        (SimProfile(refusal_rate=1.0), "refused"),
        (SimProfile(rate_limit_rate=1.0), "rate_limited"),
        (SimProfile(stall_rate=1.0, tokens_per_s=50), "error"),
        (SimProfile(cut_rate=1.0, tokens_per_s=50), "error"),
        (SimProfile(ttft_ms=30_000), "timeout"),
    ],
    ids=["refusal", "rate-limit", "stall", "cut", "slow-first-token"],
)
async def test_every_fallback_trigger_switches_model(
    autojump_clock: trio.abc.Clock, profile: SimProfile, outcome: str
) -> None:
    primary = sim_model("primary", profile, provider="sim-primary")
    config = routed(primary, GOOD)
    call = Call(prompt="tell me", model="r", options=Options(timeouts=Timeouts(ttft_ms=2_000)))
    async with switchman.open_router(config) as router:
        result = await router.call(call)
    assert result.status == "complete", result.errors
    assert result.model == "good"
    assert result.answer == expected_answer("good", "tell me", 1024)  # whole, not truncated
    assert result.trace.attempts[0].alias == "primary"
    assert result.trace.attempts[0].outcome == outcome
    assert result.trace.attempts[-1].outcome == "success"
    # the call's cost: the answer's, and what a stream cut after output began was billed
    assert result.cost_usd == pytest.approx(sum(a.cost_usd for a in result.trace.attempts))
    assert (result.cost_usd > result.trace.attempts[-1].cost_usd) == (outcome == "error")


async def test_ttft_is_the_callers_wait_streamed_or_not(autojump_clock: trio.abc.Clock) -> None:
    """The first model's first token never comes (2 s, then the fallback answers with its
    first token 50 ms in): the caller waited over 2 s for it, streamed or not (not
    streamed, the answering attempt's own 50 ms was reported)."""
    mute = sim_model("mute", SimProfile(ttft_ms=30_000), provider="sim-primary")
    config = routed(mute, GOOD)
    call = Call(prompt="tell me", model="r", options=Options(timeouts=Timeouts(ttft_ms=2_000)))
    async with switchman.open_router(config) as router:
        whole = await router.call(call)
        streamed_result, _ = await streamed(router, call)
    for result in (whole, streamed_result):
        assert result.status == "complete" and result.model == "good"
        answering = result.trace.attempts[-1].ttft_ms
        assert answering is not None and answering < 100
        assert result.ttft_ms is not None
        assert 2_000 + answering <= result.ttft_ms + 1 and result.ttft_ms <= result.latency_ms
    assert whole.ttft_ms == pytest.approx(streamed_result.ttft_ms, abs=50)


async def test_a_429_holds_back_only_the_model_it_answered_for(
    autojump_clock: trio.abc.Clock,
) -> None:
    # both on one provider: the sibling must stay usable while the limited model waits
    limited = sim_model("limited", SimProfile(rate_limit_rate=1.0))
    config = routed(limited, GOOD)
    async with switchman.open_router(config) as router:
        first = await router.call(Call(prompt="tell me", model="r"))
        status = {m.alias: m for p in router.status().providers for m in p.models}
        again = await router.call(Call(prompt="tell me", model="r"))
    assert first.status == "complete" and first.model == "good"
    # a short Retry-After is waited for once on the same model, then the sibling answers
    assert [a.outcome for a in first.trace.attempts] == ["rate_limited"] * 2 + ["success"]
    assert 0.0 < status["limited"].rate_limited_for_s <= 2.0  # the provider's Retry-After
    assert status["good"].rate_limited_for_s == 0.0
    # while held back, the limited model is not tried again: excluded with the reason
    assert again.status == "complete" and again.model == "good"
    assert [a.alias for a in again.trace.attempts] == ["good"]
    excluded = {e.alias: e.reason for e in again.trace.eligibility.excluded}
    assert excluded["limited"].startswith("rate limited for ")


async def test_all_failing_gives_the_real_cause(autojump_clock: trio.abc.Clock) -> None:
    config = fleet(
        sim_model("a", SimProfile(refusal_rate=1.0)),
        sim_model("b", SimProfile(refusal_rate=1.0)),
        routes={"r": ("a", "b")},
    )
    async with switchman.open_router(config) as router:
        result = await router.call(Call(prompt="x", model="r"))
    assert result.status == "failed"
    assert result.errors[0].code == "refused"
    assert "a" in {e.provider or "" for e in result.errors} or len(result.errors) >= 3
    assert result.cost_usd == 0.0


async def test_overall_deadline_is_honoured(autojump_clock: trio.abc.Clock) -> None:
    slow = sim_model("slow", SimProfile(latency_ms=60_000, ttft_ms=100))
    async with switchman.open_router(fleet(slow)) as router:
        start = trio.current_time()
        result = await router.call(
            Call(prompt="x", model="slow", options=Options(timeouts=Timeouts(hard_ms=3_000)))
        )
        elapsed = trio.current_time() - start
    assert result.status == "failed"
    assert result.errors[0].code == "timeout"
    assert elapsed < 3.5


async def test_stream_gives_deltas_then_the_result(autojump_clock: trio.abc.Clock) -> None:
    streamy = sim_model("streamy", SimProfile(ttft_ms=20, tokens_per_s=200))
    async with switchman.open_router(fleet(streamy)) as router:
        deltas: list[str] = []
        final = None
        async with router.stream(Call(prompt="Explain recursion", model="streamy")) as events:
            async for event in events:
                if isinstance(event, switchman.Delta):
                    assert final is None
                    deltas.append(event.text)
                else:
                    final = event
    assert final is not None and final.status == "complete"
    assert len(deltas) > 1
    assert "".join(deltas) == final.answer == expected_answer("streamy", "Explain recursion", 1024)


async def test_broken_stream_is_continued_not_restarted(autojump_clock: trio.abc.Clock) -> None:
    cut = sim_model("cut", SimProfile(cut_rate=1.0, tokens_per_s=100))
    config = routed(cut, sim_model("rescue", supports_prefill=True))
    async with switchman.open_router(config) as router:
        result, text = await streamed(router, Call(prompt="Explain recursion", model="r"))
    assert result.status == "complete"
    assert result.model == "rescue"
    assert text == result.answer
    assert [a.outcome for a in result.trace.attempts] == ["error", "success"]


async def test_stream_that_nobody_can_continue_ends_with_the_original_error(
    autojump_clock: trio.abc.Clock,
) -> None:
    cut = sim_model("cut", SimProfile(cut_rate=1.0, tokens_per_s=100))
    async with switchman.open_router(fleet(cut)) as router:
        result = None
        got_text = False
        async with router.stream(Call(prompt="Explain recursion", model="cut")) as events:
            async for event in events:
                if isinstance(event, switchman.Delta):
                    got_text = True
                else:
                    result = event
    assert got_text
    assert result is not None and result.status == "failed"
    assert "stream broke after output was sent" in result.errors[0].message


async def test_redaction_of_answers_and_the_override(autojump_clock: trio.abc.Clock) -> None:
    prompt = "Write to alice@acme.io about the plan"
    async with switchman.open_router(fleet(GOOD)) as router:
        redacted = await router.call(Call(prompt=prompt, model="good"))
        denied = await router.call(
            Call(
                prompt=prompt,
                model="good",
                options=Options(redaction=switchman.RedactionOptions(mode="off")),
            )
        )
        override = switchman.RedactionOverride(
            enabled=True,
            acknowledgements=("output_may_contain_secrets", "output_may_contain_personal_data"),
            reason="internal tooling test",
        )
        raw = await router.call(
            Call(
                prompt=prompt,
                model="good",
                options=Options(
                    redaction=switchman.RedactionOptions(mode="off", override=override)
                ),
            )
        )
    raw_text = expected_answer("good", prompt, 1024)
    if "alice@acme.io" in raw_text:
        assert "alice@acme.io" not in redacted.answer
        assert "[REDACTED:email]" in redacted.answer
        assert redacted.redaction.performed
        assert raw.answer == raw_text
    assert denied.status == "failed" and denied.errors[0].code == "permission_denied"
    assert "acknowledgements" in denied.errors[0].message


async def test_budget_is_never_overspent_under_concurrency(autojump_clock: trio.abc.Clock) -> None:
    model = sim_model(
        "paid", SimProfile(latency_ms=200), input_per_mtok=100.0, output_per_mtok=400.0
    )
    call = Call(
        prompt="a question of moderate size " * 4, model="paid", params=Params(max_tokens=100)
    )
    probe_config = fleet(model)
    async with switchman.open_router(probe_config) as router:
        one = await router.call(call)
    limit = one.cost_usd * 40.5  # the estimate is above the real cost: fewer than 40 fit at once
    config = fleet(model, budgets=BudgetsConfig(global_daily_usd=limit))
    results: list[switchman.Result] = []
    async with switchman.open_router(config) as router:

        async def one_call() -> None:
            results.append(await router.call(call))

        async with trio.open_nursery() as nursery:
            for _ in range(200):
                nursery.start_soon(one_call)
        spent = await router.spend("global")
    done = [r for r in results if r.status == "complete"]
    refused = [r for r in results if r.status == "failed"]
    assert len(results) == 200
    assert 0 < len(done) < 200
    assert all(r.errors[-1].code == "budget_exceeded" for r in refused)
    total = math.fsum(r.cost_usd for r in done)
    assert total <= limit + 1e-9
    assert spent["day"] == pytest.approx(total)


async def test_cancelling_the_caller_cancels_attempts_and_releases_the_reservation(
    autojump_clock: trio.abc.Clock,
) -> None:
    """A caller that leaves before any output costs nothing; one that leaves mid-answer
    is billed what the provider generated until then (it bills it), never the whole
    reservation, and the rest of the hold is free again."""
    slow = sim_model("slow", SimProfile(latency_ms=50_000, ttft_ms=10), input_per_mtok=1000.0)
    mute = sim_model("mute", SimProfile(ttft_ms=50_000), input_per_mtok=1000.0)
    call = Call(prompt="x" * 400, model="mute", params=Params(max_tokens=50))
    estimate = slow.cost(404, 50)  # what a reservation assumes: a token per byte, at most
    config = fleet(slow, mute, budgets=BudgetsConfig(global_daily_usd=estimate * 1.5))
    async with switchman.open_router(config) as router:
        events = router.subscribe(buffer=1000)
        with trio.move_on_after(1.0):
            await router.call(call)
        await trio.sleep(0.1)
        assert (await router.spend("global"))["day"] == 0.0  # no output: nothing billed
        # mid-answer: the prompt and the output so far
        with trio.move_on_after(1.0) as scope:
            await router.call(attrs.evolve(call, model="slow"))
        assert scope.cancelled_caught  # it was admitted and running, not refused
        await trio.sleep(0.1)
        (provider,) = router.status().providers
        assert provider.in_flight == 0
        spent = (await router.spend("global"))["day"]
        assert slow.cost(100, 1) <= spent < estimate  # (a prompt of ~100 tokens)
        settled = [e.data for e in drained(events) if e.type == "budget.settled"]
        assert settled[-1]["amount_usd"] == pytest.approx(spent)
        # what was not billed is free again: a reservation of the same size passes
        with trio.move_on_after(1.0) as scope:
            await router.call(call)
        assert scope.cancelled_caught


@pytest.mark.parametrize("budget", [True, False])
async def test_an_answer_the_hard_deadline_cut_is_billed_what_was_generated(
    autojump_clock: trio.abc.Clock, budget: bool
) -> None:
    """The call's deadline cuts a stream midway: the provider billed the output so far,
    so the failed result's cost, its attempt's and the spend all say so (settled against
    the reservation with a budget, tracked without)."""
    slow = sim_model("slow", SimProfile(latency_ms=50_000, ttft_ms=10), input_per_mtok=1000.0)
    budgets = BudgetsConfig(global_daily_usd=100.0) if budget else None
    call = Call(prompt="hello", model="slow", options=Options(timeouts=Timeouts(hard_ms=1_000)))
    async with switchman.open_router(fleet(slow, budgets=budgets)) as router:
        result = await router.call(call)
        spent = (await router.spend("global"))["day"]
    assert result.status == "failed" and result.errors[0].code == "timeout"
    (attempt,) = result.trace.attempts
    assert attempt.outcome == "timeout" and attempt.usage.output_tokens > 0
    assert result.cost_usd == attempt.cost_usd == pytest.approx(spent)
    assert spent > 0.0
    if budget:
        assert result.trace.budget.settled_usd == pytest.approx(spent)


async def test_a_cancelled_router_block_stops_at_once_and_aclose_drains_first(
    autojump_clock: trio.abc.Clock,
) -> None:
    """Callers outside the block: a cancellation of the block ends their calls at once,
    failed and cancelled, each result still saying what its attempt did and was billed
    (a stream's too, as its last item); ``aclose()`` before it lets them finish."""
    slow = sim_model("slow", SimProfile(latency_ms=2_000, ttft_ms=10))
    config = fleet(slow)  # (grace_s: 10 s)
    for drain in (False, True):
        results: list[switchman.Result] = []
        async with trio.open_nursery() as callers:
            with trio.move_on_after(5.0 if drain else 0.5):
                async with switchman.open_router(config) as router:

                    async def one(
                        router: switchman.Router = router,
                        results: list[switchman.Result] = results,
                    ) -> None:
                        results.append(await router.call(Call(prompt="x", model="slow")))

                    async def streamed(
                        router: switchman.Router = router,
                        results: list[switchman.Result] = results,
                    ) -> None:
                        async with router.stream(Call(prompt="y", model="slow")) as items:
                            last = [item async for item in items][-1]
                        assert isinstance(last, switchman.Result)
                        results.append(last)

                    for _ in range(2):
                        callers.start_soon(one)
                    callers.start_soon(streamed)
                    if drain:
                        await trio.sleep(0.1)
                        await router.aclose()
                    await trio.sleep_forever()
            stopped_at = trio.current_time()
        assert len(results) == 3 and trio.current_time() - stopped_at < 0.01
        if drain:
            assert {r.status for r in results} == {"complete"}
            continue
        for result in results:
            assert (result.status, result.errors[0].code) == ("failed", "cancelled")
            assert result.errors[0].message == "the router stopped before the call finished"
            (attempt,) = result.trace.attempts
            assert attempt.outcome == "cancelled" and attempt.cost_usd > 0.0
            assert result.cost_usd == attempt.cost_usd


async def test_closing_the_router_mid_load_leaves_nothing_running(
    autojump_clock: trio.abc.Clock,
) -> None:
    slow = sim_model("slow", SimProfile(latency_ms=100_000, ttft_ms=10))
    config = attrs.evolve(
        fleet(slow, budgets=BudgetsConfig(global_daily_usd=100.0)),
        server=ServerConfig(grace_s=1.0),
    )
    results: list[switchman.Result] = []
    async with trio.open_nursery() as nursery, switchman.open_router(config) as router:

        async def one_call() -> None:
            results.append(await router.call(Call(prompt="x", model="slow")))

        for _ in range(20):
            nursery.start_soon(one_call)
        await trio.sleep(0.5)
    assert len(results) == 20
    assert all(r.status == "failed" and r.errors[0].code == "cancelled" for r in results)


async def test_a_named_route_reports_members_whose_provider_is_out_of_service(
    autojump_clock: trio.abc.Clock,
) -> None:
    base = fleet(GOOD, sim_model("offline", provider="sim-off"), routes={"r": ("offline", "good")})
    providers = dict(base.providers)
    providers["sim-off"] = attrs.evolve(
        providers["sim-off"], disabled_reason="missing API key: set OFF_API_KEY"
    )
    config = attrs.evolve(base, providers=providers)
    async with switchman.open_router(config) as router:
        result = await router.call(Call(prompt="hi", model="r"))
        alone = await router.call(Call(prompt="hi", model="offline"))
    assert result.status == "complete" and result.model == "good"
    excluded = {e.alias: e.reason for e in result.trace.eligibility.excluded}
    assert excluded["offline"] == "provider disabled: missing API key: set OFF_API_KEY"
    assert alone.status == "failed" and alone.errors[0].code == "no_eligible_model"
    assert "offline: provider disabled: missing API key" in alone.errors[0].message


def test_only_a_short_pause_inside_the_deadline_is_waited_for() -> None:
    from switchman._result import Exclusion
    from switchman.actors._waits import short_wait as _short_wait

    paused = [Exclusion(alias="a", reason="rate budget empty for 1.5s")]
    back = {"a": 1.5}
    assert _short_wait(paused, back, now=0.0, deadline=10.0) == pytest.approx(1.501)
    assert _short_wait(paused, back, now=0.0, deadline=1.0) is None  # past the deadline
    long = [Exclusion(alias="a", reason="breaker open for 40.0s more")]
    assert _short_wait(long, {"a": 40.0}, now=0.0, deadline=100.0) is None
    other = [Exclusion(alias="b", reason="trust too low")]
    assert _short_wait(other, back, now=0, deadline=9) is None


def test_a_wait_names_the_calls_own_paused_model_not_another_of_its_provider() -> None:
    """``back_at`` has every paused model of the providers a call reaches: the wait's
    reason names the soonest of the call's own (it named a catalog model outside the
    call's route, one its key may not use perhaps, as "paused")."""
    from switchman._result import Exclusion
    from switchman.actors._waits import paused_reason as _paused

    excluded = [
        Exclusion(alias="ge", reason="rate budget empty for 0.4s"),
        Exclusion(alias="oa", reason="breaker open for 3.0s more"),
    ]
    back = {"gemini/gemini-4-argon": 0.2, "ge": 0.4, "oa": 3.0}
    assert _paused(excluded, back) == "ge: rate budget empty for 0.4s"


def test_the_lead_error_is_the_providers_real_cause_not_a_later_breaker() -> None:
    from switchman._result import ErrorInfo
    from switchman.actors._failure import summarise as _summarise

    run = call_run(Call(prompt="x"))
    run.errors = [
        ErrorInfo(code="all_models_failed", message="scheduled outage", provider="a", status=503),
        ErrorInfo(code="no_eligible_model", message="a: breaker open", provider="a"),
    ]
    lead, *rest = _summarise(run)
    assert lead.status == 503 and "scheduled outage" in lead.message
    assert rest == run.errors


async def test_leaving_a_stream_early_stops_the_call_quietly(
    autojump_clock: trio.abc.Clock, caplog: pytest.LogCaptureFixture
) -> None:
    slow = sim_model("slowstream", SimProfile(ttft_ms=10, tokens_per_s=5))
    async with switchman.open_router(fleet(slow)) as router:
        async with router.stream(Call(prompt="Explain recursion", model="slowstream")) as events:
            first = await events.receive()
            assert isinstance(first, switchman.Delta)
        await trio.sleep(5)
        (provider,) = router.status().providers
        assert provider.in_flight == 0  # the attempt was cancelled, not left running
    assert not [r for r in caplog.records if r.levelname in ("ERROR", "CRITICAL")]


async def test_the_dispatcher_runs_at_most_its_capacity_of_calls_at_once(
    autojump_clock: trio.abc.Clock,
) -> None:
    slow = sim_model("slow", SimProfile(latency_ms=1_000, ttft_ms=10))
    config = fleet(slow, capacity=2)
    peak = 0
    async with switchman.open_router(config) as router:
        results: list[switchman.Result] = []

        async def one() -> None:
            results.append(await router.call(Call(prompt="x", model="slow")))

        async with trio.open_nursery() as nursery:
            for _ in range(6):
                nursery.start_soon(one)
            while len(results) < 6:
                (provider,) = router.status().providers
                peak = max(peak, provider.in_flight)
                await trio.sleep(0.05)
    assert peak == 2
    assert all(r.status == "complete" for r in results)


async def test_calls_that_give_up_waiting_for_a_slot_take_none_and_the_rest_go_in_turn(
    autojump_clock: trio.abc.Clock,
) -> None:
    """Capacity 1: while one call holds the slot, three wait; two of them run out of
    time waiting (or are cancelled by their caller) and take no slot, the third gets the
    slot when it frees, and the router serves at capacity afterwards."""
    slow = sim_model("slow", SimProfile(latency_ms=1_000, ttft_ms=10))
    config = fleet(slow, capacity=1)
    order: list[str] = []
    async with switchman.open_router(config) as router:

        async def one(name: str, hard_ms: int | None = None) -> None:
            timeouts = Timeouts(hard_ms=hard_ms) if hard_ms else Timeouts()
            call = Call(prompt=name, model="slow", options=Options(timeouts=timeouts))
            result = await router.call(call)
            order.append(f"{name}:{result.status}")

        async with trio.open_nursery() as nursery:
            nursery.start_soon(one, "holder")
            await trio.sleep(0.1)
            nursery.start_soon(one, "impatient", 300)
            waiter = trio.CancelScope()  # its caller gives up on it while it waits

            async def cancelled_waiter() -> None:
                with waiter:
                    await one("abandoned")

            nursery.start_soon(cancelled_waiter)
            await trio.sleep(0.01)
            nursery.start_soon(one, "patient")
            await trio.sleep(0.2)
            waiter.cancel()
        assert order[0] == "impatient:failed" and order[1:] == [
            "holder:complete",
            "patient:complete",
        ]
        later = await router.call(Call(prompt="after", model="slow"))
        assert later.status == "complete"
        (provider,) = router.status().providers
        assert provider.in_flight == 0


async def test_an_answer_cut_at_max_tokens_says_so(autojump_clock: trio.abc.Clock) -> None:
    async with switchman.open_router(fleet(GOOD)) as router:
        whole = await router.call(Call(prompt="tell me", model="good"))
        cut = await router.call(Call(prompt="tell me", model="good", params=Params(max_tokens=4)))
    assert whole.finish_reason == "stop"
    assert cut.status == "complete" and cut.finish_reason == "length"
    assert cut.answer == expected_answer("good", "tell me", 4)


@pytest.mark.parametrize(
    ("said", "means"),
    [
        ("stop", "stop"),
        ("end_turn", "stop"),  # Anthropic
        ("stop_sequence", "stop"),
        ("STOP", "stop"),  # Gemini
        ("length", "length"),  # OpenAI family, Ollama
        ("max_tokens", "length"),  # Anthropic
        ("MAX_TOKENS", "length"),  # Gemini
        ("tool_calls", "tool_calls"),
        (None, None),
    ],
)
def test_finish_reasons_are_told_in_openais_words(said: str | None, means: str | None) -> None:
    from switchman._result import normal_finish

    assert normal_finish(said) == means


async def test_time_limits_the_router_enforces_count_against_the_model(
    autojump_clock: trio.abc.Clock,
) -> None:
    slow_first = sim_model("slow-first", SimProfile(ttft_ms=5_000))
    stalls = sim_model("stalls", SimProfile(stall_rate=1.0, tokens_per_s=50.0))
    config = fleet(slow_first, stalls, sim_model("steady"), stall_ms=300, default_ttft_ms=200)
    async with switchman.open_router(config) as router:
        for alias in ("slow-first", "stalls"):
            outcomes = []
            for _ in range(6):
                result = await router.call(
                    Call(prompt="hi", model=alias, options=Options(fallback=("steady",)))
                )
                assert result.model == "steady"
                outcomes.append(result.trace.attempts[0].outcome)
            # failures until the breaker opens (5 in a row), then it is routed around
            assert outcomes[:5] == ["timeout" if alias == "slow-first" else "error"] * 5
            assert outcomes[5] == "unavailable" or len(result.trace.attempts) == 1
        status = {m.alias: m for p in router.status().providers for m in p.models}
    for alias in ("slow-first", "stalls"):
        assert status[alias].breaker == "open", alias
        learned = status[alias].stats["*"]
        assert learned["n"] and learned["n"] > 4 and learned["success_rate"] == 0.0, alias


async def test_an_error_raised_in_the_router_block_comes_out_as_itself(
    autojump_clock: trio.abc.Clock,
) -> None:
    with pytest.raises(ValueError, match="mine"):
        async with switchman.open_router(fleet(GOOD)):
            raise ValueError("mine")
    with pytest.raises(switchman.ValidationError, match="unknown model or route 'nope'"):
        async with switchman.open_router(fleet(GOOD)) as router:
            await router.call(Call(prompt="hi", model="nope"))
    with trio.move_on_after(1) as scope:  # cancellation passes through as trio expects
        async with switchman.open_router(fleet(GOOD)):
            await trio.sleep_forever()
    assert scope.cancelled_caught


async def test_hard_deadline_counts_from_submission_even_when_calls_wait_for_room(
    autojump_clock: trio.abc.Clock, caplog: pytest.LogCaptureFixture
) -> None:
    slow = sim_model("slow", SimProfile(latency_ms=3_000, ttft_ms=10))
    config = fleet(slow, GOOD, capacity=2)
    ended: list[float] = []
    async with switchman.open_router(config) as router:
        done = await router.call(Call(prompt="hi", model="good"))
        start = trio.current_time()

        async def one() -> None:
            result = await router.call(
                Call(prompt="hi", model="slow", options=Options(timeouts=Timeouts(hard_ms=500)))
            )
            assert result.status == "failed" and result.errors[0].code == "timeout"
            ended.append(trio.current_time() - start)

        async with trio.open_nursery() as nursery:
            for _ in range(6):
                nursery.start_soon(one)
            await trio.sleep(0.1)
            t0 = trio.current_time()
            await router.feedback(done.call_id, 0.9)  # the inbox still moves
            assert trio.current_time() - t0 < 0.01
    assert len(ended) == 6 and max(ended) <= 0.51  # not 1.0 and 1.5 s for the later ones
    # attempts cut off by the deadline end quietly: no bug reported for a closed channel
    assert not [r for r in caplog.records if "inside switchman" in r.getMessage()]


async def test_feedback_spend_and_status_say_what_is_wrong_and_what_is_running(
    autojump_clock: trio.abc.Clock,
) -> None:
    slow = sim_model("slow", SimProfile(latency_ms=5_000, ttft_ms=10))
    async with switchman.open_router(fleet(slow, GOOD)) as router:
        done = await router.call(Call(prompt="hi", model="good", intent="code"))
        with pytest.raises(switchman.ValidationError, match="score: must be a number"):
            await router.feedback(done.call_id, "high")  # type: ignore[arg-type]
        with pytest.raises(switchman.ValidationError, match="intent: must be one of"):
            await router.feedback(done.call_id, 0.5, intent="bogus")
        await router.feedback(done.call_id, 1.0, intent="lookup")  # credited to lookup
        with pytest.raises(switchman.ValidationError, match="already rated"):
            await router.feedback(done.call_id, 0.0, intent="lookup")  # counts once
        await trio.testing.wait_all_tasks_blocked()
        stats = {m.alias: m for p in router.status().providers for m in p.models}["good"].stats
        assert stats["lookup"]["feedback"] == 1.0 and stats["code"]["feedback"] is None
        with pytest.raises(KeyError) as unknown:  # a call the router never saw, no model named
            await router.feedback("call_unknown", 0.5)
        assert isinstance(unknown.value, switchman.UnknownCall)
        assert "pass model= (the result's model) and intent=" in str(unknown.value)
        assert "'call_unknown'" in str(unknown.value)
        with pytest.raises(switchman.ValidationError) as info:
            await router.feedback("call_unknown", 0.5, model="nope")
        assert {f.field for f in info.value.fields} == {"model", "intent"}
        # a call the router forgot (a restart): the caller says who answered, and the kind
        await router.feedback("call_before_restart", 0.0, model="good", intent="code")
        with pytest.raises(switchman.ValidationError, match="already rated"):
            await router.feedback("call_before_restart", 1.0, model="good", intent="code")
        await trio.testing.wait_all_tasks_blocked()
        stats = {m.alias: m for p in router.status().providers for m in p.models}["good"].stats
        assert stats["code"]["feedback"] == 0.0
        with pytest.raises(switchman.ValidationError, match="'typo' is not a budget scope"):
            await router.spend("typo")
        with pytest.raises(switchman.ValidationError, match="provider:nope"):
            await router.spend("provider:nope")
        assert (await router.spend("caller:anyone"))["day"] == 0.0
        async with trio.open_nursery() as nursery:
            for _ in range(3):
                nursery.start_soon(router.call, Call(prompt="hi", model="slow"))
            await trio.sleep(1.0)
            assert router.status().in_flight_calls == 3
        assert router.status().in_flight_calls == 0


async def test_a_config_built_in_python_is_checked_before_the_router_starts() -> None:
    bad = fleet(GOOD, capacity=0, routes={"r": ("good", "missing")})
    with pytest.raises(switchman.ValidationError) as info:
        async with switchman.open_router(bad):
            raise AssertionError("the router should not have started")
    fields = {f.field for f in info.value.fields}
    assert {"router.capacity", "routes.r.chain[1]"} <= fields


async def test_a_callers_own_tighter_limits_do_not_count_against_the_model(
    autojump_clock: trio.abc.Clock,
) -> None:
    # one caller in a hurry must not lock a healthy model out for every other caller
    slow = sim_model("slow", SimProfile(ttft_ms=800, latency_ms=900))
    async with switchman.open_router(fleet(slow)) as router:
        for limits in (Timeouts(hard_ms=100), Timeouts(ttft_ms=100), Timeouts(soft_ms=100)):
            for _ in range(6):
                hurried = await router.call(
                    Call(prompt="hi", model="slow", options=Options(timeouts=limits))
                )
                assert hurried.status == "failed", limits
                assert hurried.trace.attempts[0].outcome == "timeout", limits
        (provider,) = router.status().providers
        (model,) = provider.models
        assert model.breaker == "closed"
        assert "*" not in model.stats or not model.stats["*"]["n"]  # nothing learned from it
        patient = await router.call(Call(prompt="hi", model="slow"))
        assert patient.status == "complete"


async def test_a_streams_ttft_is_when_the_caller_got_its_first_text(
    autojump_clock: trio.abc.Clock,
) -> None:
    cuts = sim_model("cuts", SimProfile(cut_rate=1.0, ttft_ms=40, tokens_per_s=100.0))
    late = sim_model("late", SimProfile(ttft_ms=300, tokens_per_s=100.0))
    config = fleet(cuts, late, routes={"r": ("cuts", "late")})
    async with switchman.open_router(config) as router:
        for target, status in (("r", "complete"), ("cuts", "failed")):
            start = trio.current_time()
            first: float | None = None
            result = None
            async with router.stream(Call(prompt="hi there", model=target)) as events:
                async for item in events:
                    if isinstance(item, switchman.Delta) and first is None:
                        first = trio.current_time() - start
                    elif isinstance(item, switchman.Result):
                        result = item
            assert result is not None and result.status == status and first is not None
            # the first text came from the attempt that broke, not the one that finished
            assert result.ttft_ms == pytest.approx(first * 1000, abs=1.0), target
            assert result.ttft_ms < 100


async def test_a_silent_first_model_leaves_its_fallback_time_within_a_tight_deadline(
    autojump_clock: trio.abc.Clock,
) -> None:
    silent = sim_model("silent", SimProfile(ttft_ms=60_000))
    config = fleet(silent, GOOD, routes={"r": ("silent", "good")}, default_ttft_ms=4_000)
    async with switchman.open_router(config) as router:
        for _ in range(6):
            start = trio.current_time()
            result = await router.call(
                Call(prompt="hi", model="r", options=Options(timeouts=Timeouts(hard_ms=1_500)))
            )
            # its first-token wait is capped at half the time left, not the 4 s default
            assert result.status == "complete" and result.model == "good", result.errors
            assert trio.current_time() - start < 1.5
            assert result.trace.attempts[0].outcome == "timeout"
        (provider,) = router.status().providers
        # a cap that came from this call's deadline is not held against the model
        assert {m.alias: m.breaker for m in provider.models}["silent"] == "closed"


async def test_a_failed_calls_event_carries_its_latency(autojump_clock: trio.abc.Clock) -> None:
    down = sim_model("down", SimProfile(error_rate=1.0, latency_ms=200))
    async with switchman.open_router(fleet(down)) as router:
        with router.subscribe() as events:
            result = await router.call(Call(prompt="hi", model="down"))
            await trio.testing.wait_all_tasks_blocked()
            seen = drained(events)
    assert result.status == "failed"
    (failed,) = [e for e in seen if e.type == "call.failed"]
    assert failed.data["latency_ms"] == pytest.approx(result.latency_ms, abs=0.01)


async def test_spend_is_kept_per_caller_only_for_callers_with_a_key_or_a_budget(
    autojump_clock: trio.abc.Clock,
) -> None:
    from switchman import Caller
    from switchman.catalog import KeySpec

    paid = sim_model("paid", SimProfile(), input_per_mtok=1000.0)
    key = KeySpec(key_env="K", handle="team", secret="s" * 20)
    budgets = BudgetsConfig(global_daily_usd=100.0, callers={"capped": {"daily_usd": 50.0}})
    async with switchman.open_router(fleet(paid, budgets=budgets, keys=(key,))) as router:
        for handle in ("team", "capped", "made-up-1", "made-up-2"):
            await router.call(Call(prompt="hi", model="paid", caller=Caller(handle=handle)))
        spent = {h: (await router.spend(f"caller:{h}"))["day"] for h in ("team", "capped")}
        made_up = (await router.spend("caller:made-up-1"))["day"]
        total = (await router.spend("global"))["day"]
    assert spent["team"] > 0 and spent["capped"] > 0
    assert made_up == 0.0  # a name the caller chose is not a ledger row of its own
    assert total == pytest.approx(2 * spent["team"] + 2 * spent["capped"], rel=0.01)


async def test_a_call_with_stop_skips_a_model_that_cannot_take_it_and_a_long_prompt_costs_more(
    autojump_clock: trio.abc.Clock,
) -> None:
    no_stop = sim_model("no-stop", supports_stop=False)
    tiered = sim_model(
        "tiered",
        long_input_above=50,
        long_input_per_mtok=2.0,
        long_output_per_mtok=8.0,
    )
    async with switchman.open_router(fleet(no_stop, tiered, routes={"r": ("no-stop",)})) as router:
        with_stop = Call(
            prompt="hi",
            model="r",
            params=Params(stop=("END",)),
            options=Options(fallback=("tiered",)),
        )
        result = await router.call(with_stop)
        assert result.status == "complete" and result.model == "tiered"
        excluded = {e.alias: e.reason for e in result.trace.eligibility.excluded}
        assert excluded["no-stop"] == "stop sequences, which the model does not take"
        short = result.usage
        assert short is not None and short.input_tokens <= 50
        assert result.cost_usd == pytest.approx(
            tiered.cost(short.input_tokens, short.output_tokens)
        )
        long = await router.call(Call(prompt="word " * 200, model="tiered"))
        assert long.usage is not None and long.usage.input_tokens > 50
        assert long.cost_usd == pytest.approx(
            (long.usage.input_tokens * 2.0 + long.usage.output_tokens * 8.0) / 1e6
        )
        plain = await router.call(Call(prompt="hi", model="r"))
        assert plain.model == "no-stop"


async def test_two_aliases_of_one_upstream_model_share_its_attempts_and_breaker(
    autojump_clock: trio.abc.Clock,
) -> None:
    """A [[models]] alias for a catalog model is still one model upstream: the call does
    not try it twice under each name, and its breaker opens for both."""
    failing = SimProfile(error_rate=1.0)
    first = sim_model("upstream", failing)
    second = sim_model("my-name-for-it", failing, model_id="upstream")
    config = fleet(first, second, GOOD, routes={"r": ("upstream", "my-name-for-it", "good")})
    async with switchman.open_router(config) as router:
        result = await router.call(Call(prompt="hi", model="r"))
        assert result.status == "complete" and result.model == "good"
        tried = [a.alias for a in result.trace.attempts]
        assert tried == ["upstream", "upstream", "good"]  # a retry, then never again
        for _ in range(3):
            await router.call(Call(prompt="hi", model="r"))
        await trio.testing.wait_all_tasks_blocked()
        breakers = {m.alias: m.breaker for p in router.status().providers for m in p.models}
        assert breakers["upstream"] == breakers["my-name-for-it"] == "open"


async def test_two_aliases_of_one_upstream_model_learn_as_one(
    autojump_clock: trio.abc.Clock,
) -> None:
    """What one alias of a model learns (outcomes, latency, feedback) its sibling knows:
    they are one model upstream, so scoring must not see a fresh model under the other
    name."""
    slow = SimProfile(latency_ms=400)
    first = sim_model("upstream", slow)
    second = sim_model("my-name-for-it", slow, model_id="upstream")
    async with switchman.open_router(fleet(first, second, GOOD)) as router:
        results = [
            await router.call(Call(prompt="hi", model="upstream", intent="lookup"))
            for _ in range(3)
        ]
        assert {r.model for r in results} == {"upstream"}
        await router.feedback(results[0].call_id, 0.2)
        await trio.testing.wait_all_tasks_blocked()
        models = {m.alias: m for p in router.status().providers for m in p.models}
        learned = models["upstream"].stats
        assert learned["lookup"]["n"] == pytest.approx(3.0, abs=0.1)
        assert learned["lookup"]["feedback"] == 0.2
        assert models["my-name-for-it"].stats == learned
        assert models["good"].stats == {}


async def test_a_fallback_the_budget_kept_out_is_named_in_the_lead_error(
    autojump_clock: trio.abc.Clock,
) -> None:
    cheap = sim_model("cheap", SimProfile(error_rate=1.0), input_per_mtok=0.01)
    pricey = sim_model("pricey", input_per_mtok=10_000.0, output_per_mtok=10_000.0)
    config = routed(cheap, pricey, budgets=BudgetsConfig(global_daily_usd=0.5))
    async with switchman.open_router(config) as router:
        result = await router.call(Call(prompt="hi", model="r"))
    assert result.status == "failed"
    lead = result.errors[0]
    assert lead.provider == "sim" and "not tried: over budget" in lead.message
    assert result.errors[-1].code == "budget_exceeded"


async def test_calls_that_meet_a_half_open_probe_wait_for_it_rather_than_fail(
    autojump_clock: trio.abc.Clock,
) -> None:
    """Twenty calls naming only B arrive as its cool-down ends: one is the probe, the
    others are turned away while it is out; they wait for its outcome and are served."""
    b = sim_model("b", SimProfile(latency_ms=300, outage_after_s=0.0, outage_for_s=2.0))
    async with switchman.open_router(fleet(b)) as router:
        while True:  # the outage opens its breaker
            await router.call(Call(prompt="hi", model="b"))
            await trio.testing.wait_all_tasks_blocked()
            (model,) = router.status().providers[0].models
            if model.breaker == "open":
                break
        assert model.retry_at is not None
        await trio.sleep_until(model.retry_at + 0.01)  # the outage is over by now
        results: list[switchman.Result] = []

        async def one() -> None:
            results.append(await router.call(Call(prompt="hi", model="b")))

        async with trio.open_nursery() as nursery:
            for _ in range(20):
                nursery.start_soon(one)
    assert [r.status for r in results] == ["complete"] * 20
    # each call either waited before choosing (the snapshot showed the probe out) or was
    # turned away by the provider while it was out, and then waited: none failed for it
    outcomes = {a.outcome for r in results for a in r.trace.attempts}
    assert outcomes <= {"success", "unavailable"}


async def test_a_request_fee_is_part_of_the_cost_the_estimate_and_the_cap(
    autojump_clock: trio.abc.Clock,
) -> None:
    searcher = sim_model("searcher", request_fee_usd=0.005)
    async with switchman.open_router(fleet(searcher)) as router:
        result = await router.call(Call(prompt="hi", model="searcher"))
        assert result.usage is not None
        tokens_only = (result.usage.input_tokens * 1.0 + result.usage.output_tokens * 4.0) / 1e6
        assert result.cost_usd == pytest.approx(tokens_only + 0.005)
        capped = await router.call(
            Call(prompt="hi", model="searcher", options=Options(max_cost_usd=0.004))
        )
    assert capped.status == "failed"
    assert "above max_cost_usd" in capped.trace.eligibility.excluded[0].reason


async def test_the_events_say_why_each_attempt_follows_and_a_release_costs_nothing(
    autojump_clock: trio.abc.Clock,
) -> None:
    down = sim_model("down", SimProfile(error_rate=1.0, latency_ms=50))
    config = fleet(
        down, GOOD, routes={"r": ("down", "good")}, budgets=BudgetsConfig(global_daily_usd=10.0)
    )
    async with switchman.open_router(config) as router:
        with router.subscribe() as events:
            result = await router.call(Call(prompt="hi", model="r"))
            await trio.testing.wait_all_tasks_blocked()
            seen = drained(events)
    assert result.status == "complete" and result.model == "good"
    started = [e.data for e in seen if e.type == "attempt.started"]
    assert [s["alias"] for s in started] == ["down", "down", "good"]
    assert started[0]["after"] is None
    assert re.fullmatch(
        r"retry: upstream error 529, retry in (0\.[789]\d|1\.00) s", started[1]["after"]
    )
    assert started[2]["after"].startswith("fallback: ")
    settled = [e.data for e in seen if e.type == "budget.settled"]
    # each names its attempt: two holds of one model are told apart by more than order
    assert [(s["n"], s["alias"], s.get("released", False)) for s in settled] == [
        (1, "down", True),
        (2, "down", True),
        (3, "good", False),
    ]
    assert settled[0]["amount_usd"] == 0.0
    reserved = [e.data for e in seen if e.type == "budget.reserved"]
    assert [(r["n"], r["alias"]) for r in reserved] == [(1, "down"), (2, "down"), (3, "good")]


async def test_a_breaker_is_told_half_open_when_its_cool_down_ends_and_only_then(
    autojump_clock: trio.abc.Clock,
) -> None:
    b = sim_model("b", SimProfile(latency_ms=50, outage_after_s=0.0, outage_for_s=6.0))
    async with switchman.open_router(fleet(b)) as router:
        with router.subscribe() as events:
            for _ in range(10):  # the outage opens its breaker
                await router.call(Call(prompt="hi", model="b"))
                await trio.testing.wait_all_tasks_blocked()
                if router.status().providers[0].models[0].breaker == "open":
                    break
            retry_at = router.status().providers[0].models[0].retry_at
            assert retry_at is not None
            # nothing calls it meanwhile; the outage is over by then
            await trio.sleep_until(max(retry_at + 1.0, 6.5))
            changes = [
                (e.data["from"], e.data["to"])
                for e in drained(events)
                if e.type == "breaker.changed"
            ]
            assert changes == [("closed", "open"), ("open", "half_open")]
            assert router.status().providers[0].models[0].breaker == "half_open"
            assert (await router.call(Call(prompt="hi", model="b"))).status == "complete"
            await trio.testing.wait_all_tasks_blocked()
            after = [
                (e.data["from"], e.data["to"])
                for e in drained(events)
                if e.type == "breaker.changed"
            ]
    assert after == [("half_open", "closed")]  # the probe's admission is not told again


async def test_the_simulator_stops_at_a_stop_sequence(autojump_clock: trio.abc.Clock) -> None:
    async with switchman.open_router(fleet(GOOD)) as router:
        whole = await router.call(Call(prompt="Say hi", model="good"))
        stopped = await router.call(
            Call(prompt="Say hi", model="good", params=Params(stop=(" about", "zzz")))
        )
    assert whole.answer.startswith("Simulated answer from good about: Say hi")
    assert stopped.answer == "Simulated answer from good"
    assert stopped.finish_reason == "stop"
    assert stopped.usage is not None and stopped.usage.output_tokens == 4


async def test_waiting_for_a_probe_is_one_record_not_one_per_ask(
    autojump_clock: trio.abc.Clock,
) -> None:
    slow = SimProfile(latency_ms=10_000, ttft_ms=5, outage_after_s=0.0, outage_for_s=4.0)
    b = sim_model("b", slow)
    budgeted = fleet(b, budgets=BudgetsConfig(global_daily_usd=100.0))
    async with switchman.open_router(budgeted) as router:
        for _ in range(10):
            await router.call(
                Call(prompt="hi", model="b", options=Options(timeouts=Timeouts(hard_ms=3000)))
            )
            await trio.testing.wait_all_tasks_blocked()
            if router.status().providers[0].models[0].breaker == "open":
                break
        retry_at = router.status().providers[0].models[0].retry_at
        assert retry_at is not None
        await trio.sleep_until(max(retry_at, 4.5) + 0.01)
        results: list[switchman.Result] = []

        async def one() -> None:
            quick = Options(timeouts=Timeouts(hard_ms=2000))
            results.append(await router.call(Call(prompt="hi", model="b", options=quick)))

        async with trio.open_nursery() as nursery:
            for _ in range(3):
                nursery.start_soon(one)
    waiters = [r for r in results if r.status == "failed"]
    assert waiters  # the probe takes 10 s: the others gave up at their deadline
    turned = [[a for a in r.trace.attempts if a.outcome == "unavailable"] for r in waiters]
    # (whether a call waits before choosing, or is turned away by the provider and asks
    # again, depends on the order its task runs in: either way, one record at most)
    assert all(len(t) <= 1 for t in turned), turned
    # asks turned away sent nothing: no reservation of theirs counts in the trace
    turned_away = [r for r in waiters if all(a.outcome == "unavailable" for a in r.trace.attempts)]
    assert turned_away and all(r.trace.budget.reserved_usd == 0.0 for r in turned_away)


def test_asking_again_for_a_paused_model_keeps_one_record() -> None:
    from switchman._result import AttemptRecord, ErrorInfo
    from switchman.actors._attempt_ends import merge_waiting

    run = call_run(Call(prompt="hi"))

    def refused(n: int, at: float, why: str) -> None:
        record = AttemptRecord(
            n=n,
            alias="b",
            provider="sim",
            started_at=at,
            ended_at=at + 0.001,
            ttft_ms=None,
            outcome="unavailable",
            error=why,
        )
        run.attempts.append(record)
        run.errors.append(ErrorInfo(code="no_eligible_model", message=f"b: {why}"))
        merge_waiting(run.attempts, run.errors)

    refused(1, 0.0, "breaker half_open")
    for i in range(1, 4):  # (each later ask numbered after the first's record)
        refused(len(run.attempts) + 1, 0.25 * i, "breaker half_open")
    refused(len(run.attempts) + 1, 1.0, "breaker open")
    assert len(run.attempts) == len(run.errors) == 1
    assert run.attempts[0].n == 1  # the first ask's number: no attempt 1 went missing
    # one wait, from the first ask to the latest, with the latest's reason (the first's
    # was kept: a call refused "open" at the end still said "half_open")
    (record,) = run.attempts
    assert (record.started_at, record.ended_at) == (0.0, 1.001)
    assert record.error == "breaker open" and run.errors[0].message == "b: breaker open"


async def test_a_trip_is_told_after_the_attempt_that_caused_it(
    autojump_clock: trio.abc.Clock,
) -> None:
    down = sim_model("down", SimProfile(error_rate=1.0, latency_ms=20))
    async with switchman.open_router(fleet(down, GOOD, routes={"r": ("down", "good")})) as router:
        with router.subscribe() as events:
            for _ in range(4):
                await router.call(Call(prompt="hi", model="r"))
            await trio.testing.wait_all_tasks_blocked()
            seen = drained(events)
    kinds = [(e.type, e.data.get("outcome") or e.data.get("to")) for e in seen]
    trip = kinds.index(("breaker.changed", "open"))
    failed = [i for i, k in enumerate(kinds) if k == ("attempt.finished", "error")]
    assert failed and failed[-1] < trip  # the failure that tripped it is told first


async def test_a_streams_held_back_tail_is_told_before_its_attempt_finished(
    autojump_clock: trio.abc.Clock,
) -> None:
    # an answer that ends in digits: the redactor holds them back (a number may go on), so
    # they go out when the answer is whole: still as this attempt's delta, before it ends
    streamy = sim_model("streamy", SimProfile(ttft_ms=20, tokens_per_s=200))
    async with switchman.open_router(fleet(streamy)) as router:
        with router.subscribe() as events:
            deltas: list[str] = []
            final = None
            async with router.stream(Call(prompt="Count to 5", model="streamy")) as stream:
                async for event in stream:
                    if isinstance(event, switchman.Delta):
                        deltas.append(event.text)
                    else:
                        final = event
            await trio.testing.wait_all_tasks_blocked()
            seen = [e.type for e in drained(events)]
    assert final is not None and final.status == "complete"
    assert "".join(deltas) == final.answer
    told = seen.index("attempt.finished")
    assert seen.count("attempt.delta") >= 1
    assert "attempt.delta" not in seen[told:], seen
    assert seen[-1] == "call.completed"


async def test_a_budget_that_starts_refusing_is_logged_once(
    autojump_clock: trio.abc.Clock, caplog: pytest.LogCaptureFixture
) -> None:
    paid = sim_model("paid", SimProfile(), input_per_mtok=1000.0, output_per_mtok=1000.0)
    call = Call(prompt="hello", model="paid", params=Params(max_tokens=20))
    config = fleet(paid, budgets=BudgetsConfig(global_daily_usd=paid.cost(30, 20) * 1.5))
    async with switchman.open_router(config) as router:
        results = [await router.call(call) for _ in range(4)]
    assert [r.status for r in results].count("failed") >= 2
    told = [r for r in caplog.records if "is refusing calls" in r.getMessage()]
    assert len(told) == 1 and told[0].levelname == "WARNING"
    assert "the global day budget of $" in told[0].getMessage()


async def test_a_misspelt_model_or_fallback_is_told_what_it_may_have_meant() -> None:
    async with switchman.open_router(None) as router:  # the built-in catalog
        with pytest.raises(switchman.ValidationError) as raised:
            await router.call(
                Call(
                    prompt="hi",
                    model="claude-sonet",
                    options=switchman.Options(fallback=("gpt-5.4-mni",)),
                )
            )
    said = {f.field: f.message for f in raised.value.fields}
    assert "did you mean 'claude-sonnet'" in said["model"]  # the route
    # a fallback is a model: the hint names models only, as the caller wrote theirs
    assert said["options.fallback[0]"].startswith(
        "unknown model alias 'gpt-5.4-mni'; did you mean 'gpt-5.4-mini'"
    )


async def test_the_traces_budget_scopes_name_every_provider_the_call_held_in(
    autojump_clock: trio.abc.Clock,
) -> None:
    """They named only the last attempt's: a call cut on one provider and answered on
    another listed the second alone, though both held and billed."""
    cut = sim_model("cut", SimProfile(cut_rate=1.0), provider="sim-a")
    good = sim_model("good", provider="sim-b")
    config = fleet(cut, good, budgets=BudgetsConfig(global_daily_usd=100.0))
    async with switchman.open_router(config) as router:
        result = await router.call(
            Call(prompt="hi there", model="cut", options=Options(fallback=("good",)))
        )
    assert result.status == "complete" and result.model == "good"
    assert result.trace.budget.scopes == ("global", "provider:sim-a", "provider:sim-b")


def test_a_model_turned_away_is_not_told_as_over_the_calls_cap() -> None:
    """A fallback turned away (its breaker open) shares its error code with one passed
    over for the call's cost cap: the lead error said "1 more model(s) not tried: over
    max_cost_usd" for a call with no cap."""
    from switchman._result import AttemptRecord, ErrorInfo
    from switchman.actors._failure import summarise as _summarise

    run = call_run(Call(prompt="hi"))
    for n, alias, outcome, error in ((1, "a", "error", "boom"), (2, "b", "unavailable", "open")):
        run.attempts.append(
            AttemptRecord(
                n=n,
                alias=alias,
                provider="p",
                started_at=0.0,
                ended_at=0.0,
                ttft_ms=None,
                outcome=outcome,
                error=error,
            )
        )
    run.errors += [
        ErrorInfo(code="all_models_failed", message="boom", provider="p", status=500),
        ErrorInfo(code="no_eligible_model", message="b: breaker open", provider="p"),
    ]
    assert "max_cost_usd" not in _summarise(run)[0].message
    run.over_cap = 1  # (one passed over for the cap, as _one_attempt counts it)
    assert _summarise(run)[0].message.endswith("1 more model(s) not tried: over max_cost_usd")


def test_a_cut_call_leads_with_the_cut_told_once_then_what_failed_before_it() -> None:
    """A call cut (its client gone) after an attempt had failed led with "1 attempt(s)
    failed; last: the client disconnected ..." (the cut blamed on the attempts) and told
    the cut twice."""
    from switchman._result import ErrorInfo
    from switchman.actors._failure import summarise as _summarise

    gone = "the client disconnected before the answer was complete"
    run = call_run(Call(prompt="x"))
    run.errors = [
        ErrorInfo(code="rate_limited", message="slow down", provider="openai", status=429),
        ErrorInfo(code="cancelled", message=gone),
    ]
    lead, *rest = _summarise(run)
    assert (lead.code, lead.message) == (
        "cancelled",
        f"{gone}; before it, 1 error(s), the last: slow down (openai, HTTP 429)",
    )
    assert rest == run.errors[:1]
    run.errors = [ErrorInfo(code="cancelled", message=gone)]  # nothing before: as it is
    assert _summarise(run) == (run.errors[0],)


async def test_a_call_its_provider_turned_away_for_its_rate_budget_is_told_when_to_retry(
    autojump_clock: trio.abc.Clock,
) -> None:
    """A provider's own ``tpm`` used up by the calls in flight: the call it turned away
    says when its tokens are back (``retry_after_s``; it said nothing, which reads as
    "not worth retrying", and /v1 sent no retry-after)."""
    slow = sim_model("slow", SimProfile(latency_ms=2_000))
    config = fleet(slow)
    spec = attrs.evolve(config.providers["sim"], tpm=3_000)
    config = attrs.evolve(config, providers={"sim": spec})
    results: list[switchman.Result] = []
    async with switchman.open_router(config) as router:

        async def one(i: int) -> None:
            call = Call(prompt=f"call {i}", model="slow", params=Params(max_tokens=1_000))
            results.append(await router.call(call))

        async with trio.open_nursery() as nursery:
            for i in range(4):
                nursery.start_soon(one, i)
    refused = [r for r in results if r.status == "failed"]
    assert refused and all(r.errors[0].code == "no_eligible_model" for r in refused)
    for result in refused:
        assert "rate budget empty" in result.errors[0].message
        back = result.errors[0].retry_after_s
        assert back is not None and 0 < back <= 60, result.errors


async def test_a_call_no_model_took_says_when_the_soonest_is_back(
    autojump_clock: trio.abc.Clock,
) -> None:
    """Two models of a route turned away for their providers' ``tpm``, one back in
    seconds, the other in a minute: the call's lead error says the seconds (it said the
    last model's minute, fifteen times too long)."""
    soon = sim_model("soon", SimProfile(latency_ms=2_000), provider="sim-a")
    late = sim_model("late", SimProfile(latency_ms=2_000), provider="sim-b")
    config = fleet(soon, late, routes={"r": ("soon", "late")})
    providers = {  # each holds one such call: back in about 21 s and 41 s
        "sim-a": attrs.evolve(config.providers["sim-a"], tpm=1_500),
        "sim-b": attrs.evolve(config.providers["sim-b"], tpm=1_200),
    }
    config = attrs.evolve(config, providers=providers)
    call = Call(prompt="hold", model="r", params=Params(max_tokens=1_000))
    async with switchman.open_router(config) as router, trio.open_nursery() as nursery:
        for target in ("soon", "late"):  # take both buckets
            nursery.start_soon(router.call, attrs.evolve(call, model=target))
        await trio.sleep(0.1)
        refused = await router.call(call)
        nursery.cancel_scope.cancel()
    assert refused.status == "failed", refused.errors
    backs = [e.retry_after_s for e in refused.errors[1:]]
    assert all(b is not None for b in backs) and len(backs) == 2, refused.errors
    assert refused.errors[0].retry_after_s == min(b for b in backs if b is not None)
