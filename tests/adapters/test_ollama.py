"""Ollama native /api/chat against the facts in shared/providers/providers.json."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
import trio

from switchman._call import Message
from switchman._errors import BadReply, BadRequest, RateLimited, StreamBroken, UpstreamError
from switchman._result import Usage
from switchman.adapters import (
    Malformed,
    OllamaAdapter,
    ProviderRequest,
    StreamEnd,
    StreamEvent,
    TextDelta,
    discover_ollama_models,
    make_adapter,
)
from switchman.catalog import ProviderSpec
from tests.adapters._facts import provider_facts

PARIS = "Paris is the capital of France."


def facts() -> dict[str, Any]:
    return provider_facts("ollama")


def adapter(key: str | None = None) -> OllamaAdapter:
    a = make_adapter(ProviderSpec(name="ollama", kind="ollama"), key)
    assert isinstance(a, OllamaAdapter)
    return a


def run_stream(raw: bytes, *, bytewise: bool = False) -> list[StreamEvent]:
    parser = adapter().stream_parser()
    events: list[StreamEvent] = []
    for piece in [raw[i : i + 1] for i in range(len(raw))] if bytewise else [raw]:
        events += parser.feed(piece)
    return events + parser.end()


def text_of(events: list[StreamEvent]) -> str:
    return "".join(e.text for e in events if isinstance(e, TextDelta))


def test_request_shape() -> None:
    f = facts()
    built = adapter().build_request(
        ProviderRequest(
            model_id="llama3.2",
            messages=(
                Message(role="system", content="Answer briefly."),
                Message(role="user", content="What is the capital of France?"),
            ),
            temperature=0.2,
            top_p=0.9,
            max_tokens=256,
            seed=7,
            stop=("END",),
            stream=False,
        )
    )
    assert built.url == f["base_url"] + f["chat_path"]
    assert "Authorization" not in built.headers
    example = f["example_request"]
    assert built.json == {
        "model": "llama3.2",
        "messages": example["messages"],
        "stream": False,
        "options": {
            "temperature": 0.2,
            "top_p": 0.9,
            "num_predict": 256,
            "seed": 7,
            "stop": ["END"],
        },
    }
    assert set(built.json["options"]) <= set(example["options"])


def test_stream_flag_always_sent_and_cloud_key_as_bearer() -> None:
    built = adapter("ollama-cloud-key-123").build_request(
        ProviderRequest(model_id="m", messages=(Message(role="user", content="hi"),))
    )
    assert built.json == {
        "model": "m",
        "messages": [{"role": "user", "content": "hi"}],
        "stream": True,
    }
    assert built.headers["Authorization"] == "Bearer ollama-cloud-key-123"


def test_parse_example_success() -> None:
    completion = adapter().parse_response(
        json.dumps(facts()["example_success_response"]["body"]).encode()
    )
    assert completion.text == PARIS
    assert completion.finish_reason == "stop"
    assert completion.usage == Usage(input_tokens=26, output_tokens=9)
    assert completion.model_id == "llama3.2"


def test_malformed_body_is_bad_reply() -> None:
    with pytest.raises(BadReply):
        adapter().parse_response(b"not json")


@pytest.mark.parametrize("bytewise", [False, True])
def test_stream_transcript(bytewise: bool) -> None:
    events = run_stream(facts()["example_stream_transcript"]["raw"].encode(), bytewise=bytewise)
    assert text_of(events) == PARIS
    assert [e for e in events if isinstance(e, StreamEnd)] == [
        StreamEnd(
            finish_reason="stop", usage=Usage(input_tokens=26, output_tokens=9), model_id="llama3.2"
        )
    ]


def test_stream_without_done_line_is_broken() -> None:
    raw = facts()["example_stream_transcript"]["raw"].encode()
    lines = raw.splitlines(keepends=True)
    with pytest.raises(StreamBroken):
        run_stream(b"".join(lines[:-1]))


def test_stream_error_line_after_output_is_broken_and_before_is_upstream() -> None:
    raw = facts()["extra_examples"]["example_stream_error"].encode()
    with pytest.raises(StreamBroken) as info:
        run_stream(raw)
    assert "an error was encountered while running the model" in info.value.message
    with pytest.raises(UpstreamError):
        run_stream(raw.splitlines()[-1] + b"\n")


def test_stream_malformed_line_is_skipped() -> None:
    lines = facts()["example_stream_transcript"]["raw"].encode().splitlines(keepends=True)
    events = run_stream(lines[0] + b"{garbage\n" + b"".join(lines[1:]))
    assert text_of(events) == PARIS and sum(isinstance(e, Malformed) for e in events) == 1


def test_errors() -> None:
    f = facts()
    limited = adapter().parse_error(429, {}, json.dumps(f["example_error_429"]["body"]).encode())
    assert isinstance(limited, RateLimited)
    missing = adapter().parse_error(
        404, {}, json.dumps(f["extra_examples"]["example_error_404"]).encode()
    )
    assert isinstance(missing, BadRequest) and "not found" in missing.message
    assert (missing.provider, missing.status) == ("ollama", 404)


async def test_discover_models_reads_tags() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/api/tags"
        return httpx.Response(
            200, json={"models": [{"name": "llama3.2:latest"}, {"name": "qwen3:8b"}, {"x": 1}]}
        )

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        assert await discover_ollama_models(client, "http://localhost:11434/") == [
            "llama3.2:latest",
            "qwen3:8b",
        ]


@pytest.mark.parametrize(
    "answer",
    [
        httpx.ConnectError("refused"),
        httpx.ReadTimeout("slow"),
        httpx.Response(500, text="boom"),
        httpx.Response(200, text="<html>"),
        httpx.Response(200, json={"models": "nope"}),
    ],
)
async def test_discover_models_returns_empty_when_nothing_useful_answers(
    answer: httpx.Response | Exception,
) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if isinstance(answer, Exception):
            raise answer
        return answer

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        assert await discover_ollama_models(client, "http://localhost:11434") == []


async def test_discover_models_on_a_closed_port_returns_empty() -> None:
    async with httpx.AsyncClient(timeout=2.0) as client:
        with trio.fail_after(10):
            assert await discover_ollama_models(client, "http://127.0.0.1:9") == []
