"""Through the router on the simulator: a long prompt without max_tokens is served, asking
for the output its model's context window has room for."""

from __future__ import annotations

import pytest
import trio

import switchman
from switchman import Call, Options, Params
from switchman.catalog import BudgetsConfig
from switchman.policy._estimate import estimate_input_tokens, max_input_tokens
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
    # (its prompt reserved a token a byte, up to the window: the most a bill can say)
    sent = LONG.cost(min(max_input_tokens(call), LONG.context_window), room)
    assert result.trace.budget.reserved_usd == pytest.approx(sent)
    assert input_tokens + room == LONG.context_window
    # a caller's own max_tokens is not shrunk: it does not fit, so the model is excluded
    assert explicit.status == "failed"
    (excluded,) = explicit.trace.eligibility.excluded
    assert excluded.reason == (
        f"context window 32000 too small for {input_tokens} input + 4000 output tokens"
    )


async def test_no_eligible_model_tells_the_models_with_the_capability_and_each_kind() -> None:
    """With the whole catalog, a call needing search from a trusted model: the search
    models (Perplexity's) are excluded for their trust tier. The error showed the first six
    exclusions in catalog order and never said what kept the search models out."""
    import attrs

    from switchman.catalog import Config, ProviderSpec, SimProfile
    from switchman.catalog._catalog import builtin_catalog

    catalog = builtin_catalog()
    config = Config(
        providers={n: ProviderSpec(name=n, kind="sim") for n in catalog.providers},
        models={a: attrs.evolve(m, sim=SimProfile()) for a, m in catalog.models.items()},
        simulated=True,
    )
    search = [m.alias for m in config.models.values() if "search" in m.capabilities]
    assert search and all(config.models[a].trust_tier != "trusted" for a in search)
    call = Call(prompt="news?", capabilities=("search",), min_trust="trusted")
    async with switchman.open_router(config) as router:
        result = await router.call(call)
    assert result.status == "failed"
    message = result.errors[0].message
    # the models that have search first (what kept them out), then one of each other kind
    # of reason (not six "missing capabilities" in catalog order)
    told = "; ".join(
        f"{alias}: trust tier {config.models[alias].trust_tier} below required trusted"
        for alias in search
    )
    assert message.startswith(f"no eligible model: {told}; ")
    assert message.count("missing capabilities: search") == 1
    assert "trust tier untrusted below required trusted" in message
    assert len(result.trace.eligibility.excluded) == len(config.models)
