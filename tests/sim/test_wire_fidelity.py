"""Details the providers' official SDKs rely on, read over real sockets with plain httpx.

Each test pins one thing an SDK pointed at the fake found it getting wrong (the
field a typed event requires, which stop sequence ended an answer, the request id
on an error...), against providers.md.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import trio

from tests.sim.conftest import PROMPT, sse_events

ANTHROPIC = {"x-api-key": "sk-ant-test", "anthropic-version": "2023-06-01"}


def named_events(response: httpx.Response) -> list[tuple[str | None, Any]]:
    """(event name, parsed data) of an SSE reply."""
    return [(name, json.loads(data)) for name, data in sse_events(response.text) if data]


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
