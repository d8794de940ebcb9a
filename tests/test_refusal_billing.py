"""A refusal the provider billed is billed here: through the router, real httpx and the fake
provider server, a model that refuses (OpenAI ``refusal``, Anthropic ``stop_reason:
refusal``, Gemini ``SAFETY``, DeepSeek ``content_filter``: each an HTTP 200 with its usage)
is recorded with that usage and its cost, the call's cost and the budget's spend count it,
and a budget is never overspent by refusals it did not count (they were $0, and their
reservations released)."""

from __future__ import annotations

import attrs
import pytest
import trio

import switchman
from switchman import Call, Params, Result, Usage
from switchman.catalog import BudgetsConfig, ModelSpec
from switchman.sim import REFUSAL_TEXT, FakeProviderServer, FakeServerConfig, serve_fake_provider
from tests._httpfleet import ENV, http_fleet, model

#: a long prompt: what a refusal is mostly billed for
PROMPT = "Tell me about this. " * 500
#: the input tokens the fake server counts (a token per four characters) and bills
INPUT = (len(PROMPT) + 3) // 4
#: the refusal's output tokens, where the provider reports them (Gemini's blocked
#: candidate reports the prompt only)
REFUSAL_WORDS = len(REFUSAL_TEXT.split())
#: an expensive model that refuses, and a cheap one that answers
PRICEY = {"input_per_mtok": 20.0, "output_per_mtok": 40.0}
FALLBACK = "openai/healthy"


@pytest.fixture
async def server(nursery: trio.Nursery) -> FakeProviderServer:
    handle: FakeProviderServer = await nursery.start(serve_fake_provider, FakeServerConfig())
    return handle


def call() -> Call:
    return Call(prompt=PROMPT, model="r", params=Params(max_tokens=200))


def refuser(provider: str) -> ModelSpec:
    return model(provider, "refusal", **PRICEY)


REFUSERS = [
    ("openai", "refused", REFUSAL_WORDS),  # usage in a chunk after the finish
    ("anthropic", "refused", REFUSAL_WORDS),  # input in message_start, output in message_delta
    ("gemini", "content_filtered", 0),  # usageMetadata beside finishReason SAFETY
    ("deepseek", "content_filtered", REFUSAL_WORDS),  # usage in the finish chunk
]


@pytest.mark.parametrize("provider,outcome,output", REFUSERS)
async def test_a_refusal_is_billed_its_usage_and_counted_in_the_call_and_the_budget(
    server: FakeProviderServer, provider: str, outcome: str, output: int
) -> None:
    first = refuser(provider)
    config = attrs.evolve(
        http_fleet(
            server, [first, model("openai", "healthy")], routes={"r": (first.alias, FALLBACK)}
        ),
        budgets=BudgetsConfig(global_daily_usd=5.0),
    )
    with trio.fail_after(30):
        async with switchman.open_router(config, env=ENV) as router:
            result = await router.call(call())
            spent = await router.spend("global")
            provider_spent = await router.spend(f"provider:{provider}")
    assert result.status == "complete" and result.model == FALLBACK
    refused, answered = result.trace.attempts
    assert (refused.alias, refused.outcome) == (first.alias, outcome)
    assert refused.usage.input_tokens == INPUT
    assert refused.usage.output_tokens == output  # (none reported, no text: none billed)
    assert refused.cost_usd == pytest.approx(
        first.cost(refused.usage.input_tokens, refused.usage.output_tokens)
    )
    assert refused.cost_usd > 0.04  # 5,000 tokens of prompt at $20 a million
    assert result.cost_usd == pytest.approx(refused.cost_usd + answered.cost_usd)
    assert result.trace.budget.settled_usd == pytest.approx(result.cost_usd)
    assert spent["day"] == pytest.approx(result.cost_usd)
    if provider != "openai":
        assert provider_spent["day"] == pytest.approx(refused.cost_usd)


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
async def test_a_budget_is_not_overspent_by_refusals(
    server: FakeProviderServer, provider: str
) -> None:
    """The budget covers the refusing model's reservation, and what refusals are billed
    runs it out: once what is left cannot hold that reservation, the expensive model is
    passed over and the cheap one answers alone. Counted at $0, every call was sent to the
    refusing model first and the provider billed $0.42 of eight calls under $0.30."""
    first = refuser(provider)
    limit = 0.30
    config = attrs.evolve(
        http_fleet(
            server, [first, model("openai", "healthy")], routes={"r": (first.alias, FALLBACK)}
        ),
        budgets=BudgetsConfig(global_daily_usd=limit),
    )
    results: list[Result] = []
    with trio.fail_after(60):
        async with switchman.open_router(config, env=ENV) as router:
            for _ in range(8):
                results.append(await router.call(call()))
            spent = await router.spend("global")
    attempts = [a for r in results for a in r.trace.attempts]
    answers = sum(a.cost_usd for a in attempts if a.outcome == "success")
    # what the providers billed: each refusal the server sent at the usage it reported
    # (the fake server's own count), and the answers
    sent = len(server.requests(first.model_id))
    billed = sent * first.cost(INPUT, REFUSAL_WORDS) + answers
    assert billed <= limit + 1e-12
    assert spent["day"] == pytest.approx(billed)
    assert sum(r.cost_usd for r in results) == pytest.approx(billed)
    # each refusal recorded, at that usage
    refusals = [a for a in attempts if a.outcome == "refused"]
    assert len(refusals) == sent
    assert all(a.usage == Usage(input_tokens=INPUT, output_tokens=REFUSAL_WORDS) for a in refusals)
    # the budget ran the refusing model out; the cheap one still answered every call
    assert len(refusals) < len(results)
    assert all(r.status == "complete" and r.model == FALLBACK for r in results)
