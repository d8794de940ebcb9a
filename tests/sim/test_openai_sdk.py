"""The official openai SDK reads the fake server's OpenAI format unchanged."""

from __future__ import annotations

import functools

import openai
import pytest
import trio
from openai.types.chat import ChatCompletionMessageParam

from switchman.sim import REFUSAL_TEXT, FakeProviderServer, expected_answer

PROMPT = "Name three prime numbers"
MESSAGES: list[ChatCompletionMessageParam] = [
    {"role": "system", "content": "Answer briefly."},
    {"role": "user", "content": PROMPT},
]


def sdk(server: FakeProviderServer) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=server.base_url + "/v1", api_key="sk-test-key", max_retries=0, timeout=5
    )


def complete(server: FakeProviderServer, model: str) -> tuple[str | None, str | None, int]:
    with sdk(server) as client:
        reply = client.chat.completions.create(model=model, messages=MESSAGES)
    assert reply.usage is not None
    message = reply.choices[0].message
    return message.content, message.refusal, reply.usage.completion_tokens


def stream(server: FakeProviderServer, model: str) -> tuple[str, str | None, int | None]:
    text, finish, tokens = "", None, None
    with sdk(server) as client:
        chunks = client.chat.completions.create(
            model=model,
            messages=MESSAGES,
            stream=True,
            stream_options={"include_usage": True},
            max_completion_tokens=12,
        )
        for chunk in chunks:
            for choice in chunk.choices:
                text += choice.delta.content or ""
                finish = choice.finish_reason or finish
            if chunk.usage is not None:
                tokens = chunk.usage.completion_tokens
    return text, finish, tokens


async def test_sdk_reads_a_non_streaming_answer(server: FakeProviderServer) -> None:
    with trio.fail_after(10):
        content, refusal, tokens = await trio.to_thread.run_sync(complete, server, "healthy")
    assert content == expected_answer("healthy", PROMPT, None)
    assert refusal is None
    assert tokens == len(content.split())
    record = server.requests()[-1]
    assert record.headers["authorization"] == "Bearer ***"


async def test_sdk_reads_a_streamed_answer(server: FakeProviderServer) -> None:
    with trio.fail_after(10):
        text, finish, tokens = await trio.to_thread.run_sync(stream, server, "healthy")
    assert text == expected_answer("healthy", PROMPT, 12)
    assert finish == "length"
    assert tokens == 12


async def test_sdk_sees_a_refusal(server: FakeProviderServer) -> None:
    with trio.fail_after(10):
        content, refusal, _ = await trio.to_thread.run_sync(complete, server, "refusal")
    assert (content, refusal) == (None, REFUSAL_TEXT)


async def test_sdk_maps_errors(server: FakeProviderServer) -> None:
    with trio.fail_after(10):
        with pytest.raises(openai.RateLimitError) as limited:
            await trio.to_thread.run_sync(complete, server, "rate-limited")
        with pytest.raises(openai.BadRequestError) as context:
            await trio.to_thread.run_sync(complete, server, "context-length")
        with pytest.raises(openai.APIConnectionError):
            await trio.to_thread.run_sync(complete, server, "reset")
        with pytest.raises(openai.APIError):
            await trio.to_thread.run_sync(functools.partial(stream, server, "error-after-200"))
    assert limited.value.status_code == 429
    assert limited.value.response.headers["retry-after"] == "1"
    assert context.value.code == "context_length_exceeded"
