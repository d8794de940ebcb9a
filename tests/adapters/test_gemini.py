"""Gemini generateContent against the facts in shared/providers/providers.json."""

from __future__ import annotations

import json
from typing import Any

import pytest

from switchman._call import Message
from switchman._errors import (
    AuthError,
    BadReply,
    ContentRejected,
    ContextExceeded,
    RateLimited,
    Refused,
    StreamBroken,
    UpstreamError,
)
from switchman._result import Usage
from switchman.adapters import (
    GeminiAdapter,
    Malformed,
    ProviderRequest,
    StreamEnd,
    StreamEvent,
    TextDelta,
    make_adapter,
)
from switchman.catalog import ProviderSpec
from tests.adapters._facts import provider_facts

KEY = "AIzaSyTESTKEY0123456789abcdefghijklmn"
PARIS = "Paris is the capital of France."


def facts() -> dict[str, Any]:
    return provider_facts("gemini")


def adapter() -> GeminiAdapter:
    a = make_adapter(ProviderSpec(name="gemini", kind="gemini"), KEY)
    assert isinstance(a, GeminiAdapter)
    return a


def request(**kw: Any) -> ProviderRequest:
    base: dict[str, Any] = {
        "model_id": "gemini-3.8-flash",
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


def data(payload: Any) -> bytes:
    return b"data: " + json.dumps(payload).encode() + b"\r\n\r\n"


def test_request_urls_headers_and_body() -> None:
    f = facts()
    a = adapter()
    built = a.build_request(
        request(temperature=0.2, top_p=0.95, max_tokens=256, seed=7, stop=("END",), stream=False)
    )
    assert built.url == f["base_url"] + f["chat_path"].format(model="gemini-3.8-flash")
    assert built.headers["x-goog-api-key"] == KEY
    example = f["example_request"]
    assert built.json == {
        "contents": example["contents"],
        "systemInstruction": example["systemInstruction"],
        "generationConfig": {
            "temperature": 0.2,
            "topP": 0.95,
            "maxOutputTokens": 256,
            "seed": 7,
            "stopSequences": ["END"],
        },
    }
    assert set(built.json["generationConfig"]) <= set(example["generationConfig"])
    streaming = a.build_request(request(model_id="models/gemini-3.8-flash"))
    assert streaming.url == f["base_url"] + f["stream_path"].format(model="gemini-3.8-flash")
    assert "model" not in streaming.json and "generationConfig" not in streaming.json


def test_roles_are_user_and_model_and_same_role_turns_merge() -> None:
    messages = (
        Message(role="user", content="a"),
        Message(role="user", content="b"),
        Message(role="assistant", content="c"),
    )
    assert adapter().build_request(request(messages=messages)).json["contents"] == [
        {"role": "user", "parts": [{"text": "a"}, {"text": "b"}]},
        {"role": "model", "parts": [{"text": "c"}]},
    ]


def test_parse_example_success() -> None:
    completion = adapter().parse_response(
        json.dumps(facts()["example_success_response"]["body"]).encode()
    )
    assert completion.text == PARIS
    assert completion.finish_reason == "STOP"
    assert completion.usage == Usage(input_tokens=12, output_tokens=8)
    assert completion.model_id == "gemini-3.8-flash"


def test_thought_parts_are_skipped_and_thought_tokens_count_as_output() -> None:
    body = {
        "candidates": [
            {
                "content": {"parts": [{"text": "thinking...", "thought": True}, {"text": "Paris"}]},
                "finishReason": "STOP",
            }
        ],
        "usageMetadata": {
            "promptTokenCount": 3,
            "candidatesTokenCount": 1,
            "thoughtsTokenCount": 9,
        },
    }
    completion = adapter().parse_response(json.dumps(body).encode())
    assert completion.text == "Paris" and completion.usage == Usage(
        input_tokens=3, output_tokens=10, reasoning_tokens=9
    )


def test_blocked_prompt_is_a_content_rejection_keeping_the_reason() -> None:
    body = facts()["extra_examples"]["example_refusal"]
    with pytest.raises(ContentRejected) as info:
        adapter().parse_response(json.dumps(body).encode())
    assert "SAFETY" in info.value.message
    assert (info.value.provider, info.value.status) == ("gemini", 200)


@pytest.mark.parametrize(
    "reason", ["SAFETY", "RECITATION", "PROHIBITED_CONTENT", "BLOCKLIST", "SPII"]
)
def test_blocked_answer_is_filtered_refusal(reason: str) -> None:
    body = facts()["extra_examples"]["example_refusal_candidate"]
    body["candidates"][0]["finishReason"] = reason
    with pytest.raises(Refused) as info:
        adapter().parse_response(json.dumps(body).encode())
    assert info.value.content_filtered and reason in info.value.message


def test_no_candidates_and_no_block_is_bad_reply() -> None:
    with pytest.raises(BadReply):
        adapter().parse_response(b'{"usageMetadata": {}}')


@pytest.mark.parametrize("bytewise", [False, True])
def test_stream_transcript_crlf_without_done(bytewise: bool) -> None:
    raw = facts()["example_stream_transcript"]["raw"].encode()
    assert b"\r\n\r\n" in raw and b"[DONE]" not in raw
    events = run_stream(raw, bytewise=bytewise)
    assert text_of(events) == PARIS
    assert [e for e in events if isinstance(e, StreamEnd)] == [
        StreamEnd(
            finish_reason="STOP",
            usage=Usage(input_tokens=12, output_tokens=8),
            model_id="gemini-3.8-flash",
        )
    ]


def test_stream_ends_as_soon_as_the_finish_chunk_arrives() -> None:
    raw = facts()["example_stream_transcript"]["raw"].encode()
    parser = adapter().stream_parser()
    events = parser.feed(raw)
    assert isinstance(events[-1], StreamEnd)
    assert parser.end() == []


def test_stream_cut_before_finish_is_broken() -> None:
    raw = facts()["example_stream_transcript"]["raw"].encode()
    with pytest.raises(StreamBroken):
        run_stream(raw[: raw.index(b"\r\n\r\n") + 4])


def test_stream_malformed_chunk_is_skipped() -> None:
    raw = facts()["example_stream_transcript"]["raw"].encode()
    first_end = raw.index(b"\r\n\r\n") + 4
    events = run_stream(raw[:first_end] + b"data: {half\r\n\r\n" + raw[first_end:])
    assert text_of(events) == PARIS and sum(isinstance(e, Malformed) for e in events) == 1


def test_stream_raw_json_error_mid_stream() -> None:
    raw = data({"candidates": [{"content": {"parts": [{"text": "Par"}]}}]})
    raw += b'{\r\n  "error": {\r\n    "code": 503,\r\n    "message": "overloaded",\r\n'
    raw += b'    "status": "UNAVAILABLE"\r\n  }\r\n}\r\n'
    with pytest.raises(StreamBroken) as info:
        run_stream(raw)
    assert "overloaded" in info.value.message
    with pytest.raises(UpstreamError):
        run_stream(data({"error": {"code": 503, "message": "busy", "status": "UNAVAILABLE"}}))


def test_stream_safety_finish_is_refused() -> None:
    raw = data({"candidates": [{"content": {"parts": [{"text": "Par"}]}}]})
    raw += data({"candidates": [{"finishReason": "SAFETY", "finishMessage": "unsafe"}]})
    with pytest.raises(Refused) as info:
        run_stream(raw)
    assert info.value.content_filtered and "unsafe" in info.value.message


def test_errors() -> None:
    f = facts()
    a = adapter()
    limited = a.parse_error(429, {}, json.dumps(f["example_error_429"]["body"]).encode())
    assert isinstance(limited, RateLimited) and limited.retry_after == 47.0
    bad_key = f["example_error_401"]
    assert bad_key["http_status"] == 400
    auth = a.parse_error(400, {}, json.dumps(bad_key["body"]).encode())
    assert isinstance(auth, AuthError) and auth.status == 400
    overloaded = a.parse_error(
        503, {}, json.dumps(f["extra_examples"]["example_error_503"]).encode()
    )
    assert isinstance(overloaded, UpstreamError) and overloaded.status == 503
    context = {
        "error": {
            "code": 400,
            "message": "The input token count (1200000) exceeds the maximum number of tokens "
            "allowed (1048576).",
            "status": "INVALID_ARGUMENT",
        }
    }
    assert isinstance(a.parse_error(400, {}, json.dumps(context).encode()), ContextExceeded)
    compat = a.parse_error(
        400, {}, json.dumps(f["extra_examples"]["example_error_openai_compat"]).encode()
    )
    assert compat.provider == "gemini" and "web_search_options" in compat.message


def test_retry_delay_in_the_body_is_the_wait_without_a_header() -> None:
    example = facts()["example_error_429"]
    assert "retry-after" not in {k.lower() for k in example["headers"]}
    limited = adapter().parse_error(429, example["headers"], json.dumps(example["body"]).encode())
    assert isinstance(limited, RateLimited) and limited.retry_after == 47.0
    assert "You exceeded your current quota" in limited.message  # a rate limit, not billing
    # a retry-after header, when one is sent, is the provider's latest word
    header = adapter().parse_error(429, {"Retry-After": "3"}, json.dumps(example["body"]).encode())
    assert isinstance(header, RateLimited) and header.retry_after == 3.0
    overloaded = {
        "error": {
            "code": 503,
            "message": "The model is overloaded. Please try again later.",
            "status": "UNAVAILABLE",
            "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "8s"}],
        }
    }
    busy = adapter().parse_error(503, {}, json.dumps(overloaded).encode())
    assert isinstance(busy, UpstreamError) and busy.retry_after == 8.0
    assert busy.message.startswith("The model is overloaded.")


def test_key_never_in_error_text() -> None:
    body = {"error": {"code": 400, "message": f"API key {KEY} not valid", "status": "X"}}
    error = adapter().parse_error(400, {}, json.dumps(body).encode())
    assert isinstance(error, AuthError) and KEY not in error.message
