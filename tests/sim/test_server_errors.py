"""Error replies in each wire format: statuses, bodies, retry hints."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import trio

from switchman.sim import expected_answer
from tests.sim.conftest import FORMATS, PROMPT, Format


async def post(client: httpx.AsyncClient, fmt: Format, model: str) -> httpx.Response:
    with trio.fail_after(5):
        return await client.send(fmt.request(client, model, stream=False))


def error_text(fmt: Format, body: Any) -> str:
    if fmt.name == "ollama":
        text: str = body["error"]
        return text
    if fmt.name == "anthropic":
        assert body["type"] == "error"
        return f"{body['error']['type']}: {body['error']['message']}"
    return str(body["error"]["message"])


RATE_LIMIT_CODES = {
    "openai": ("code", "rate_limit_exceeded"),
    "responses": ("code", 429),
    "gemini": ("status", "RESOURCE_EXHAUSTED"),
}


#: these providers send no rate-limit header at all, not even on a 429
NO_RATE_HEADERS = ("gemini", "ollama", "responses")


async def test_rate_limited_with_retry_after(fmt: Format, client: httpx.AsyncClient) -> None:
    response = await post(client, fmt, "rate-limited")
    assert response.status_code == 429
    if fmt.name in NO_RATE_HEADERS:
        assert not {"retry-after", "retry-after-ms"} & set(response.headers)
        assert not [h for h in response.headers if "ratelimit" in h]
    else:
        assert response.headers["retry-after"] == "1"
    body = response.json()
    assert error_text(fmt, body)
    if fmt.name in RATE_LIMIT_CODES:
        key, value = RATE_LIMIT_CODES[fmt.name]
        assert body["error"][key] == value
    if fmt.name == "openai":
        assert response.headers["x-ratelimit-remaining-requests"] == "0"
        assert response.headers["x-ratelimit-reset-requests"] == "1s"
    if fmt.name == "anthropic":
        assert body["error"]["type"] == "rate_limit_error"
        assert response.headers["anthropic-ratelimit-requests-remaining"] == "0"
    if fmt.name == "gemini":  # the delay is in the body
        delays = [d["retryDelay"] for d in body["error"]["details"] if "retryDelay" in d]
        assert delays == ["1s"]


async def test_rate_limited_without_retry_after(fmt: Format, client: httpx.AsyncClient) -> None:
    response = await post(client, fmt, "rate-limited-no-retry-after")
    assert response.status_code == 429
    assert "retry-after" not in response.headers
    assert "x-ratelimit-reset-requests" not in response.headers
    assert "retryDelay" not in response.text


async def test_error_once_then_healthy(fmt: Format, client: httpx.AsyncClient) -> None:
    first = await post(client, fmt, "error-once")
    second = await post(client, fmt, "error-once")
    assert first.status_code == 500
    assert error_text(fmt, first.json())
    assert second.status_code == 200


async def test_down_is_persistently_unavailable(fmt: Format, client: httpx.AsyncClient) -> None:
    statuses = [(await post(client, fmt, "down")).status_code for _ in range(3)]
    # Anthropic documents no 503: its unavailable is the 529 overloaded_error
    assert statuses == [529 if fmt.name == "anthropic" else 503] * 3


async def test_overloaded(fmt: Format, client: httpx.AsyncClient) -> None:
    response = await post(client, fmt, "overloaded")
    if fmt.name == "anthropic":
        assert response.status_code == 529
        assert response.json()["error"] == {"type": "overloaded_error", "message": "Overloaded"}
    else:
        assert response.status_code == 503
    if fmt.name == "gemini":
        assert response.json()["error"]["status"] == "UNAVAILABLE"


CONTEXT_WORDING = {
    "openai": "maximum context length",
    "anthropic": "prompt is too long",
    "gemini": "input token count",
    "responses": "too long",
}


async def test_context_length(fmt: Format, client: httpx.AsyncClient) -> None:
    response = await post(client, fmt, "context-length")
    if fmt.name == "ollama":  # Ollama cuts a long prompt to fit its context and answers
        assert response.status_code == 200
        assert fmt.text_of(response.json()) == expected_answer("context-length", PROMPT, None)
        return
    assert response.status_code == 400
    assert CONTEXT_WORDING[fmt.name] in error_text(fmt, response.json())
    if fmt.name == "openai":
        assert response.json()["error"]["code"] == "context_length_exceeded"


async def test_content_policy(fmt: Format, client: httpx.AsyncClient) -> None:
    response = await post(client, fmt, "content-policy")
    body = response.json()
    if fmt.name == "gemini":  # Gemini blocks the prompt with a 200 and no candidates
        assert response.status_code == 200
        assert body["promptFeedback"]["blockReason"] == "SAFETY"
        assert "candidates" not in body
        return
    assert response.status_code == 400
    if fmt.name == "openai":
        assert body["error"]["code"] == "content_policy_violation"
        assert "safety system" in error_text(fmt, body)
    else:
        assert "polic" in error_text(fmt, body)


async def test_gemini_content_policy_stream_is_one_blocked_event(
    client: httpx.AsyncClient,
) -> None:
    gemini = next(f for f in FORMATS if f.name == "gemini")
    with trio.fail_after(5):
        response = await client.send(gemini.request(client, "content-policy", stream=True))
    assert response.status_code == 200
    assert response.text.startswith('data: {"promptFeedback":{"blockReason":"SAFETY"')
    assert response.text.endswith("\r\n\r\n")


@pytest.mark.parametrize(
    ("body", "fragment"),
    [(b"{not json", "invalid JSON"), (b'{"messages": []}', "model")],
)
async def test_bad_bodies_get_400_in_the_format(
    fmt: Format, client: httpx.AsyncClient, body: bytes, fragment: str
) -> None:
    if fmt.name == "gemini" and fragment == "model":
        body = b'{"contents": 3}'
        fragment = "contents"
    with trio.fail_after(5):
        response = await client.post(
            fmt.url("healthy", stream=False),
            content=body,
            headers={"content-type": "application/json"},
        )
    assert response.status_code == 400
    assert fragment in error_text(fmt, response.json())


async def test_anthropic_requires_max_tokens(client: httpx.AsyncClient) -> None:
    with trio.fail_after(5):
        response = await client.post(
            "/v1/messages",
            json={"model": "healthy", "messages": [{"role": "user", "content": "hi"}]},
        )
    assert response.status_code == 400
    assert response.json()["error"]["message"] == "max_tokens: Field required"
