"""What the provider bills for an answer that failed with its usage said is what the attempt
is billed: a finish reason of failure (Mistral's and Together's ``error``, DeepSeek's
``insufficient_system_resource``) carrying the usage, as a refusal's is. Its usage was
thrown away: the attempt was released (nothing billed) before any text, or billed the
estimate of its text after (an answer that had reasoned 2,000 tokens, 233 times less).
And a DeepSeek refusal's cache hits are billed at the cache-hit price, as an answer's are.
The real path: the fake provider server over real HTTP, and a server of DeepSeek's wire."""

from __future__ import annotations

import json

import h11
import pytest
import trio

import switchman
from switchman import Call, Options, Params
from switchman.catalog import ModelSpec
from switchman.sim import FakeProviderServer, FakeServerConfig, serve_fake_provider
from tests._httpfleet import ENV, ask, http_fleet, model
from tests._rawhttp import serve_answers, served_by


async def test_a_failed_finish_before_any_text_is_billed_its_reported_prompt(
    nursery: trio.Nursery,
) -> None:
    server: FakeProviderServer = await nursery.start(serve_fake_provider, FakeServerConfig())
    failing = model("mistral", "error-after-200")
    config = http_fleet(server, [failing, model("mistral", "healthy")])
    call = ask(failing.alias)
    call = Call(
        prompt=call.prompt,
        model=failing.alias,
        params=call.params,
        options=Options(fallback=("mistral/healthy",)),
    )
    with trio.fail_after(20):
        async with switchman.open_router(config, env=ENV) as router:
            result = await router.call(call)
    assert result.status == "complete" and result.model == "mistral/healthy"
    failed = result.trace.attempts[0]
    assert failed.outcome == "error" and failed.usage_estimated is False, failed
    assert failed.usage.input_tokens > 0 and failed.usage.output_tokens == 0
    assert not failed.usage_estimated
    assert failed.cost_usd == pytest.approx(failing.cost(failed.usage.input_tokens, 0))


DEEPSEEK_USAGE = {
    "prompt_tokens": 10_000,
    "completion_tokens": 5,
    "total_tokens": 10_005,
    "prompt_cache_hit_tokens": 8_000,
    "prompt_cache_miss_tokens": 2_000,
}


async def test_a_deepseek_refusal_bills_its_cache_hits_at_the_cache_hit_price(
    nursery: trio.Nursery,
) -> None:
    def answer(head: h11.Request, _: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
        body = {
            "id": "r1",
            "object": "chat.completion",
            "model": "deepseek-flash",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": ""},
                    "finish_reason": "content_filter",
                }
            ],
            "usage": DEEPSEEK_USAGE,
        }
        return 200, [("content-type", "application/json")], json.dumps(body).encode()

    base_url = await nursery.start(serve_answers, answer)
    flash = ModelSpec(
        alias="flash",
        provider="deepseek",
        model_id="deepseek-flash",
        input_per_mtok=0.3,
        output_per_mtok=1.2,
        cached_input_per_mtok=0.006,
    )
    config = served_by(base_url, flash, key_env="DS_KEY")
    call = Call(prompt="hello", model="flash", params=Params(max_tokens=50))
    with trio.fail_after(20):
        async with switchman.open_router(config, env={"DS_KEY": "sk-ds-test-0123456789"}) as r:
            result = await r.call(call)
    assert result.status == "failed"
    (refused,) = result.trace.attempts
    assert refused.outcome == "content_filtered", refused
    want = (2_000 * 0.3 + 8_000 * 0.006 + 5 * 1.2) / 1e6  # $0.000654, not $0.003006
    assert refused.cost_usd == pytest.approx(want)
    assert refused.usage.cached_input_tokens == 8_000
