"""A refusal that arrives after the answer began (a ``content_filter`` finish, Anthropic's
streaming classifiers' ``refusal``) is not continued by another model when the caller
already has text: the next model was handed the flagged text to finish, and the stitched
answer came back complete. A caller that does not stream has seen nothing, and gets the
next model's own answer. The real path: providers over real HTTP."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import h11
import pytest
import trio

import switchman
from switchman import Call
from switchman.catalog import Config, ModelSpec, ProviderSpec, RouteSpec
from tests._rawhttp import serve_answers
from tests._simfleet import routed, sim_model, streamed

ENV = {"UP_KEY": "sk-up-test-key-000000000001"}


def _stream(text: str, finish: str) -> bytes:
    base = {"id": "c1", "object": "chat.completion.chunk", "model": "m"}
    events: list[dict[str, Any]] = [
        {"choices": [{"index": 0, "delta": {"content": text}}]},
        {"choices": [{"index": 0, "delta": {}, "finish_reason": finish}]},
        {"choices": [], "usage": {"prompt_tokens": 9, "completion_tokens": 6, "total_tokens": 15}},
    ]
    lines = [f"data: {json.dumps({**base, **e})}\n\n" for e in events] + ["data: [DONE]\n\n"]
    return "".join(lines).encode()


def _error_event_after(text: str) -> bytes:
    """Text, then an error event of the provider's content policy (no finish reason)."""
    base = {"id": "c1", "object": "chat.completion.chunk", "model": "m"}
    first = {**base, "choices": [{"index": 0, "delta": {"content": text}}]}
    error = {
        "error": {
            "message": "The response was filtered due to the content management policy",
            "type": "invalid_request_error",
            "code": "content_filter",
        }
    }
    return f"data: {json.dumps(first)}\n\ndata: {json.dumps(error)}\n\n".encode()


@pytest.mark.parametrize(
    "filtered",
    [lambda: _stream("Step one: ", "content_filter"), lambda: _error_event_after("Step one: ")],
    ids=["a content_filter finish", "a content-policy error event"],
)
async def test_a_refusal_after_the_answer_began_is_not_continued_elsewhere(
    nursery: trio.Nursery, filtered: Callable[[], bytes]
) -> None:
    asked: list[str] = []

    def answer(head: h11.Request, body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
        model = json.loads(body)["model"]
        asked.append(model)
        if model == "filtered":
            return 200, [("content-type", "text/event-stream")], filtered()
        return 200, [("content-type", "text/event-stream")], _stream("A whole answer.", "stop")

    base_url = await nursery.start(serve_answers, answer)
    models = {
        a: ModelSpec(alias=a, provider="up", model_id=a, input_per_mtok=1.0, output_per_mtok=1.0)
        for a in ("filtered", "other")
    }
    config = Config(
        providers={
            "up": ProviderSpec(name="up", kind="openai", base_url=base_url, api_key_env="UP_KEY")
        },
        models=models,
        routes={"both": RouteSpec(name="both", chain=("filtered", "other"))},
    )
    with trio.fail_after(20):
        async with switchman.open_router(config, env=ENV) as router:
            result, sent = await streamed(router, Call(prompt="how?", model="both"))
            assert asked == ["filtered"]  # the next model was not handed the flagged text
            whole = await router.call(Call(prompt="how?", model="both"))
    assert result.status == "failed" and sent == result.answer == "Step one: "
    lead = result.errors[0]
    assert lead.code == "refused" and "a refusal is not continued by another model" in lead.message
    assert [a.outcome for a in result.trace.attempts] == ["content_filtered"]
    # not streamed: the caller saw nothing of it, and the next model answers afresh
    assert whole.status == "complete" and whole.answer == "A whole answer."
    assert whole.model == "other" and asked == ["filtered", "filtered", "other"]


@pytest.mark.parametrize("burst", [63, 64, 65, 131])
async def test_a_refusal_after_a_burst_that_fills_the_reply_channel_still_fails_refused(
    burst: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A model that sends 64 events or more at once, then refuses: the failure was sent
    without waiting and lost on the full channel, the attempt read as cut by a stopped
    actor, and the refusal was continued on the next model. A 529 after such a burst was
    not retried either."""
    import switchman.sim
    from switchman._errors import Refused, UpstreamError
    from switchman._result import Usage
    from switchman.adapters._base import ResponseStarted, StreamEnd, TextDelta

    ending: list[type[Exception]] = [Refused]

    async def player(model: Any, request: Any, rng: Any, emit: Any, **_: Any) -> None:
        await emit(ResponseStarted(status=200, headers={}))
        if model.alias == "b":
            await emit(TextDelta(text=" and the fallback carried on."))
            await emit(
                StreamEnd(usage=Usage(input_tokens=10, output_tokens=3), finish_reason="stop")
            )
            return
        for i in range(burst):
            await emit(TextDelta(text=f"w{i} "))
        if ending[0] is Refused:
            raise Refused("content filter stopped the answer", provider=model.provider, status=200)
        raise UpstreamError("overloaded", provider=model.provider, status=529)

    monkeypatch.setattr(switchman.sim, "run_sim_attempt", player)
    with trio.fail_after(30):
        async with switchman.open_router(routed(sim_model("a"), sim_model("b"))) as router:
            result, text = await streamed(router, Call(prompt="hi", model="r"))
            assert (result.status, result.errors[0].code) == ("failed", "refused"), result.errors
            assert [a.outcome for a in result.trace.attempts] == ["refused"]
            assert "fallback" not in text
            ending[0] = UpstreamError  # an overload after the burst: retried, as any 529
            result = await router.call(Call(prompt="hi", model="r"))
            assert [(a.alias, a.status_code) for a in result.trace.attempts][:2] == [
                ("a", 529),
                ("a", 529),
            ], result.trace.attempts
