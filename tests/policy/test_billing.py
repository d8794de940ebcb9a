"""A reported bill is held to what the request could have produced."""

from __future__ import annotations

import pytest

from switchman._result import Usage
from switchman.catalog import ModelSpec
from switchman.policy._billing import partial_output_tokens, possible_bill

MODEL = ModelSpec(
    alias="m",
    provider="p",
    model_id="m",
    input_per_mtok=1.0,
    output_per_mtok=2.0,
    context_window=1000,
    max_output_tokens=500,
)


def test_a_possible_bill_is_kept_as_reported() -> None:
    bill = possible_bill(MODEL, Usage(input_tokens=900, output_tokens=100), 0.0011)
    assert bill.usage == Usage(input_tokens=900, output_tokens=100)
    assert bill.cost_usd == 0.0011 and not bill.held


def test_usage_beyond_the_window_or_max_output_is_held_to_them() -> None:
    bill = possible_bill(MODEL, Usage(input_tokens=10**12, output_tokens=10**12), 3e6)
    assert bill.usage == Usage(input_tokens=1000, output_tokens=500)
    assert bill.cost_usd == pytest.approx((1000 * 1.0 + 500 * 2.0) / 1e6) and bill.held


def test_a_reported_cost_above_the_most_possible_is_held_to_it() -> None:
    # usage in bounds, but a cost no such usage could come to at these prices
    bill = possible_bill(MODEL, Usage(input_tokens=10, output_tokens=10), 5.0)
    assert bill.usage == Usage(input_tokens=10, output_tokens=10)
    assert bill.cost_usd == pytest.approx((1000 * 1.0 + 500 * 2.0) / 1e6) and bill.held


def test_an_answer_cut_short_is_billed_for_what_arrived() -> None:
    assert partial_output_tokens(["abcd" * 10], 100) == 10
    assert partial_output_tokens(["abcd" * 1000], 100) == 100
    assert partial_output_tokens([""], 100) == 1
