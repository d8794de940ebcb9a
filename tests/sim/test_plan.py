"""Plans: deterministic, faithful to the profile's rates, and to the behaviour names."""

from __future__ import annotations

import random
from collections import Counter

import attrs
import pytest

from switchman._call import Message
from switchman.adapters._base import ProviderRequest
from switchman.catalog import SimProfile
from switchman.sim import (
    BEHAVIOURS,
    REFUSAL_TEXT,
    BehaviourState,
    Plan,
    behaviour_name,
    expected_answer,
    plan_from_name,
    plan_from_profile,
)
from switchman.sim._plan import MAX_ANSWER_WORDS

PROMPT = "What is the capital of France?"


def request(
    prompt: str = "What is the capital of France?",
    *,
    max_tokens: int | None = None,
    prefill: str | None = None,
    system: str | None = None,
) -> ProviderRequest:
    messages = []
    if system is not None:
        messages.append(Message(role="system", content=system))
    messages.append(Message(role="user", content=prompt))
    if prefill is not None:
        messages.append(Message(role="assistant", content=prefill))
    return ProviderRequest(model_id="m", messages=tuple(messages), max_tokens=max_tokens)


def named(model: str, req: ProviderRequest | None = None, *, now: float = 0.0) -> Plan:
    return plan_from_name(model, req or request(), now=now, state=BehaviourState())


# -- the answer text ------------------------------------------------------------------------


def test_expected_answer_names_model_and_prompt_and_is_stable() -> None:
    answer = expected_answer("sim/fast", "What is the capital of France?", None)
    assert answer.startswith("Simulated answer from sim/fast about: What is the capital of France?")
    assert MAX_ANSWER_WORDS // 2 <= len(answer.split()) <= MAX_ANSWER_WORDS
    assert answer.endswith(".")  # whole sentences: a finished answer never looks cut off
    assert answer == expected_answer("sim/fast", "What is the capital of France?", None)
    assert answer != expected_answer("sim/smart", "What is the capital of France?", None)


def test_expected_answer_keeps_only_the_first_words_of_a_long_prompt() -> None:
    prompt = "one two three four five six seven eight nine ten eleven"
    answer = expected_answer("m", prompt, None)
    assert "about: one two three four five six seven eight..." in answer
    assert "nine" not in answer


def test_max_tokens_cuts_the_answer_to_that_many_words() -> None:
    full = expected_answer("m", "hello", None)
    short = expected_answer("m", "hello", 7)
    assert len(short.split()) == 7
    assert full.startswith(short)
    # a larger max_tokens never makes the answer longer than the natural one
    assert expected_answer("m", "hello", 10_000) == full


def test_plan_text_is_the_expected_answer_and_usage_counts_words_and_chars() -> None:
    req = request("a" * 40, max_tokens=12, system="b" * 8)
    plan = named("healthy", req)
    assert plan.text == expected_answer("healthy", "a" * 40, 12)
    assert plan.usage.output_tokens == 12
    assert plan.usage.input_tokens == 12  # (40 + 8) chars / 4
    assert plan.finish_reason == "length"
    assert named("healthy").finish_reason == "stop"
    assert len(plan.delays) == len(plan.chunks)


def test_a_prefill_that_starts_the_answer_is_continued_not_repeated() -> None:
    full = expected_answer("healthy", "hello there", None)
    prefix = full[:23]
    plan = named("healthy", request("hello there", prefill=prefix))
    assert prefix + plan.text == full
    assert plan.usage.output_tokens == len(full[23:].split())
    # another model's text, cut: carried on with the answer's words after as many, spaced
    other = named("healthy", request("hello there", prefill="Nope, it")).text
    assert "Nope, it" + other == "Nope, it " + " ".join(full.split()[2:])
    spaced = named("healthy", request("hello there", prefill="Nope ")).text
    assert spaced == " ".join(full.split()[1:])
    # a cut longer than its whole answer is ended with its last words, not answered afresh
    long_cut = "word " * 200 + "cut"
    ended = named("healthy", request("hello there", prefill=long_cut)).text
    assert ended == " " + " ".join(full.split()[-6:]) and ended.endswith(".")


def test_asked_in_a_user_turn_to_continue_its_cut_answer_it_carries_it_on() -> None:
    """A model that takes no prefill is sent the text so far and a turn asking it to go
    on: the simulator carries it on, as asked (it answered that turn afresh, and a stream
    continued on its own model came back as the cut text glued to a new answer)."""
    from switchman.policy._estimate import CONTINUE_PROMPT

    full = expected_answer("healthy", "hello there", None)
    prefix = full[:23]
    cut = request("hello there", prefill=prefix)
    asked = attrs.evolve(
        cut, messages=(*cut.messages, Message(role="user", content=CONTINUE_PROMPT))
    )
    assert prefix + named("healthy", asked).text == full


# -- profiles -------------------------------------------------------------------------------


def test_profile_plans_are_deterministic_for_a_seed() -> None:
    profile = SimProfile(
        latency_ms=400,
        ttft_ms=100,
        error_rate=0.2,
        refusal_rate=0.1,
        rate_limit_rate=0.1,
        stall_rate=0.1,
        cut_rate=0.1,
    )

    def draw(seed: int) -> list[Plan]:
        rng = random.Random(seed)
        return [plan_from_profile(profile, request(), rng, model_alias="x") for _ in range(50)]

    assert draw(7) == draw(7)
    assert draw(7) != draw(8)


@pytest.mark.parametrize("seed", [1, 2])
def test_profile_rates_are_respected(seed: int) -> None:
    profile = SimProfile(
        error_rate=0.1, refusal_rate=0.05, rate_limit_rate=0.15, stall_rate=0.05, cut_rate=0.1
    )
    rng = random.Random(seed)
    n = 4000
    counts: Counter[str] = Counter()
    for _ in range(n):
        counts[plan_from_profile(profile, request(), rng, model_alias="x").behaviour] += 1
    expected = {
        "error": 0.1,
        "refusal": 0.05,
        "rate-limited": 0.15,
        "stall": 0.05,
        "cut": 0.1,
        "healthy": 0.55,
    }
    for behaviour, rate in expected.items():
        # within 4 standard deviations of the binomial
        sd = (rate * (1 - rate) / n) ** 0.5
        assert abs(counts[behaviour] / n - rate) < 4 * sd, (behaviour, counts)


def test_profile_errors_cover_500_503_529_and_reset() -> None:
    rng = random.Random(3)
    kinds = Counter(
        (p.failure.kind, p.failure.status)
        for p in (
            plan_from_profile(SimProfile(error_rate=1.0), request(), rng, model_alias="x")
            for _ in range(200)
        )
        if p.failure is not None
    )
    assert set(kinds) == {
        ("server_error", 500),
        ("unavailable", 503),
        ("overloaded", 529),
        ("reset", None),
    }


def test_profile_rate_limits_mostly_carry_retry_after() -> None:
    rng = random.Random(4)
    plans = [
        plan_from_profile(SimProfile(rate_limit_rate=1.0), request(), rng, model_alias="x")
        for _ in range(400)
    ]
    hints = [p.failure.retry_after for p in plans if p.failure is not None]
    assert len(hints) == 400
    with_hint = [h for h in hints if h is not None]
    assert 0.6 < len(with_hint) / 400 < 0.9
    assert all(0.5 <= h <= 2.0 for h in with_hint)


def test_zero_profile_is_instant_and_healthy() -> None:
    plan = plan_from_profile(SimProfile(), request(), random.Random(0), model_alias="sim/fast")
    assert plan.failure is None
    assert plan.ending == "complete"
    assert plan.ttft_s == 0
    assert set(plan.delays) == {0.0}
    assert plan.text == expected_answer("sim/fast", "What is the capital of France?", None)


def test_profile_times_follow_ttft_latency_and_tokens_per_second() -> None:
    rng = random.Random(5)
    plan = plan_from_profile(
        SimProfile(ttft_ms=200, latency_ms=1000), request(), rng, model_alias="x"
    )
    jitter = plan.ttft_s / 0.2
    assert 0.8 <= jitter <= 1.2
    assert plan.delays[0] == 0
    assert plan.ttft_s + sum(plan.delays) == pytest.approx(1.0 * jitter)

    slow = plan_from_profile(
        SimProfile(ttft_ms=100, tokens_per_s=10), request(), rng, model_alias="x"
    )
    jitter = slow.ttft_s / 0.1
    # words after the first arrive at ~10 per second: total streaming time = words / 10
    assert sum(slow.delays) == pytest.approx(slow.usage.output_tokens / 10 * jitter)


def test_profile_stall_and_cut_points_are_inside_the_answer() -> None:
    rng = random.Random(6)
    for _ in range(100):
        stall = plan_from_profile(SimProfile(stall_rate=1.0), request(), rng, model_alias="x")
        assert stall.ending == "stall"
        assert 0 <= stall.break_after < len(stall.chunks)
        cut = plan_from_profile(SimProfile(cut_rate=1.0), request(), rng, model_alias="x")
        assert cut.ending == "cut"
        assert 1 <= cut.break_after < len(cut.chunks)
        assert cut.delivered == cut.chunks[: cut.break_after]


def test_profile_refusal_has_the_refusal_text_and_no_answer() -> None:
    plan = plan_from_profile(
        SimProfile(refusal_rate=1.0), request(), random.Random(0), model_alias="x"
    )
    assert plan.ending == "refusal"
    assert plan.refusal == REFUSAL_TEXT
    assert plan.chunks == ()


def test_a_prompt_over_the_context_window_fails_with_context_length() -> None:
    plan = plan_from_profile(
        SimProfile(), request("x" * 400), random.Random(0), model_alias="x", context_window=50
    )
    assert plan.failure is not None
    assert plan.failure.kind == "context_length"
    assert "100 tokens > 50" in plan.failure.message


# -- names ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "kind", "status", "retry_after"),
    [
        ("rate-limited", "rate_limited", 429, 1.0),
        ("rate-limited-no-retry-after", "rate_limited", 429, None),
        ("down", "unavailable", 503, None),
        ("overloaded", "overloaded", 529, None),
        ("reset", "reset", None, None),
        ("silent", "silent", None, None),
        ("context-length", "context_length", 400, None),
        ("content-policy", "content_policy", 400, None),
        ("not-found", "not_found", 404, None),
        ("bad-key", "bad_key", 401, None),
        ("quota-exhausted", "quota_exhausted", 429, None),
        ("spend-limit", "spend_limit", 429, None),
    ],
)
def test_failure_names(
    model: str, kind: str, status: int | None, retry_after: float | None
) -> None:
    plan = named(model)
    assert plan.failure is not None
    assert (plan.failure.kind, plan.failure.status, plan.failure.retry_after) == (
        kind,
        status,
        retry_after,
    )
    assert plan.behaviour == model


def test_every_failure_name_is_listed_as_a_behaviour() -> None:
    for name in ("bad-key", "quota-exhausted", "spend-limit", "not-found"):
        assert name in BEHAVIOURS
        assert named(name).failure is not None


def test_answer_names() -> None:
    healthy = named("healthy")
    assert (healthy.failure, healthy.ending, healthy.ttft_s) == (None, "complete", 0.0)
    assert named("slow-ttft").ttft_s == 1.5
    assert named("slow-ttft-250").ttft_s == 0.25
    assert named("healthy-latency-40").ttft_s == 0.04
    cut = named("cut")
    assert cut.ending == "cut"
    assert 0 < cut.break_after < len(cut.chunks)
    stall = named("stall")
    assert stall.ending == "stall"
    assert 0 < stall.break_after < len(stall.chunks)
    malformed = named("malformed")
    assert malformed.ending == "complete"
    assert malformed.malformed_at is not None
    assert 0 < malformed.malformed_at < len(malformed.chunks)
    assert named("no-terminator").terminator is False
    assert named("error-after-200").ending == "error"
    refusal = named("refusal")
    assert (refusal.ending, refusal.refusal) == ("refusal", REFUSAL_TEXT)


@pytest.mark.parametrize(
    "model", ["gpt-6-luna", "healthy", "slow-ttft-abc", "flapping-x", "healthy-latency"]
)
def test_unknown_names_are_healthy(model: str) -> None:
    plan = named(model)
    assert plan.failure is None
    assert plan.ending == "complete"
    assert plan.ttft_s == 0
    assert plan.behaviour == "healthy"


def test_behaviour_ignores_provider_prefix_and_tag() -> None:
    assert behaviour_name("models/cut") == "cut"
    assert behaviour_name("openai/refusal") == "refusal"
    assert behaviour_name("stall:latest") == "stall"
    assert named("models/down").failure is not None


def test_error_once_fails_once_per_model_name() -> None:
    state = BehaviourState()
    first = plan_from_name("error-once", request(), now=0, state=state)
    second = plan_from_name("error-once", request(), now=0, state=state)
    other = plan_from_name("x/error-once", request(), now=0, state=state)
    assert first.failure is not None and first.failure.status == 500
    assert second.failure is None and second.ending == "complete"
    assert other.failure is not None
    state.clear()
    assert plan_from_name("error-once", request(), now=0, state=state).failure is not None


def test_flapping_is_down_for_n_seconds_from_the_first_request() -> None:
    state = BehaviourState()

    def status(now: float) -> int | None:
        plan = plan_from_name("flapping-5", request(), now=now, state=state)
        return plan.failure.status if plan.failure else 200

    assert [status(t) for t in (100.0, 102.0, 104.9, 105.0, 200.0)] == [503, 503, 503, 200, 200]


def test_flapping_down_up_cycles() -> None:
    state = BehaviourState()

    def status(now: float) -> int | None:
        plan = plan_from_name("flapping-2-3", request(), now=now, state=state)
        return plan.failure.status if plan.failure else 200

    times = [10.0, 11.5, 12.0, 14.9, 15.0, 16.9, 17.0, 20.0]
    assert [status(t) for t in times] == [503, 503, 200, 200, 503, 503, 200, 503]


def test_the_stop_sequence_complete_first_ends_the_answer_and_is_named() -> None:
    # the answer opens "Simulated answer from healthy ...": a model writing it completes
    # "from" before "answer from healthy", though the latter starts earlier
    req = attrs.evolve(request(), stop=("answer from healthy", "from", "absent"))
    plan = named("healthy", req)
    assert plan.text == "Simulated answer "
    assert (plan.finish_reason, plan.stop_sequence) == ("stop", "from")
    assert plan.usage.output_tokens == 2
    # no stop sequence in the answer: none named
    plain = named("healthy", attrs.evolve(request(), stop=("absent",)))
    assert plain.stop_sequence is None and plain.text == expected_answer("healthy", PROMPT, None)
    # a refusal ends at no stop sequence
    refused = named("refusal", req)
    assert refused.stop_sequence is None and refused.ending == "refusal"
