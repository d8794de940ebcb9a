"""Through the router on the simulator: a long prompt without max_tokens is served, asking
for the output its model's context window has room for."""

from __future__ import annotations

import pytest
import trio

import switchman
from switchman import Call, Options, Params
from switchman.catalog import BudgetsConfig
from switchman.policy._eligibility import estimate_input_tokens, max_input_tokens
from tests._simfleet import fleet, sim_model

#: a window of 32,000 tokens holding input and output, up to 8,192 of output
LONG = sim_model("long", context_window=32_000, max_output_tokens=8_192)
PROMPT = "Summarize: " + "the quick brown fox " * 5_800  # about 29,000 tokens


async def test_a_long_prompt_with_the_default_output_is_served_within_the_window(
    autojump_clock: trio.abc.Clock,
) -> None:
    call = Call(prompt=PROMPT, model="long", options=Options(verbosity="full"))
    input_tokens = estimate_input_tokens(call)
    assert 28_000 < input_tokens < 31_000
    room = LONG.context_window - input_tokens  # below "full"'s 4,096, above 1,024
    # a global budget, so the attempt reserves what its request may cost: the max_tokens
    # it sends shows in the reservation
    config = fleet(LONG, budgets=BudgetsConfig(global_daily_usd=100.0))
    async with switchman.open_router(config) as router:
        result = await router.call(call)
        explicit = await router.call(
            Call(prompt=PROMPT, model="long", params=Params(max_tokens=4_000))
        )
    assert result.status == "complete", result.errors
    assert result.model == "long"
    assert result.trace.eligibility.eligible == ("long",)
    sent = LONG.cost(max_input_tokens(call), room)
    assert result.trace.budget.reserved_usd == pytest.approx(sent)
    assert input_tokens + room == LONG.context_window
    # a caller's own max_tokens is not shrunk: it does not fit, so the model is excluded
    assert explicit.status == "failed"
    (excluded,) = explicit.trace.eligibility.excluded
    assert excluded.reason == (
        f"context window 32000 too small for {input_tokens} input + 4000 output tokens"
    )
