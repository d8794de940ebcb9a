"""A call's ``max_cost_usd`` holds for the whole call, whatever script its prompt is in, and
a context error sends the call on to a model with a larger window: through the real
router, the fake provider server over HTTP, and the gateway with the official SDK."""

from __future__ import annotations

import re

import attrs
import openai
import pytest
import trio

import switchman
from switchman import Call, Options, Params
from switchman.catalog import Config, ModelSpec, ProviderSpec, RouterConfig, SimProfile
from switchman.sim import FakeProviderServer, FakeServerConfig, serve_fake_provider
from tests._httpfleet import ENV, PROMPT, http_fleet, model
from tests.gateway._fakes import running_gateway

#: 20,000 CJK characters: a token a character or more to a real tokenizer, where four
#: characters a token (the old estimate) priced them at a quarter
CJK = "中" * 20_000


def sim_config(*models: ModelSpec) -> Config:
    return Config(
        providers={"sim": ProviderSpec(name="sim", kind="sim")},
        models={m.alias: m for m in models},
        router=RouterConfig(exploration=0.0),
        simulated=True,
    )


def priced(alias: str, **sim: float) -> ModelSpec:
    return ModelSpec(
        alias=alias,
        provider="sim",
        model_id=alias,
        context_window=100_000,
        max_output_tokens=4_000,
        input_per_mtok=10.0,
        output_per_mtok=10.0,
        sim=SimProfile(**sim),
    )


async def _capped_on_v1(over: str, fits: str) -> str:
    """Through the gateway and the official SDK, under a $0.2 cap at $10/M: ``over`` is
    refused before it is sent (the refusal's message), ``fits`` is answered."""
    config = sim_config(priced("m"))
    with trio.fail_after(30):
        async with switchman.open_router(config) as router, running_gateway(router) as gw:
            client = openai.OpenAI(base_url=f"{gw.base_url}/v1", api_key="x", max_retries=0)

            def ask(prompt: str) -> object:
                return client.chat.completions.create(
                    model="m",
                    messages=[{"role": "user", "content": prompt}],
                    max_tokens=100,
                    extra_body={"switchman": {"options": {"max_cost_usd": 0.2}}},
                )

            try:
                with pytest.raises(openai.BadRequestError) as caught:
                    await trio.to_thread.run_sync(ask, over)
                await trio.to_thread.run_sync(ask, fits)
            finally:
                client.close()
    assert "max_cost_usd" in str(caught.value)
    return str(caught.value)


async def test_a_cjk_prompt_over_the_cap_is_refused_on_v1_before_it_is_sent() -> None:
    """It was sent, and billed three times the cap ($0.06 under a $0.02 cap). The same
    length in ASCII fits (four characters a token)."""
    said = await _capped_on_v1(CJK, "hello " * 3_400)
    assert "estimated cost $0.601" in said  # 60,020 tokens at $10/M


async def test_a_base64_prompt_over_the_cap_is_refused_on_v1_before_it_is_sent() -> None:
    """Tokenizers cut base64 into a token every 1.4 characters: counted at four characters a
    token, a 40,000-character prompt priced at a third of its bill, and was sent under a cap
    it would pass 2.8 times at real counts (cl100k, o200k). Prose as long still fits."""
    import base64
    import random

    blob = base64.b64encode(random.Random(5).randbytes(30_000)).decode()  # 40,000 chars
    said = await _capped_on_v1(blob, "the quick brown fox jumps " * 1_530)
    # at least a token every two characters: $0.2 and more at $10/M
    tokens = int(re.search(r"\((\d+) input", said).group(1))  # type: ignore[union-attr]
    assert tokens >= len(blob) // 2, said


def test_a_prompt_that_may_count_past_a_long_input_threshold_is_capped_at_those_prices() -> None:
    """A model billing a prompt above ``long_input_above`` whole at dearer prices: a prompt
    of data (digits here) counted just under it may be billed above it (its count can be a
    quarter low), so the cap prices it at the long-input prices; one well under it, or
    prose (counted as tokenizers count it), at the usual ones."""
    import random

    from switchman.policy._eligibility import cap_exceeded

    m = attrs.evolve(
        priced("long"),
        context_window=1_000_000,
        long_input_above=100_000,
        long_input_per_mtok=40.0,
        long_output_per_mtok=40.0,
    )
    rng = random.Random(1)

    def data(tokens: int) -> str:
        return " ".join(str(rng.randint(100, 999)) for _ in range(tokens // 2))

    def capped(prompt: str) -> Call:
        return Call(prompt=prompt, model="long", options=Options(max_cost_usd=1.5))

    why = cap_exceeded(capped(data(90_000)), m, 100)
    assert why is not None and "at its prices above 100000 input tokens" in why
    assert cap_exceeded(capped(data(60_000)), m, 100) is None  # $0.60 at $10/M
    # prose counted at 90,000 tokens: 90,000 it is, at the usual prices ($0.90)
    assert cap_exceeded(capped("the " * 90_000), m, 100) is None


async def test_a_capped_call_counts_what_a_cut_attempt_was_billed() -> None:
    """A first attempt cut mid-answer is billed; the fallback then has only what is left of
    the cap. Each attempt was checked against the whole cap: $0.0513 under $0.03."""
    config = sim_config(priced("cutter", cut_rate=1.0), priced("good"))
    async with switchman.open_router(config) as router:
        for cap in (0.03, 0.06):
            call = Call(
                prompt="word " * 2000,
                model="cutter",
                params=Params(max_tokens=100),
                options=Options(max_cost_usd=cap, fallback=("good",)),
            )
            for stream in (False, True):
                if stream:
                    async with router.stream(call) as replies:
                        result = [r async for r in replies][-1]
                    assert isinstance(result, switchman.Result)
                else:
                    result = await router.call(call)
                assert result.cost_usd <= cap
                billed = sum(a.cost_usd for a in result.trace.attempts)
                assert result.cost_usd == pytest.approx(billed) and billed > 0.02
                if cap == 0.03:
                    assert result.status == "failed"
                    assert [a.alias for a in result.trace.attempts] == ["cutter"]
                    if not stream:  # (streamed, the lead says the stream broke)
                        lead = result.errors[0].message
                        assert "1 more model(s) not tried: over max_cost_usd" in lead
                    skipped = result.errors[-1]
                    assert skipped.code == "no_eligible_model"
                    assert skipped.message.startswith("good: estimated cost $0.02")
                    assert "already billed to the call" in skipped.message
                else:  # room for both
                    assert result.status == "complete" and result.model == "good"


@pytest.fixture
async def server(nursery: trio.Nursery) -> FakeProviderServer:
    handle: FakeProviderServer = await nursery.start(serve_fake_provider, FakeServerConfig())
    return handle


async def test_a_context_error_passes_over_smaller_windows(server: FakeProviderServer) -> None:
    """The provider said the prompt is too long for a 32k window: a 16k model is not asked
    (it was, and failed the same way), the 200k one answers."""
    first = model("openai", "context-length", context_window=32_000)
    smaller = model("groq", "healthy", context_window=16_000)
    large = model("mistral", "healthy", context_window=200_000)
    config = http_fleet(server, [first, smaller, large])
    call = Call(
        prompt=PROMPT,
        model=first.alias,
        params=Params(max_tokens=200),
        options=Options(fallback=(smaller.alias, large.alias)),
    )
    with trio.fail_after(20):
        async with switchman.open_router(config, env=ENV) as router:
            result = await router.call(call)
    assert result.status == "complete" and result.model == large.alias
    assert [(a.alias, a.outcome) for a in result.trace.attempts] == [
        (first.alias, "context_exceeded"),
        (large.alias, "success"),
    ]
    assert server.requests(smaller.model_id) == []


async def test_a_context_error_compares_the_room_each_window_leaves_the_input(
    server: FakeProviderServer,
) -> None:
    """A 31,900-token window that is the input's alone leaves more room for it than a
    32,000-token one holding 200 tokens of output too: it is asked, not passed over."""
    first = model("openai", "context-length", context_window=32_000)
    input_only = model("groq", "healthy", context_window=31_900, context_includes_output=False)
    config = http_fleet(server, [first, input_only])
    call = Call(
        prompt=PROMPT,
        model=first.alias,
        params=Params(max_tokens=200),
        options=Options(fallback=(input_only.alias,)),
    )
    with trio.fail_after(20):
        async with switchman.open_router(config, env=ENV) as router:
            result = await router.call(call)
    assert result.status == "complete" and result.model == input_only.alias
