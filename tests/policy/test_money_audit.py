"""What is billed from a provider's report (the money audit): a bill past the request's
max_tokens is real and billed as reported; only what the model could never produce is held."""

from __future__ import annotations

import pytest

from switchman._result import Usage
from switchman.catalog import ModelSpec, builtin_catalog
from switchman.policy._billing import possible_bill
from switchman.policy._estimate import most_cost

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


# --------------------------------------------------------------------------- fees


def sonar(**fields: float | None) -> ModelSpec:
    base: dict[str, float | None] = dict(
        request_fee_usd=0.005, max_request_fee_usd=0.025, input_per_mtok=0.25, output_per_mtok=2.5
    )
    base.update(fields)
    return ModelSpec(
        alias="perplexity/perplexity/sonar",
        provider="perplexity",
        model_id="perplexity/sonar",
        context_window=128_000,
        max_output_tokens=8_192,
        **base,  # type: ignore[arg-type]
    )


def test_a_reservation_holds_the_most_a_requests_fees_can_come_to() -> None:
    # tokens at list price and five web searches, not one
    assert most_cost(sonar(), 40, 100) == pytest.approx((40 * 0.25 + 100 * 2.5) / 1e6 + 0.025)
    # without a ceiling (or one below the fixed fee) the fixed fee is the most
    assert most_cost(sonar(max_request_fee_usd=None), 40, 100) == sonar().cost(40, 100)
    assert most_cost(MINI, 40, 100) == MINI.cost(40, 100)


def test_a_reported_cost_is_held_to_the_tokens_and_the_most_fees() -> None:
    whole = (128_000 * 0.25 + 8_192 * 2.5) / 1e6
    kept = possible_bill(sonar(), Usage(input_tokens=20, output_tokens=50), whole + 0.025)
    assert not kept.held and kept.cost_usd == pytest.approx(whole + 0.025)
    held = possible_bill(sonar(), Usage(input_tokens=20, output_tokens=50), 10.0)
    assert held.held and held.cost_usd == pytest.approx(whole + 0.025)


def test_the_catalogs_perplexity_models_reserve_five_searches() -> None:
    models = builtin_catalog().models
    perplexity = [m for m in models.values() if m.provider == "perplexity"]
    assert perplexity
    for m in perplexity:
        assert m.request_fee_usd == 0.005 and m.max_request_fee_usd == 0.025, m.alias


def test_a_fee_ceiling_below_the_fixed_fee_is_refused() -> None:
    problems = ModelSpec._problems(sonar(request_fee_usd=0.01, max_request_fee_usd=0.005))
    assert [p.field for p in problems] == ["max_request_fee_usd"]
    assert ModelSpec._problems(sonar()) == []
