"""The context-window rule: where the output shares the window, and what a default shrinks to."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from switchman._call import Call, Options, Params, Verbosity
from switchman.catalog._spec import ModelSpec
from switchman.policy._eligibility import (
    CONTEXT_EXCLUSION,
    MIN_DEFAULT_OUTPUT_TOKENS,
    VERBOSITY_OUTPUT_TOKENS,
    check_eligibility,
    output_tokens,
    request_params,
)


def model(**kw: Any) -> ModelSpec:
    return ModelSpec(alias="m", provider="openai", model_id="m-id", **kw)


#: OpenAI's gpt-5.4-mini: 272k input tokens, and 128k output beside them
MINI = model(context_window=272_000, max_output_tokens=128_000, context_includes_output=False)
#: a model whose window holds input and output together (Anthropic's rule)
SHARED = model(context_window=32_768, max_output_tokens=8_192)


def reason(call: Call, m: ModelSpec, input_tokens: int) -> str | None:
    result = check_eligibility(call, [m], input_tokens=input_tokens, unavailable={})
    return result.excluded[0].reason if result.excluded else None


def call(verbosity: Verbosity = "standard", max_tokens: int | None = None) -> Call:
    return Call(
        prompt="x", params=Params(max_tokens=max_tokens), options=Options(verbosity=verbosity)
    )


def test_the_output_shares_the_window_unless_the_catalog_says_otherwise() -> None:
    assert model().context_includes_output is True


def test_a_separate_input_window_takes_a_long_prompt_with_any_output() -> None:
    # 250k input tokens to gpt-5.4-mini: OpenAI takes it, with all the output asked for
    for c in (call(), call("full"), call(max_tokens=100_000)):
        assert reason(c, MINI, 250_000) is None
    assert output_tokens(call("full"), MINI, 250_000) == 16_384
    assert output_tokens(call(max_tokens=100_000), MINI, 250_000) == 100_000
    # the same on a shared window of that size: the explicit 100k does not fit
    shared = model(context_window=272_000, max_output_tokens=128_000)
    assert reason(call(max_tokens=100_000), shared, 250_000) == (
        "context window 272000 too small for 250000 input + 100000 output tokens"
    )


def test_input_over_the_window_always_excludes() -> None:
    for m in (MINI, SHARED):
        window = m.context_window
        r = reason(call("minimal"), m, window + 1)
        assert r == f"{CONTEXT_EXCLUSION}{window} too small for {window + 1} input tokens"
        assert r.startswith(CONTEXT_EXCLUSION)


def test_an_explicit_max_tokens_that_does_not_fit_excludes_and_is_never_shrunk() -> None:
    c = call(max_tokens=4_000)
    assert reason(c, SHARED, 28_768) is None
    assert reason(c, SHARED, 28_769) == (
        "context window 32768 too small for 28769 input + 4000 output tokens"
    )
    assert output_tokens(c, SHARED, 28_769) == 4_000


def test_a_default_budget_shrinks_to_the_room_left_and_that_is_what_is_sent() -> None:
    full = call("full")
    # 30,000 input tokens leave 2,768 of the window: "full" asks for exactly that
    assert reason(full, SHARED, 30_000) is None
    assert output_tokens(full, SHARED, 30_000) == 2_768
    assert request_params(full, SHARED, 30_000)["max_tokens"] == 2_768
    # less room than 1,024 tokens: excluded, as the least output it would take
    assert reason(full, SHARED, 32_000) == (
        "context window 32768 too small for 32000 input + 1024 output tokens"
    )


def test_minimal_and_standard_are_their_own_floor() -> None:
    # minimal asks for 256 and takes nothing less; standard likewise its 1,024
    assert output_tokens(call("minimal"), SHARED, 32_768 - 256) == 256
    assert reason(call("minimal"), SHARED, 32_768 - 256) is None
    assert reason(call("minimal"), SHARED, 32_768 - 255) is not None
    assert reason(call("standard"), SHARED, 32_768 - 1_024) is None
    assert reason(call("standard"), SHARED, 32_768 - 1_023) is not None


def test_the_floor_follows_a_model_with_a_smaller_output_limit() -> None:
    tiny = model(context_window=4_000, max_output_tokens=500)
    # "full" wants 500 at most here, so 500 is also the least it takes
    assert output_tokens(call("full"), tiny, 3_500) == 500
    assert reason(call("full"), tiny, 3_500) is None
    assert reason(call("full"), tiny, 3_501) is not None


@given(
    window=st.integers(1, 2_000_000),
    limit=st.integers(1, 200_000),
    input_tokens=st.integers(0, 2_100_000),
    verbosity=st.sampled_from(list(VERBOSITY_OUTPUT_TOKENS)),
    max_tokens=st.none() | st.integers(1, 300_000),
    shares=st.booleans(),
)
def test_an_eligible_model_is_asked_for_output_that_fits(
    window: int,
    limit: int,
    input_tokens: int,
    verbosity: Verbosity,
    max_tokens: int | None,
    shares: bool,
) -> None:
    m = model(context_window=window, max_output_tokens=limit, context_includes_output=shares)
    c = call(verbosity, max_tokens)
    out = output_tokens(c, m, input_tokens)
    excluded = reason(c, m, input_tokens)
    assert 1 <= out <= limit
    if max_tokens is not None:
        assert out == min(max_tokens, limit)
    else:
        assert out >= min(MIN_DEFAULT_OUTPUT_TOKENS, VERBOSITY_OUTPUT_TOKENS[verbosity], limit)
    if input_tokens > window or (max_tokens is not None and max_tokens > limit):
        assert excluded is not None
    elif not shares:
        assert excluded is None
    else:
        assert (excluded is None) == (input_tokens + out <= window)
