"""A stream that breaks while the redactor holds text back (a word still arriving, a key's
first characters, a private key's block before its END line) does not send that text: it
was sent as the call failed, and a key cut where the stream broke went out, its first
characters too few for a key's shape. The real path: a provider over real HTTP."""

from __future__ import annotations

import json
from collections.abc import Callable

import h11
import pytest
import trio

import switchman
from switchman import Call, Options
from switchman.catalog import Config, ModelSpec, ProviderSpec
from tests._rawhttp import serve_answers
from tests._simfleet import streamed

ENV = {"CUT_KEY": "sk-cut-test-key-000000000001"}


def _cut_after(text: str) -> bytes:
    """An OpenAI-style stream of ``text`` in 5-character pieces that ends there: no finish
    reason, no ``[DONE]`` (the connection closed as it broke)."""
    base = {"id": "c1", "object": "chat.completion.chunk", "model": "m"}
    lines = [
        "data: "
        + json.dumps({**base, "choices": [{"index": 0, "delta": {"content": text[k : k + 5]}}]})
        + "\n\n"
        for k in range(0, len(text), 5)
    ]
    return "".join(lines).encode()


@pytest.mark.parametrize(
    ("text", "kept", "hidden"),
    [
        ("Here is your key: sk-proj-AbCdEf12", "Here is your key: ", "AbCdEf12"),
        (
            "The key:\n-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC",
            "The key:\n",
            "MIIEvQ",
        ),
        ("The capital of France is Par", "The capital of France is ", "Par"),
    ],
    ids=["a key's start", "a private key without its end", "a word"],
)
async def test_a_broken_stream_does_not_send_what_the_redactor_held_back(
    nursery: trio.Nursery, text: str, kept: str, hidden: str
) -> None:
    def answer(head: h11.Request, body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
        return 200, [("content-type", "text/event-stream")], _cut_after(text)

    base_url = await nursery.start(serve_answers, answer)
    config = Config(
        providers={
            "up": ProviderSpec(name="up", kind="openai", base_url=base_url, api_key_env="CUT_KEY")
        },
        models={
            "m": ModelSpec(
                alias="m", provider="up", model_id="m", input_per_mtok=1.0, output_per_mtok=1.0
            )
        },
    )
    with trio.fail_after(20):
        async with switchman.open_router(config, env=ENV) as router:
            result, sent = await streamed(router, Call(prompt="the key, please", model="m"))
    assert result.status == "failed"
    assert sent == result.answer == kept
    assert hidden not in sent


Answer = Callable[[h11.Request, bytes], tuple[int, list[tuple[str, str]], bytes]]


async def _continued(
    nursery: trio.Nursery, first: Answer, second: Answer, *, prefill: bool
) -> tuple[switchman.Result, str]:
    """A streamed call to a model that ``first`` serves (with ``CUT_KEY``), whose fallback
    another provider's ``second`` serves (taking a prefill or not): its result and text."""
    first_url = await nursery.start(serve_answers, first)
    second_url = await nursery.start(serve_answers, second)
    config = Config(
        providers={
            "up": ProviderSpec(name="up", kind="openai", base_url=first_url, api_key_env="CUT_KEY"),
            "other": ProviderSpec(name="other", kind="openai", base_url=second_url),
        },
        models={
            "m": ModelSpec(alias="m", provider="up", model_id="m"),
            "n": ModelSpec(alias="n", provider="other", model_id="n", supports_prefill=prefill),
        },
    )
    call = Call(prompt="the key, please", model="m", options=Options(fallback=("n",)))
    with trio.fail_after(20):
        async with switchman.open_router(config, env=ENV) as router:
            return await streamed(router, call)


@pytest.mark.parametrize("prefill", [True, False], ids=["prefilled", "asked to continue"])
async def test_a_stream_continued_on_another_provider_sends_it_none_of_the_routers_keys(
    nursery: trio.Nursery, prefill: bool
) -> None:
    """The text so far goes to the next model as its prefill: a model that echoed its own
    provider's key (a prompt injection) handed that key to another provider in clear. A
    model that takes no prefill, asked to continue, repeats what it was sent: that repeat,
    the key hidden in it, is left out as any repeat is."""
    key = ENV["CUT_KEY"]
    so_far = "Your key is [REDACTED:api_key] and "
    got: list[bytes] = []

    def first(head: h11.Request, body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
        return 200, [("content-type", "text/event-stream")], _cut_after(f"Your key is {key} and ")

    def second(head: h11.Request, body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
        got.append(body)
        said = "then more." if prefill else f"{so_far}then more."
        end = {"choices": [{"index": 0, "delta": {"content": said}}]}
        stop = {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
        sse = "".join(f"data: {json.dumps(e)}\n\n" for e in (end, stop)) + "data: [DONE]\n\n"
        return 200, [("content-type", "text/event-stream")], sse.encode()

    result, sent = await _continued(nursery, first, second, prefill=prefill)
    assert result.status == "complete", result.errors
    assert sent == result.answer == "Your key is [REDACTED:api_key] and then more."
    (body,) = got
    assert key.encode() not in body
    messages = json.loads(body)["messages"]
    # (a prefill without the space it ends with: see test_seam)
    told = so_far.rstrip() if prefill else so_far
    assert {"role": "assistant", "content": told} in messages[-2:]


async def test_a_stream_broken_inside_a_key_sends_the_next_model_none_of_its_beginning(
    nursery: trio.Nursery,
) -> None:
    """The break cut a key the model echoed: its first characters went to the next
    provider as the answer so far (39 of 42), the whole key matching nothing."""
    key = ENV["CUT_KEY"]
    got: list[bytes] = []

    def first(head: h11.Request, body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
        return 200, [("content-type", "text/event-stream")], _cut_after(f"Key: {key[:-3]}")

    def second(head: h11.Request, body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
        got.append(body)
        stop = {"choices": [{"index": 0, "delta": {"content": "."}, "finish_reason": "stop"}]}
        sse = f"data: {json.dumps(stop)}\n\ndata: [DONE]\n\n"
        return 200, [("content-type", "text/event-stream")], sse.encode()

    await _continued(nursery, first, second, prefill=True)
    (body,) = got
    assert key[:12].encode() not in body
    prefill = json.loads(body)["messages"][-1]
    assert prefill == {"role": "assistant", "content": "Key: [REDACTED:api_key]"}
