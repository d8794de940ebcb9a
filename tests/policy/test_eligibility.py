from __future__ import annotations

from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from switchman._call import Call, Message, Options, Params
from switchman._result import Exclusion
from switchman.catalog._spec import ModelSpec
from switchman.policy._eligibility import (
    FULL_OUTPUT_TOKENS,
    PREFILL_EXCLUSION,
    VERBOSITY_OUTPUT_TOKENS,
    cap_exceeded,
    check_eligibility,
    is_allowed,
    output_tokens,
    request_params,
)
from switchman.policy._estimate import CONTINUE_PROMPT, estimate_input_tokens, max_input_tokens


def model(alias: str = "m", **kw: Any) -> ModelSpec:
    kw.setdefault("provider", "openai")
    kw.setdefault("model_id", alias + "-id")
    return ModelSpec(alias=alias, **kw)


def reason(call: Call, m: ModelSpec, input_tokens: int = 100, **kw: Any) -> str | None:
    kw.setdefault("unavailable", {})
    result = check_eligibility(call, [m], input_tokens=input_tokens, **kw)
    if result.eligible:
        assert result.eligible == (m,)
        assert result.excluded == ()
        return None
    assert len(result.excluded) == 1
    assert result.excluded[0].alias == m.alias
    return result.excluded[0].reason


# -- token estimates -------------------------------------------------------------------------


def test_estimate_input_tokens_prompt_is_one_message() -> None:
    assert estimate_input_tokens(Call(prompt="abcd" * 10)) == 10 + 4
    # ceil: 41 characters need 11 tokens
    assert estimate_input_tokens(Call(prompt="a" * 41)) == 11 + 4


def test_estimate_input_tokens_counts_every_message() -> None:
    call = Call(
        messages=(
            Message(role="system", content="be brief"),
            Message(role="user", content="hi"),
            Message(role="assistant", content="hello"),
        )
    )
    # 8, 2 and 5 characters -> 2 + 1 + 2 tokens, plus 3 messages * 4
    assert estimate_input_tokens(call) == 5 + 12


@pytest.mark.parametrize(("verbosity", "expected"), list(VERBOSITY_OUTPUT_TOKENS.items()))
def test_output_tokens_follow_verbosity(verbosity: Any, expected: int) -> None:
    call = Call(prompt="x", options=Options(verbosity=verbosity))
    # "full" asks for more where the model has it: its own 8,192 here
    want = 8_192 if verbosity == "full" else expected
    assert output_tokens(call, model(max_output_tokens=8_192)) == want


def test_output_tokens_prefer_max_tokens_and_cap_at_model_limit() -> None:
    call = Call(prompt="x", params=Params(max_tokens=3000), options=Options(verbosity="minimal"))
    assert output_tokens(call, model()) == 3000
    assert output_tokens(call, model(max_output_tokens=2000)) == 2000
    full = Call(prompt="x", options=Options(verbosity="full"))
    assert output_tokens(full, model(max_output_tokens=1000)) == 1000


# -- each rule, in order ---------------------------------------------------------------------


def test_rules_apply_in_order_each_with_its_reason() -> None:
    """A model failing every rule reports the first; fixing it reveals the next."""
    call = Call(
        prompt="x",
        intent="code",
        min_trust="trusted",
        capabilities=("vision", "json"),
        params=Params(max_tokens=5000, seed=7, stop=("END",)),
        options=Options(determinism="strict", max_cost_usd=0.01),
    )
    m = model(
        "bad",
        provider="acme",
        supports_stop=False,
        enabled=False,
        intents=("summarize", "extract"),
        trust_tier="standard",
        capabilities=("json",),
        max_output_tokens=4000,
        context_window=5000,
        supports_seed=False,
        input_per_mtok=1000.0,
        output_per_mtok=1000.0,
    )
    unavailable = {"bad": "breaker open until +4.2s"}
    allowed = ("openai/*", "claude-*")
    fixes: list[tuple[str, dict[str, Any]]] = [
        ("disabled", {"enabled": True}),
        ("intent 'code' not supported (supports: summarize, extract)", {"intents": ()}),
        ("trust tier standard below required trusted", {"trust_tier": "trusted"}),
        ("missing capabilities: vision", {"capabilities": ("vision", "json")}),
        (
            "max_tokens 5000 above the model's limit of 4000 output tokens",
            {"max_output_tokens": 8192},
        ),
        (
            "context window 5000 too small for 100 input + 5000 output tokens",
            {"context_window": 8192},
        ),
        (
            "determinism strict needs a seed, which the model does not support",
            {"supports_seed": True},
        ),
        ("stop sequences, which the model does not take", {"supports_stop": True}),
        (
            # (the cap counts the prompt's own text, "x": a token and 20 of framing)
            "estimated cost $5.021000 (21 input + 5000 output tokens) above max_cost_usd $0.010000",
            {"input_per_mtok": 1.0, "output_per_mtok": 1.0},
        ),
        (
            "not allowed for this caller (allowed: openai/*, claude-*)",
            {"provider": "openai"},
        ),
        ("breaker open until +4.2s", {}),
    ]
    for expected, fix in fixes:
        assert reason(call, m, unavailable=unavailable, allowed=allowed) == expected
        m = attrs.evolve(m, **fix)
    assert reason(call, m, unavailable={}, allowed=allowed) is None


def test_intent_unknown_and_empty_intents_are_supported_by_every_model() -> None:
    specialist = model(intents=("summarize",))
    assert reason(Call(prompt="x"), specialist) is None
    assert reason(Call(prompt="x", intent="summarize"), specialist) is None
    assert reason(Call(prompt="x", intent="code"), model(intents=())) is None


@pytest.mark.parametrize(
    ("tier", "min_trust", "ok"),
    [
        ("untrusted", "untrusted", True),
        ("untrusted", "standard", False),
        ("standard", "standard", True),
        ("standard", "trusted", False),
        ("trusted", "standard", True),
    ],
)
def test_trust_order(tier: Any, min_trust: Any, ok: bool) -> None:
    r = reason(Call(prompt="x", min_trust=min_trust), model(trust_tier=tier))
    assert (r is None) is ok


def test_missing_capabilities_are_all_named() -> None:
    call = Call(prompt="x", capabilities=("vision", "tools", "json"))
    assert reason(call, model(capabilities=("json",))) == "missing capabilities: vision, tools"
    twice = Call(prompt="x", capabilities=("vision", "vision"))
    assert reason(twice, model(capabilities=("json",))) == "missing capabilities: vision"


def test_verbosity_changes_the_output_room_needed() -> None:
    m = model(context_window=2000, max_output_tokens=8192)
    minimal = Call(prompt="x", options=Options(verbosity="minimal"))
    full = Call(prompt="x", options=Options(verbosity="full"))
    assert reason(minimal, m, input_tokens=1500) is None
    # "full" shrinks to the room left, but not below 1,024 tokens: 500 is too little
    assert (
        reason(full, m, input_tokens=1500)
        == "context window 2000 too small for 1500 input + 1024 output tokens"
    )
    assert reason(full, m, input_tokens=900) is None


def test_verbosity_prefers_the_models_with_room_for_its_output() -> None:
    """A model whose output limit is below the verbosity's room is left out, saying so,
    when other models have that room (it was sent its own limit, 300 tokens, for a "full"
    answer); alone, as a named model is, it still serves; a call's own max_tokens is held
    to the limit instead."""
    short, roomy = model("short", max_output_tokens=300), model("roomy", max_output_tokens=8192)
    full = Call(prompt="x", options=Options(verbosity="full"))
    both = check_eligibility(full, [short, roomy], input_tokens=100, unavailable={})
    assert [m.alias for m in both.eligible] == ["roomy"]
    assert both.excluded == (
        Exclusion(
            alias="short",
            reason="verbosity full needs room for 4096 output tokens; the model's limit is"
            " 300 (others have it)",
        ),
    )
    alone = check_eligibility(full, [short], input_tokens=100, unavailable={})
    assert [m.alias for m in alone.eligible] == ["short"]
    # named (as the call's model, in its route or its fallbacks), it serves at its limit
    named = check_eligibility(
        full, [short, roomy], input_tokens=100, unavailable={}, named={"short"}
    )
    assert [m.alias for m in named.eligible] == ["short", "roomy"]
    minimal = Call(prompt="x", options=Options(verbosity="minimal"))
    assert (
        len(check_eligibility(minimal, [short, roomy], input_tokens=100, unavailable={}).eligible)
        == 2
    )
    asked = Call(prompt="x", params=Params(max_tokens=200), options=Options(verbosity="full"))
    assert (
        len(check_eligibility(asked, [short, roomy], input_tokens=100, unavailable={}).eligible)
        == 2
    )


def test_a_conversation_ending_with_the_assistants_turn_prefers_models_that_continue_it() -> None:
    """A trailing assistant turn is a prefill the answer goes on from: a model that takes no
    prefill answers it afresh (the caller, joining the two, read "{" + a whole new answer),
    so ``auto`` leaves it out when others continue it; named, or alone, it is sent it."""
    fresh, goes_on = model("fresh"), model("goes-on", supports_prefill=True)
    turns = (Message(role="user", content="JSON for Paris"), Message(role="assistant", content="{"))
    call = Call(messages=turns)
    both = check_eligibility(call, [fresh, goes_on], input_tokens=10, unavailable={})
    assert [m.alias for m in both.eligible] == ["goes-on"]
    assert both.excluded == (Exclusion(alias="fresh", reason=PREFILL_EXCLUSION),)
    assert "a prefill" in PREFILL_EXCLUSION
    alone = check_eligibility(call, [fresh], input_tokens=10, unavailable={})
    assert [m.alias for m in alone.eligible] == ["fresh"]
    named = check_eligibility(
        call, [fresh, goes_on], input_tokens=10, unavailable={}, named={"fresh"}
    )
    assert [m.alias for m in named.eligible] == ["fresh", "goes-on"]
    asked = Call(messages=(*turns, Message(role="user", content="go on")))
    assert (
        len(check_eligibility(asked, [fresh, goes_on], input_tokens=10, unavailable={}).eligible)
        == 2
    )


def test_cost_limit_uses_input_and_output_room() -> None:
    m = model(input_per_mtok=10.0, output_per_mtok=100.0)
    # 3,920 ASCII characters: 980 tokens and 20 of framing; 1000 input * $10/M + 1024
    # output * $100/M = $0.01 + $0.1024
    prompt = "x" * 3920
    at_limit = Call(prompt=prompt, options=Options(max_cost_usd=0.1124))
    below = Call(prompt=prompt, options=Options(max_cost_usd=0.11))
    assert reason(at_limit, m, input_tokens=1000) is None
    assert reason(below, m, input_tokens=1000) == (
        "estimated cost $0.112400 (1000 input + 1024 output tokens) above max_cost_usd $0.110000"
    )
    # minimal verbosity needs less output room, so the same budget fits
    cheap = Call(prompt=prompt, options=Options(max_cost_usd=0.11, verbosity="minimal"))
    assert reason(cheap, m, input_tokens=1000) is None
    # a cap under a millionth of a dollar is shown in its own figures, not as $0.000000
    tiny = Call(prompt=prompt, options=Options(max_cost_usd=1e-10))
    assert str(reason(tiny, m, input_tokens=1000)).endswith("above max_cost_usd $1e-10")


def test_cost_limit_counts_other_scripts_by_their_bytes() -> None:
    """A CJK prompt is not priced at four characters a token: 20,000 CJK characters once
    went to a model at a third of their cost and billed three times the cap."""
    m = model(input_per_mtok=3.0, output_per_mtok=6.0)
    call = Call(
        prompt="中" * 20_000, params=Params(max_tokens=100), options=Options(max_cost_usd=0.05)
    )
    # the windows' estimate: a token a character; the cap's: a token a byte (60,000)
    assert estimate_input_tokens(call) == 20_004
    why = reason(call, m, input_tokens=estimate_input_tokens(call))
    assert why is not None and why.startswith("estimated cost $0.180660 (60020 input")
    ascii_call = attrs.evolve(call, prompt="x" * 20_000)
    assert reason(ascii_call, m, input_tokens=estimate_input_tokens(ascii_call)) is None


def test_cost_limit_prices_fees_at_their_most() -> None:
    """A model whose provider bills fees the request does not bound (Perplexity's
    searches) is priced at its most fee, as its reservation is."""
    m = model(input_per_mtok=1.0, output_per_mtok=1.0, request_fee_usd=0.005)
    most = attrs.evolve(m, max_request_fee_usd=0.025)
    call = Call(prompt="x", params=Params(max_tokens=100), options=Options(max_cost_usd=0.01))
    assert reason(call, m) is None
    why = reason(call, most)
    assert why is not None and why.startswith("estimated cost $0.025121")


def test_cost_limit_counts_what_the_call_was_billed() -> None:
    m = model(input_per_mtok=1.0, output_per_mtok=1.0)
    call = Call(prompt="x", params=Params(max_tokens=100), options=Options(max_cost_usd=0.01))
    assert cap_exceeded(call, m, 100, spent=0.0098) is None
    assert cap_exceeded(call, m, 100, spent=0.00995) == (
        "estimated cost $0.000121 (21 input + 100 output tokens) with $0.009950 already"
        " billed to the call above max_cost_usd $0.010000"
    )
    assert cap_exceeded(attrs.evolve(call, options=Options()), m, 100, spent=1.0) is None


def test_determinism_strict_excludes_only_models_without_seed() -> None:
    call = Call(prompt="x", params=Params(seed=1), options=Options(determinism="strict"))
    assert reason(call, model(supports_seed=True)) is None
    best = Call(prompt="x", options=Options(determinism="best_effort"))
    assert reason(best, model(supports_seed=False)) is None


@pytest.mark.parametrize(
    ("patterns", "ok"),
    [
        (("*",), True),
        (("openai/*",), True),
        (("anthropic/*",), False),
        (("gpt-*",), True),
        (("claude-*", "openai/gpt-fast"), True),
        (("GPT-*",), False),
        ((), False),
    ],
)
def test_allowed_patterns_match_alias_or_provider(patterns: tuple[str, ...], ok: bool) -> None:
    m = model("gpt-fast", provider="openai")
    assert is_allowed(m, patterns) is ok
    assert (reason(Call(prompt="x"), m, allowed=patterns) is None) is ok


def test_unavailable_reason_is_reported_verbatim_and_others_unaffected() -> None:
    models = [model("a"), model("b"), model("c")]
    result = check_eligibility(
        Call(prompt="x"),
        models,
        input_tokens=10,
        unavailable={"b": "provider disabled: missing API key: set OPENAI_API_KEY"},
    )
    assert [m.alias for m in result.eligible] == ["a", "c"]
    assert result.excluded == (
        Exclusion(alias="b", reason="provider disabled: missing API key: set OPENAI_API_KEY"),
    )


def test_eligible_keep_input_order_and_excluded_follow_order() -> None:
    models = [model("z"), model("y", enabled=False), model("x"), model("w", enabled=False)]
    result = check_eligibility(Call(prompt="x"), models, input_tokens=10, unavailable={})
    assert [m.alias for m in result.eligible] == ["z", "x"]
    assert [e.alias for e in result.excluded] == ["y", "w"]


# -- request parameters ----------------------------------------------------------------------


def test_request_params_off_passes_params_and_verbosity_bounds_max_tokens() -> None:
    call = Call(
        prompt="x",
        params=Params(temperature=0.7, top_p=0.9, seed=3, stop=("END",)),
        options=Options(verbosity="minimal"),
    )
    assert request_params(call, model(supports_seed=True)) == {
        "temperature": 0.7,
        "top_p": 0.9,
        "max_tokens": 256,
        "seed": 3,
        "stop": ("END",),
    }
    # seed dropped where unsupported
    assert request_params(call, model(supports_seed=False))["seed"] is None
    full = attrs.evolve(call, options=Options(verbosity="full"))
    assert request_params(full, model(max_output_tokens=2000))["max_tokens"] == 2000


def test_request_params_strict_forces_temperature_zero_and_seed() -> None:
    call = Call(
        prompt="x",
        params=Params(temperature=1.2, top_p=0.5, seed=42),
        options=Options(determinism="strict"),
    )
    params = request_params(call, model(supports_seed=True))
    assert params["temperature"] == 0.0
    assert params["seed"] == 42
    assert params["top_p"] == 0.5


def test_request_params_best_effort() -> None:
    unset = Call(prompt="x", params=Params(seed=9), options=Options(determinism="best_effort"))
    assert request_params(unset, model(supports_seed=True))["temperature"] == 0.0
    assert request_params(unset, model(supports_seed=True))["seed"] == 9
    assert request_params(unset, model(supports_seed=False))["seed"] is None
    given = attrs.evolve(unset, params=Params(temperature=0.4, seed=9))
    assert request_params(given, model())["temperature"] == 0.4


def test_request_params_explicit_max_tokens() -> None:
    call = Call(prompt="x", params=Params(max_tokens=77), options=Options(verbosity="full"))
    assert request_params(call, model())["max_tokens"] == 77


@given(st.text(min_size=1, max_size=300).filter(str.strip), st.text(max_size=100))
def test_reservations_bound_any_byte_fallback_tokenizer(text: str, sent: str) -> None:
    # a tokenizer that falls back to bytes makes at most one token per UTF-8 byte; the
    # chars/4 estimate is far below that for CJK or emoji, which let budgets overspend
    call = Call(prompt=text)
    bound = max_input_tokens(call, sent)
    assert bound >= len(text.encode()) + len(sent.encode())
    assert bound >= estimate_input_tokens(call)


def test_reservation_bound_counts_every_message_and_a_continuation() -> None:
    call = Call(
        messages=(Message(role="system", content="説明"), Message(role="user", content="ab"))
    )
    # "説明" is 6 bytes; 4 tokens a message, 16 a request (the reply's priming)
    assert max_input_tokens(call) == 6 + 2 + 4 * 2 + 16
    # a continuation sends the text again, and maybe the turn asking to continue it
    assert max_input_tokens(call, "続き") == 6 + 2 + 6 + len(CONTINUE_PROMPT) + 4 * 4 + 16
    # a one-byte prompt is billed about 8 tokens by a chat API: the bound holds
    assert max_input_tokens(Call(prompt="a")) >= 8


def test_full_verbosity_asks_for_what_the_model_and_its_window_allow() -> None:
    full = Call(prompt="x", options=Options(verbosity="full"))
    big = model(context_window=200_000, max_output_tokens=64_000)
    assert output_tokens(full, big, 1_000) == FULL_OUTPUT_TOKENS == 16_384
    assert output_tokens(full, model(max_output_tokens=8_192), 1_000) == 8_192
    tight = model(context_window=10_000, max_output_tokens=64_000)
    # the room its window leaves, with a quarter more for an input denser than estimated
    assert output_tokens(full, tight, 4_000) == 5_000
    assert reason(full, tight, input_tokens=4_000) is None
    # below its 4,096 default it asks for the room left, to the last token
    assert output_tokens(full, tight, 8_000) == 2_000
    assert reason(full, tight, input_tokens=8_000) is None
    # but never less than 1,024: a window without that room excludes the model
    assert output_tokens(full, tight, 9_500) == 1_024
    assert reason(full, tight, input_tokens=9_500) is not None
    # a caller's own max_tokens is what is asked, verbosity aside
    assert output_tokens(Call(prompt="x", params=Params(max_tokens=50)), big, 1_000) == 50
