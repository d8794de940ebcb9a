"""A retry leaves the models after it their time, through the whole router over real HTTP:
a model answering 429 (``retry-after: 1``) or 503 under a call's short deadline is not
waited for when a healthy fallback is there. It had been: the retry failed again, the
fallback got the few milliseconds left, and all five calls timed out."""

from __future__ import annotations

import json
from typing import Any

import h11
import pytest
import trio

import switchman
from switchman import Call, Options, Timeouts
from switchman.catalog import ModelSpec
from tests._rawhttp import serve_answers, served_by

KEY = {"SHARE_KEY": "sk-share-test-0123456789"}


def _stream(text: str) -> bytes:
    chunk = {
        "object": "chat.completion.chunk",
        "model": "ok",
        "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8},
    }
    return f"data: {json.dumps(chunk)}\n\ndata: [DONE]\n\n".encode()


def _model(alias: str) -> ModelSpec:
    return ModelSpec(
        alias=alias, provider="openai", model_id=alias, input_per_mtok=1.0, output_per_mtok=2.0
    )


@pytest.mark.parametrize("failing", ["limited", "overloaded"])
async def test_a_short_deadline_goes_to_the_fallback_rather_than_a_retry(
    nursery: trio.Nursery, failing: str
) -> None:
    asked: list[str] = []

    def answer(head: h11.Request, body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
        model: Any = json.loads(body)["model"]
        asked.append(model)
        if model == "limited":
            error = {"error": {"message": "Rate limit reached", "type": "requests"}}
            return 429, [("retry-after", "1")], json.dumps(error).encode()
        if model == "overloaded":
            error = {"error": {"message": "overloaded", "type": "server_error"}}
            return 503, [], json.dumps(error).encode()
        return 200, [("content-type", "text/event-stream")], _stream("Paris.")

    base_url = await nursery.start(serve_answers, answer)
    config = served_by(base_url, _model(failing), _model("ok"), key_env="SHARE_KEY")
    call = Call(
        prompt="capital of France?",
        model=failing,
        options=Options(fallback=("ok",), timeouts=Timeouts(hard_ms=1_200)),
    )
    with trio.fail_after(20):
        async with switchman.open_router(config, env=KEY) as router:
            result = await router.call(call)
    assert result.status == "complete", result.errors
    assert result.model == "ok" and result.answer == "Paris."
    assert asked == [failing, "ok"]  # not retried: the wait would have taken the time
    assert "too little" in (result.trace.attempts[1].after or "")
