"""OpenAI-compatible providers against the facts in shared/providers/providers.json."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from switchman._call import Message
from switchman._errors import (
    AuthError,
    BadReply,
    BadRequest,
    ContentRejected,
    ContextExceeded,
    ProviderError,
    QuotaExhausted,
    RateLimited,
    Refused,
    StreamBroken,
    UpstreamError,
)
from switchman._result import Usage
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

PROVIDERS_JSON = Path(__file__).parents[3] / "shared/providers/providers.json"
KEY = "sk-test-0123456789abcdefghijKLMNOP"
CHAT = ["openai", "xai", "mistral", "groq", "together", "deepseek"]
PARIS = "Paris is the capital of France."


def facts(name: str) -> dict[str, Any]:
    if not PROVIDERS_JSON.exists():
        pytest.skip(f"provider facts not found: {PROVIDERS_JSON} (shared/ beside the repo)")
    providers = json.loads(PROVIDERS_JSON.read_text())["providers"]
    return next(p for p in providers if p["name"] == name)


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

EXPECTED_USAGE = {
    "openai": Usage(input_tokens=21, output_tokens=8),
    "xai": Usage(input_tokens=21, output_tokens=8),
    "mistral": Usage(input_tokens=16, output_tokens=9),
    "groq": Usage(input_tokens=84, output_tokens=25),
    "together": Usage(input_tokens=84, output_tokens=25),
    "deepseek": Usage(input_tokens=16, output_tokens=22),
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
    assert completion.usage == Usage(
        input_tokens=example["usage"]["prompt_tokens"],
        output_tokens=example["usage"]["completion_tokens"],
    )


def test_deepseek_body_after_keep_alive_blank_lines() -> None:
    example = facts("deepseek")["example_success_response"]["body"]
    completion = adapter("deepseek").parse_response(b"\n\n\n" + body_bytes(example))
    assert completion.text == PARIS


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
                "usage": {"input_tokens": 12, "output_tokens": 9},
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


def test_perplexity_legacy_html_401_is_auth_error() -> None:
    html = facts("perplexity")["extra_examples"]["example_error_401_legacy_html"].encode()
    assert isinstance(perplexity().parse_error(401, {}, html), AuthError)
    bad_model = facts("perplexity")["extra_examples"]["example_error_400"]
    assert isinstance(perplexity().parse_error(400, {}, body_bytes(bad_model)), BadRequest)


def test_legacy_sonar_chat_format_still_parses_with_the_chat_adapter() -> None:
    f = facts("perplexity")
    legacy = OpenAIChatAdapter(provider="sonar-legacy", base_url=f["base_url"], api_key=KEY)
    events = run_stream(legacy, f["example_stream_transcript"]["raw"].encode())
    assert text_of(events) == "Paris is the capital of France.[1]"
    assert isinstance(events[-1], StreamEnd) and events[-1].usage == Usage(
        input_tokens=12, output_tokens=9
    )
