"""Upstreams that lie or break, over real HTTP: an OpenAI-wire server whose reply is
scripted by the model id asked for. None of them may get a cut, garbled, oversized or
absurdly billed answer through as a success; the route's next model answers instead."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import attrs
import pytest
import trio

import switchman
from switchman import Call, Params
from switchman.catalog import Config, ModelSpec, ProviderSpec, RouteSpec
from tests._rawhttp import read_request_body
from tests._simfleet import streamed as streamed_call

ENV = {"HOSTILE_KEY": "hostile-test-key-0001"}
USAGE = {"prompt_tokens": 9, "completion_tokens": 3, "total_tokens": 12}


def _chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> str:
    choice = {"index": 0, "delta": delta, "finish_reason": finish}
    body = {"id": "c1", "object": "chat.completion.chunk", "model": "m", "choices": [choice]}
    return f"data: {json.dumps({**body, **extra})}\n\n"


def _stream(*events: str) -> tuple[bytes, bytes]:
    return b"text/event-stream", "".join(events).encode()


def _good() -> tuple[bytes, bytes]:
    return _stream(
        _chunk({"role": "assistant", "content": "Paris "}),
        _chunk({"content": "it is."}),
        _chunk({}, "stop", usage=USAGE),
        "data: [DONE]\n\n",
    )


#: model id -> (content type, body) the upstream answers with
SCRIPTS: dict[str, Callable[[], tuple[bytes, bytes]]] = {
    "good": _good,
    # the end marker, but the provider never said why the answer ended
    "no-finish": lambda: _stream(_chunk({"content": "Paris "}), "data: [DONE]\n\n"),
    # a data line that is not JSON: its text is lost
    "bad-json": lambda: _stream(
        _chunk({"content": "Alpha "}),
        # (its text, unredacted, is no part of the error: it had been quoted in it)
        'data: {"choices": [{"delta": {"content": "Beta, mail ops.lead@corp-mail.acme.io"\n\n',
        _chunk({"content": "Gamma."}),
        _chunk({}, "stop", usage=USAGE),
        "data: [DONE]\n\n",
    ),
    # a byte-order mark before the first event (which SSE says to ignore)
    "bom": lambda: (b"text/event-stream", b"\xef\xbb\xbf" + _good()[1]),
    # usage no request could have produced
    "absurd": lambda: _stream(
        _chunk({"content": "Paris."}),
        _chunk(
            {},
            "stop",
            usage={
                "prompt_tokens": 10**12,
                "completion_tokens": 10**12,
                "total_tokens": 2 * 10**12,
            },
        ),
        "data: [DONE]\n\n",
    ),
    # far more text than max_tokens allows
    "huge": lambda: _stream(
        *[_chunk({"content": "x" * 1000}) for _ in range(200)],
        _chunk({}, "stop", usage=USAGE),
        "data: [DONE]\n\n",
    ),
    # text, then the provider's error event, in one network read
    "error-mid": lambda: _stream(
        _chunk({"content": "Some text "}),
        'data: {"error": {"message": "overloaded", "type": "server_error"}}\n\n',
    ),
    # a proxy's login page, with 200
    "html": lambda: (b"text/html; charset=utf-8", b"<html><body>Please sign in</body></html>"),
}


@attrs.define
class Upstream:
    base_url: str
    asked: list[str] = attrs.field(factory=list)


async def serve_scripted(
    *, task_status: trio.TaskStatus[Upstream] = trio.TASK_STATUS_IGNORED
) -> None:
    """One request per connection; the reply is the script of the model asked for."""
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    upstream = Upstream(base_url=f"http://127.0.0.1:{listeners[0].socket.getsockname()[1]}/v1")

    async def handle(stream: trio.SocketStream) -> None:
        async with stream:
            body = await read_request_body(stream)
            model_id = json.loads(body)["model"]
            upstream.asked.append(model_id)
            content_type, payload = SCRIPTS[model_id]()
            await stream.send_all(
                b"HTTP/1.1 200 OK\r\ncontent-type: " + content_type + b"\r\n"
                b"content-length: " + str(len(payload)).encode() + b"\r\n"
                b"connection: close\r\n\r\n" + payload
            )

    async with trio.open_nursery() as nursery:
        await nursery.start(trio.serve_listeners, handle, listeners)
        task_status.started(upstream)


def _config(upstream: Upstream, first: str, **config: Any) -> Config:
    def model(model_id: str) -> ModelSpec:
        return ModelSpec(
            alias=model_id,
            provider="hostile",
            model_id=model_id,
            input_per_mtok=1.0,
            output_per_mtok=2.0,
            context_window=32000,
            max_output_tokens=4000,
        )

    return Config(
        providers={
            "hostile": ProviderSpec(
                name="hostile",
                kind="openai",
                base_url=upstream.base_url,
                api_key_env="HOSTILE_KEY",
            )
        },
        models={"good": model("good"), first: model(first)},
        routes={"r": RouteSpec(name="r", chain=(first, "good"))},
        **config,
    )


async def _ask(upstream: Upstream, first: str, *, streamed: bool) -> switchman.Result:
    call = Call(prompt="What is the capital of France?", model="r", params=Params(max_tokens=100))
    with trio.fail_after(20):
        async with switchman.open_router(_config(upstream, first), env=ENV) as router:
            if not streamed:
                return await router.call(call)
            result, text = await streamed_call(router, call)
            assert text == result.answer
            return result


@pytest.mark.parametrize("streamed", [False, True])
@pytest.mark.parametrize(
    ("first", "said"),
    [
        ("no-finish", "without a finish reason"),
        ("bad-json", "not JSON"),
        ("huge", "grew past what max_tokens"),
        ("html", "text/html"),
    ],
)
async def test_a_broken_answer_is_never_a_success_and_the_next_model_answers(
    first: str, said: str, streamed: bool, nursery: trio.Nursery
) -> None:
    upstream: Upstream = await nursery.start(serve_scripted)
    result = await _ask(upstream, first, streamed=streamed)
    assert upstream.asked[0] == first
    bad = result.trace.attempts[0]
    assert bad.alias == first and bad.outcome == "error", bad
    assert bad.error is not None and said in bad.error, bad.error
    assert result.status == "complete" and result.model == "good", result.errors
    if not streamed or first in ("html",):  # nothing of the broken answer reached the caller
        assert result.answer == "Paris it is."
    assert "x" * 100 not in result.answer
    assert "corp-mail" not in json.dumps(result.errors, default=str) + bad.error


async def test_a_byte_order_mark_before_the_stream_loses_nothing(nursery: trio.Nursery) -> None:
    upstream: Upstream = await nursery.start(serve_scripted)
    result = await _ask(upstream, "bom", streamed=False)
    assert result.model == "bom" and result.answer == "Paris it is.", result


async def test_absurd_usage_is_billed_at_most_what_the_request_allowed(
    nursery: trio.Nursery,
) -> None:
    upstream: Upstream = await nursery.start(serve_scripted)
    result = await _ask(upstream, "absurd", streamed=False)
    assert result.model == "absurd" and result.status == "complete"
    # at most the model's context window of input and its 4,000 tokens of output
    assert result.usage.input_tokens <= 32000 and result.usage.output_tokens <= 4000
    assert result.cost_usd <= (32000 * 1.0 + 4000 * 2.0) / 1e6


@pytest.mark.parametrize("streamed", [False, True])
async def test_text_read_with_a_mid_stream_error_is_delivered_and_billed(
    streamed: bool, nursery: trio.Nursery
) -> None:
    """The text that came in the same read as the provider's error event counts as output:
    the attempt is billed as an answer cut short (however the network split the bytes)."""
    upstream: Upstream = await nursery.start(serve_scripted)
    result = await _ask(upstream, "error-mid", streamed=streamed)
    cut = result.trace.attempts[0]
    assert cut.alias == "error-mid" and cut.outcome == "error", cut
    assert cut.error is not None and "after output began" in cut.error, cut.error
    assert cut.cost_usd > 0 and cut.usage.output_tokens > 0, cut
    assert result.status == "complete" and result.cost_usd > result.trace.attempts[-1].cost_usd
