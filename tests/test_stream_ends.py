"""How a provider's stream ends, over real HTTP: each wire format's server scripted by the
model id asked for. An answer whose finish reason arrived is whole even when the end marker
after it never does (a stall, a cut); one that ignored ``"stream": true`` is read whole; an
error event's words say what it is. The route's next model (the simulator) answers whatever
is not a whole answer."""

from __future__ import annotations

import json
from typing import Any

import attrs
import pytest
import trio

import switchman
from switchman import Call, Params
from switchman.catalog import Config, ModelSpec, ProviderSpec, RouteSpec, SimProfile
from switchman.policy._estimate import most_cost
from tests._rawhttp import read_request_body

ENV = {"ENDS_KEY": "ends-test-key-0001"}
USAGE = {"prompt_tokens": 9, "completion_tokens": 3, "total_tokens": 12}
TEXT = "Paris, 東京 €"


def _chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> bytes:
    choice = {"index": 0, "delta": delta, "finish_reason": finish}
    body = {"id": "c1", "object": "chat.completion.chunk", "model": "m", "choices": [choice]}
    return f"data: {json.dumps({**body, **extra}, ensure_ascii=False)}\n\n".encode()


def _chat(*end: bytes) -> list[bytes]:
    """Text in two chunks, the finish, the usage chunk, then ``end``."""
    return [
        _chunk({"role": "assistant", "content": "Paris, "}) + _chunk({"content": "東京 €"}),
        _chunk({}, "stop") + _chunk({}, None, usage=USAGE, choices=[]),
        *end,
    ]


def _event(kind: str, data: dict[str, Any]) -> bytes:
    data = json.dumps({"type": kind, **data}, ensure_ascii=False)
    return f"event: {kind}\ndata: {data}\n\n".encode()


ANTHROPIC = [
    _event(
        "message_start",
        {"message": {"model": "claude-x", "usage": {"input_tokens": 9, "output_tokens": 1}}},
    )
    + _event("content_block_delta", {"index": 0, "delta": {"type": "text_delta", "text": TEXT}}),
    _event("message_delta", {"delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 3}}),
]

WHOLE = {
    "id": "c1",
    "object": "chat.completion",
    "model": "m",
    "choices": [
        {"index": 0, "message": {"role": "assistant", "content": TEXT}, "finish_reason": "stop"}
    ],
    "usage": USAGE,
}


@attrs.frozen
class Script:
    """What the upstream sends: ``parts`` (each its own write), then it closes (``end``
    "close"), or declares ``declared`` bytes of content-length and closes short, or holds
    the connection open (``end`` "hold")."""

    parts: list[bytes]
    content_type: str = "text/event-stream"
    end: str = "close"
    declared: int | None = None


SCRIPTS: dict[str, Script] = {
    # the finish and usage came, then nothing: no [DONE], the connection held open
    "stall-after-finish": Script(_chat(), end="hold"),
    # the connection closed in the middle of [DONE]
    "cut-done": Script(_chat(b"data: [DO")),
    # a content-length longer than what came: the connection broke after the finish
    "short-length": Script(_chat(b"data: [DONE]"), declared=10_000),
    # text, then nothing at all: no finish reason, held open (a stall, not an answer)
    "stall-mid-text": Script(_chat()[:1], end="hold"),
    # a server that ignored "stream": true and answered the whole completion
    "whole-json": Script([json.dumps(WHOLE, indent=2).encode()], "application/json"),
    "whole-event": Script([b"data: " + json.dumps(WHOLE).encode() + b"\n\ndata: [DONE]\n\n"]),
    # Ollama's kind of error: words alone, before any text
    "rate-words": Script([b'data: {"error": "too many requests, slow down"}\n\n']),
    # a rate limit after the text began: the stream is broken, and the model held back
    "rate-after-text": Script(
        [
            _chat()[0],
            b'data: {"error": {"message": "Rate limit reached. Please try again in 30s.",'
            b' "type": "requests", "code": "rate_limit_exceeded"}}\n\n',
        ]
    ),
    # text after the finish reason: it was not the end, and what followed was cut
    "fin-then-text-cut": Script(_chat(_chunk({"content": " and more"}))),
    # (cut inside its text, past its "content" key: a chunk cut before that key cannot be
    # told from a cut usage chunk, and is taken as no loss)
    "fin-then-partial-cut": Script(_chat(_chunk({"content": " and more"}).partition(b" and")[0])),
}
ANTHROPIC_SCRIPTS: dict[str, Script] = {
    "a-stall-after-stop": Script(ANTHROPIC, end="hold"),
    "a-cut-stop": Script([*ANTHROPIC, b"event: message_st"]),
    "a-cut-stop-data": Script([*ANTHROPIC, b'event: message_stop\ndata: {"type": "mes']),
    "a-stop-then-text-cut": Script(
        [
            *ANTHROPIC,
            _event(
                "content_block_delta", {"index": 0, "delta": {"type": "text_delta", "text": "!"}}
            ),
        ]
    ),
}
RESPONSES_SCRIPTS: dict[str, Script] = {
    # Perplexity: the message is done, then the connection closed before response.completed
    "p-cut-before-completed": Script(
        [
            _event("response.output_text.delta", {"delta": TEXT}),
            _event("response.output_text.done", {"text": TEXT}),
            _event(
                "response.output_item.done", {"item": {"type": "message", "status": "completed"}}
            ),
        ]
    ),
    # a text part done is not the message done: another part may follow
    "p-text-done-cut": Script(
        [
            _event("response.output_text.delta", {"delta": TEXT}),
            _event("response.output_text.done", {"text": TEXT}),
        ]
    ),
    # the message was cut by its token limit: a "length" end, not a "stop"
    "p-incomplete-cut": Script(
        [
            _event("response.output_text.delta", {"delta": TEXT}),
            _event(
                "response.output_item.done", {"item": {"type": "message", "status": "incomplete"}}
            ),
        ]
    ),
    # a second message item after the first, then a stall
    "p-two-items-stall": Script(
        [
            _event("response.output_text.delta", {"delta": TEXT}),
            _event(
                "response.output_item.done", {"item": {"type": "message", "status": "completed"}}
            ),
            _event("response.output_text.delta", {"delta": " more"}),
        ],
        end="hold",
    ),
}
ALL = {**SCRIPTS, **ANTHROPIC_SCRIPTS, **RESPONSES_SCRIPTS}


async def serve(*, task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED) -> None:
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = listeners[0].socket.getsockname()[1]

    async def handle(stream: trio.SocketStream) -> None:
        async with stream:
            script = ALL[json.loads(await read_request_body(stream))["model"]]
            size = sum(map(len, script.parts)) if script.declared is None else script.declared
            framing = f"content-length: {size}" if script.end != "hold" else "connection: close"
            head = f"HTTP/1.1 200 OK\r\ncontent-type: {script.content_type}\r\n{framing}\r\n\r\n"
            await stream.send_all(head.encode())
            for part in script.parts:
                await stream.send_all(part)
                await trio.sleep(0.01)
            if script.end == "hold":
                await trio.sleep_forever()

    task_status.started(f"http://127.0.0.1:{port}")
    await trio.serve_listeners(handle, listeners)


def _config(base_url: str) -> Config:
    providers = {
        "up": ProviderSpec(
            name="up", kind="openai", base_url=f"{base_url}/v1", api_key_env="ENDS_KEY"
        ),
        "ant": ProviderSpec(
            name="ant", kind="anthropic", base_url=base_url, api_key_env="ENDS_KEY"
        ),
        # (the provider named perplexity speaks the Responses format)
        "perplexity": ProviderSpec(
            name="perplexity", kind="openai", base_url=base_url, api_key_env="ENDS_KEY"
        ),
        "sim": ProviderSpec(name="sim", kind="sim"),
    }
    models = {
        "fb": ModelSpec(alias="fb", provider="sim", model_id="fb", sim=SimProfile()),
    }
    routes = {}
    for provider, scripts in (
        ("up", SCRIPTS),
        ("ant", ANTHROPIC_SCRIPTS),
        ("perplexity", RESPONSES_SCRIPTS),
    ):
        for name in scripts:
            models[name] = ModelSpec(
                alias=name,
                provider=provider,
                model_id=name,
                input_per_mtok=1.0,
                output_per_mtok=2.0,
                request_fee_usd=0.005 if provider == "perplexity" else 0.0,
                max_request_fee_usd=0.025 if provider == "perplexity" else None,
            )
            routes[f"r-{name}"] = RouteSpec(name=f"r-{name}", chain=(name, "fb"))
    return Config(providers=providers, models=models, routes=routes)


async def _call(model: str, *, stall_ms: int = 1000) -> switchman.Result:
    config = _config_with_stall(stall_ms)
    async with switchman.open_router(config, env=ENV) as router:
        return await router.call(
            Call(prompt="capital of France?", model=f"r-{model}", params=Params(max_tokens=50))
        )


_BASE: list[str] = []


def _config_with_stall(stall_ms: int) -> Config:
    config = _config(_BASE[0])
    return attrs.evolve(config, router=attrs.evolve(config.router, stall_ms=stall_ms))


@pytest.fixture
async def upstream(nursery: trio.Nursery) -> str:
    base = await nursery.start(serve)
    _BASE[:] = [base]
    return base


@pytest.mark.parametrize(
    "model",
    [
        "fin-then-text-cut",
        "fin-then-partial-cut",
        "a-stop-then-text-cut",
        "p-text-done-cut",
        "p-two-items-stall",
    ],
)
async def test_text_after_an_end_that_was_not_one_is_no_whole_answer(
    upstream: str, model: str
) -> None:
    with trio.fail_after(10):
        result = await _call(model)
    assert result.status == "complete" and result.model == "fb"  # the fallback answered
    assert result.trace.attempts[0].outcome != "success"


async def test_a_message_cut_by_its_limit_ends_as_length(upstream: str) -> None:
    with trio.fail_after(10):
        result = await _call("p-incomplete-cut")
    assert result.status == "complete" and result.model == "p-incomplete-cut"
    assert result.finish_reason == "length"


@pytest.mark.parametrize(
    "model",
    [
        "a-cut-stop-data",
        "stall-after-finish",
        "cut-done",
        "short-length",
        "whole-json",
        "whole-event",
        "a-stall-after-stop",
        "a-cut-stop",
    ],
)
async def test_a_whole_answer_is_taken_however_its_stream_ends(upstream: str, model: str) -> None:
    with trio.fail_after(10):
        result = await _call(model)
    assert result.status == "complete", result.errors
    assert result.model == model  # not the fallback: the answer was whole
    assert result.answer == TEXT
    (attempt,) = result.trace.attempts
    assert attempt.outcome == "success"
    assert attempt.usage.output_tokens == 3  # as the provider reported


async def test_a_stall_before_the_finish_is_still_a_broken_stream(upstream: str) -> None:
    with trio.fail_after(10):
        result = await _call("stall-mid-text")
    assert result.status == "complete" and result.model == "fb"
    assert "stall" in (result.trace.attempts[0].error or "")


async def test_an_error_event_in_words_is_classified_by_them(upstream: str) -> None:
    with trio.fail_after(10):
        result = await _call("rate-words")
    assert result.model == "fb"
    assert result.trace.attempts[0].outcome == "rate_limited"


async def test_a_responses_stream_cut_before_its_usage_is_billed_at_its_most_fee(
    upstream: str,
) -> None:
    with trio.fail_after(10):
        result = await _call("p-cut-before-completed")
    assert result.status == "complete" and result.model == "p-cut-before-completed"
    assert result.answer == TEXT
    (attempt,) = result.trace.attempts
    model = _config(upstream).models["p-cut-before-completed"]
    # no usage came: the tokens are estimated, and the fees are the most they can be
    usage = attempt.usage
    assert result.cost_usd == pytest.approx(
        most_cost(model, usage.input_tokens, usage.output_tokens)
    )
    assert result.cost_usd > model.cost(usage.input_tokens, usage.output_tokens) + 0.019


def _parse(kind: str, name: str, raw: bytes) -> list[Any]:
    from switchman.adapters import make_adapter

    adapter = make_adapter(ProviderSpec(name=name, kind=kind, base_url="http://x/v1"), "k")
    parser = adapter.stream_parser()
    return parser.feed(raw) + parser.end()


WHOLE_CHAT = b"".join(_chat(b"data: [DONE]\n\n"))
#: where the finish chunk ends: a cut anywhere after it leaves the text whole
AFTER_FINISH = WHOLE_CHAT.index(b"data: {", len(_chat()[0]) + 10)


def test_a_cut_anywhere_after_the_finish_chunk_leaves_the_answer_whole() -> None:
    from switchman.adapters._base import Malformed, StreamEnd, TextDelta

    for cut in range(AFTER_FINISH, len(WHOLE_CHAT) + 1):
        events = _parse("openai", "up", WHOLE_CHAT[:cut])
        text = "".join(e.text for e in events if isinstance(e, TextDelta))
        assert text == TEXT and isinstance(events[-1], StreamEnd), cut
        assert not any(isinstance(e, Malformed) for e in events), cut  # (that would fail it)


def test_a_text_chunk_cut_after_the_finish_still_fails_the_answer() -> None:
    from switchman._errors import ProviderError
    from switchman.adapters._base import Malformed

    more = _chunk({"content": " and more"})
    raw = b"".join(_chat()) + more
    # (cut before its "content" key has come, it cannot be told from a cut usage chunk)
    for cut in range(more.index(b'"content"') + len(b'"content"'), len(more) - 2):
        try:
            events = _parse("openai", "up", raw[: len(raw) - len(more) + cut])
        except ProviderError:
            continue  # (the stream broke: the attempt fails)
        assert any(isinstance(e, Malformed) for e in events), cut  # (garbled: it fails)


def test_a_responses_answer_naming_its_own_event_kinds_survives_a_cut_completed() -> None:
    from switchman.adapters._base import Malformed, StreamEnd, TextDelta

    said = "Stream with response.output_text.delta events."
    head = _event("response.output_text.delta", {"delta": said}) + _event(
        "response.output_item.done", {"item": {"type": "message", "status": "completed"}}
    )
    # response.completed repeats the answer, its words included
    done = {"response": {"status": "completed", "output": [{"type": "message", "text": said}]}}
    raw = head + _event("response.completed", done)
    for cut in range(len(head), len(raw)):
        events = _parse("openai", "perplexity", raw[:cut])
        text = "".join(e.text for e in events if isinstance(e, TextDelta))
        assert text == said and isinstance(events[-1], StreamEnd), cut
        assert not any(isinstance(e, Malformed) for e in events), cut


async def test_a_rate_limit_after_the_text_began_holds_the_model_back(upstream: str) -> None:
    config = _config_with_stall(1000)
    call = Call(
        prompt="capital of France?", model="r-rate-after-text", params=Params(max_tokens=50)
    )
    with trio.fail_after(10):
        async with switchman.open_router(config, env=ENV) as router:
            first = await router.call(call)
            second = await router.call(call)
    # the first met the broken stream and was continued by the fallback
    assert [a.alias for a in first.trace.attempts] == ["rate-after-text", "fb"]
    assert first.status == "complete"
    # the second does not send to the model until its retry-after (30 s) has passed
    assert [a.alias for a in second.trace.attempts] == ["fb"]
    assert "rate-after-text" not in second.trace.eligibility.eligible
    (left_out,) = [e for e in second.trace.eligibility.excluded if e.alias == "rate-after-text"]
    assert "rate" in left_out.reason, left_out
