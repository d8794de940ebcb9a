"""Details the providers' official SDKs rely on, read over real sockets with plain httpx.

Each test pins one thing an SDK pointed at the fake found it getting wrong (the
field a typed event requires, which stop sequence ended an answer, the request id
on an error...), against providers.md.
"""

from __future__ import annotations

import json
from typing import Any

import attrs
import httpx
import openai
import pytest
import trio
from openai.types.chat import ChatCompletionMessageParam

from switchman._call import Message
from switchman.adapters._base import ProviderRequest
from switchman.sim import REFUSAL_TEXT, FakeProviderServer, expected_answer
from switchman.sim._plan import answer_plan
from switchman.sim._wire import Exchange, Parsed, Wire, reasoning_tokens
from switchman.sim._wire_deepseek import DeepSeekWire
from switchman.sim._wire_mistral import MistralWire
from tests.sim.conftest import PROMPT, sse_events

ANTHROPIC = {"x-api-key": "sk-ant-test", "anthropic-version": "2023-06-01"}


def named_events(response: httpx.Response) -> list[tuple[str | None, Any]]:
    """(event name, parsed data) of an SSE reply (``data: [DONE]`` left out)."""
    events = sse_events(response.text)
    return [(name, json.loads(data)) for name, data in events if data and data != "[DONE]"]


# -- Anthropic: which stop sequence ended the answer ----------------------------------------


async def test_anthropic_names_the_stop_sequence_that_ended_the_answer(
    client: httpx.AsyncClient,
) -> None:
    # the answer opens "Simulated answer from healthy about: What is ..."
    body = {
        "model": "healthy",
        "max_tokens": 100,
        "messages": [{"role": "user", "content": PROMPT}],
        "stop_sequences": ["capital", "answer"],
    }
    with trio.fail_after(5):
        whole = await client.post("/anthropic/v1/messages", json=body, headers=ANTHROPIC)
        streamed = await client.post(
            "/anthropic/v1/messages", json={**body, "stream": True}, headers=ANTHROPIC
        )
    message = whole.json()
    assert message["content"] == [{"type": "text", "text": "Simulated "}]
    assert (message["stop_reason"], message["stop_sequence"]) == ("stop_sequence", "answer")
    events = named_events(streamed)
    deltas = [data["delta"] for name, data in events if name == "message_delta"]
    assert len(deltas) == 1
    assert (deltas[0]["stop_reason"], deltas[0]["stop_sequence"]) == ("stop_sequence", "answer")
    text = "".join(d["delta"]["text"] for n, d in events if n == "content_block_delta")
    assert text == "Simulated "


async def test_anthropic_without_a_matched_stop_sequence_ends_its_turn(
    client: httpx.AsyncClient,
) -> None:
    body = {
        "model": "healthy",
        "max_tokens": 100,
        "messages": [{"role": "user", "content": PROMPT}],
        "stop_sequences": ["never in the answer"],
    }
    with trio.fail_after(5):
        whole = await client.post("/anthropic/v1/messages", json=body, headers=ANTHROPIC)
    assert (whole.json()["stop_reason"], whole.json()["stop_sequence"]) == ("end_turn", None)


# -- Perplexity's Agent API stream events ---------------------------------------------------


async def test_perplexity_response_failed_has_its_error_at_the_top_level(
    client: httpx.AsyncClient,
) -> None:
    body = {"model": "error-after-200", "input": PROMPT, "stream": True}
    with trio.fail_after(5):
        response = await client.post("/perplexity/v1/responses", json=body)
    name, failed = named_events(response)[-1]
    assert name == failed["type"] == "response.failed"
    assert "response" not in failed
    assert failed["error"] == {"code": "server_error", "message": "The model failed mid-answer."}


# -- usage of an answer that failed after it began ------------------------------------------


async def test_a_failure_mid_answer_bills_only_what_went_out(client: httpx.AsyncClient) -> None:
    # error-after-200 fails before its first chunk: no answer text went out
    messages = [{"role": "user", "content": PROMPT}]
    body = {"model": "error-after-200", "messages": messages, "stream": True}
    with trio.fail_after(5):
        mistral = await client.post("/mistral/v1/chat/completions", json=body)
        deepseek = await client.post(
            "/deepseek/chat/completions",
            json={
                **body,
                "stream_options": {"include_usage": True},
                "thinking": {"type": "disabled"},
            },
        )
    for response, failed in ((mistral, "error"), (deepseek, "insufficient_system_resource")):
        chunks = [data for _, data in named_events(response)]
        text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks)
        last = chunks[-1]
        assert text == "" and last["choices"][0]["finish_reason"] == failed
        assert last["usage"]["completion_tokens"] == 0
        assert last["usage"]["total_tokens"] == last["usage"]["prompt_tokens"]


@pytest.mark.parametrize("wire", [MistralWire(), DeepSeekWire()], ids=["mistral", "deepseek"])
@pytest.mark.parametrize("thinking", [False, True], ids=["answer", "thinking"])
def test_a_failure_after_some_chunks_bills_those_chunks(wire: Wire, thinking: bool) -> None:
    req = ProviderRequest(
        model_id="healthy", messages=(Message(role="user", content=PROMPT),), stream=True
    )
    plan = attrs.evolve(answer_plan("healthy", "healthy", req), ending="error", break_after=2)
    parsed = Parsed(model="healthy", request=req, include_usage=True, thinking=thinking)
    ex = Exchange(plan=plan, parsed=parsed, id="sim1")
    data = next(d for _, d in sse_events(wire.mid_error(ex).decode()) if d != "[DONE]")
    usage = json.loads(data)["usage"]
    sent = len("".join(plan.chunks[:2]).split())
    assert 0 < sent < plan.usage.output_tokens
    # the reasoning (DeepSeek's, streamed whole before the answer) is billed as well
    reasoning = reasoning_tokens(ex) if isinstance(wire, DeepSeekWire) else 0
    assert usage["completion_tokens"] == sent + reasoning
    assert usage["total_tokens"] == plan.usage.input_tokens + sent + reasoning


# -- request ids on every reply where the provider documents them ---------------------------


async def test_anthropic_errors_carry_their_request_id_in_the_header_and_the_body(
    client: httpx.AsyncClient, bare: httpx.AsyncClient
) -> None:
    def body(model: str, **extra: Any) -> dict[str, Any]:
        messages = [{"role": "user", "content": PROMPT}]
        return {"model": model, "max_tokens": 50, "messages": messages, **extra}

    url = "/anthropic/v1/messages"
    with trio.fail_after(5):
        replies = [
            await client.post(url, json=body("context-length"), headers=ANTHROPIC),
            await client.post(url, json=body("bad-key"), headers=ANTHROPIC),
            await client.post(url, json=body("down"), headers=ANTHROPIC),
            await client.post(url, json=body("rate-limited"), headers=ANTHROPIC),
            await client.post(url, json=body("healthy", temperature=3), headers=ANTHROPIC),
            await bare.post(url, json=body("healthy")),  # no key
            await bare.post(url, json=body("healthy"), headers={"x-api-key": "k"}),  # no version
        ]
    ids = []
    for reply in replies:
        assert reply.status_code >= 400
        assert reply.json()["type"] == "error"
        assert reply.json()["request_id"] == reply.headers["request-id"]
        assert reply.headers["request-id"].startswith("req_sim")
        ids.append(reply.headers["request-id"])
    assert len(set(ids)) == len(ids)


async def test_openai_errors_carry_x_request_id(
    client: httpx.AsyncClient, bare: httpx.AsyncClient
) -> None:
    url = "/openai/v1/chat/completions"
    messages = [{"role": "user", "content": PROMPT}]
    with trio.fail_after(5):
        replies = [
            await client.post(url, json={"model": "context-length", "messages": messages}),
            await client.post(url, json={"model": "rate-limited", "messages": messages}),
            await client.post(url, json={"model": "o3", "messages": messages, "stop": "x"}),
            await bare.post(url, json={"model": "healthy", "messages": messages}),
        ]
    assert [r.status_code for r in replies] == [400, 429, 400, 401]
    ids = [r.headers["x-request-id"] for r in replies]
    assert all(i.startswith("req_sim") for i in ids) and len(set(ids)) == len(ids)


async def test_groq_sends_x_request_id_on_every_reply(
    client: httpx.AsyncClient, bare: httpx.AsyncClient
) -> None:
    url = "/groq/openai/v1/chat/completions"
    messages = [{"role": "user", "content": PROMPT}]
    with trio.fail_after(5):
        replies = [
            await client.post(url, json={"model": "healthy", "messages": messages}),
            await client.post(url, json={"model": "healthy", "messages": messages, "stream": True}),
            await client.post(url, json={"model": "down", "messages": messages}),
            await client.post(url, json={"model": "context-length", "messages": messages}),
            await client.post(url, json={"model": "rate-limited", "messages": messages}),
            await client.post(url, json={"messages": messages}),  # no model
            await bare.post(url, json={"model": "healthy", "messages": messages}),
        ]
    assert [r.status_code for r in replies] == [200, 200, 503, 400, 429, 400, 401]
    assert all(r.headers["x-request-id"].startswith("req_sim") for r in replies)


async def test_providers_that_document_no_request_id_send_none(
    client: httpx.AsyncClient,
) -> None:
    messages = [{"role": "user", "content": PROMPT}]
    with trio.fail_after(5):
        for path in (
            "/xai/v1/chat/completions",
            "/mistral/v1/chat/completions",
            "/together/v1/chat/completions",
            "/deepseek/chat/completions",
        ):
            reply = await client.post(path, json={"model": "down", "messages": messages})
            assert reply.status_code >= 400, path
            assert not [h for h in reply.headers if "request-id" in h], path


# -- xAI streams -----------------------------------------------------------------------------


@pytest.mark.parametrize("model", ["healthy", "refusal"])
async def test_xai_streams_the_role_with_the_first_text(
    model: str, client: httpx.AsyncClient
) -> None:
    body = {"model": model, "messages": [{"role": "user", "content": PROMPT}], "stream": True}
    with trio.fail_after(5):
        response = await client.post("/xai/v1/chat/completions", json=body)
    deltas = [data["choices"][0]["delta"] for _, data in named_events(response)]
    assert deltas[0]["role"] == "assistant" and deltas[0]["content"]
    assert [d for d in deltas if "role" in d] == [deltas[0]]
    text = "".join(d.get("content") or "" for d in deltas)
    assert text == (REFUSAL_TEXT if model == "refusal" else expected_answer(model, PROMPT, None))


def _xai_final_role(base_url: str) -> str:
    client = openai.OpenAI(base_url=base_url + "/xai/v1", api_key="xai-k", max_retries=0)
    messages: list[ChatCompletionMessageParam] = [{"role": "user", "content": PROMPT}]
    with client, client.chat.completions.stream(model="grok-4.3", messages=messages) as stream:
        for _ in stream:
            pass
        return stream.get_final_completion().choices[0].message.role


async def test_the_openai_sdks_stream_helper_finds_the_xai_role(
    server: FakeProviderServer,
) -> None:
    with trio.fail_after(10):
        assert await trio.to_thread.run_sync(_xai_final_role, server.base_url) == "assistant"


@pytest.mark.parametrize(
    "model", ["healthy", "refusal", "error-after-200", "malformed", "no-terminator"]
)
async def test_perplexity_stream_events_are_numbered_in_order(
    model: str, client: httpx.AsyncClient
) -> None:
    body = {"model": model, "input": PROMPT, "stream": True}
    with trio.fail_after(5):
        response = await client.post("/perplexity/v1/responses", json=body)
    events = []
    for _, data in sse_events(response.text):
        try:
            events.append(json.loads(data))
        except ValueError:
            assert model == "malformed"  # the one broken event carries nothing to number
    numbers = [e["sequence_number"] for e in events]
    assert numbers == list(range(len(events))) and len(events) >= 3
    assert all(type(n) is int for n in numbers)
    last = {"healthy": "response.completed", "refusal": "response.completed"}
    last |= {"error-after-200": "response.failed", "malformed": "response.completed"}
    last["no-terminator"] = "response.output_item.done"
    assert events[-1]["type"] == last[model]


# -- unknown routes ----------------------------------------------------------------------------


async def test_an_unknown_route_is_a_404_in_its_providers_error_shape(
    client: httpx.AsyncClient,
) -> None:
    with trio.fail_after(5):
        anthropic = await client.post("/anthropic/v1/complete", json={})
        gemini = await client.post("/gemini/v1beta/models/healthy:countTokens", json={})
        ollama = await client.post("/ollama/api/generate", json={})
        perplexity = await client.post("/perplexity/v1/search", json={})
        xai = await client.get("/xai/v1/language-models")
        plain = await client.get("/v1/nothing-here")
    replies = (anthropic, gemini, ollama, perplexity, xai, plain)
    assert [r.status_code for r in replies] == [404] * 6
    body = anthropic.json()
    assert (body["type"], body["error"]["type"]) == ("error", "not_found_error")
    assert body["request_id"] == anthropic.headers["request-id"]
    assert gemini.json()["error"]["status"] == "NOT_FOUND"
    assert gemini.json()["error"]["code"] == 404
    assert isinstance(ollama.json()["error"], str) and "no route" in ollama.json()["error"]
    assert perplexity.json()["error"]["code"] == 404
    assert xai.json()["code"] == "Some requested entity was not found"
    assert plain.json()["error"]["type"] == "invalid_request_error"  # OpenAI's, the flavour


# -- Perplexity: what the Agent API bills is the model's price --------------------------------


@pytest.mark.parametrize(
    ("model", "per_mtok"),
    [("openai/gpt-5.4", None), ("perplexity/sonar", (0.25, 2.5)), ("healthy", (0.25, 2.5))],
)
async def test_perplexity_bills_each_model_at_its_own_price(
    client: httpx.AsyncClient, model: str, per_mtok: tuple[float, float] | None
) -> None:
    """The router settles a Perplexity answer on the cost it reports: the fake billed every
    model at sonar's price, a sixth of what gpt-5.4 costs through Perplexity."""
    from switchman.catalog._catalog import builtin_catalog

    if per_mtok is None:  # the catalog's price for it
        (spec,) = [
            m
            for m in builtin_catalog().models.values()
            if m.provider == "perplexity" and m.model_id == model
        ]
        per_mtok = (spec.input_per_mtok, spec.output_per_mtok)
    with trio.fail_after(5):
        response = await client.post(
            "/perplexity/v1/responses", json={"model": model, "input": PROMPT}
        )
    usage = response.json()["usage"]
    cost = usage["cost"]
    assert cost["input_cost"] == pytest.approx(usage["input_tokens"] * per_mtok[0] / 1e6)
    assert cost["output_cost"] == pytest.approx(usage["output_tokens"] * per_mtok[1] / 1e6)
    assert cost["total_cost"] == pytest.approx(
        cost["input_cost"] + cost["output_cost"] + 0.005, abs=1e-9
    )
