"""What ``docs/openai.md`` says of ``/v1/chat/completions``, through the real path: the real
gateway on a socket (httpx or the official SDK), the real router, the fake
provider server speaking each provider's wire over real HTTP."""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable
from contextlib import AbstractAsyncContextManager
from typing import Any

import openai
import pytest
import trio

from switchman.catalog import BudgetsConfig, ModelSpec
from switchman.sim import FakeProviderServer
from tests._httpfleet import PROMPT, PROVIDERS, model
from tests.gateway._fakes import Running, gateway_over_fake, sdk_ask


def _gateway(
    nursery: trio.Nursery, models: Iterable[ModelSpec], **config: Any
) -> AbstractAsyncContextManager[tuple[Running, FakeProviderServer]]:
    """The real gateway over the real router, whose providers are one fake server."""
    return gateway_over_fake(nursery, list(models), **config)


#: $10 per million output tokens: 16,384 of them cost $0.164, 100 of them $0.001
PRICEY = model(
    "openai",
    "healthy",
    context_window=64_000,
    max_output_tokens=32_000,
    input_per_mtok=1.0,
    output_per_mtok=10.0,
)


async def test_without_max_tokens_a_budget_holds_what_16384_output_tokens_could_cost(
    nursery: trio.Nursery,
) -> None:
    """docs/openai.md: "Without `max_tokens` ... a budget then holds what that output could
    cost (16,384 tokens ...) ..., so send `max_tokens` when a budget is tight": a $0.10
    daily budget refuses a request without one to a model at $10 per million output tokens
    (402 `budget_exceeded`, naming the amount), and takes it with `max_tokens: 100`."""
    messages = [{"role": "user", "content": "hi"}]
    budgets = BudgetsConfig(global_daily_usd=0.1)
    with trio.fail_after(15):
        async with _gateway(nursery, [PRICEY], budgets=budgets) as (gw, server):
            unbounded = await gw.client.post(
                "/v1/chat/completions", json={"model": PRICEY.alias, "messages": messages}
            )
            assert server.requests() == []  # refused before any provider was asked
            bounded = await gw.client.post(
                "/v1/chat/completions",
                json={"model": PRICEY.alias, "messages": messages, "max_tokens": 100},
            )
    assert unbounded.status_code == 402, unbounded.text
    error = unbounded.json()["error"]
    assert error["code"] == "budget_exceeded"
    # 16,384 x $10 / 1M = $0.16384, and the prompt's few tokens at $1 / 1M
    assert "could cost" in error["message"] and "$0.1638" in error["message"], error["message"]
    assert bounded.status_code == 200, bounded.text
    assert bounded.json()["choices"][0]["message"]["content"]
    [sent] = server.requests(PRICEY.model_id)
    assert sent.body["max_completion_tokens"] == 100


#: fields the request carries that no provider is to be sent, by name, with distinctive
#: values (a message's ``name`` is set on the message itself)
IGNORED: dict[str, Any] = {
    "reasoning_effort": "low",
    "service_tier": "auto",
    "store": True,
    "prediction": {"type": "content", "content": "PREDICTED-7f3a"},
    "parallel_tool_calls": False,
    "verbosity": "low",
    "safety_identifier": "SAFETY-7f3a",
    "prompt_cache_key": "CACHE-KEY-7f3a",
    "presence_penalty": 1.0,
    "frequency_penalty": -1.0,
}
NAME = "NAME-7f3a"


def _keys(value: Any) -> set[str]:
    """Every key of every object within ``value``."""
    if isinstance(value, dict):
        return set(value).union(*(_keys(v) for v in value.values()))
    if isinstance(value, list):
        return set().union(*(_keys(v) for v in value))
    return set()


@pytest.mark.parametrize("provider", sorted(PROVIDERS))
async def test_fields_accepted_but_not_sent_reach_no_provider(
    nursery: trio.Nursery, provider: str
) -> None:
    """docs/openai.md: "Accepted but not sent to the provider: `presence_penalty`,
    `frequency_penalty`, `reasoning_effort`, a message's `name`, and any other field
    (`service_tier`, `store`, `prediction`, `parallel_tool_calls`, OpenAI's `verbosity`,
    `safety_identifier`, `prompt_cache_key` ...)": the request is answered, and the body
    each provider's wire received has none of them."""
    healthy = model(provider, "healthy")
    body = {
        "model": healthy.alias,
        "messages": [{"role": "user", "content": PROMPT, "name": NAME}],
        "max_tokens": 50,
        **IGNORED,
    }
    with trio.fail_after(15):
        async with _gateway(nursery, [healthy]) as (gw, server):
            answered = await gw.client.post("/v1/chat/completions", json=body)
    assert answered.status_code == 200, answered.text
    [sent] = server.requests(healthy.model_id)
    assert sent.body is not None
    assert not _keys(sent.body) & {*IGNORED, "name"}, sent.body
    text = json.dumps(sent.body)
    for value in (NAME, "PREDICTED-7f3a", "SAFETY-7f3a", "CACHE-KEY-7f3a"):
        assert value not in text, sent.body
    assert PROMPT in text  # (the request itself was sent)


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
async def test_a_providers_content_policy_400_is_a_422_refused(
    nursery: trio.Nursery, stream: bool
) -> None:
    """docs/openai.md: "A provider's 400 rejecting the request's *content* (a content-policy
    code) ... answers 422 `refused` with the provider's reason": OpenAI's wire, through the
    official SDK, streamed and not."""
    policy = model("openai", "content-policy")
    with trio.fail_after(15):
        async with _gateway(nursery, [policy]) as (gw, server):
            with pytest.raises(openai.APIStatusError) as raised:
                await trio.to_thread.run_sync(
                    functools.partial(sdk_ask, gw.base_url, policy.alias, stream)
                )
    assert raised.value.status_code == 422
    assert raised.value.code == "refused"
    # the provider's reason (OpenAI's words for it, as the fake's OpenAI wire says them)
    assert "rejected as a result of our safety system" in raised.value.message
    assert [r.status for r in server.requests(policy.model_id)] == [400]
