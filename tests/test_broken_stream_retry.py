"""A stream an error event broke after its text began (an overload, a server error) is
continued by the same model when the call has no other model to go to: it failed on a
passing overload before. With another model left, that one continues it, and a stream cut
without a word (no error event) is never retried on its model. The real path: a provider
over real HTTP."""

from __future__ import annotations

import json
from typing import Any

import attrs
import h11
import pytest
import trio

import switchman
from switchman import Call
from switchman.catalog import Config, ModelSpec, ProviderSpec, RouteSpec
from tests._rawhttp import serve_answers
from tests._simfleet import streamed

ENV = {"UP_KEY": "sk-up-test-key-000000000001"}
SSE = [("content-type", "text/event-stream")]
BASE = {"id": "c1", "object": "chat.completion.chunk", "model": "m"}


def _events(*events: dict[str, Any], done: bool = True) -> bytes:
    lines = [f"data: {json.dumps(e)}\n\n" for e in events]
    return "".join(lines + (["data: [DONE]\n\n"] if done else [])).encode()


def _text(text: str) -> dict[str, Any]:
    return {**BASE, "choices": [{"index": 0, "delta": {"content": text}}]}


def _whole(text: str) -> bytes:
    finish = {**BASE, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
    usage = {"prompt_tokens": 9, "completion_tokens": 4, "total_tokens": 13}
    return _events(_text(text), finish, {**BASE, "choices": [], "usage": usage})


#: OpenAI's words for a server error inside a stream (no status: a 500 by its words)
SERVER_ERROR = {"error": {"message": "The server had an error processing your request."}}
OVERLOADED = {"error": {"type": "overloaded_error", "message": "Overloaded"}}


def _config(base_url: str, *aliases: str) -> Config:
    models = {
        a: ModelSpec(alias=a, provider="up", model_id=a, input_per_mtok=1.0, output_per_mtok=1.0)
        for a in aliases
    }
    return Config(
        providers={
            "up": ProviderSpec(name="up", kind="openai", base_url=base_url, api_key_env="UP_KEY")
        },
        models=models,
        routes={"chain": RouteSpec(name="chain", chain=aliases)},
    )


@pytest.mark.parametrize("error", [SERVER_ERROR, OVERLOADED], ids=["server error", "overloaded"])
async def test_a_stream_broken_by_an_overload_is_continued_by_its_own_model_when_alone(
    nursery: trio.Nursery, error: dict[str, Any]
) -> None:
    bodies: list[dict[str, Any]] = []

    def answer(head: h11.Request, body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
        bodies.append(json.loads(body))
        if len(bodies) == 1:
            return 200, SSE, _events(_text("Step one, "), error, done=False)
        return 200, SSE, _whole("step two.")

    base_url = await nursery.start(serve_answers, answer)
    with trio.fail_after(20):
        async with switchman.open_router(_config(base_url, "m"), env=ENV) as router:
            result, sent = await streamed(router, Call(prompt="how?", model="m"))
    assert result.status == "complete", result.errors
    assert sent == result.answer == "Step one, step two."
    attempts = result.trace.attempts
    assert [(a.alias, a.outcome) for a in attempts] == [("m", "error"), ("m", "success")]
    assert attempts[1].after is not None
    assert attempts[1].after.startswith("retry: stream broken by upstream error")
    assert "continues the 10 characters already sent" in attempts[1].after
    # the retry carried the text so far, for the model to go on from it
    assert [m["role"] for m in bodies[1]["messages"]][-2:] == ["assistant", "user"]
    assert bodies[1]["messages"][-2]["content"] == "Step one, "


async def test_with_another_model_left_that_one_continues_it(nursery: trio.Nursery) -> None:
    asked: list[str] = []

    def answer(head: h11.Request, body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
        model = json.loads(body)["model"]
        asked.append(model)
        if model == "first":
            return 200, SSE, _events(_text("Step one, "), OVERLOADED, done=False)
        return 200, SSE, _whole("step two.")

    base_url = await nursery.start(serve_answers, answer)
    with trio.fail_after(20):
        async with switchman.open_router(_config(base_url, "first", "second"), env=ENV) as router:
            result, sent = await streamed(router, Call(prompt="how?", model="chain"))
    assert result.status == "complete" and sent == "Step one, step two."
    assert asked == ["first", "second"]


async def test_a_stream_cut_without_a_word_is_not_retried_on_its_model(
    nursery: trio.Nursery,
) -> None:
    asked: list[str] = []

    def answer(head: h11.Request, body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
        asked.append(json.loads(body)["model"])
        return 200, SSE, _events(_text("Step one, "), done=False)  # and the body ends

    base_url = await nursery.start(serve_answers, answer)
    with trio.fail_after(20):
        async with switchman.open_router(_config(base_url, "m"), env=ENV) as router:
            result, sent = await streamed(router, Call(prompt="how?", model="m"))
    assert result.status == "failed" and sent == result.answer == "Step one, "
    assert asked == ["m"]


@pytest.mark.parametrize("again", [False, True], ids=["answers", "breaks again"])
async def test_when_the_models_after_it_cannot_take_the_call_it_continues_itself(
    nursery: trio.Nursery, again: bool
) -> None:
    """Another model was listed, but its provider's budget could not cover it: it was never
    tried, and the call failed on a passing overload all the same."""
    from switchman.catalog import BudgetsConfig

    asked: list[str] = []

    def answer(head: h11.Request, body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
        asked.append(json.loads(body)["model"])
        if len(asked) == 1 or again:
            return 200, SSE, _events(_text("Step one, "), OVERLOADED, done=False)
        return 200, SSE, _whole("step two.")

    base_url = await nursery.start(serve_answers, answer)
    config = _config(base_url, "first")
    spent_out = ModelSpec(
        alias="second", provider="other", model_id="second", input_per_mtok=1.0,
        output_per_mtok=1.0,
    )  # fmt: skip
    config = attrs.evolve(
        config,
        providers={
            **config.providers,
            "other": attrs.evolve(config.providers["up"], name="other"),
        },
        models={**config.models, "second": spent_out},
        routes={"chain": RouteSpec(name="chain", chain=("first", "second"))},
        budgets=BudgetsConfig(providers={"other": {"daily_usd": 1e-9}}),
    )
    with trio.fail_after(20):
        async with switchman.open_router(config, env=ENV) as router:
            result, sent = await streamed(router, Call(prompt="how?", model="chain"))
    assert asked == ["first", "first"]
    # the model it could not go to is told of once
    assert [x.alias for x in result.trace.skipped] == ["second"], result.trace.skipped
    if again:  # (twice on one model at most: the call fails, its text as it was)
        assert result.status == "failed" and sent == result.answer == "Step one, "
        return
    assert result.status == "complete", result.errors
    assert sent == result.answer == "Step one, step two."
    attempts = result.trace.attempts
    assert [(a.alias, a.outcome) for a in attempts][-1] == ("first", "success")
    last = attempts[-1].after or ""
    assert last.startswith("retry: stream broken by") and "no model after it" in last, last
