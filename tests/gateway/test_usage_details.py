"""Cached input and reasoning tokens through the real path: the fake provider server over
HTTP (each wire reporting them its provider's way) → the real router → ``Result.usage``, the
trace's attempts, the result's JSON and stored job → the gateway's ``/v1`` for the official
openai SDK, whose ``usage.prompt_tokens_details.cached_tokens`` and
``usage.completion_tokens_details.reasoning_tokens`` OpenAI always sends (0: none reported)."""

from __future__ import annotations

import functools
from typing import Any

import openai
import trio

import switchman
from switchman import Result
from switchman._convert import to_jsonable
from switchman.sim import FakeProviderServer, FakeServerConfig, serve_fake_provider
from tests._httpfleet import ENV, ask, http_fleet, model
from tests.gateway._fakes import running_gateway

#: a model that thinks (the fake bills reasoning tokens for the GPT-5 family)
THINKER = "openai/gpt-5-mini"
#: per provider, a model whose prompt the fake reports half read from cache, as that
#: provider does (Mistral, Together, Perplexity and Ollama report no cache hits)
CACHED = ("openai", "anthropic", "gemini", "deepseek", "xai")


def _ask(base_url: str, alias: str, stream: bool) -> Any:
    with openai.OpenAI(base_url=f"{base_url}/v1", api_key="unused", max_retries=0) as client:
        messages: Any = [{"role": "user", "content": "What is the capital of France?"}]
        if not stream:
            return client.chat.completions.create(model=alias, messages=messages)
        return list(
            client.chat.completions.create(
                model=alias,
                messages=messages,
                stream=True,
                stream_options={"include_usage": True},
            )
        )


def _details(usage: Any) -> tuple[int, int]:
    """The SDK's cached and reasoning counts (raises on a missing details object)."""
    return (
        usage.prompt_tokens_details.cached_tokens,
        usage.completion_tokens_details.reasoning_tokens,
    )


async def test_cached_and_reasoning_tokens_reach_the_result_and_the_sdk(
    nursery: trio.Nursery,
) -> None:
    server: FakeProviderServer = await nursery.start(serve_fake_provider, FakeServerConfig())
    models = [model("openai", "gpt-5-mini"), *(model(p, "cached") for p in CACHED)]
    config = http_fleet(server, models)
    sdk: dict[tuple[str, bool], Any] = {}
    with trio.fail_after(60):
        async with (
            switchman.open_router(config, env=ENV) as router,
            running_gateway(router) as gw,
        ):
            thought = await router.call(ask(THINKER))
            cached = {p: await router.call(ask(f"{p}/cached")) for p in CACHED}
            streamed: Result | None = None
            async with router.stream(ask("deepseek/cached")) as replies:
                async for item in replies:
                    if isinstance(item, Result):
                        streamed = item
            for alias in (THINKER, "openai/cached", "anthropic/cached"):
                for stream in (False, True):
                    sdk[alias, stream] = await trio.to_thread.run_sync(
                        functools.partial(_ask, gw.base_url, alias, stream)
                    )
            completion = sdk["openai/cached", False]
            job_id = completion.id.removeprefix("chatcmpl-")
            stored = (await gw.client.get(f"/result/{job_id}")).json()

    # the router's result, its trace's attempt and its JSON carry them
    assert thought.ok and thought.usage.reasoning_tokens > 0
    assert thought.usage.reasoning_tokens < thought.usage.output_tokens  # (part of it)
    assert thought.usage.cached_input_tokens == 0
    assert thought.trace.attempts[-1].usage == thought.usage
    as_json = to_jsonable(thought)["usage"]
    assert as_json["reasoning_tokens"] == thought.usage.reasoning_tokens
    assert as_json["cached_input_tokens"] == 0
    for provider, result in cached.items():
        usage = result.usage
        assert result.ok, provider
        # the fake reports half the prompt, rounded up, as cache hits; the input is all of it
        assert usage.cached_input_tokens == (usage.input_tokens + 1) // 2 > 0, provider
        assert usage.reasoning_tokens == 0, provider
        assert result.trace.attempts[-1].usage == usage, provider
    assert streamed is not None and streamed.ok
    assert streamed.usage == cached["deepseek"].usage

    # /v1: always both details, whole answers and the usage chunk of streams
    whole = sdk[THINKER, False].usage
    assert _details(whole) == (0, thought.usage.reasoning_tokens)
    assert whole.completion_tokens == thought.usage.output_tokens
    last = sdk[THINKER, True][-1]
    assert last.choices == [] and _details(last.usage) == _details(whole)
    for alias in ("openai/cached", "anthropic/cached"):
        provider = alias.split("/")[0]
        expected = (cached[provider].usage.cached_input_tokens, 0)
        assert _details(sdk[alias, False].usage) == expected, alias
        assert _details(sdk[alias, True][-1].usage) == expected, alias
        assert sdk[alias, False].usage.prompt_tokens == cached[provider].usage.input_tokens

    # the stored job has them too
    assert stored["status"] == "complete"
    stored_usage = stored["result"]["usage"]
    assert stored_usage["cached_input_tokens"] == _details(completion.usage)[0] > 0
    assert stored["result"]["trace"]["attempts"][-1]["usage"] == stored_usage


async def test_a_provider_reporting_none_gives_zeros_not_nulls(nursery: trio.Nursery) -> None:
    server: FakeProviderServer = await nursery.start(serve_fake_provider, FakeServerConfig())
    config = http_fleet(server, [model("mistral", "healthy"), model("ollama", "healthy")])
    with trio.fail_after(60):
        async with (
            switchman.open_router(config, env=ENV) as router,
            running_gateway(router) as gw,
        ):
            answers = {
                (alias, stream): await trio.to_thread.run_sync(
                    functools.partial(_ask, gw.base_url, alias, stream)
                )
                for alias in ("mistral/healthy", "ollama/healthy")
                for stream in (False, True)
            }
    for (alias, stream), answer in answers.items():
        usage = answer[-1].usage if stream else answer.usage
        assert usage is not None and usage.completion_tokens > 0, alias
        assert _details(usage) == (0, 0), (alias, stream)
        raw = usage.model_dump(exclude_unset=True)  # (what the gateway sent)
        assert raw["prompt_tokens_details"] == {"cached_tokens": 0}
        assert raw["completion_tokens_details"] == {"reasoning_tokens": 0}
