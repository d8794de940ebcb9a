"""What is billed from a provider's report (the money audit): a bill past the request's
max_tokens is real and billed as reported; only what the model could never produce is held."""

from __future__ import annotations

import pytest

from switchman._result import Usage
from switchman.catalog import ModelSpec
from switchman.policy._billing import possible_bill

#: gpt-5.4-mini's prices and limits (providers.md)
MINI = ModelSpec(
    alias="openai/gpt-5.4-mini",
    provider="openai",
    model_id="gpt-5.4-mini",
    input_per_mtok=0.75,
    output_per_mtok=4.5,
    context_window=272_000,
    max_output_tokens=128_000,
)


def test_output_past_max_tokens_within_the_models_output_limit_is_billed_as_reported() -> None:
    usage = Usage(input_tokens=20, output_tokens=5000)  # sent max_tokens 100
    cost = MINI.cost(20, 5000)
    bill = possible_bill(MINI, usage, cost)
    assert not bill.held and bill.usage == usage and bill.cost_usd == cost


def test_a_reported_cost_up_to_the_whole_model_at_list_prices_is_kept() -> None:
    most = MINI.cost(272_000, 128_000)
    assert not possible_bill(MINI, Usage(input_tokens=20, output_tokens=50), most).held
    held = possible_bill(MINI, Usage(input_tokens=20, output_tokens=50), most * 2)
    assert held.held and held.cost_usd == pytest.approx(most)


@pytest.mark.parametrize(
    ("usage", "kept"),
    [
        (
            Usage(input_tokens=10**12, output_tokens=50),
            Usage(input_tokens=272_000, output_tokens=50),
        ),
        (
            Usage(input_tokens=20, output_tokens=10**12),
            Usage(input_tokens=20, output_tokens=128_000),
        ),
    ],
)
def test_usage_no_request_to_the_model_could_produce_is_still_held(
    usage: Usage, kept: Usage
) -> None:
    bill = possible_bill(MINI, usage, MINI.cost(usage.input_tokens, usage.output_tokens))
    assert bill.held and bill.usage == kept
    assert bill.cost_usd == pytest.approx(MINI.cost(kept.input_tokens, kept.output_tokens))
