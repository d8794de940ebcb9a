"""A fake provider server on 127.0.0.1:0 per test, an httpx client for it, and wire helpers."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from typing import Any

import attrs
import httpx
import pytest
import trio

from switchman.sim import FakeProviderServer, FakeServerConfig, serve_fake_provider

PROMPT = "What is the capital of France?"
KEY = "sk-secret-value-0123456789"
#: every provider's key header (and Anthropic's version), so any route accepts a request
AUTH = {
    "authorization": f"Bearer {KEY}",
    "x-api-key": KEY,
    "x-goog-api-key": KEY,
    "anthropic-version": "2023-06-01",
}


@pytest.fixture
async def server() -> AsyncIterator[FakeProviderServer]:
    async with trio.open_nursery() as nursery:
        handle: FakeProviderServer = await nursery.start(serve_fake_provider, FakeServerConfig())
        yield handle
        nursery.cancel_scope.cancel()


@pytest.fixture
async def client(server: FakeProviderServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.base_url, timeout=5, headers=AUTH) as c:
        yield c


@pytest.fixture
async def bare(server: FakeProviderServer) -> AsyncIterator[httpx.AsyncClient]:
    """A client that sends no key and no provider header."""
    async with httpx.AsyncClient(base_url=server.base_url, timeout=5) as c:
        yield c


def sse_events(raw: str) -> list[tuple[str | None, str]]:
    """(event name, data) per SSE event; accepts LF and CRLF framing; a raw JSON line (not
    a ``data:`` field) counts as an event's data, as tolerant clients read it."""
    events: list[tuple[str | None, str]] = []
    for block in re.split(r"\r?\n\r?\n", raw):
        if not block.strip():
            continue
        name: str | None = None
        data: list[str] = []
        for line in block.splitlines():
            if line.startswith("event:"):
                name = line[len("event:") :].strip()
            elif line.startswith("data:"):
                data.append(line[len("data:") :].lstrip())
            elif line.startswith("{"):  # a raw JSON line (Gemini's error mid-stream)
                data.append(line)
        events.append((name, "\n".join(data)))
    return events


@attrs.frozen
class Streamed:
    """What a client made of a stream: text, parse failures, whether it ended properly."""

    text: str
    malformed: int
    terminated: bool
    finish: Any = None
    error: Any = None


def _loads(data: str) -> Any:
    try:
        return json.loads(data)
    except ValueError:
        return None


@attrs.frozen
class Format:
    """How a test speaks one wire format."""

    name: str
    path: str  # with {model} and {method} where the format needs them

    def post_json(self, model: str, *, stream: bool, max_tokens: int | None = None) -> Any:
        messages = [{"role": "user", "content": PROMPT}]
        if self.name == "openai":
            body: dict[str, Any] = {"model": model, "messages": messages, "stream": stream}
            if max_tokens:
                body["max_completion_tokens"] = max_tokens
            if stream:
                body["stream_options"] = {"include_usage": True}
            return body
        if self.name == "anthropic":
            return {
                "model": model,
                "max_tokens": max_tokens or 1024,
                "messages": messages,
                "stream": stream,
            }
        if self.name == "gemini":
            body = {"contents": [{"role": "user", "parts": [{"text": PROMPT}]}]}
            if max_tokens:
                body["generationConfig"] = {"maxOutputTokens": max_tokens}
            return body
        if self.name == "ollama":
            body = {"model": model, "messages": messages, "stream": stream}
            if max_tokens:
                body["options"] = {"num_predict": max_tokens}
            return body
        body = {"model": model, "input": PROMPT, "stream": stream}
        if max_tokens:
            body["max_output_tokens"] = max_tokens
        return body

    def url(self, model: str, *, stream: bool) -> str:
        if self.name == "gemini":
            method = "streamGenerateContent?alt=sse" if stream else "generateContent"
            return f"/v1beta/models/{model}:{method}"
        return self.path

    def request(
        self, client: httpx.AsyncClient, model: str, *, stream: bool, max_tokens: int | None = None
    ) -> httpx.Request:
        return client.build_request(
            "POST",
            self.url(model, stream=stream),
            json=self.post_json(model, stream=stream, max_tokens=max_tokens),
            headers=AUTH,
        )

    def text_of(self, body: Any) -> str | None:
        """Answer text of a non-streaming 200 body (None for a refusal)."""
        if self.name == "openai":
            content: str | None = body["choices"][0]["message"]["content"]
            return content
        if self.name == "anthropic":
            return "".join(b["text"] for b in body["content"] if b["type"] == "text") or None
        if self.name == "gemini":
            candidate = body["candidates"][0]
            if "content" not in candidate:
                return None
            return "".join(p["text"] for p in candidate["content"]["parts"])
        if self.name == "ollama":
            text: str = body["message"]["content"]
            return text
        return "".join(
            c["text"]
            for item in body["output"]
            if item["type"] == "message"
            for c in item["content"]
        )

    def streamed(self, raw: str) -> Streamed:
        """Parse a whole stream body the way a tolerant client would."""
        text, malformed, terminated, finish, error = [], 0, False, None, None
        if self.name == "ollama":
            for line in raw.splitlines():
                obj = _loads(line)
                if obj is None:
                    malformed += 1
                elif "error" in obj:
                    error = obj["error"]
                else:
                    text.append(obj["message"]["content"])
                    if obj["done"]:
                        terminated, finish = True, obj["done_reason"]
            return Streamed("".join(text), malformed, terminated, finish, error)
        for name, data in sse_events(raw):
            if data == "[DONE]":
                terminated = True
                continue
            obj = _loads(data)
            if obj is None:
                malformed += 1
                continue
            if "error" in obj and self.name != "responses":
                error = obj["error"]
            elif self.name == "openai":
                for choice in obj["choices"]:
                    text.append(choice["delta"].get("content") or "")
                    finish = choice["finish_reason"] or finish
            elif self.name == "anthropic":
                if name == "content_block_delta":
                    text.append(obj["delta"]["text"])
                elif name == "message_delta":
                    finish = obj["delta"]["stop_reason"]
                elif name == "message_stop":
                    terminated = True
            elif self.name == "gemini":
                candidate = obj["candidates"][0]
                for part in candidate.get("content", {}).get("parts", []):
                    text.append(part["text"])
                finish = candidate.get("finishReason") or finish
                terminated = True  # Gemini streams end at EOF
            elif name == "response.output_text.delta":
                text.append(obj["delta"])
            elif name == "response.completed":
                terminated, finish = True, obj["response"]["status"]
            elif name == "response.failed":
                error = obj["error"]
        return Streamed("".join(text), malformed, terminated, finish, error)


FORMATS = [
    Format("openai", "/v1/chat/completions"),
    Format("anthropic", "/v1/messages"),
    Format("gemini", "/v1beta/models/{model}:{method}"),
    Format("ollama", "/api/chat"),
    Format("responses", "/v1/responses"),
]


@pytest.fixture(params=FORMATS, ids=[f.name for f in FORMATS])
def fmt(request: pytest.FixtureRequest) -> Format:
    value: Format = request.param
    return value
