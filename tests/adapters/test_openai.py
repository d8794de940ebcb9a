"""OpenAI-compatible providers against the facts in shared/providers/providers.json."""

from __future__ import annotations

import json
from typing import Any

import pytest

from switchman._call import Message
from switchman._errors import (
    AuthError,
    BadReply,
    BadRequest,
    ContentRejected,
    ContextExceeded,
    ModelNotFound,
    ProviderError,
    QuotaExhausted,
    RateLimited,
    Refused,
    StreamBroken,
    UpstreamError,
)
from switchman._result import Usage, finish_is_normal, normal_finish
from switchman.adapters import (
    Adapter,
    Malformed,
    OpenAIChatAdapter,
    OpenAIResponsesAdapter,
    ProviderRequest,
    StreamEnd,
    StreamEvent,
    TextDelta,
    make_adapter,
)
from switchman.catalog import ProviderSpec
from tests.adapters._facts import provider_facts as facts

KEY = "sk-test-0123456789abcdefghijKLMNOP"
CHAT = ["openai", "xai", "mistral", "groq", "together", "deepseek"]
PARIS = "Paris is the capital of France."


def adapter(name: str) -> Any:
    return make_adapter(ProviderSpec(name=name, kind="openai"), KEY)


def request(**kw: Any) -> ProviderRequest:
    base: dict[str, Any] = {
        "model_id": "m-1",
        "messages": (
            Message(role="system", content="Answer briefly."),
            Message(role="user", content="What is the capital of France?"),
        ),
        "temperature": 0.2,
        "top_p": 0.9,
        "max_tokens": 256,
        "seed": 7,
        "stop": ("END",),
    }
    return ProviderRequest(**{**base, **kw})


def run_stream(a: Adapter, raw: bytes, *, bytewise: bool = False) -> list[StreamEvent]:
    parser = a.stream_parser()
    events: list[StreamEvent] = []
    pieces = [raw[i : i + 1] for i in range(len(raw))] if bytewise else [raw]
    for piece in pieces:
        events += parser.feed(piece)
    return events + parser.end()


def text_of(events: list[StreamEvent]) -> str:
    return "".join(e.text for e in events if isinstance(e, TextDelta))


def body_bytes(payload: Any) -> bytes:
    return json.dumps(payload).encode()


# --------------------------------------------------------------------------- requests


@pytest.mark.parametrize("name", CHAT)
def test_request_url_auth_and_field_names_follow_the_provider(name: str) -> None:
    f = facts(name)
    built = adapter(name).build_request(request(stream=False))
    assert built.method == "POST"
    assert built.url == f["base_url"] + f["chat_path"]
    assert built.headers[f["auth_header"]] == f["auth_format"].format(key=KEY)
    example = f["example_request"]
    # xAI's example leaves out ``stop`` (grok-4 models reject it): it is still sent,
    # so a caller's stop sequence is never silently ignored.
    allowed = set(example) | ({"stop"} if name == "xai" else set())
    assert set(built.json) <= allowed, set(built.json) - allowed
    assert built.json["messages"][0]["role"] == example["messages"][0]["role"]
    assert built.json["messages"][1] == {
        "role": "user",
        "content": "What is the capital of France?",
    }
    assert built.json["stream"] is False


@pytest.mark.parametrize(
    ("name", "tokens", "seed", "usage_option"),
    [
        ("openai", "max_completion_tokens", "seed", True),
        ("xai", "max_tokens", "seed", True),
        ("mistral", "max_tokens", "random_seed", False),
        ("groq", "max_completion_tokens", "seed", False),
        ("together", "max_tokens", "seed", False),
        ("deepseek", "max_tokens", None, True),
    ],
)
def test_request_quirks(name: str, tokens: str, seed: str | None, usage_option: bool) -> None:
    body = adapter(name).build_request(request()).json
    assert body[tokens] == 256
    assert {"max_tokens", "max_completion_tokens"} - {tokens} & set(body) == set()
    if seed is None:
        assert "seed" not in body and "random_seed" not in body
    else:
        assert body[seed] == 7
    assert body["stop"] == ["END"]
    assert (body["temperature"], body["top_p"], body["stream"]) == (0.2, 0.9, True)
    assert ("stream_options" in body) is usage_option
    if usage_option:
        assert body["stream_options"] == {"include_usage": True}
    # only DeepSeek is told not to think (its V4 models think unless told otherwise)
    assert ("thinking" in body) is (name == "deepseek")


def test_deepseek_turns_thinking_off_so_sampling_and_continuations_work() -> None:
    example = facts("deepseek")["example_request"]
    assert example["thinking"] == {"type": "disabled"}
    # a continuation: the text already streamed as an assistant turn, then a user nudge;
    # in thinking mode DeepSeek wants reasoning_content back on that assistant turn
    continuation = (
        Message(role="user", content="Count to five."),
        Message(role="assistant", content="1, 2,"),
        Message(role="user", content="Continue exactly where you stopped."),
    )
    body = adapter("deepseek").build_request(request(messages=continuation)).json
    assert body["thinking"] == example["thinking"]
    assert (body["temperature"], body["top_p"]) == (0.2, 0.9)
    assert [m["role"] for m in body["messages"]] == ["user", "assistant", "user"]


@pytest.mark.parametrize(
    ("base_url", "prefill_url"),
    [
        ("https://api.deepseek.com", "https://api.deepseek.com/beta/chat/completions"),
        ("https://api.deepseek.com/", "https://api.deepseek.com/beta/chat/completions"),
        ("https://api.deepseek.com/v1", "https://api.deepseek.com/beta/chat/completions"),
        # the beta's own base URL, as DeepSeek's guide to prefix completion gives it
        ("https://api.deepseek.com/beta", "https://api.deepseek.com/beta/chat/completions"),
        (
            "https://llm.example.com/deepseek/v1",
            "https://llm.example.com/deepseek/beta/chat/completions",
        ),
    ],
)
def test_a_deepseek_prefill_goes_to_the_beta_whatever_the_base_url(
    base_url: str, prefill_url: str
) -> None:
    spec = ProviderSpec(name="deepseek", kind="openai", base_url=base_url)
    prefilled = (Message(role="user", content="Hi"), Message(role="assistant", content="Hel"))
    sent = make_adapter(spec, KEY).build_request(request(messages=prefilled))
    assert sent.url == prefill_url
    assert sent.json["messages"][-1] == {"role": "assistant", "content": "Hel", "prefix": True}
    plain = make_adapter(spec, KEY).build_request(request())
    assert plain.url == f"{base_url.rstrip('/')}/chat/completions"


def test_request_leaves_out_unset_parameters() -> None:
    body = (
        adapter("openai")
        .build_request(
            ProviderRequest(model_id="m", messages=(Message(role="user", content="hi"),))
        )
        .json
    )
    assert body == {
        "model": "m",
        "messages": [{"role": "user", "content": "hi"}],
        "stream": True,
        "stream_options": {"include_usage": True},
    }


def test_mistral_marks_a_trailing_assistant_message_as_prefix() -> None:
    prefill = (Message(role="user", content="Count"), Message(role="assistant", content="1, 2"))
    body = adapter("mistral").build_request(request(messages=prefill)).json
    assert body["messages"][-1] == {"role": "assistant", "content": "1, 2", "prefix": True}
    other = adapter("openai").build_request(request(messages=prefill)).json
    assert other["messages"][-1] == {"role": "assistant", "content": "1, 2"}


def test_base_url_and_headers_from_the_provider_spec() -> None:
    spec = ProviderSpec(
        name="openai",
        kind="openai",
        base_url="http://127.0.0.1:9/v1/",
        headers={"OpenAI-Project": "proj_1"},
    )
    built = make_adapter(spec, None).build_request(request())
    assert built.url == "http://127.0.0.1:9/v1/chat/completions"
    assert built.headers["OpenAI-Project"] == "proj_1"
    assert "Authorization" not in built.headers


def test_key_is_not_in_the_adapter_repr() -> None:
    assert KEY not in repr(adapter("openai"))


# --------------------------------------------------------------------------- responses

#: output tokens as billed: xAI's completion_tokens (8) leaves out its 98 reasoning tokens;
#: OpenAI's, Groq's and DeepSeek's completion_tokens already include theirs
EXPECTED_USAGE = {
    "openai": Usage(input_tokens=21, output_tokens=8),
    "xai": Usage(input_tokens=21, output_tokens=106, reasoning_tokens=98),
    "mistral": Usage(input_tokens=16, output_tokens=9),
    "groq": Usage(input_tokens=84, output_tokens=25),
    "together": Usage(input_tokens=84, output_tokens=25),
    "deepseek": Usage(input_tokens=16, output_tokens=22, reasoning_tokens=13),
}

EXPECTED_MODEL = {
    "openai": "gpt-5.4-mini-2026-03-17",
    "xai": "grok-4.3",
    "mistral": "mistral-small-latest",
    "groq": "openai/gpt-oss-120b",
    "together": "openai/gpt-oss-120b",
    "deepseek": "deepseek-flash",
}


@pytest.mark.parametrize("name", CHAT)
def test_parse_example_success(name: str) -> None:
    example = facts(name)["example_success_response"]["body"]
    completion = adapter(name).parse_response(body_bytes(example))
    assert completion.text == PARIS
    assert completion.finish_reason == "stop"
    assert completion.model_id == example["model"]
    assert completion.usage == EXPECTED_SUCCESS_USAGE[name]


EXPECTED_SUCCESS_USAGE = {
    "openai": Usage(input_tokens=21, output_tokens=8),
    # total_tokens 127 = 21 prompt + 8 completion + 98 reasoning, all 106 billed as output
    "xai": Usage(input_tokens=21, output_tokens=106, reasoning_tokens=98),
    "mistral": Usage(input_tokens=16, output_tokens=9),
    # reasoning_tokens (14, 13) are inside completion_tokens: not counted twice
    "groq": Usage(input_tokens=84, output_tokens=25, reasoning_tokens=14),
    "together": Usage(input_tokens=84, output_tokens=25),
    "deepseek": Usage(input_tokens=16, output_tokens=22, reasoning_tokens=13),
}


def _usage_body(usage: dict[str, Any]) -> bytes:
    choice = {"message": {"content": "ok"}, "finish_reason": "stop"}
    return body_bytes({"model": "m", "choices": [choice], "usage": usage})


def test_openai_reasoning_tokens_are_inside_completion_tokens() -> None:
    usage = {
        "prompt_tokens": 10,
        "completion_tokens": 300,
        "total_tokens": 310,
        "completion_tokens_details": {"reasoning_tokens": 256},
    }
    assert adapter("openai").parse_response(_usage_body(usage)).usage == Usage(
        input_tokens=10, output_tokens=300, reasoning_tokens=256
    )


def test_xai_reasoning_tokens_are_billed_as_output() -> None:
    details = {
        "prompt_tokens": 21,
        "completion_tokens": 8,
        "total_tokens": 127,
        "completion_tokens_details": {"reasoning_tokens": 98},
    }
    assert adapter("xai").parse_response(_usage_body(details)).usage == Usage(
        input_tokens=21, output_tokens=106, reasoning_tokens=98
    )
    # without the details, total = prompt + completion + reasoning still gives them
    bare = {"prompt_tokens": 21, "completion_tokens": 8, "total_tokens": 127000}
    assert adapter("xai").parse_response(_usage_body(bare)).usage == Usage(
        input_tokens=21, output_tokens=126979, reasoning_tokens=126971
    )
    plain = {"prompt_tokens": 21, "completion_tokens": 8}
    assert adapter("xai").parse_response(_usage_body(plain)).usage == Usage(
        input_tokens=21, output_tokens=8
    )


def test_xai_streamed_usage_counts_reasoning_too() -> None:
    usage = {
        "prompt_tokens": 5,
        "completion_tokens": 8,
        "total_tokens": 127000,
        "completion_tokens_details": {"reasoning_tokens": 126987},
    }
    raw = _sse(
        _chunk("Paris"), _chunk(finish="stop"), {"model": "m", "choices": [], "usage": usage}
    )
    end = run_stream(adapter("xai"), raw)[-1]
    assert isinstance(end, StreamEnd)
    assert end.usage == Usage(input_tokens=5, output_tokens=126995, reasoning_tokens=126987)


def test_deepseek_body_after_keep_alive_blank_lines() -> None:
    example = facts("deepseek")["example_success_response"]["body"]
    completion = adapter("deepseek").parse_response(b"\n\n\n" + body_bytes(example))
    assert completion.text == PARIS


def test_deepseek_reasoning_content_is_never_answer_text() -> None:
    thinking_only = {
        "model": "deepseek-flash",
        "choices": [
            {
                "message": {"content": None, "reasoning_content": "Let me think."},
                "finish_reason": "length",
            }
        ],
    }
    completion = adapter("deepseek").parse_response(body_bytes(thinking_only))
    assert completion.text == "" and completion.finish_reason == "length"
    # a stream cut while the model was still reasoning had given no output yet
    parser = adapter("deepseek").stream_parser()
    events = parser.feed(
        b": keep-alive\n\n"
        + _sse(_chunk(None, reasoning_content="Capital"), _chunk(None, reasoning_content=" of"))[
            : -len(b"data: [DONE]\n\n")
        ]
    )
    assert text_of(events) == "" and not any(isinstance(e, Malformed) for e in events)
    with pytest.raises(StreamBroken) as info:
        parser.end()
    assert "before any output" in info.value.message


def test_mistral_chunked_content_is_joined() -> None:
    body = {
        "model": "magistral-small-latest",
        "choices": [
            {
                "message": {
                    "content": [
                        {"type": "thinking", "thinking": [{"type": "text", "text": "hmm"}]},
                        {"type": "text", "text": PARIS},
                    ]
                },
                "finish_reason": "stop",
            }
        ],
    }
    assert adapter("mistral").parse_response(body_bytes(body)).text == PARIS


def test_openai_refusal_keeps_the_reason() -> None:
    example = facts("openai")["extra_examples"]["example_refusal"]
    with pytest.raises(Refused) as info:
        adapter("openai").parse_response(body_bytes(example))
    assert info.value.message == example["choices"][0]["message"]["refusal"]
    assert not info.value.content_filtered
    assert (info.value.provider, info.value.status) == ("openai", 200)


def test_content_filter_finish_is_a_filtered_refusal() -> None:
    body = {
        "model": "m",
        "choices": [{"message": {"content": "Par"}, "finish_reason": "content_filter"}],
    }
    with pytest.raises(Refused) as info:
        adapter("deepseek").parse_response(body_bytes(body))
    assert info.value.content_filtered and "content_filter" in info.value.message


def test_insufficient_system_resource_is_an_upstream_error() -> None:
    body = {
        "model": "deepseek-flash",
        "choices": [{"message": {"content": ""}, "finish_reason": "insufficient_system_resource"}],
    }
    with pytest.raises(UpstreamError) as info:
        adapter("deepseek").parse_response(body_bytes(body))
    assert info.value.provider == "deepseek"


@pytest.mark.parametrize("body", [b"<html>oops</html>", b"", b'{"choices": []}', b"[1, 2]"])
def test_malformed_success_body_is_bad_reply(body: bytes) -> None:
    with pytest.raises(BadReply) as info:
        adapter("openai").parse_response(body)
    assert info.value.provider == "openai"


# --------------------------------------------------------------------------- streams


@pytest.mark.parametrize("bytewise", [False, True])
@pytest.mark.parametrize("name", CHAT)
def test_stream_transcript(name: str, bytewise: bool) -> None:
    f = facts(name)
    raw = f["example_stream_transcript"]["raw"].encode()
    events = run_stream(adapter(name), raw, bytewise=bytewise)
    assert text_of(events) == PARIS
    ends = [e for e in events if isinstance(e, StreamEnd)]
    assert ends == [
        StreamEnd(
            finish_reason="stop",
            usage=EXPECTED_USAGE[name],
            model_id=EXPECTED_MODEL[name],
            # xAI says what it billed: cost_in_usd_ticks, 1e-10 USD a tick
            cost_usd=2912500 * 1e-10 if name == "xai" else None,
        )
    ]
    assert isinstance(events[-1], StreamEnd)
    assert not any(isinstance(e, Malformed) for e in events)


def _sse(*chunks: dict[str, Any], done: bool = True) -> bytes:
    out = b"".join(b"data: " + json.dumps(c).encode() + b"\n\n" for c in chunks)
    return out + (b"data: [DONE]\n\n" if done else b"")


def _chunk(content: str | None = None, finish: str | None = None, **delta: Any) -> dict[str, Any]:
    d = dict(delta)
    if content is not None:
        d["content"] = content
    return {"model": "m", "choices": [{"index": 0, "delta": d, "finish_reason": finish}]}


def test_stream_stops_at_done_and_ignores_what_follows() -> None:
    raw = _sse(_chunk("a"), _chunk(finish="stop")) + b"data: {broken\n\n"
    events = run_stream(adapter("openai"), raw)
    assert [type(e) for e in events] == [TextDelta, StreamEnd]


def test_stream_malformed_event_is_reported_and_skipped() -> None:
    raw = (
        _sse(_chunk("Par"), done=False)
        + b"data: {not json\n\n"
        + _sse(_chunk("is"), _chunk(finish="stop"))
    )
    events = run_stream(adapter("openai"), raw)
    assert text_of(events) == "Paris"
    assert sum(isinstance(e, Malformed) for e in events) == 1
    assert isinstance(events[-1], StreamEnd)


def test_stream_without_done_after_finish_ends_cleanly() -> None:
    events = run_stream(adapter("xai"), _sse(_chunk("Paris"), _chunk(finish="stop"), done=False))
    assert text_of(events) == "Paris"
    assert isinstance(events[-1], StreamEnd) and events[-1].finish_reason == "stop"


def test_stream_cut_mid_answer_is_broken() -> None:
    parser = adapter("openai").stream_parser()
    assert text_of(parser.feed(_sse(_chunk("Paris is"), done=False))) == "Paris is"
    with pytest.raises(StreamBroken) as info:
        parser.end()
    assert info.value.provider == "openai" and "after output began" in info.value.message


def test_stream_cut_inside_an_event_is_broken() -> None:
    parser = adapter("groq").stream_parser()
    parser.feed(_sse(_chunk("Paris"), done=False) + b'data: {"model": "m", "choi')
    with pytest.raises(StreamBroken):
        parser.end()


def test_stream_refusal_deltas_raise_refused_with_the_whole_reason() -> None:
    raw = _sse(_chunk(refusal="I can't "), _chunk(refusal="help."), _chunk(finish="stop"))
    with pytest.raises(Refused) as info:
        run_stream(adapter("openai"), raw)
    assert info.value.message == "I can't help." and not info.value.content_filtered


def test_stream_content_filter_raises_filtered_refusal() -> None:
    raw = _sse(_chunk("Par"), _chunk(finish="content_filter"))
    with pytest.raises(Refused) as info:
        run_stream(adapter("groq"), raw)
    assert info.value.content_filtered


@pytest.mark.parametrize(("text", "kind"), [("", UpstreamError), ("Par", StreamBroken)])
def test_stream_insufficient_system_resource(text: str, kind: type[ProviderError]) -> None:
    raw = _sse(_chunk(text), _chunk(finish="insufficient_system_resource"))
    with pytest.raises(kind):
        run_stream(adapter("deepseek"), raw)


@pytest.mark.parametrize(("text", "kind"), [("", UpstreamError), ("Hello world", StreamBroken)])
def test_a_failed_finish_carries_the_usage_its_chunk_reports(
    text: str, kind: type[ProviderError]
) -> None:
    """Together's reasoning model ending ``error`` after 2,000 tokens of reasoning: billed
    as reported, not as the estimate of its two words of text."""
    usage = {"prompt_tokens": 20, "completion_tokens": 2000, "total_tokens": 2020}
    raw = _sse(_chunk(text), {**_chunk(finish="error"), "usage": usage})
    with pytest.raises(kind) as info:
        run_stream(adapter("together"), raw)
    assert info.value.billed == (20, 2000)
    body = {"model": "m", "choices": [{"message": {"content": text}, "finish_reason": "error"}]}
    with pytest.raises(UpstreamError) as whole:
        adapter("together").parse_response(body_bytes({**body, "usage": usage}))
    assert whole.value.billed == (20, 2000)


@pytest.mark.parametrize(("text", "kind"), [("", UpstreamError), ("Hello", StreamBroken)])
def test_a_failed_finish_waits_for_the_usage_chunk_after_it(
    text: str, kind: type[ProviderError]
) -> None:
    """With ``stream_options.include_usage`` the usage comes in a chunk of its own after
    the finish (OpenAI's shape, a proxy's): the failure was raised before it, billed an
    estimate (DeepSeek's: ten times less)."""
    usage = {"prompt_tokens": 2000, "completion_tokens": 30, "prompt_cache_hit_tokens": 1500}
    raw = _sse(
        _chunk(text), _chunk(finish="insufficient_system_resource"), {"choices": [], "usage": usage}
    )
    with pytest.raises(kind) as info:
        run_stream(adapter("deepseek"), raw)
    assert (info.value.billed, info.value.billed_cached) == ((2000, 30), 1500)
    cut = _sse(_chunk(text), _chunk(finish="insufficient_system_resource"), done=False)
    with pytest.raises(kind) as unsaid:  # (the usage never came: the stream's end raises)
        run_stream(adapter("deepseek"), cut)
    assert unsaid.value.billed is None


def test_groqs_error_beside_its_usage_is_billed_that_usage() -> None:
    usage = {"prompt_tokens": 1000, "completion_tokens": 3000, "total_tokens": 4000}
    stopped = {"model": "m", "choices": [], "x_groq": {"error": "stopped", "usage": usage}}
    with pytest.raises(StreamBroken) as info:
        run_stream(adapter("groq"), _sse(_chunk("Paris"), stopped))
    assert info.value.billed == (1000, 3000)


def test_a_deepseek_refusal_carries_its_cache_hits() -> None:
    usage = {
        "prompt_tokens": 100,
        "completion_tokens": 5,
        "prompt_cache_hit_tokens": 80,
        "prompt_cache_miss_tokens": 20,
    }
    body = {
        "model": "m",
        "choices": [{"message": {"content": ""}, "finish_reason": "content_filter"}],
    }
    with pytest.raises(Refused) as info:
        adapter("deepseek").parse_response(body_bytes({**body, "usage": usage}))
    assert (info.value.billed, info.value.billed_cached) == ((100, 5), 80)


def test_stream_error_event_before_output_is_mapped() -> None:
    raw = _sse({"error": {"message": "The server is overloaded", "type": "server_error"}})
    with pytest.raises(UpstreamError) as info:
        run_stream(adapter("together"), raw)
    assert info.value.provider == "together"


def test_stream_error_event_after_output_is_broken() -> None:
    raw = _sse(_chunk("Paris"), {"error": {"message": "internal", "type": "server_error"}})
    with pytest.raises(StreamBroken) as info:
        run_stream(adapter("openai"), raw)
    assert "internal" in info.value.message


def test_groq_x_groq_error_stops_the_stream() -> None:
    raw = _sse(_chunk("Paris"), {"model": "m", "choices": [], "x_groq": {"error": "stopped"}})
    with pytest.raises(StreamBroken) as info:
        run_stream(adapter("groq"), raw)
    assert "stopped" in info.value.message


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize("name", CHAT)
def test_example_errors(name: str) -> None:
    f = facts(name)
    a = adapter(name)
    limited = a.parse_error(
        429, f["example_error_429"]["headers"], body_bytes(f["example_error_429"]["body"])
    )
    if name == "xai":  # xAI's documented 429 is its credits / spending-limit message
        assert isinstance(limited, QuotaExhausted) and not isinstance(limited, RateLimited)
        assert "used all available credits" in limited.message
    else:
        assert isinstance(limited, RateLimited)
        assert limited.retry_after == {"openai": 1.0, "groq": 1.0}.get(name)
    auth = f["example_error_401"]
    error = a.parse_error(auth["http_status"], auth["headers"], body_bytes(auth["body"]))
    assert isinstance(error, AuthError), error
    assert (error.provider, error.status) == (name, auth["http_status"])


def test_xai_bad_key_answered_with_400_is_auth_error() -> None:
    auth = facts("xai")["example_error_401"]
    assert auth["http_status"] == 400
    error = adapter("xai").parse_error(400, {}, body_bytes(auth["body"]))
    assert isinstance(error, AuthError)
    assert "xa***yz" not in error.message and "Incorrect API key" in error.message


@pytest.mark.parametrize(
    ("status", "message"),
    [
        (
            429,
            "Your team 0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0 has either used all available "
            "credits or reached its monthly spending limit. To continue making API requests, "
            "please purchase more credits or raise your spending limit.",
        ),
        (
            403,
            "Your newly created team doesn't have any credits or licenses yet. You can "
            "purchase credits on https://console.x.ai.",
        ),
    ],
    ids=["429-credits", "403-no-credits"],
)
def test_xai_credit_errors_are_quota_exhausted(status: int, message: str) -> None:
    body = body_bytes({"code": "Some resource has been exhausted", "error": message})
    error = adapter("xai").parse_error(status, {"retry-after": "5"}, body)
    assert isinstance(error, QuotaExhausted) and not isinstance(error, RateLimited)
    assert (error.provider, error.status) == ("xai", status) and not error.retry_same
    assert "credits" in error.message


def test_xai_plain_429_stays_a_rate_limit() -> None:
    body = body_bytes(
        {"code": "Some resource has been exhausted", "error": "Too many requests, slow down."}
    )
    error = adapter("xai").parse_error(429, {"retry-after": "2"}, body)
    assert type(error) is RateLimited and error.retry_after == 2.0
    assert "Too many requests" in error.message


def test_xai_flat_error_body_keeps_its_message() -> None:
    body = body_bytes(
        {
            "code": "Client specified an invalid argument",
            "error": "Argument not supported on this model: presence_penalty",
        }
    )
    error = adapter("xai").parse_error(400, {}, body)
    assert type(error) is BadRequest
    assert error.message.startswith("Argument not supported on this model: presence_penalty")
    missing = adapter("xai").parse_error(
        404, {}, body_bytes({"code": "Some requested entity was not found", "error": "no grok-9"})
    )
    assert isinstance(missing, ModelNotFound) and "no grok-9" in missing.message


def test_mistral_error_shapes_keep_the_message() -> None:
    f = facts("mistral")
    a = adapter("mistral")
    limited = a.parse_error(429, {}, body_bytes(f["example_error_429"]["body"]))
    assert type(limited) is RateLimited and limited.message.startswith("Rate limit exceeded")
    assert "rate_limited" in limited.message
    auth = a.parse_error(401, {}, body_bytes(f["example_error_401"]["body"]))
    assert isinstance(auth, AuthError) and auth.message == "Unauthorized"
    detail_auth = a.parse_error(401, {}, body_bytes({"detail": "Unauthorized"}))
    assert isinstance(detail_auth, AuthError) and detail_auth.message == "Unauthorized"
    invalid = a.parse_error(422, {}, body_bytes(f["extra_examples"]["example_error_422"]))
    assert type(invalid) is BadRequest and invalid.message == "body.messages: Field required"
    nested = a.parse_error(
        400,
        {},
        body_bytes(
            {
                "object": "error",
                "message": {"detail": [{"loc": ["body", "top_p"], "msg": "must be <= 1"}]},
                "type": "invalid_request_error",
                "param": None,
                "code": None,
            }
        ),
    )
    assert type(nested) is BadRequest
    assert nested.message.startswith("body.top_p: must be <= 1")
    too_long = a.parse_error(
        400,
        {},
        body_bytes(
            {
                "object": "error",
                "message": "Prompt contains 300000 tokens, too large for model with 262144 "
                "maximum context length",
                "type": "invalid_request_error",
                "param": None,
                "code": "3051",
            }
        ),
    )
    assert isinstance(too_long, ContextExceeded)


def test_overloaded_5xx_carries_the_providers_retry_hints() -> None:
    body = body_bytes({"error": {"message": "The server is overloaded", "type": "server_error"}})
    hinted = adapter("openai").parse_error(
        503, {"retry-after-ms": "1500", "x-should-retry": "true"}, body
    )
    assert isinstance(hinted, UpstreamError) and hinted.status == 503
    assert (hinted.retry_after, hinted.should_retry) == (1.5, True)
    refused = adapter("openai").parse_error(503, {"x-should-retry": "false"}, body)
    assert isinstance(refused, UpstreamError)
    assert (refused.retry_after, refused.should_retry) == (None, False)
    plain = adapter("openai").parse_error(500, {}, body)
    assert isinstance(plain, UpstreamError)
    assert (plain.retry_after, plain.should_retry) == (None, None)


def test_openai_409_conflict_is_retried_like_an_upstream_error() -> None:
    body = body_bytes({"error": {"message": "Conflict, please retry", "type": "conflict"}})
    error = adapter("openai").parse_error(409, {}, body)
    assert isinstance(error, UpstreamError) and error.retry_same and error.status == 409


def test_openai_extra_errors() -> None:
    extra = facts("openai")["extra_examples"]
    a = adapter("openai")
    context = a.parse_error(400, {}, body_bytes(extra["example_error_context"]))
    assert isinstance(context, ContextExceeded) and "272000" in context.message
    # billing, not a rate limit: "do NOT retry" (the provider facts)
    quota = a.parse_error(429, {}, body_bytes(extra["example_error_429_quota"]))
    assert isinstance(quota, QuotaExhausted) and not isinstance(quota, RateLimited)
    assert not quota.retry_same and "insufficient_quota" in quota.message
    limited = a.parse_error(429, {}, body_bytes(facts("openai")["example_error_429"]["body"]))
    assert isinstance(limited, RateLimited)
    policy = a.parse_error(
        400,
        {},
        body_bytes(
            {
                "error": {
                    "message": "Your request was rejected as a result of our safety system.",
                    "type": "invalid_request_error",
                    "code": "content_policy_violation",
                }
            }
        ),
    )
    assert isinstance(policy, ContentRejected) and "safety system" in policy.message


def test_other_provider_specific_errors() -> None:
    balance = adapter("deepseek").parse_error(
        402, {}, body_bytes(facts("deepseek")["extra_examples"]["example_error_402"])
    )
    assert isinstance(balance, QuotaExhausted) and "Insufficient Balance" in balance.message
    assert isinstance(
        adapter("mistral").parse_error(
            422, {}, body_bytes(facts("mistral")["extra_examples"]["example_error_422"])
        ),
        BadRequest,
    )
    groq_flex = adapter("groq").parse_error(
        498, {}, body_bytes({"error": {"message": "flex capacity", "code": "capacity_exceeded"}})
    )
    assert isinstance(groq_flex, UpstreamError) and groq_flex.status == 498


def test_key_echoed_in_an_error_body_is_scrubbed() -> None:
    body = body_bytes(
        {"error": {"message": f"Incorrect API key provided: {KEY}", "code": "invalid_api_key"}}
    )
    error = adapter("openai").parse_error(401, {}, body)
    assert KEY not in error.message and KEY not in str(error)
    assert KEY[-8:] not in error.message


# --------------------------------------------------------------------------- Perplexity


def perplexity() -> Any:
    return make_adapter(ProviderSpec(name="perplexity", kind="openai"), KEY)


def test_perplexity_uses_the_agent_api_responses_format() -> None:
    f = facts("perplexity")
    assert "RETIRED" in f["status_warning"]
    a = perplexity()
    assert isinstance(a, OpenAIResponsesAdapter)
    built = a.build_request(request())
    assert built.url == "https://api.perplexity.ai/v1/responses"
    assert built.headers["Authorization"] == f"Bearer {KEY}"
    assert built.json == {
        "model": "m-1",
        "input": [{"role": "user", "content": "What is the capital of France?"}],
        "instructions": "Answer briefly.",
        "temperature": 0.2,
        "max_output_tokens": 256,
        "stream": True,
    }


def test_perplexity_base_url_ending_in_v1_is_not_doubled() -> None:
    spec = ProviderSpec(name="perplexity", kind="openai", base_url="http://127.0.0.1:9/v1")
    assert (
        make_adapter(spec, None).build_request(request()).url == "http://127.0.0.1:9/v1/responses"
    )


def test_perplexity_agent_success() -> None:
    example = facts("perplexity")["extra_examples"]["example_agent_success"]
    completion = perplexity().parse_response(body_bytes(example))
    assert completion.text == "Paris is the capital of France.[1]"
    assert completion.finish_reason == "stop"
    assert completion.usage == Usage(input_tokens=12, output_tokens=9)
    assert completion.model_id == "perplexity/sonar"
    # what Perplexity billed, its search fee included (providers.md §9: total_cost)
    assert completion.cost_usd == pytest.approx(0.0050255)


def _responses_stream(*, completed: bool = True, cut: bool = False) -> bytes:
    def ev(kind: str, **data: Any) -> bytes:
        return f"event: {kind}\ndata: {json.dumps({'type': kind, **data})}\n\n".encode()

    out = ev("response.created", response={"model": "perplexity/sonar", "status": "in_progress"})
    out += ev("response.reasoning.search_queries", queries=["capital of France"])
    out += ev("response.output_text.delta", delta="Paris")
    out += ev("response.output_text.delta", delta=" is the capital of France.")
    if cut:
        return out
    out += ev("response.output_text.done", text=PARIS)
    out += ev("response.output_item.done", item={"type": "message"})
    if completed:
        out += ev(
            "response.completed",
            response={
                "model": "perplexity/sonar",
                "status": "completed",
                "usage": {
                    "input_tokens": 12,
                    "output_tokens": 9,
                    "cost": {"total_cost": 0.0050255, "tool_calls_cost": 0.005},
                },
            },
        )
    return out


@pytest.mark.parametrize("bytewise", [False, True])
def test_perplexity_stream(bytewise: bool) -> None:
    events = run_stream(perplexity(), _responses_stream(), bytewise=bytewise)
    assert text_of(events) == PARIS
    assert events[-1] == StreamEnd(
        finish_reason="stop",
        usage=Usage(input_tokens=12, output_tokens=9),
        model_id="perplexity/sonar",
        cost_usd=0.0050255,  # what it billed, the search's tool fee included
    )


def test_perplexity_stream_without_completed_after_text_done_ends() -> None:
    events = run_stream(perplexity(), _responses_stream(completed=False))
    assert text_of(events) == PARIS and isinstance(events[-1], StreamEnd)


def test_perplexity_stream_cut_is_broken() -> None:
    with pytest.raises(StreamBroken):
        run_stream(perplexity(), _responses_stream(cut=True))


def test_perplexity_failed_response_is_mapped() -> None:
    raw = (
        b"event: response.failed\ndata: "
        + body_bytes(
            {
                "type": "response.failed",
                "response": {
                    "status": "failed",
                    "error": {"code": "rate_limit_exceeded", "message": "slow"},
                },
            }
        )
        + b"\n\n"
    )
    with pytest.raises(RateLimited):
        run_stream(perplexity(), raw)


def test_perplexity_failed_event_with_its_error_at_the_top_level_is_mapped() -> None:
    # perplexity-py's ResponseFailedEvent: a required top-level error, no response
    failed = {
        "type": "response.failed",
        "error": {"code": "rate_limit_exceeded", "message": "slow down, please"},
        "sequence_number": 3,
    }
    raw = b"event: response.failed\ndata: " + body_bytes(failed) + b"\n\n"
    with pytest.raises(RateLimited) as caught:
        run_stream(perplexity(), raw)
    assert "slow down, please" in caught.value.message


@pytest.mark.parametrize(
    ("details", "finish"),
    [
        ({"reason": "max_output_tokens"}, "length"),
        ({"reason": "content_filter"}, "content_filter"),
        (None, "incomplete"),
    ],
)
def test_an_incomplete_perplexity_response_is_never_a_clean_finish(
    details: dict[str, str] | None, finish: str
) -> None:
    response: dict[str, Any] = {
        "object": "response",
        "model": "perplexity/sonar",
        "status": "incomplete",
        "output": [{"type": "message", "content": [{"type": "output_text", "text": "Paris is"}]}],
    }
    if details is not None:
        response["incomplete_details"] = details
    whole = perplexity().parse_response(body_bytes(response))
    raw = b"event: response.completed\ndata: " + body_bytes(
        {"type": "response.completed", "response": response}
    )
    streamed = run_stream(perplexity(), raw + b"\n\n")[-1]
    assert isinstance(streamed, StreamEnd)
    for reason in (whole.finish_reason, streamed.finish_reason):
        assert reason == finish
        assert normal_finish(reason) != "stop"
    # cut at the output limit is a whole attempt that says so; anything else failed
    assert finish_is_normal(whole.finish_reason) == (finish == "length")


def test_perplexity_legacy_html_401_is_auth_error() -> None:
    html = facts("perplexity")["extra_examples"]["example_error_401_legacy_html"].encode()
    assert isinstance(perplexity().parse_error(401, {}, html), AuthError)


def test_perplexity_invalid_model_is_model_not_found() -> None:
    bad_model = facts("perplexity")["extra_examples"]["example_error_400"]
    error = perplexity().parse_error(400, {}, body_bytes(bad_model))
    assert isinstance(error, ModelNotFound) and error.status == 400
    assert "Invalid model 'sonar-pro-online'" in error.message
    # the same said inside a failed Agent API stream
    failed = {
        "type": "response.failed",
        "response": {"status": "failed", "error": bad_model["error"]},
    }
    raw = b"event: response.failed\ndata: " + body_bytes(failed) + b"\n\n"
    with pytest.raises(ModelNotFound):
        run_stream(perplexity(), raw)


def test_legacy_sonar_chat_format_still_parses_with_the_chat_adapter() -> None:
    f = facts("perplexity")
    legacy = OpenAIChatAdapter(provider="sonar-legacy", base_url=f["base_url"], api_key=KEY)
    events = run_stream(legacy, f["example_stream_transcript"]["raw"].encode())
    assert text_of(events) == "Paris is the capital of France.[1]"
    assert isinstance(events[-1], StreamEnd) and events[-1].usage == Usage(
        input_tokens=12, output_tokens=9
    )
