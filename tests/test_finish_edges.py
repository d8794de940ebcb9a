"""How answers end, at the edges the providers' documents show, over real HTTP from servers
that speak each wire as documented (not the project's own fake):

- xAI's and Together's ``finish_reason: ""`` ends a whole answer when ``[DONE]`` follows (it
  had failed the answer, and a route paid for it twice); cut before ``[DONE]``, it still fails;
- DeepSeek's ``insufficient_system_resource`` after streamed text is its capacity, so a call
  with no other model has the same model carry its answer on, as after an overload (it had
  failed the call);
- a Gemini prompt blocked before the model saw it is billed its prompt, not a reasoning
  model's whole output room (``max_tokens`` 8,000: $0.03 against $0.00002)."""

from __future__ import annotations

import json
from typing import Any

import h11
import pytest
import trio

import switchman
from switchman import Call, Params
from switchman.catalog import Config, ModelSpec, ProviderSpec
from tests._rawhttp import serve_answers, served_by

KEY = {"EDGE_KEY": "sk-edge-test-0123456789"}
SSE = [("content-type", "text/event-stream")]


def sse(*chunks: dict[str, Any], done: bool = True) -> bytes:
    lines = [f"data: {json.dumps(c)}\n\n" for c in chunks]
    return ("".join(lines) + ("data: [DONE]\n\n" if done else "")).encode()


def chunk(model_id: str, content: str, finish: str | None = None, **extra: Any) -> dict[str, Any]:
    choice = {"index": 0, "delta": {"content": content}, "finish_reason": finish}
    return {"object": "chat.completion.chunk", "model": model_id, "choices": [choice], **extra}


USAGE = {"prompt_tokens": 12, "completion_tokens": 7, "total_tokens": 19}


def grok() -> ModelSpec:
    return ModelSpec(
        alias="grok", provider="xai", model_id="grok-4.3", input_per_mtok=1.0, output_per_mtok=2.0
    )


async def ask(config: Config, call: Call) -> switchman.Result:
    with trio.fail_after(20):
        async with switchman.open_router(config, env=KEY) as router:
            return await router.call(call)


@pytest.mark.parametrize("done", [True, False])
async def test_an_empty_finish_reason_ends_the_answer_only_with_done(
    nursery: trio.Nursery, done: bool
) -> None:
    body = sse(
        chunk("grok-4.3", "Paris is the capital "),
        chunk("grok-4.3", "of France.", "", usage=USAGE),
        done=done,
    )
    base_url = await nursery.start(serve_answers, lambda head, _: (200, SSE, body))
    config = served_by(base_url, grok(), key_env="EDGE_KEY")
    result = await ask(config, Call(prompt="capital of France?", model="grok"))
    if done:
        assert result.status == "complete", result.errors
        assert result.answer == "Paris is the capital of France."
        assert result.finish_reason == "stop"
        (attempt,) = result.trace.attempts
        assert attempt.outcome == "success" and attempt.usage.output_tokens == 7
    else:  # cut before [DONE]: a stream that says "" in every chunk may have had more
        assert result.status == "failed"
        assert result.trace.attempts[0].outcome == "error"


async def test_deepseeks_capacity_finish_after_text_is_carried_on_by_the_same_model(
    nursery: trio.Nursery,
) -> None:
    asked: list[dict[str, Any]] = []

    def answer(head: h11.Request, body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
        asked.append(json.loads(body))
        if len(asked) == 1:
            cut = chunk("deepseek-flash", "", "insufficient_system_resource", usage=USAGE)
            return 200, SSE, sse(chunk("deepseek-flash", "Paris is the"), cut)
        rest = chunk("deepseek-flash", " capital of France.", "stop", usage=USAGE)
        return 200, SSE, sse(rest)

    base_url = await nursery.start(serve_answers, answer)
    flash = ModelSpec(
        alias="flash",
        provider="deepseek",
        model_id="deepseek-flash",
        input_per_mtok=0.3,
        output_per_mtok=1.2,
    )
    config = served_by(base_url, flash, key_env="EDGE_KEY")
    streamed: list[str] = []
    with trio.fail_after(20):
        async with (
            switchman.open_router(config, env=KEY) as router,
            router.stream(Call(prompt="capital of France?", model="flash")) as events,
        ):
            async for event in events:
                if isinstance(event, switchman.Delta):
                    streamed.append(event.text)
                else:
                    result = event
    assert result.status == "complete", result.errors
    assert result.answer == "".join(streamed) == "Paris is the capital of France."
    first, second = result.trace.attempts
    assert first.alias == second.alias == "flash"
    assert first.outcome == "error" and second.outcome == "success"
    assert len(asked) == 2
    # the second request carries the cut answer on (the text already sent is in it)
    assert "Paris is the" in json.dumps(asked[1]["messages"])


async def test_a_gemini_prompt_blocked_is_billed_its_prompt_not_the_output_room(
    nursery: trio.Nursery,
) -> None:
    blocked = {
        "promptFeedback": {"blockReason": "SAFETY"},
        "usageMetadata": {"promptTokenCount": 25, "totalTokenCount": 25},
        "modelVersion": "gemini-3.8-flash",
    }
    body = f"data: {json.dumps(blocked)}\r\n\r\n".encode()
    base_url = await nursery.start(serve_answers, lambda head, _: (200, SSE, body))
    flash = ModelSpec(
        alias="flash",
        provider="gemini",
        model_id="gemini-3.8-flash",
        input_per_mtok=0.75,
        output_per_mtok=3.75,
        capabilities=("reason",),  # may reason unseen: a failed answer may have
    )
    provider = ProviderSpec(name="gemini", kind="gemini", base_url=base_url, api_key_env="EDGE_KEY")
    config = Config(providers={"gemini": provider}, models={"flash": flash})
    call = Call(prompt="something blocked", model="flash", params=Params(max_tokens=8000))
    result = await ask(config, call)
    assert result.status == "failed"
    (attempt,) = result.trace.attempts
    assert attempt.outcome == "content_filtered"
    assert (attempt.usage.input_tokens, attempt.usage.output_tokens) == (25, 0)
    assert not attempt.usage_estimated
    assert attempt.cost_usd == pytest.approx(25 * 0.75 / 1e6)
