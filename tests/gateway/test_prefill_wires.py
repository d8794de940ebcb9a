"""A caller's prefill (a conversation ending with the assistant's turn) through the real
path: the official SDK → the gateway's ``/v1`` → the real router → the fake provider
server speaking each wire. Anthropic's and DeepSeek's answers go on after the prefill;
Mistral's says it again first (dropped): on each the SDK reads what follows it."""

from __future__ import annotations

import functools
from typing import Any

import openai
import pytest
import trio

import switchman
from switchman.sim import FakeProviderServer, FakeServerConfig, expected_answer, serve_fake_provider
from tests._httpfleet import ENV, http_fleet, model
from tests.gateway._fakes import running_gateway

QUESTION = "What is the capital of France?"


def _ask(base_url: str, target: str, prefill: str, stream: bool) -> str:
    messages: Any = [
        {"role": "user", "content": QUESTION},
        {"role": "assistant", "content": prefill},
    ]
    with openai.OpenAI(base_url=f"{base_url}/v1", api_key="unused", max_retries=0) as client:
        if not stream:
            reply = client.chat.completions.create(model=target, messages=messages)
            return reply.choices[0].message.content or ""
        chunks = client.chat.completions.create(model=target, messages=messages, stream=True)
        return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


@pytest.mark.parametrize("provider", ["anthropic", "deepseek", "mistral"])
async def test_the_answer_is_what_follows_the_prefill(nursery: trio.Nursery, provider: str) -> None:
    server: FakeProviderServer = await nursery.start(serve_fake_provider, FakeServerConfig())
    alias = f"{provider}/healthy"
    config = http_fleet(server, [model(provider, "healthy")])
    full = expected_answer(alias, QUESTION, None)
    prefill = full[:24].rstrip()
    with trio.fail_after(30):
        async with (
            switchman.open_router(config, env=ENV) as router,
            running_gateway(router) as gw,
        ):
            ask = functools.partial(_ask, gw.base_url, alias, prefill)
            whole = await trio.to_thread.run_sync(ask, False)
            streamed = await trio.to_thread.run_sync(ask, True)
    assert whole == streamed == full[len(prefill) :]
    sent = server.requests(alias)[-1].body["messages"][-1]
    assert sent["content"] == prefill
    assert sent.get("prefix", False) is (provider != "anthropic")
