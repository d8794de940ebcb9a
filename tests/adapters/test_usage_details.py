"""Of an attempt's usage, the input read from cache and the output spent reasoning, as each
provider reports them (providers.md "Usage fields", section 6 "Usage accounting differs"):
whole answers and streams, the providers' own example bodies and transcripts, and the same
with non-zero counts. Each count is part of its total, never above it."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from switchman._result import Usage
from switchman.adapters import Adapter, StreamEnd, StreamEvent, make_adapter
from switchman.catalog import ProviderSpec
from tests.adapters._facts import provider_facts as facts

KEY = "sk-test-0123456789abcdefghijKLMNOP"
KINDS = {"anthropic": "anthropic", "gemini": "gemini", "ollama": "ollama"}


def adapter(name: str) -> Any:
    return make_adapter(ProviderSpec(name=name, kind=KINDS.get(name, "openai")), KEY)


def example(name: str) -> dict[str, Any]:
    return copy.deepcopy(facts(name)["example_success_response"]["body"])


def parsed(name: str, body: Any) -> Usage:
    return adapter(name).parse_response(json.dumps(body).encode()).usage


def stream_end(a: Adapter, raw: bytes, *, bytewise: bool = False) -> StreamEnd:
    parser = a.stream_parser()
    events: list[StreamEvent] = []
    pieces = [raw[i : i + 1] for i in range(len(raw))] if bytewise else [raw]
    for piece in pieces:
        events += parser.feed(piece)
    ends = [e for e in events + parser.end() if isinstance(e, StreamEnd)]
    assert len(ends) == 1
    return ends[0]


def counts(usage: Usage) -> tuple[int, int, int, int]:
    return (
        usage.input_tokens,
        usage.output_tokens,
        usage.cached_input_tokens,
        usage.reasoning_tokens,
    )


# -- the providers' own examples -------------------------------------------------------------

#: (input, output, of the input cached, of the output reasoning), from each example body
EXAMPLE_COUNTS = {
    "openai": (21, 8, 0, 0),
    "xai": (21, 106, 0, 98),  # reasoning outside completion_tokens: added to the output
    "groq": (84, 25, 0, 14),
    "deepseek": (16, 22, 0, 13),
    "mistral": (16, 9, 0, 0),
    "together": (84, 25, 0, 0),
    "anthropic": (18, 10, 0, 0),
    "gemini": (12, 8, 0, 0),
    "ollama": (26, 9, 0, 0),
}
#: the example stream transcripts: the same, where the transcript reports them
STREAM_COUNTS = {
    "openai": (21, 8, 0, 0),
    "xai": (21, 106, 0, 98),
    "groq": (84, 25, 0, 0),  # (x_groq.usage: no details)
    "deepseek": (16, 22, 0, 13),
    "mistral": (16, 9, 0, 0),
    "together": (84, 25, 0, 0),
    "anthropic": (18, 10, 0, 0),
    "gemini": (12, 8, 0, 0),
    "ollama": (26, 9, 0, 0),
}


@pytest.mark.parametrize("name", sorted(EXAMPLE_COUNTS))
def test_the_example_bodies_report_their_cached_and_reasoning_tokens(name: str) -> None:
    assert counts(parsed(name, example(name))) == EXAMPLE_COUNTS[name]


@pytest.mark.parametrize("bytewise", [False, True])
@pytest.mark.parametrize("name", sorted(STREAM_COUNTS))
def test_the_example_streams_report_their_cached_and_reasoning_tokens(
    name: str, bytewise: bool
) -> None:
    raw = facts(name)["example_stream_transcript"]["raw"].encode()
    end = stream_end(adapter(name), raw, bytewise=bytewise)
    assert counts(end.usage) == STREAM_COUNTS[name]


# -- non-zero counts, whole answers -----------------------------------------------------------


@pytest.mark.parametrize("name", ["openai", "groq", "mistral", "together"])
def test_chat_completions_cached_and_reasoning_tokens(name: str) -> None:
    body = example(name)
    body["usage"]["prompt_tokens_details"] = {"cached_tokens": 16, "audio_tokens": 0}
    body["usage"]["completion_tokens_details"] = {"reasoning_tokens": 5}
    usage = body["usage"]
    expected = (usage["prompt_tokens"], usage["completion_tokens"], 16, 5)
    completion = adapter(name).parse_response(json.dumps(body).encode())
    assert counts(completion.usage) == expected
    # billed at the input price, as before: only DeepSeek's cache hits are billed apart
    assert completion.cached_input_tokens == 0


def test_xai_cached_tokens_and_reasoning_outside_completion_tokens() -> None:
    body = example("xai")
    body["usage"]["prompt_tokens_details"]["cached_tokens"] = 20
    assert counts(parsed("xai", body)) == (21, 106, 20, 98)
    # no details: the reasoning is what total_tokens counts past prompt and completion
    del body["usage"]["completion_tokens_details"]
    assert counts(parsed("xai", body)) == (21, 106, 20, 98)


def test_deepseek_cache_hits_are_the_cached_tokens_and_what_is_billed_apart() -> None:
    body = example("deepseek")
    body["usage"].update(prompt_cache_hit_tokens=12, prompt_cache_miss_tokens=4)
    body["usage"]["prompt_tokens_details"] = {"cached_tokens": 12}
    completion = adapter("deepseek").parse_response(json.dumps(body).encode())
    assert counts(completion.usage) == (16, 22, 12, 13)
    # one number: what the usage says was cached is what is billed at the cache-hit price
    assert completion.cached_input_tokens == completion.usage.cached_input_tokens == 12


def test_anthropic_cache_reads_and_thinking_tokens() -> None:
    body = example("anthropic")
    body["usage"].update(
        input_tokens=18,
        cache_creation_input_tokens=50,
        cache_read_input_tokens=100,
        output_tokens=10,
        output_tokens_details={"thinking_tokens": 4},
    )
    # the input is all the model read (as billed): input + cache writes + cache reads
    assert counts(parsed("anthropic", body)) == (168, 10, 100, 4)


def test_gemini_cached_content_and_thoughts() -> None:
    body = example("gemini")
    body["usageMetadata"].update(cachedContentTokenCount=8, thoughtsTokenCount=30)
    # thoughts are billed as output, outside candidatesTokenCount
    assert counts(parsed("gemini", body)) == (12, 38, 8, 30)


def _response(usage: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": "resp_1",
        "object": "response",
        "model": "perplexity/sonar",
        "status": "completed",
        "output": [
            {
                "type": "message",
                "role": "assistant",
                "status": "completed",
                "content": [{"type": "output_text", "text": "Paris."}],
            }
        ],
        "usage": usage,
    }


@pytest.mark.parametrize(
    "details",
    [
        # Perplexity's Agent API
        {"input_tokens_details": {"cache_creation_input_tokens": 0, "cache_read_input_tokens": 7}},
        # OpenAI's Responses format
        {
            "input_tokens_details": {"cached_tokens": 7},
            "output_tokens_details": {"reasoning_tokens": 3},
        },
    ],
)
def test_responses_cached_and_reasoning_tokens(details: dict[str, Any]) -> None:
    usage = {"input_tokens": 12, "output_tokens": 9, "total_tokens": 21, **details}
    reasoning = 3 if "output_tokens_details" in details else 0
    assert counts(parsed("perplexity", _response(usage))) == (12, 9, 7, reasoning)


def test_ollama_reports_neither() -> None:
    body = example("ollama")
    assert counts(parsed("ollama", body)) == (26, 9, 0, 0)


# -- non-zero counts, streams -----------------------------------------------------------------


def _sse(*events: dict[str, Any], done: bool = True, named: bool = False) -> bytes:
    out = b""
    for e in events:
        head = f"event: {e['type']}\n".encode() if named else b""
        out += head + b"data: " + json.dumps(e).encode() + b"\n\n"
    return out + (b"data: [DONE]\n\n" if done else b"")


def _chunk(content: str | None, finish: str | None, usage: Any = None) -> dict[str, Any]:
    choices = [] if content is None and finish is None else [{"index": 0, "delta": {}}]
    if choices:
        if content is not None:
            choices[0]["delta"]["content"] = content
        choices[0]["finish_reason"] = finish
    return {"model": "m-1", "choices": choices, "usage": usage}


@pytest.mark.parametrize("bytewise", [False, True])
def test_an_openai_streams_usage_chunk_carries_its_details(bytewise: bool) -> None:
    usage = {
        "prompt_tokens": 40,
        "completion_tokens": 30,
        "total_tokens": 70,
        "prompt_tokens_details": {"cached_tokens": 32},
        "completion_tokens_details": {"reasoning_tokens": 24},
    }
    raw = _sse(_chunk("Paris.", None), _chunk(None, "stop"), _chunk(None, None, usage))
    end = stream_end(adapter("openai"), raw, bytewise=bytewise)
    assert counts(end.usage) == (40, 30, 32, 24)
    assert end.cached_input_tokens == 0  # (billed at the input price)


def test_a_groq_streams_x_groq_usage_carries_its_details() -> None:
    usage = {
        "prompt_tokens": 84,
        "completion_tokens": 25,
        "total_tokens": 109,
        "prompt_tokens_details": {"cached_tokens": 64},
        "completion_tokens_details": {"reasoning_tokens": 14},
    }
    last = _chunk(None, "stop")
    last["x_groq"] = {"id": "req_1", "usage": usage}
    del last["usage"]
    raw = _sse(_chunk("Paris.", None), last)
    assert counts(stream_end(adapter("groq"), raw).usage) == (84, 25, 64, 14)


def test_a_deepseek_stream_bills_the_cache_hits_its_usage_reports() -> None:
    usage = {
        "prompt_tokens": 16,
        "completion_tokens": 22,
        "total_tokens": 38,
        "completion_tokens_details": {"reasoning_tokens": 13},
        "prompt_cache_hit_tokens": 10,
        "prompt_cache_miss_tokens": 6,
    }
    raw = _sse(_chunk("Paris.", None), _chunk("", "stop", usage))
    end = stream_end(adapter("deepseek"), raw)
    assert counts(end.usage) == (16, 22, 10, 13)
    assert end.cached_input_tokens == end.usage.cached_input_tokens == 10


@pytest.mark.parametrize("bytewise", [False, True])
def test_an_anthropic_stream_keeps_cache_reads_and_thinking(bytewise: bool) -> None:
    start_usage = {
        "input_tokens": 18,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 2000,
        "output_tokens": 1,
    }
    raw = _sse(
        {
            "type": "message_start",
            "message": {"type": "message", "model": "claude-x", "usage": start_usage},
        },
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text"}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hi"}},
        {"type": "content_block_stop", "index": 0},
        {
            "type": "message_delta",
            "delta": {"stop_reason": "end_turn"},
            # cumulative output; the input and cache counts restated or left out
            "usage": {"output_tokens": 120, "output_tokens_details": {"thinking_tokens": 100}},
        },
        {"type": "message_stop"},
        done=False,
        named=True,
    )
    end = stream_end(adapter("anthropic"), raw, bytewise=bytewise)
    assert counts(end.usage) == (2018, 120, 2000, 100)


def test_a_gemini_stream_takes_the_last_chunks_cached_and_thought_counts() -> None:
    def chunk(text: str, meta: dict[str, int], finish: str | None = None) -> dict[str, Any]:
        candidate: dict[str, Any] = {"content": {"parts": [{"text": text}], "role": "model"}}
        if finish:
            candidate["finishReason"] = finish
        return {"candidates": [candidate], "usageMetadata": meta, "modelVersion": "g"}

    raw = _sse(
        chunk("Paris", {"promptTokenCount": 12, "totalTokenCount": 12}),
        chunk(
            " is it.",
            {
                "promptTokenCount": 12,
                "cachedContentTokenCount": 10,
                "candidatesTokenCount": 8,
                "thoughtsTokenCount": 40,
                "totalTokenCount": 60,
            },
            "STOP",
        ),
        done=False,
    )
    assert counts(stream_end(adapter("gemini"), raw).usage) == (12, 48, 10, 40)


def test_a_responses_stream_completed_event_carries_its_details() -> None:
    usage = {
        "input_tokens": 12,
        "output_tokens": 9,
        "total_tokens": 21,
        "input_tokens_details": {"cache_read_input_tokens": 5},
        "output_tokens_details": {"reasoning_tokens": 2},
    }
    raw = _sse(
        {"type": "response.output_text.delta", "delta": "Paris."},
        {"type": "response.completed", "response": _response(usage)},
        done=False,
    )
    assert counts(stream_end(adapter("perplexity"), raw).usage) == (12, 9, 5, 2)


# -- a report past its total, or no count at all -----------------------------------------------


@pytest.mark.parametrize(
    ("cached", "reasoning", "expected"),
    [
        (500, 500, (21, 8, 21, 8)),  # more than the total: all of it, no more
        (-3, -1, (21, 8, 0, 0)),
        ("12", True, (21, 8, 0, 0)),  # not a count: none reported
        (None, float("nan"), (21, 8, 0, 0)),
        (5.7, 2.2, (21, 8, 5, 2)),
    ],
)
def test_details_are_held_to_their_totals(cached: Any, reasoning: Any, expected: Any) -> None:
    body = example("openai")
    body["usage"]["prompt_tokens_details"] = {"cached_tokens": cached}
    body["usage"]["completion_tokens_details"] = {"reasoning_tokens": reasoning}
    raw = json.dumps(body, allow_nan=True).encode()
    assert counts(adapter("openai").parse_response(raw).usage) == expected


def test_anthropic_thinking_past_the_output_is_held_to_it() -> None:
    body = example("anthropic")
    body["usage"]["output_tokens_details"] = {"thinking_tokens": 10_000}
    assert counts(parsed("anthropic", body)) == (18, 10, 0, 10)


def test_details_default_to_none_reported() -> None:
    usage = Usage(input_tokens=3, output_tokens=4)
    assert (usage.cached_input_tokens, usage.reasoning_tokens) == (0, 0)
