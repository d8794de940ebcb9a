"""A reasoning model whose stream is cut short, on a wire that does not stream its
reasoning (OpenAI's, xAI's, Gemini's...), is billed its whole ``max_tokens`` of output when
the provider did not say: its reasoning came before the text and is billed as output, and
was billed as the text received alone (a stream left after its first words: $0.00003 of
a bill that came to $0.009). A model that does not reason, and one whose reasoning is off
or shown (Anthropic's, sent no ``thinking``; DeepSeek's, sent ``thinking: disabled``), is
billed its text as before. The real path: the fake provider server over real HTTP."""

from __future__ import annotations

import json

import attrs
import h11
import pytest
import trio

import switchman
from switchman import Call, Caller, Options, Params, Timeouts
from switchman.catalog import BudgetsConfig, ModelSpec
from switchman.sim import FakeProviderServer, FakeServerConfig, serve_fake_provider
from tests._httpfleet import ENV, MAX_TOKENS, PROMPT, ask, http_fleet, model
from tests._rawhttp import serve_answers, served_by


@pytest.mark.parametrize(
    ("provider", "reasons", "whole"),
    [
        ("openai", True, True),
        ("xai", True, True),
        ("gemini", True, True),
        ("openai", False, False),
        ("anthropic", True, False),
        ("deepseek", True, False),
    ],
    ids=["openai", "xai", "gemini", "openai, no reasoning", "anthropic", "deepseek"],
)
async def test_a_cut_stream_of_a_model_reasoning_unseen_is_billed_its_max_tokens(
    nursery: trio.Nursery, provider: str, reasons: bool, whole: bool
) -> None:
    server: FakeProviderServer = await nursery.start(serve_fake_provider, FakeServerConfig())
    cut = model(provider, "cut", capabilities=("reason",) if reasons else ())
    config = http_fleet(server, [cut])
    with trio.fail_after(20):
        async with switchman.open_router(config, env=ENV) as router:
            result = await router.call(ask(cut.alias))
    assert result.status == "failed"
    (attempt,) = result.trace.attempts
    assert attempt.usage_estimated and attempt.usage.output_tokens > 0
    assert (attempt.usage.output_tokens == MAX_TOKENS) is whole, attempt.usage
    assert attempt.cost_usd == pytest.approx(
        cut.cost(attempt.usage.input_tokens, attempt.usage.output_tokens)
    )


async def test_a_caller_leaving_a_reasoning_models_stream_is_billed_its_max_tokens(
    nursery: trio.Nursery,
) -> None:
    server: FakeProviderServer = await nursery.start(serve_fake_provider, FakeServerConfig())
    stalls = model("openai", "stall", capabilities=("reason",))
    config = http_fleet(server, [stalls], stall_ms=10_000)
    config = attrs.evolve(config, budgets=BudgetsConfig(callers={"alice": {"daily_usd": 1.0}}))
    call = Call(
        prompt=PROMPT,
        model=stalls.alias,
        caller=Caller(handle="alice"),
        params=Params(max_tokens=MAX_TOKENS),
        options=Options(timeouts=Timeouts(hard_ms=20_000)),
    )
    with trio.fail_after(20):
        async with switchman.open_router(config, env=ENV) as router:
            async with router.stream(call) as events:
                async for _ in events:
                    break  # (its first words: the caller leaves)
            await trio.sleep(0.2)
            spent = (await router.spend("caller:alice"))["day"]
    most_input = spent - MAX_TOKENS * stalls.output_per_mtok / 1e6
    assert 0 < most_input < 200 * stalls.input_per_mtok / 1e6, spent


@pytest.mark.parametrize(
    ("provider", "reasons", "billed"),
    [("openai", True, True), ("openai", False, False), ("anthropic", True, False)],
    ids=["openai", "openai, no reasoning", "anthropic"],
)
async def test_a_reasoning_model_too_slow_to_its_first_token_is_billed_its_max_tokens(
    nursery: trio.Nursery, provider: str, reasons: bool, billed: bool
) -> None:
    """Silent while it reasons, it answered (200) and was left at its first-token limit
    with nothing shown: released, though the provider bills what it reasoned."""
    server: FakeProviderServer = await nursery.start(serve_fake_provider, FakeServerConfig())
    slow = model(provider, "slow-ttft", capabilities=("reason",) if reasons else ())
    config = http_fleet(server, [slow])
    with trio.fail_after(20):
        async with switchman.open_router(config, env=ENV) as router:
            result = await router.call(ask(slow.alias, ttft_ms=200))
    assert result.status == "failed"
    (attempt,) = result.trace.attempts
    assert attempt.outcome == "timeout", attempt
    if billed:
        assert attempt.usage_estimated and attempt.usage.output_tokens == MAX_TOKENS
        assert attempt.cost_usd == pytest.approx(slow.cost(attempt.usage.input_tokens, MAX_TOKENS))
    else:
        assert attempt.cost_usd == 0.0, attempt


@pytest.mark.parametrize(
    ("event", "billed"),
    [
        ({"message": "Rate limit reached", "code": "rate_limit_exceeded"}, False),
        ({"message": "Overloaded", "type": "overloaded_error"}, False),
        ({"message": "The server had an error", "type": "server_error"}, True),
    ],
    ids=["a rate limit", "an overload", "a server error"],
)
async def test_an_error_event_before_any_text_bills_the_reasoning_only_if_it_ran(
    nursery: trio.Nursery, event: dict[str, str], billed: bool
) -> None:
    """A rate limit or an overload after the 200 says the model did not run: it was
    billed the whole max_tokens (at gpt-5.4's prices and 128,000 tokens, $1.92), and its
    bill kept the call's fallbacks from its budget. A server error may come after it ran."""

    def answer(head: h11.Request, _: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
        return (
            200,
            [("content-type", "text/event-stream")],
            f"data: {json.dumps({'error': event})}\n\n".encode(),
        )

    base_url = await nursery.start(serve_answers, answer)
    thinker = ModelSpec(
        alias="t",
        provider="openai",
        model_id="t",
        capabilities=("reason",),
        input_per_mtok=1.0,
        output_per_mtok=10.0,
    )
    config = served_by(base_url, thinker, key_env="OPENAI_TEST_KEY")
    with trio.fail_after(20):
        async with switchman.open_router(config, env=ENV) as router:
            result = await router.call(ask("t"))
    assert result.status == "failed"
    first = result.trace.attempts[0]
    assert (first.usage.output_tokens == MAX_TOKENS) is billed, first
    assert (first.cost_usd > 0) is billed, first
