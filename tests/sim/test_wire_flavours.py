"""Each provider as its docs say (providers.md): keys, error shapes, headers, usage, rejections.

Chat completions pick a provider's flavour by the first path segment
(``/xai/v1/chat/completions``...) or the server's ``flavour``; the other wire formats
check their own headers. Read over real sockets with plain httpx.
"""

from __future__ import annotations

import datetime
import json
from typing import Any

import httpx
import pytest
import trio

from switchman.sim import (
    FakeProviderServer,
    FakeServerConfig,
    expected_answer,
    serve_fake_provider,
)
from tests.sim.conftest import AUTH, KEY, PROMPT, sse_events
from tests.sim.test_server import custom_server

#: where each OpenAI-compatible provider's chat completions live under the fake server
CHAT_PATHS = {
    "openai": "/openai/v1/chat/completions",
    "xai": "/xai/v1/chat/completions",
    "mistral": "/mistral/v1/chat/completions",
    "groq": "/groq/openai/v1/chat/completions",
    "together": "/together/v1/chat/completions",
    "deepseek": "/deepseek/chat/completions",
}
FLAVOURS = tuple(CHAT_PATHS)
BEARER = {"authorization": f"Bearer {KEY}"}


def chat_body(model: str, *, stream: bool = False, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": model,
        "messages": [{"role": "user", "content": PROMPT}],
        "stream": stream,
    }
    body.update(extra)
    return body


async def chat(
    client: httpx.AsyncClient,
    flavour: str,
    model: str,
    *,
    stream: bool = False,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> httpx.Response:
    with trio.fail_after(5):
        return await client.post(
            CHAT_PATHS[flavour],
            json=chat_body(model, stream=stream, **extra),
            headers=BEARER if headers is None else headers,
        )


def chunks(response: httpx.Response) -> list[dict[str, Any]]:
    """The JSON chunks of a stream (comments such as ``: keep-alive`` carry none)."""
    return [json.loads(d) for _, d in sse_events(response.text) if d and d != "[DONE]"]


def streamed_text(response: httpx.Response) -> str:
    return "".join(
        c["choices"][0]["delta"].get("content") or "" for c in chunks(response) if c["choices"]
    )


# -- flavour by path or by config ------------------------------------------------------------


@pytest.mark.parametrize("flavour", FLAVOURS)
async def test_every_flavour_answers_on_its_path(
    flavour: str, bare: httpx.AsyncClient, server: FakeProviderServer
) -> None:
    whole = await chat(bare, flavour, "healthy")
    streamed = await chat(bare, flavour, "healthy", stream=True)
    assert whole.status_code == streamed.status_code == 200
    expected = expected_answer("healthy", PROMPT, None)
    assert whole.json()["choices"][0]["message"]["content"] == expected
    assert streamed_text(streamed) == expected
    assert streamed.text.rstrip().endswith("data: [DONE]")
    assert [r.wire_format for r in server.requests()] == [flavour, flavour]


async def test_the_configured_flavour_serves_paths_without_a_prefix() -> None:
    async with (
        custom_server(FakeServerConfig(flavour="xai")) as xai,
        httpx.AsyncClient(base_url=xai.base_url, headers=BEARER) as client,
    ):
        with trio.fail_after(5):
            plain = await client.post("/v1/chat/completions", json=chat_body("down"))
            prefixed = await client.post("/mistral/v1/chat/completions", json=chat_body("down"))
    assert plain.json()["code"] == "The service is currently unavailable"  # xAI's flat shape
    assert prefixed.json()["object"] == "error"  # the prefix wins
    assert [r.wire_format for r in xai.requests()] == ["xai", "mistral"]


async def test_an_unknown_flavour_is_refused() -> None:
    with pytest.raises(ValueError, match="flavour must be one of"):
        await serve_fake_provider(FakeServerConfig(flavour="nope"))


async def test_prefixes_route_the_other_formats_too(client: httpx.AsyncClient) -> None:
    body = {"model": "healthy", "max_tokens": 50, "messages": [{"role": "user", "content": "x"}]}
    with trio.fail_after(5):
        anthropic = await client.post("/anthropic/v1/messages", json=body)
        gemini = await client.post(
            "/gemini/v1beta/models/healthy:generateContent",
            json={"contents": [{"role": "user", "parts": [{"text": "x"}]}]},
        )
        perplexity = await client.post(
            "/perplexity/v1/responses", json={"model": "x", "input": "x"}
        )
    assert anthropic.json()["type"] == "message"
    assert "candidates" in gemini.json()
    assert perplexity.json()["object"] == "response"


# -- keys and required headers ---------------------------------------------------------------

#: per flavour: status and a fragment of the body answering a request without a key
NO_KEY = {
    "openai": (401, '"code":"invalid_api_key"'),
    "xai": (401, '"error":"No API key provided'),  # a wrong key is its 400
    "mistral": (401, '{"message":"Unauthorized","request_id":'),
    "groq": (401, '{"error":{"message":"Invalid API Key","type":"invalid_request_error"'),
    "together": (401, '"code":"invalid_api_key"'),
    "deepseek": (401, '"type":"authentication_error"'),
}


@pytest.mark.parametrize("flavour", FLAVOURS)
async def test_a_request_without_a_key_is_refused_as_the_provider_does(
    flavour: str, bare: httpx.AsyncClient, server: FakeProviderServer
) -> None:
    for headers in ({}, {"authorization": "Bearer"}, {"authorization": f"Basic {KEY}"}):
        response = await chat(bare, flavour, "healthy", headers=headers)
        status, fragment = NO_KEY[flavour]
        assert response.status_code == status, headers
        assert fragment in response.text
    record = server.requests()[-1]
    assert (record.model, record.outcome, record.behaviour) == ("healthy", "unauthorized", None)


async def test_anthropic_wants_its_key_and_its_version(bare: httpx.AsyncClient) -> None:
    body = {"model": "healthy", "max_tokens": 50, "messages": [{"role": "user", "content": "x"}]}

    async def post(headers: dict[str, str]) -> httpx.Response:
        with trio.fail_after(5):
            return await bare.post("/v1/messages", json=body, headers=headers)

    version = {"anthropic-version": "2023-06-01"}
    no_key = await post(version)
    no_version = await post({"x-api-key": KEY})
    by_header = await post({"x-api-key": KEY, **version})
    by_bearer = await post({**BEARER, **version})
    assert no_key.status_code == 401
    assert no_key.json()["error"] == {
        "type": "authentication_error",
        "message": "invalid x-api-key",
    }
    assert no_version.status_code == 400
    assert no_version.json()["error"]["message"] == "anthropic-version: header is required"
    assert by_header.status_code == by_bearer.status_code == 200


async def test_gemini_takes_its_key_in_a_header_or_the_query(bare: httpx.AsyncClient) -> None:
    body = {"contents": [{"role": "user", "parts": [{"text": "x"}]}]}
    path = "/v1beta/models/healthy:generateContent"
    with trio.fail_after(5):
        missing = await bare.post(path, json=body, headers=BEARER)  # not where Gemini looks
        header = await bare.post(path, json=body, headers={"x-goog-api-key": KEY})
        query = await bare.post(f"{path}?key={KEY}", json=body)
    assert missing.status_code == 400
    error = missing.json()["error"]
    assert error["status"] == "INVALID_ARGUMENT"
    assert error["details"][0]["reason"] == "API_KEY_INVALID"
    assert header.status_code == query.status_code == 200


async def test_perplexity_wants_a_bearer_key_and_ollama_none(bare: httpx.AsyncClient) -> None:
    with trio.fail_after(5):
        perplexity = await bare.post("/v1/responses", json={"model": "x", "input": "x"})
        ollama = await bare.post(
            "/api/chat", json={"model": "healthy", "messages": [], "stream": False}
        )
    assert perplexity.status_code == 401
    assert perplexity.json()["error"]["type"] == "invalid_api_key"
    assert perplexity.json()["error"]["code"] == 401
    assert ollama.status_code == 200  # a local server takes no key


# -- behaviours: a rejected key, a used-up quota, a spending cap ------------------------------


def other_request(provider: str, model: str) -> tuple[str, dict[str, Any]]:
    """(path, body) of a request to a non-chat format naming ``model``."""
    if provider == "anthropic":
        return "/v1/messages", {"model": model, "max_tokens": 9, "messages": []}
    if provider == "gemini":
        return f"/v1beta/models/{model}:generateContent", {"contents": []}
    if provider == "perplexity":
        return "/v1/responses", {"model": model, "input": "x"}
    return "/api/chat", {"model": model, "messages": [], "stream": False}


async def reply(client: httpx.AsyncClient, provider: str, model: str) -> httpx.Response:
    if provider in CHAT_PATHS:
        return await chat(client, provider, model, headers=AUTH)
    path, body = other_request(provider, model)
    with trio.fail_after(5):
        return await client.post(path, json=body)


BAD_KEY: dict[str, tuple[int, list[Any], Any]] = {
    "openai": (401, ["error", "code"], "invalid_api_key"),
    "anthropic": (401, ["error", "type"], "authentication_error"),
    "gemini": (400, ["error", "details", 0, "reason"], "API_KEY_INVALID"),
    "xai": (400, ["code"], "Client specified an invalid argument"),
    "mistral": (401, ["message"], "Unauthorized"),
    "groq": (401, ["error", "code"], "invalid_api_key"),
    "together": (401, ["error", "code"], "invalid_api_key"),
    "deepseek": (401, ["error", "type"], "authentication_error"),
    "perplexity": (401, ["error", "type"], "invalid_api_key"),
    "ollama": (401, ["error"], "unauthorized"),
}


def dig(body: Any, path: list[Any]) -> Any:
    for part in path:
        body = body[part]
    return body


@pytest.mark.parametrize("provider", BAD_KEY)
async def test_bad_key_is_each_providers_rejection(
    provider: str, client: httpx.AsyncClient, server: FakeProviderServer
) -> None:
    response = await reply(client, provider, "bad-key")
    status, path, value = BAD_KEY[provider]
    assert response.status_code == status
    assert dig(response.json(), path) == value
    assert KEY not in response.text  # providers echo a key masked, if at all
    assert server.requests()[-1].outcome == "bad_key"


async def test_bad_key_messages_mask_the_key_as_each_provider_does(
    client: httpx.AsyncClient,
) -> None:
    openai = (await reply(client, "openai", "bad-key")).json()["error"]["message"]
    xai = (await reply(client, "xai", "bad-key")).json()["error"]
    deepseek = (await reply(client, "deepseek", "bad-key")).json()["error"]["message"]
    assert f"provided: {KEY[:8]}****{KEY[-4:]}." in openai
    assert f"provided: {KEY[:2]}***{KEY[-2:]}." in xai
    assert f"api key: ****{KEY[-4:]} is invalid" in deepseek


#: per provider: the billing failure its docs give (status, path into the body, value)
QUOTA: dict[str, tuple[int, list[Any], Any]] = {
    "openai": (429, ["error", "code"], "insufficient_quota"),
    "anthropic": (402, ["error", "type"], "billing_error"),
    "xai": (429, ["code"], "Some resource has been exhausted"),
    "together": (429, ["error", "type"], "credit_limit"),
    "deepseek": (402, ["error", "message"], "Insufficient Balance"),
    # no billing failure documented: their plain 429
    "gemini": (429, ["error", "status"], "RESOURCE_EXHAUSTED"),
    "mistral": (429, ["type"], "rate_limited"),
    "groq": (429, ["error", "code"], "rate_limit_exceeded"),
    "perplexity": (429, ["error", "code"], 429),
    "ollama": (429, ["error"], "you have reached your hourly usage limit, please try again later"),
}


@pytest.mark.parametrize("provider", QUOTA)
async def test_quota_exhausted_is_each_providers_billing_failure(
    provider: str, client: httpx.AsyncClient
) -> None:
    response = await reply(client, provider, "quota-exhausted")
    status, path, value = QUOTA[provider]
    assert response.status_code == status
    assert dig(response.json(), path) == value
    assert "retry-after" not in response.headers
    if provider == "xai":
        assert "used all available credits" in response.json()["error"]
    if provider == "gemini":  # a day's quota: no retry delay in the body either
        assert "retryDelay" not in response.text
        assert "PerDay" in response.text


async def test_spend_limit(client: httpx.AsyncClient) -> None:
    anthropic = await reply(client, "anthropic", "spend-limit")
    xai = await reply(client, "xai", "spend-limit")
    openai = await reply(client, "openai", "spend-limit")
    assert anthropic.status_code == 429
    error = anthropic.json()["error"]
    assert error["type"] == "rate_limit_error"
    assert error["details"] == {"error_code": "enforced_spend_limit_reached"}
    assert anthropic.headers["x-should-retry"] == "false"
    assert "retry-after" not in anthropic.headers
    assert xai.status_code == 429 and "monthly spending limit" in xai.json()["error"]
    assert openai.json()["error"]["type"] == "insufficient_quota"


# -- error shapes ----------------------------------------------------------------------------


async def test_xai_errors_are_flat(client: httpx.AsyncClient) -> None:
    for model, status in [
        ("rate-limited", 429),
        ("down", 503),
        ("not-found", 404),
        ("context-length", 400),
        ("error-once", 500),
    ]:
        response = await chat(client, "xai", model)
        body = response.json()
        assert response.status_code == status, model
        assert set(body) == {"code", "error"}, model
        assert isinstance(body["error"], str) and isinstance(body["code"], str)
    limited = await chat(client, "xai", "rate-limited")
    assert "credits" not in limited.json()["error"]  # a plain rate limit, not the bill
    assert limited.headers["retry-after"] == "1"


async def test_mistral_errors(client: httpx.AsyncClient) -> None:
    limited = await chat(client, "mistral", "rate-limited")
    assert limited.status_code == 429
    assert limited.json() == {
        "object": "error",
        "message": "Rate limit exceeded",
        "type": "rate_limited",
        "param": None,
        "code": "1300",
    }
    assert limited.headers["x-ratelimit-remaining-req-minute"] == "0"
    assert "retry-after" not in limited.headers  # none documented
    overloaded = await chat(client, "mistral", "overloaded")
    assert overloaded.status_code == 429  # capacity is a 429 too
    assert "capacity exceeded" in overloaded.json()["message"]
    unknown = await chat(client, "mistral", "not-found")
    assert unknown.status_code == 400 and unknown.json()["type"] == "invalid_model"
    too_long = await chat(client, "mistral", "context-length")
    assert too_long.status_code == 400 and too_long.json()["object"] == "error"


async def test_mistral_rejects_fields_it_does_not_take_with_a_422(
    client: httpx.AsyncClient,
) -> None:
    extra = await chat(
        client,
        "mistral",
        "healthy",
        stream_options={"include_usage": True},
        max_completion_tokens=9,
        seed=3,
    )
    assert extra.status_code == 422
    body = extra.json()
    assert (body["object"], body["type"]) == ("error", "invalid_request_error")
    assert [d["loc"] for d in body["message"]["detail"]] == [
        ["body", "stream_options"],
        ["body", "max_completion_tokens"],
        ["body", "seed"],
    ]
    assert {d["type"] for d in body["message"]["detail"]} == {"extra_forbidden"}
    named = await chat(
        client,
        "mistral",
        "healthy",
        messages=[{"role": "user", "content": "x", "name": "me"}],
    )
    assert named.json()["message"]["detail"][0]["loc"] == ["body", "messages", 0, "user", "name"]
    accepted = await chat(
        client,
        "mistral",
        "healthy",
        random_seed=3,
        max_tokens=9,
        messages=[
            {"role": "user", "content": PROMPT},
            {"role": "assistant", "content": "Si", "prefix": True},
        ],
    )
    assert accepted.status_code == 200
    with trio.fail_after(5):
        missing = await client.post(CHAT_PATHS["mistral"], json={"model": "healthy"})
    assert missing.status_code == 422
    assert missing.json()["detail"][0]["type"] == "missing"
    assert missing.json()["detail"][0]["loc"] == ["body", "messages"]


async def test_groq_together_and_deepseek_errors(client: httpx.AsyncClient) -> None:
    groq = await chat(client, "groq", "rate-limited")
    assert groq.status_code == 429
    assert set(groq.json()["error"]) == {"message", "type", "code"}  # no param
    assert groq.headers["retry-after"] == "1"
    assert groq.headers["x-ratelimit-reset-tokens"] == "1s"
    together = await chat(client, "together", "rate-limited")
    assert together.status_code == 429
    assert together.headers["x-ratelimit-remaining"] == "0"
    assert together.headers["x-ratelimit-reset"] == "1"
    assert together.json()["error"]["type"] != "credit_limit"  # that is the bill
    deepseek = await chat(client, "deepseek", "rate-limited")
    assert deepseek.status_code == 429
    assert not [h for h in deepseek.headers if "ratelimit" in h or "retry" in h]
    unknown = await chat(client, "deepseek", "not-found")
    assert (unknown.status_code, unknown.json()["error"]["message"]) == (400, "Model Not Exist")


@pytest.mark.parametrize("model", ["rate-limited", "rate-limited-no-retry-after"])
async def test_a_gemini_429_carries_no_headers_only_its_body_delay(
    model: str, client: httpx.AsyncClient
) -> None:
    response = await reply(client, "gemini", model)
    assert response.status_code == 429
    assert not [h for h in response.headers if "retry" in h or "ratelimit" in h]
    delays = [d.get("retryDelay") for d in response.json()["error"]["details"]]
    assert [d for d in delays if d] == (["1s"] if model == "rate-limited" else [])


# -- rejections ------------------------------------------------------------------------------


async def test_anthropic_rejects_a_system_turn_and_a_temperature_above_1(
    client: httpx.AsyncClient, server: FakeProviderServer
) -> None:
    def body(**extra: Any) -> dict[str, Any]:
        return {
            "model": "healthy",
            "max_tokens": 50,
            "messages": [{"role": "user", "content": "x"}],
            **extra,
        }

    with trio.fail_after(5):
        system = await client.post(
            "/v1/messages",
            json=body(
                messages=[
                    {"role": "system", "content": "be brief"},
                    {"role": "user", "content": "x"},
                ]
            ),
        )
        hot = await client.post("/v1/messages", json=body(temperature=1.5))
        ok = await client.post("/v1/messages", json=body(temperature=1.0, system="be brief"))
        greeting = {"role": "assistant", "content": "Hello!"}
        first = await client.post(
            "/v1/messages", json=body(messages=[greeting, {"role": "user", "content": "x"}])
        )
        spaced = {"role": "assistant", "content": "It is "}
        prefill = await client.post(
            "/v1/messages", json=body(messages=[{"role": "user", "content": "x"}, spaced])
        )
    assert system.status_code == 400
    assert system.json()["error"]["type"] == "invalid_request_error"
    assert 'Unexpected role "system"' in system.json()["error"]["message"]
    assert hot.status_code == 400 and "temperature" in hot.json()["error"]["message"]
    assert ok.status_code == 200
    assert 'first message must use the "user" role' in first.json()["error"]["message"]
    assert "cannot end with trailing whitespace" in prefill.json()["error"]["message"]
    outcomes = [r.outcome for r in server.requests()]
    assert outcomes == ["bad_request", "bad_request", "complete", "bad_request", "bad_request"]
    assert server.requests()[0].model == "healthy"


@pytest.mark.parametrize("model", ["grok-4.3", "grok-4-fast", "grok-3-mini", "grok-code-fast-1"])
async def test_xai_reasoning_models_reject_stop(model: str, client: httpx.AsyncClient) -> None:
    refused = await chat(client, "xai", f"xai/{model}", stop=["END"])
    assert refused.status_code == 400
    assert refused.json() == {
        "code": "Client specified an invalid argument",
        "error": "Argument not supported on this model: stop",
    }
    assert (await chat(client, "xai", f"xai/{model}")).status_code == 200


async def test_xai_other_models_take_stop(client: httpx.AsyncClient) -> None:
    assert (await chat(client, "xai", "grok-3", stop=["END"])).status_code == 200


async def test_openai_reasoning_models_reject_max_tokens_and_o3_rejects_stop(
    client: httpx.AsyncClient,
) -> None:
    old_field = await chat(client, "openai", "gpt-5.4-mini", max_tokens=10)
    assert old_field.status_code == 400
    assert old_field.json()["error"]["param"] == "max_tokens"
    assert old_field.json()["error"]["code"] == "unsupported_parameter"
    assert (await chat(client, "openai", "gpt-5.4-mini", max_completion_tokens=10)).is_success
    assert (await chat(client, "openai", "o3", stop=["x"])).status_code == 400
    assert (await chat(client, "openai", "gpt-5.4-mini", stop=["x"])).is_success
    assert (await chat(client, "groq", "gpt-5.4-mini", max_tokens=10)).is_success  # not Groq's rule


async def test_deepseek_thinking_turns_need_their_reasoning_back(
    client: httpx.AsyncClient,
) -> None:
    history = [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello."},
        {"role": "user", "content": PROMPT},
    ]
    thinking = await chat(client, "deepseek", "healthy", messages=history)
    assert thinking.status_code == 400
    assert "reasoning_content in the thinking mode must be passed back" in thinking.text
    history[1]["reasoning_content"] = "Greet back."
    assert (await chat(client, "deepseek", "healthy", messages=history)).status_code == 200
    del history[1]["reasoning_content"]
    off = await chat(client, "deepseek", "healthy", messages=history, thinking={"type": "disabled"})
    assert off.status_code == 200


async def test_gemini_rejects_roles_it_does_not_know(client: httpx.AsyncClient) -> None:
    body = {"contents": [{"role": "system", "parts": [{"text": "x"}]}]}
    with trio.fail_after(5):
        response = await client.post("/v1beta/models/healthy:generateContent", json=body)
    assert response.status_code == 400
    assert response.json()["error"]["message"] == "Please use a valid role: user, model."


# -- usage -----------------------------------------------------------------------------------


def final_usage(response: httpx.Response) -> tuple[Any, Any]:
    """(top-level usage, x_groq usage) of the last chunk carrying either."""
    top = groq = None
    for c in chunks(response):
        top = c.get("usage") or top
        groq = (c.get("x_groq") or {}).get("usage") or groq
    return top, groq


@pytest.mark.parametrize("flavour", ["mistral", "together"])
async def test_mistral_and_together_always_stream_usage_in_the_final_chunk(
    flavour: str, client: httpx.AsyncClient
) -> None:
    response = await chat(client, flavour, "healthy", stream=True)
    last = chunks(response)[-1]
    assert last["choices"][0]["finish_reason"] == "stop"
    words = len(expected_answer("healthy", PROMPT, None).split())
    assert last["usage"]["completion_tokens"] == words
    assert last["usage"]["total_tokens"] == last["usage"]["prompt_tokens"] + words


async def test_together_chunks_carry_text_beside_delta(client: httpx.AsyncClient) -> None:
    response = await chat(client, "together", "healthy", stream=True)
    pieces = [c["choices"][0] for c in chunks(response)]
    assert all(p["text"] == p["delta"]["content"] for p in pieces)
    assert "".join(p["text"] for p in pieces) == expected_answer("healthy", PROMPT, None)


async def test_groq_streams_usage_in_x_groq_and_top_level_only_when_asked(
    client: httpx.AsyncClient,
) -> None:
    plain = await chat(client, "groq", "healthy", stream=True)
    asked = await chat(
        client, "groq", "healthy", stream=True, stream_options={"include_usage": True}
    )
    top, groq = final_usage(plain)
    words = len(expected_answer("healthy", PROMPT, None).split())
    assert top is None and groq["completion_tokens"] == words and "queue_time" in groq
    top, groq = final_usage(asked)
    assert top is not None and top["completion_tokens"] == groq["completion_tokens"] == words
    assert chunks(plain)[0]["x_groq"]["id"].startswith("req_")


@pytest.mark.parametrize("flavour", ["openai", "xai", "deepseek"])
async def test_usage_streams_only_when_asked_for(flavour: str, client: httpx.AsyncClient) -> None:
    plain = await chat(client, flavour, "healthy", stream=True)
    asked = await chat(
        client, flavour, "healthy", stream=True, stream_options={"include_usage": True}
    )
    assert final_usage(plain) == (None, None)
    assert final_usage(asked)[0] is not None


async def test_xai_reasoning_is_billed_outside_completion_tokens(
    client: httpx.AsyncClient,
) -> None:
    words = len(expected_answer("grok-4.3", PROMPT, None).split())
    usage = (await chat(client, "xai", "grok-4.3")).json()["usage"]
    reasoning = usage["completion_tokens_details"]["reasoning_tokens"]
    assert usage["completion_tokens"] == words and reasoning > 0
    assert usage["total_tokens"] == usage["prompt_tokens"] + words + reasoning
    plain = (await chat(client, "xai", "grok-3")).json()["usage"]
    assert plain["completion_tokens_details"]["reasoning_tokens"] == 0


async def test_openai_reasoning_is_inside_completion_tokens(client: httpx.AsyncClient) -> None:
    words = len(expected_answer("gpt-5.4-mini", PROMPT, None).split())
    usage = (await chat(client, "openai", "gpt-5.4-mini")).json()["usage"]
    reasoning = usage["completion_tokens_details"]["reasoning_tokens"]
    assert reasoning > 0 and usage["completion_tokens"] == words + reasoning
    assert usage["total_tokens"] == usage["prompt_tokens"] + words + reasoning


async def test_deepseek_thinks_by_default_and_keeps_the_line_alive(
    client: httpx.AsyncClient,
) -> None:
    expected = expected_answer("healthy", PROMPT, None)
    words = len(expected.split())
    stream = await chat(
        client, "deepseek", "healthy", stream=True, stream_options={"include_usage": True}
    )
    assert stream.text.startswith(": keep-alive\n\n")
    deltas = [c["choices"][0]["delta"] for c in chunks(stream)]
    thoughts = "".join(d.get("reasoning_content") or "" for d in deltas)
    first_text = next(i for i, d in enumerate(deltas) if d.get("content"))
    assert thoughts and all(not d.get("reasoning_content") for d in deltas[first_text:])
    assert streamed_text(stream) == expected
    usage = chunks(stream)[-1]["usage"]
    reasoning = usage["completion_tokens_details"]["reasoning_tokens"]
    assert reasoning > 0 and usage["completion_tokens"] == words + reasoning
    assert (
        usage["prompt_cache_hit_tokens"] + usage["prompt_cache_miss_tokens"]
        == usage["prompt_tokens"]
    )
    whole = await chat(client, "deepseek", "healthy")
    assert whole.text.startswith("\n\n{")  # blank lines before the body
    message = whole.json()["choices"][0]["message"]
    assert message["content"] == expected and message["reasoning_content"]
    off = await chat(client, "deepseek", "healthy", thinking={"type": "disabled"})
    assert "reasoning_content" not in off.json()["choices"][0]["message"]
    assert off.json()["usage"]["completion_tokens"] == words


async def test_deepseek_keep_alive_goes_out_while_the_model_waits(
    client: httpx.AsyncClient,
) -> None:
    pieces: list[tuple[float, bytes]] = []
    with trio.fail_after(5):
        start = trio.current_time()
        async with client.stream(
            "POST", CHAT_PATHS["deepseek"], json=chat_body("slow-ttft-400", stream=True)
        ) as response:
            async for piece in response.aiter_bytes():
                pieces.append((trio.current_time() - start, piece))
    first_at, first = pieces[0]
    assert first == b": keep-alive\n\n" and first_at < 0.3
    assert pieces[1][0] >= 0.39  # the answer only after the time to first token


async def test_gemini_thinking_models_report_thoughts_beside_candidates(
    client: httpx.AsyncClient,
) -> None:
    body = {"contents": [{"role": "user", "parts": [{"text": PROMPT}]}]}
    with trio.fail_after(5):
        thinking = await client.post("/v1beta/models/gemini-3.8-flash:generateContent", json=body)
        lite = await client.post("/v1beta/models/gemini-3.5-flash-lite:generateContent", json=body)
    usage = thinking.json()["usageMetadata"]
    words = len(expected_answer("gemini-3.8-flash", PROMPT, None).split())
    assert usage["candidatesTokenCount"] == words and usage["thoughtsTokenCount"] > 0
    assert usage["totalTokenCount"] == (
        usage["promptTokenCount"] + words + usage["thoughtsTokenCount"]
    )
    assert "thoughtsTokenCount" not in lite.json()["usageMetadata"]


# -- headers of an answer ---------------------------------------------------------------------


async def test_anthropic_reports_every_rate_limit_family_with_resets_ahead(
    client: httpx.AsyncClient,
) -> None:
    body = {"model": "healthy", "max_tokens": 50, "messages": [{"role": "user", "content": "x"}]}
    with trio.fail_after(5):
        before = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
        response = await client.post("/v1/messages", json=body)
    for family in ("requests", "tokens", "input-tokens", "output-tokens"):
        prefix = f"anthropic-ratelimit-{family}"
        assert int(response.headers[f"{prefix}-remaining"]) < int(
            response.headers[f"{prefix}-limit"]
        )
        reset = datetime.datetime.strptime(
            response.headers[f"{prefix}-reset"], "%Y-%m-%dT%H:%M:%SZ"
        )
        assert reset.replace(tzinfo=datetime.UTC) > before, family


async def test_anthropic_429_resets_follow_the_retry_hint(client: httpx.AsyncClient) -> None:
    limited = await reply(client, "anthropic", "rate-limited")
    hintless = await reply(client, "anthropic", "rate-limited-no-retry-after")
    assert limited.headers["anthropic-ratelimit-requests-remaining"] == "0"
    reset = datetime.datetime.strptime(
        limited.headers["anthropic-ratelimit-requests-reset"], "%Y-%m-%dT%H:%M:%SZ"
    ).replace(tzinfo=datetime.UTC)
    now = datetime.datetime.now(datetime.UTC)
    # the spent family frees up within the retry-after (1 s), in whole seconds
    assert -0.5 < (reset - now).total_seconds() <= 1.0
    assert not [h for h in hintless.headers if h.endswith("-reset") or h == "retry-after"]


async def test_success_headers_per_flavour(client: httpx.AsyncClient) -> None:
    headers = {f: (await chat(client, f, "healthy")).headers for f in FLAVOURS}
    assert "x-ratelimit-remaining-requests" in headers["openai"]
    assert "x-ratelimit-remaining-req-minute" in headers["mistral"]
    assert "x-ratelimit-reset-tokens" in headers["groq"]
    assert "x-tokenlimit-remaining" in headers["together"]
    for quiet in ("xai", "deepseek"):
        assert not [h for h in headers[quiet] if "ratelimit" in h], quiet


# -- refusals and failures mid-answer ---------------------------------------------------------


@pytest.mark.parametrize("flavour", ["xai", "mistral", "groq", "together"])
async def test_providers_without_a_refusal_field_refuse_in_plain_text(
    flavour: str, client: httpx.AsyncClient
) -> None:
    whole = await chat(client, flavour, "refusal")
    streamed = await chat(client, flavour, "refusal", stream=True)
    message = whole.json()["choices"][0]["message"]
    assert message["content"] == "I'm sorry, but I can't help with that request."
    assert not message.get("refusal")
    assert streamed_text(streamed) == message["content"]
    assert chunks(streamed)[-1]["choices"][0]["finish_reason"] == "stop"


async def test_deepseek_refusal_is_a_content_filter_finish(client: httpx.AsyncClient) -> None:
    whole = await chat(client, "deepseek", "refusal")
    streamed = await chat(client, "deepseek", "refusal", stream=True)
    assert whole.json()["choices"][0]["finish_reason"] == "content_filter"
    assert chunks(streamed)[-1]["choices"][0]["finish_reason"] == "content_filter"
    assert streamed_text(streamed) == ""


async def test_failures_mid_answer_as_each_provider_reports_them(
    client: httpx.AsyncClient,
) -> None:
    def last(flavour: str, response: httpx.Response) -> dict[str, Any]:
        assert response.status_code == 200, flavour
        return chunks(response)[-1]

    got = {f: await chat(client, f, "error-after-200", stream=True) for f in FLAVOURS}
    assert last("openai", got["openai"])["error"]["type"] == "server_error"
    assert isinstance(last("xai", got["xai"])["error"], str)
    assert last("mistral", got["mistral"])["choices"][0]["finish_reason"] == "error"
    assert last("groq", got["groq"])["x_groq"]["error"]
    assert last("together", got["together"])["error"]["message"]
    deepseek = last("deepseek", got["deepseek"])["choices"][0]["finish_reason"]
    assert deepseek == "insufficient_system_resource"


async def test_gemini_error_mid_stream_is_a_raw_json_line(client: httpx.AsyncClient) -> None:
    body = {"contents": [{"role": "user", "parts": [{"text": PROMPT}]}]}
    with trio.fail_after(5):
        response = await client.post(
            "/v1beta/models/error-after-200:streamGenerateContent?alt=sse", json=body
        )
    line = response.text.strip().splitlines()[-1]
    assert line.startswith('{"error":') and json.loads(line)["error"]["status"] == "UNAVAILABLE"


async def test_ollama_answers_a_prompt_too_long_for_its_context(
    client: httpx.AsyncClient, server: FakeProviderServer
) -> None:
    body = {"model": "context-length", "messages": [{"role": "user", "content": PROMPT}]}
    with trio.fail_after(5):
        response = await client.post("/api/chat", json={**body, "stream": False})
    assert response.status_code == 200
    assert response.json()["message"]["content"] == expected_answer("context-length", PROMPT, None)
    assert server.requests()[-1].outcome == "complete"
