"""Anthropic Messages against the facts in shared/providers/providers.json."""

from __future__ import annotations

import json
from typing import Any

import pytest

from switchman._call import Message
from switchman._errors import (
    AuthError,
    BadReply,
    ContextExceeded,
    QuotaExhausted,
    RateLimited,
    Refused,
    StreamBroken,
    UpstreamError,
)
from switchman._result import Usage
from switchman.adapters import (
    AnthropicAdapter,
    Malformed,
    ProviderRequest,
    StreamEnd,
    StreamEvent,
    TextDelta,
    make_adapter,
)
from switchman.catalog import ProviderSpec
from tests.adapters._facts import provider_facts

KEY = "sk-ant-api03-abcdefghijklmnop0123456789"
PARIS = "Paris is the capital of France."


def facts() -> dict[str, Any]:
    return provider_facts("anthropic")


def adapter() -> AnthropicAdapter:
    a = make_adapter(ProviderSpec(name="anthropic", kind="anthropic"), KEY)
    assert isinstance(a, AnthropicAdapter)
    return a


def request(**kw: Any) -> ProviderRequest:
    base: dict[str, Any] = {
        "model_id": "claude-sonnet-5",
        "messages": (
            Message(role="system", content="Answer briefly."),
            Message(role="user", content="What is the capital of France?"),
        ),
    }
    return ProviderRequest(**{**base, **kw})


def run_stream(raw: bytes, *, bytewise: bool = False) -> list[StreamEvent]:
    parser = adapter().stream_parser()
    events: list[StreamEvent] = []
    for piece in [raw[i : i + 1] for i in range(len(raw))] if bytewise else [raw]:
        events += parser.feed(piece)
    return events + parser.end()


def text_of(events: list[StreamEvent]) -> str:
    return "".join(e.text for e in events if isinstance(e, TextDelta))


def event(kind: str, **data: Any) -> bytes:
    return f"event: {kind}\ndata: {json.dumps({'type': kind, **data})}\n\n".encode()


def test_request_shape_matches_the_example() -> None:
    f = facts()
    built = adapter().build_request(
        request(
            temperature=0.2,
            top_p=0.9,
            max_tokens=1024,
            stop=("\n\nHuman:",),
            seed=7,
            stream=False,
        )
    )
    assert built.url == f["base_url"] + f["chat_path"]
    assert built.headers["x-api-key"] == KEY
    assert built.headers["anthropic-version"] == "2023-06-01"
    example = f["example_request"]
    assert set(built.json) <= set(example)
    assert built.json == {
        "model": "claude-sonnet-5",
        "max_tokens": 1024,
        "system": example["system"],
        "messages": example["messages"],
        "temperature": 0.2,
        "stop_sequences": ["\n\nHuman:"],
        "stream": False,
    }
    # the example shows temperature and top_p together; Claude's models since Sonnet 4.5
    # answer that with a 400 ("cannot both be specified"): the temperature goes alone
    assert (example["temperature"], example["top_p"]) == (0.2, 0.9)


def test_max_tokens_is_always_sent_and_no_seed() -> None:
    body = adapter().build_request(request(seed=3)).json
    assert body["max_tokens"] > 0 and "seed" not in body and body["stream"] is True


@pytest.mark.parametrize(
    ("temperature", "top_p", "sent"),
    [
        (0.3, 0.5, {"temperature": 0.3}),  # one or the other: the temperature
        (1.0, None, {"temperature": 1.0}),
        (0.0, 1.0, {"temperature": 0.0}),
        (1.7, 0.5, {"temperature": 1.0}),  # Anthropic's range ends at 1
        (2.0, None, {"temperature": 1.0}),
        (None, 0.5, {"top_p": 0.5}),
        (None, None, {}),
    ],
)
def test_temperature_and_top_p_mapping(
    temperature: float | None, top_p: float | None, sent: dict[str, float]
) -> None:
    body = adapter().build_request(request(temperature=temperature, top_p=top_p)).json
    assert {k: body[k] for k in ("temperature", "top_p") if k in body} == sent


def test_trailing_assistant_message_is_a_prefill_and_turns_alternate() -> None:
    messages = (
        Message(role="system", content="Be terse."),
        Message(role="user", content="Count to five."),
        Message(role="user", content="Use digits."),
        Message(role="assistant", content="1, 2, "),
    )
    body = adapter().build_request(request(messages=messages)).json
    assert body["system"] == "Be terse."
    assert body["messages"] == [
        {"role": "user", "content": "Count to five.\n\nUse digits."},
        {"role": "assistant", "content": "1, 2,"},
    ]


def test_base_url_is_the_host() -> None:
    spec = ProviderSpec(name="anthropic", kind="anthropic", base_url="http://127.0.0.1:5/")
    assert make_adapter(spec, KEY).build_request(request()).url == "http://127.0.0.1:5/v1/messages"


def test_parse_example_success() -> None:
    body = facts()["example_success_response"]["body"]
    completion = adapter().parse_response(json.dumps(body).encode())
    assert completion.text == PARIS
    assert completion.finish_reason == "end_turn"
    assert completion.usage == Usage(input_tokens=18, output_tokens=10)
    assert completion.model_id == "claude-sonnet-5"


def test_input_tokens_include_cache_reads_and_writes() -> None:
    body = {
        "type": "message",
        "model": "m",
        "content": [{"type": "thinking", "thinking": "..."}, {"type": "text", "text": "ok"}],
        "stop_reason": "end_turn",
        "usage": {
            "input_tokens": 5,
            "cache_creation_input_tokens": 7,
            "cache_read_input_tokens": 11,
            "output_tokens": 2,
        },
    }
    completion = adapter().parse_response(json.dumps(body).encode())
    assert completion.text == "ok"
    # (of them, the cache reads were read from cache)
    assert completion.usage == Usage(input_tokens=23, output_tokens=2, cached_input_tokens=11)


def test_refusal_keeps_the_category() -> None:
    body = facts()["extra_examples"]["example_refusal"]
    with pytest.raises(Refused) as info:
        adapter().parse_response(json.dumps(body).encode())
    assert "cyber" in info.value.message and not info.value.content_filtered
    assert (info.value.provider, info.value.status) == ("anthropic", 200)


def test_malformed_body_is_bad_reply() -> None:
    with pytest.raises(BadReply):
        adapter().parse_response(b"<html>")


@pytest.mark.parametrize("bytewise", [False, True])
def test_stream_transcript(bytewise: bool) -> None:
    raw = facts()["example_stream_transcript"]["raw"].encode()
    events = run_stream(raw, bytewise=bytewise)
    assert text_of(events) == PARIS
    assert [e for e in events if isinstance(e, StreamEnd)] == [
        StreamEnd(
            finish_reason="end_turn",
            usage=Usage(input_tokens=18, output_tokens=10),
            model_id="claude-sonnet-5",
        )
    ]
    assert not any(isinstance(e, Malformed) for e in events)


def test_stream_usage_keeps_cache_counts_when_message_delta_restates_input() -> None:
    raw = (
        event(
            "message_start",
            message={
                "model": "m",
                "usage": {
                    "input_tokens": 5,
                    "cache_creation_input_tokens": 7,
                    "cache_read_input_tokens": 11,
                    "output_tokens": 1,
                },
            },
        )
        + event("content_block_delta", index=0, delta={"type": "thinking_delta", "thinking": "h"})
        + event("content_block_delta", index=0, delta={"type": "text_delta", "text": "ok"})
        + event(
            "message_delta",
            delta={"stop_reason": "end_turn"},
            usage={"input_tokens": 5, "output_tokens": 40},
        )
        + event("message_stop")
    )
    events = run_stream(raw)
    assert text_of(events) == "ok"
    # output_tokens includes the thinking tokens (billed as output): taken as it is
    assert events[-1] == StreamEnd(
        finish_reason="end_turn",
        usage=Usage(input_tokens=23, output_tokens=40, cached_input_tokens=11),
        model_id="m",
    )


def test_stream_error_event_after_200_before_text() -> None:
    raw = facts()["extra_examples"]["example_stream_error"].encode()
    with pytest.raises(UpstreamError) as info:
        run_stream(raw)
    assert info.value.status == 529 and "Overloaded" in info.value.message


def test_stream_error_event_after_text_is_broken() -> None:
    raw = (
        event("message_start", message={"model": "m", "usage": {"input_tokens": 3}})
        + event("content_block_delta", index=0, delta={"type": "text_delta", "text": "Par"})
        + event("error", error={"type": "overloaded_error", "message": "Overloaded"})
    )
    with pytest.raises(StreamBroken) as info:
        run_stream(raw)
    assert "Overloaded" in info.value.message


def test_stream_refusal_in_message_delta() -> None:
    raw = (
        event("message_start", message={"model": "m", "usage": {"input_tokens": 3}})
        + event("content_block_delta", index=0, delta={"type": "text_delta", "text": "Sure"})
        + event(
            "message_delta",
            delta={"stop_reason": "refusal", "stop_details": {"category": "bio"}},
            usage={"output_tokens": 4},
        )
    )
    with pytest.raises(Refused) as info:
        run_stream(raw)
    assert "bio" in info.value.message


def test_stream_without_message_stop_after_stop_reason_ends() -> None:
    raw = facts()["example_stream_transcript"]["raw"].encode()
    truncated = raw[: raw.index(b"event: message_stop")]
    events = run_stream(truncated)
    assert text_of(events) == PARIS and isinstance(events[-1], StreamEnd)


def test_stream_cut_mid_answer_is_broken() -> None:
    raw = facts()["example_stream_transcript"]["raw"].encode()
    with pytest.raises(StreamBroken) as info:
        run_stream(raw[: raw.index(b"event: content_block_stop")])
    assert "after output began" in info.value.message


def test_stream_malformed_event_is_skipped() -> None:
    raw = facts()["example_stream_transcript"]["raw"].encode()
    cut = raw.index(b"event: content_block_stop")
    events = run_stream(raw[:cut] + b"event: content_block_delta\ndata: {oops\n\n" + raw[cut:])
    assert text_of(events) == PARIS
    assert sum(isinstance(e, Malformed) for e in events) == 1
    assert isinstance(events[-1], StreamEnd)


def test_example_errors() -> None:
    f = facts()
    a = adapter()
    limited = a.parse_error(
        429, f["example_error_429"]["headers"], json.dumps(f["example_error_429"]["body"]).encode()
    )
    assert isinstance(limited, RateLimited) and limited.retry_after == 12.0
    auth = a.parse_error(401, {}, json.dumps(f["example_error_401"]["body"]).encode())
    assert isinstance(auth, AuthError) and "invalid x-api-key" in auth.message
    extra = f["extra_examples"]
    overloaded = a.parse_error(529, {}, json.dumps(extra["example_error_529"]).encode())
    assert isinstance(overloaded, UpstreamError) and overloaded.status == 529
    assert (overloaded.retry_after, overloaded.should_retry) == (None, None)
    context = a.parse_error(400, {}, json.dumps(extra["example_error_context"]).encode())
    assert isinstance(context, ContextExceeded) and "prompt is too long" in context.message
    assert all(e.provider == "anthropic" for e in (limited, auth, overloaded, context))


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (402, {"type": "billing_error", "message": "Your credit balance is too low."}),
        (
            429,
            {
                "type": "rate_limit_error",
                "message": "Monthly spend limit reached.",
                "details": {"error_code": "enforced_spend_limit_reached"},
            },
        ),
    ],
    ids=["402-billing", "429-spend-limit"],
)
def test_billing_errors_are_quota_exhausted_not_rate_limits(
    status: int, error: dict[str, object]
) -> None:
    body = json.dumps({"type": "error", "error": error}).encode()
    exc = adapter().parse_error(status, {"retry-after": "30"}, body)
    assert isinstance(exc, QuotaExhausted) and not isinstance(exc, RateLimited)
    assert exc.status == status and not exc.retry_same


@pytest.mark.parametrize(
    ("headers", "retry_after", "should_retry"),
    [
        ({"retry-after": "20", "x-should-retry": "true"}, 20.0, True),
        ({"retry-after-ms": "2500"}, 2.5, None),
        ({"x-should-retry": "false"}, None, False),
    ],
)
def test_529_carries_retry_after_and_x_should_retry(
    headers: dict[str, str], retry_after: float | None, should_retry: bool | None
) -> None:
    body = json.dumps(facts()["extra_examples"]["example_error_529"]).encode()
    error = adapter().parse_error(529, headers, body)
    assert isinstance(error, UpstreamError) and "Overloaded" in error.message
    assert (error.retry_after, error.should_retry) == (retry_after, should_retry)


def test_credit_balance_too_low_on_400_is_quota_exhausted() -> None:
    body = json.dumps(
        {
            "type": "error",
            "error": {
                "type": "invalid_request_error",
                "message": "Your credit balance is too low to access the Anthropic API.",
            },
        }
    ).encode()
    error = adapter().parse_error(400, {}, body)
    assert isinstance(error, QuotaExhausted) and "credit balance" in error.message


def test_key_never_in_error_or_repr() -> None:
    body = json.dumps({"type": "error", "error": {"type": "x", "message": f"bad key {KEY}"}})
    error = adapter().parse_error(401, {}, body.encode())
    assert KEY not in error.message and KEY not in repr(adapter())
