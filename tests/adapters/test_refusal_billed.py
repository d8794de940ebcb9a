"""A refusal or filtered answer the provider sent as an HTTP 200 with its usage is billed:
the ``Refused`` (or Gemini's blocked-prompt ``ContentRejected``) carries ``billed``, the
input and output tokens the response reported (and xAI's own cost), streamed or not, from
every adapter that raises it. Where no usage came, nothing is made up: ``billed`` is None."""

from __future__ import annotations

import json
from typing import Any

import pytest

from switchman._errors import ContentRejected, ProviderError, Refused
from switchman.adapters import StreamEvent, TextDelta, make_adapter
from switchman.catalog import ProviderSpec
from tests.adapters.test_openai import KEY, facts


def adapter(name: str, kind: str = "openai") -> Any:
    return make_adapter(ProviderSpec(name=name, kind=kind), KEY)  # type: ignore[arg-type]


def parse_error(a: Any, body: Any) -> ProviderError:
    with pytest.raises(ProviderError) as info:
        a.parse_response(json.dumps(body).encode())
    return info.value


def stream_error(a: Any, raw: bytes, *, bytewise: bool = False) -> ProviderError:
    """The error the stream ``raw`` (fed whole, or a byte at a time) ends in."""
    parser = a.stream_parser()
    pieces = [raw[i : i + 1] for i in range(len(raw))] if bytewise else [raw]
    with pytest.raises(ProviderError) as info:
        for piece in pieces:
            parser.feed(piece)
        parser.end()
    return info.value


# --------------------------------------------------------------------------- OpenAI


def sse(*chunks: dict[str, Any], done: bool = True) -> bytes:
    out = b"".join(b"data: " + json.dumps(c).encode() + b"\n\n" for c in chunks)
    return out + (b"data: [DONE]\n\n" if done else b"")


def chunk(finish: str | None = None, usage: Any = None, **delta: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"model": "m", "choices": [{"index": 0, "delta": delta}]}
    out["choices"][0]["finish_reason"] = finish
    out["usage"] = usage
    return out


def usage_chunk(prompt: int, completion: int, **extra: Any) -> dict[str, Any]:
    """OpenAI's own usage chunk (``stream_options.include_usage``): after the finish."""
    usage = {"prompt_tokens": prompt, "completion_tokens": completion, **extra}
    return {"model": "m", "choices": [], "usage": usage}


def test_openai_refusal_and_content_filter_are_billed_their_usage() -> None:
    example = facts("openai")["extra_examples"]["example_refusal"]
    refused = parse_error(adapter("openai"), example)
    assert isinstance(refused, Refused) and not refused.content_filtered
    assert (refused.billed, refused.billed_cost_usd) == ((30, 12), None)
    filtered = parse_error(
        adapter("deepseek"),
        {
            "choices": [{"message": {"content": ""}, "finish_reason": "content_filter"}],
            "usage": {
                "prompt_tokens": 900,
                "completion_tokens": 4,
                "prompt_cache_hit_tokens": 100,
            },
        },
    )
    assert isinstance(filtered, Refused) and filtered.content_filtered
    assert filtered.billed == (900, 4)
    # no usage reported: nothing made up
    del example["usage"]
    assert parse_error(adapter("openai"), example).billed is None


def test_xai_filtered_answer_is_billed_its_reasoning_and_its_own_cost() -> None:
    body = {
        "choices": [{"message": {"content": ""}, "finish_reason": "content_filter"}],
        "usage": {
            "prompt_tokens": 1_000,
            "completion_tokens": 5,
            "completion_tokens_details": {"reasoning_tokens": 40},
            "cost_in_usd_ticks": 3_700_000,
        },
    }
    filtered = parse_error(adapter("xai"), body)
    assert isinstance(filtered, Refused) and filtered.billed == (1_000, 45)
    assert filtered.billed_cost_usd == pytest.approx(3.7e-4)


@pytest.mark.parametrize("bytewise", [False, True])
def test_openai_stream_refusal_waits_for_the_usage_chunk_after_the_finish(
    bytewise: bool,
) -> None:
    a = adapter("openai")
    raw = sse(
        chunk(refusal="I can't "),
        chunk(refusal="help."),
        chunk(finish="stop"),
        usage_chunk(700, 9),
    )
    refused = stream_error(a, raw, bytewise=bytewise)
    assert isinstance(refused, Refused) and refused.message == "I can't help."
    assert refused.billed == (700, 9)
    # the usage chunk came, the connection ended before [DONE]: billed all the same
    raw = sse(chunk(refusal="No."), chunk(finish="stop"), usage_chunk(60, 2), done=False)
    refused = stream_error(a, raw)
    assert isinstance(refused, Refused) and refused.billed == (60, 2)
    # without the usage: ended by [DONE], or by the connection, unbilled (as before)
    for raw in (
        sse(chunk(refusal="No."), chunk(finish="stop")),
        sse(chunk(refusal="No."), chunk(finish="stop"), done=False),
        sse(chunk(refusal="No."), done=False),
    ):
        refused = stream_error(a, raw)
        assert isinstance(refused, Refused) and refused.message == "No."
        assert refused.billed is None


def test_openai_stream_refusal_is_raised_when_its_usage_arrives() -> None:
    parser = adapter("openai").stream_parser()
    assert parser.feed(sse(chunk(refusal="No."), chunk(finish="stop"), done=False)) == []
    assert parser.finished  # the stream's end is waited for as after any finish reason
    with pytest.raises(Refused) as info:
        parser.feed(sse(usage_chunk(50, 2), done=False))
    assert info.value.billed == (50, 2)


def test_openai_stream_content_filter_after_text_is_billed() -> None:
    parser = adapter("openai").stream_parser()
    events: list[StreamEvent] = parser.feed(
        sse(chunk(content="Par"), chunk(finish="content_filter"), done=False)
    )
    assert events == [TextDelta(text="Par")]
    with pytest.raises(Refused) as info:
        parser.feed(sse(usage_chunk(80, 1)))
    assert info.value.content_filtered and info.value.billed == (80, 1)


@pytest.mark.parametrize("name", ["groq", "together", "mistral", "deepseek"])
def test_usage_in_the_finish_chunk_bills_the_filtered_answer_at_once(name: str) -> None:
    usage = {"prompt_tokens": 321, "completion_tokens": 7}
    if name == "groq":
        finish = chunk(finish="content_filter")
        finish["x_groq"] = {"usage": usage}
    else:
        finish = chunk(finish="content_filter", usage=usage)
    parser = adapter(name).stream_parser()
    with pytest.raises(Refused) as info:
        parser.feed(sse(chunk(content=""), finish, done=False))
    assert info.value.content_filtered and info.value.billed == (321, 7)
    # none reported: unbilled
    refused = stream_error(adapter(name), sse(chunk(finish="content_filter")))
    assert isinstance(refused, Refused) and refused.billed is None


def test_xai_stream_filtered_answer_carries_its_ticks() -> None:
    raw = sse(
        chunk(finish="content_filter"),
        usage_chunk(
            10, 2, completion_tokens_details={"reasoning_tokens": 3}, cost_in_usd_ticks=5e6
        ),
    )
    refused = stream_error(adapter("xai"), raw)
    assert refused.billed == (10, 5) and refused.billed_cost_usd == pytest.approx(5e-4)


# --------------------------------------------------------------------------- Anthropic


def event(kind: str, **data: Any) -> bytes:
    return f"event: {kind}\ndata: {json.dumps({'type': kind, **data})}\n\n".encode()


def test_anthropic_refusal_is_billed_its_usage() -> None:
    a = adapter("anthropic", "anthropic")
    example = facts("anthropic")["extra_examples"]["example_refusal"]
    refused = parse_error(a, example)
    assert isinstance(refused, Refused) and refused.billed == (40, 3)
    # all the input the model read: cache writes and reads too
    example["usage"] = {
        "input_tokens": 5,
        "cache_creation_input_tokens": 7,
        "cache_read_input_tokens": 11,
        "output_tokens": 2,
    }
    assert parse_error(a, example).billed == (23, 2)
    del example["usage"]
    assert parse_error(a, example).billed is None


@pytest.mark.parametrize("bytewise", [False, True])
def test_anthropic_stream_refusal_is_billed_message_start_and_delta_usage(
    bytewise: bool,
) -> None:
    a = adapter("anthropic", "anthropic")
    refusal = event(
        "message_delta",
        delta={"stop_reason": "refusal", "stop_details": {"category": "bio"}},
        usage={"output_tokens": 4},
    )
    raw = (
        event("message_start", message={"model": "m", "usage": {"input_tokens": 3000}})
        + event("content_block_delta", index=0, delta={"type": "text_delta", "text": "Sure"})
        + refusal
    )
    refused = stream_error(a, raw, bytewise=bytewise)
    assert isinstance(refused, Refused) and "bio" in refused.message
    assert refused.billed == (3000, 4)
    # no usage anywhere: unbilled
    bare = event(
        "message_delta", delta={"stop_reason": "refusal", "stop_details": {"category": "bio"}}
    )
    refused = stream_error(a, event("message_start", message={"model": "m"}) + bare)
    assert isinstance(refused, Refused) and refused.billed is None


# --------------------------------------------------------------------------- Gemini


def data(payload: Any) -> bytes:
    return b"data: " + json.dumps(payload).encode() + b"\r\n\r\n"


def test_gemini_blocked_answer_and_prompt_are_billed_their_usage() -> None:
    a = adapter("gemini", "gemini")
    examples = facts("gemini")["extra_examples"]
    answer = examples["example_refusal_candidate"]
    refused = parse_error(a, answer)
    assert isinstance(refused, Refused) and refused.content_filtered
    assert refused.billed == (25, 0)
    prompt = examples["example_refusal"]
    rejected = parse_error(a, prompt)
    assert isinstance(rejected, ContentRejected) and rejected.billed == (25, 0)
    for body in (answer, prompt):
        del body["usageMetadata"]
        assert parse_error(a, body).billed is None


@pytest.mark.parametrize("bytewise", [False, True])
def test_gemini_stream_safety_stop_is_billed_its_usage(bytewise: bool) -> None:
    a = adapter("gemini", "gemini")
    text = {"candidates": [{"content": {"parts": [{"text": "Par"}]}}]}
    stop = {"candidates": [{"finishReason": "SAFETY", "finishMessage": "unsafe"}]}
    said = {"promptTokenCount": 60, "candidatesTokenCount": 2, "thoughtsTokenCount": 30}
    refused = stream_error(a, data(text) + data({**stop, "usageMetadata": said}), bytewise=bytewise)
    assert isinstance(refused, Refused) and refused.billed == (60, 32)
    # the usage of an earlier chunk, when the last one says none
    early = {**text, "usageMetadata": {"promptTokenCount": 60}}
    assert stream_error(a, data(early) + data(stop)).billed == (60, 0)
    # a prompt blocked in a stream
    blocked = {
        "promptFeedback": {"blockReason": "SAFETY"},
        "usageMetadata": {"promptTokenCount": 9},
    }
    rejected = stream_error(a, data(blocked))
    assert isinstance(rejected, ContentRejected) and rejected.billed == (9, 0)
    # none reported: unbilled
    assert stream_error(a, data(text) + data(stop)).billed is None
