"""Ollama's native chat API: ``POST {base}/api/chat``, NDJSON streaming.

Sampling lives under ``options`` (``num_predict`` is the output limit, ``num_ctx``
the context the model runs with: see ``num_ctx``), the
stream is one JSON object per line and ends with the ``"done": true`` line that
carries ``prompt_eval_count`` / ``eval_count``. ``stream`` defaults to true on
the server, so it is always sent. No key locally; a key (Ollama cloud) is sent
as a bearer token. ``discover_ollama_models`` lists the pulled models.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import attrs
import httpx

from switchman._errors import ProviderError
from switchman.adapters._base import (
    Completion,
    HttpRequest,
    Malformed,
    ProviderRequest,
    StreamEnd,
    StreamEvent,
    TextDelta,
)
from switchman.adapters._sse import (
    LineDecoder,
    bad_reply,
    broken,
    collect,
    load_json,
    map_error,
    not_json,
    obj,
    stream_error,
    string,
    usage_of,
)
from switchman.adapters._think import ThinkBlock, without_think

DEFAULT_BASE_URL: Final = "http://localhost:11434"
#: the least ``num_ctx`` sent: Ollama's own default context (``OLLAMA_CONTEXT_LENGTH``
#: unset), so a short prompt runs with the context the server loaded the model with
MIN_NUM_CTX: Final = 4096
#: UTF-8 bytes a token when sizing ``num_ctx``: a denser guess than the router's four
#: characters a token (code, non-English text), since a context too small is cut
#: silently while one too large costs only memory
_BYTES_PER_TOKEN: Final = 3
#: role framing per message
_TOKENS_PER_MESSAGE: Final = 4
#: the most of ``max_tokens`` the context is sized for: an output budget is a ceiling,
#: not what an answer takes (the router asks up to 16,384 when a call sets none), and an
#: answer that runs longer makes Ollama shift its context, not cut the prompt
ANSWER_ROOM: Final = 2048


def num_ctx(request: ProviderRequest) -> int:
    """The context (``options.num_ctx``) to run ``request`` with.

    Ollama runs a model with its own default context (a few thousand tokens) unless a
    request says otherwise, and silently drops the start of a longer prompt. So: the
    estimated input (UTF-8 bytes / 3, plus 4 a message) plus ``max_tokens`` (at most
    ``ANSWER_ROOM`` of it), rounded up to a power of two, at least ``MIN_NUM_CTX``, at most
    the model's ``context_window`` when the request carries it. A power of two rather than a
    multiple of 1,024: Ollama reloads the model when ``num_ctx`` changes, and a conversation
    growing turn by turn then crosses a handful of sizes (4k, 8k, 16k...) instead of one
    every few turns, for at most twice the KV cache the request needs. Sent only above
    ``MIN_NUM_CTX``: any other ``num_ctx`` than the one a model was loaded with makes Ollama
    reload it, so a request that fits the default (or a server's larger
    ``OLLAMA_CONTEXT_LENGTH``) does not ask for a context of its own.
    """
    size = sum(len(m.content.encode()) for m in request.messages)
    tokens = -(-size // _BYTES_PER_TOKEN) + _TOKENS_PER_MESSAGE * len(request.messages)
    tokens += min(request.max_tokens or 0, ANSWER_ROOM)
    ctx = max(MIN_NUM_CTX, 1 << (tokens - 1).bit_length())
    window = request.context_window
    return window if window is not None and ctx > window else ctx


@attrs.frozen(kw_only=True)
class OllamaAdapter:
    """One Ollama server (local, or the cloud with a key, never shown)."""

    provider: str = "ollama"
    base_url: str = DEFAULT_BASE_URL
    api_key: str | None = attrs.field(default=None, repr=False)
    extra_headers: Mapping[str, str] = attrs.field(factory=dict)

    def build_request(self, request: ProviderRequest) -> HttpRequest:
        options: dict[str, Any] = {}
        for key, value in (
            ("temperature", request.temperature),
            ("top_p", request.top_p),
            ("num_predict", request.max_tokens),
            ("seed", request.seed),
        ):
            if value is not None:
                options[key] = value
        if request.stop:
            options["stop"] = list(request.stop)
        ctx = num_ctx(request)
        if ctx > MIN_NUM_CTX:  # (a request that fits the default leaves the loaded model be)
            options["num_ctx"] = ctx
        body: dict[str, Any] = {
            "model": request.model_id,
            "messages": [{"role": m.role, "content": m.content} for m in request.messages],
            "stream": request.stream,
        }
        if options:
            body["options"] = options
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        headers.update(self.extra_headers)
        return HttpRequest(
            method="POST", url=f"{self.base_url.rstrip('/')}/api/chat", headers=headers, json=body
        )

    def parse_response(self, body: bytes) -> Completion:
        try:
            data = obj(load_json(body))
        except ValueError:
            raise bad_reply(self.provider, "response body is not JSON") from None
        if "error" in data:
            raise stream_error(self.provider, data, secret=self.api_key, output_began=False)
        if "message" not in data:
            raise bad_reply(self.provider, "response has no message")
        text = string(obj(data.get("message")).get("content")) or ""
        return self._completion(data, without_think(text))

    def parse_error(self, status: int, headers: Mapping[str, str], body: bytes) -> ProviderError:
        return map_error(self.provider, status, headers, body, secret=self.api_key)

    def stream_parser(self) -> _OllamaStream:
        return _OllamaStream(self)

    @staticmethod
    def _completion(data: dict[str, Any], text: str) -> Completion:
        return Completion(
            text=text,
            finish_reason=string(data.get("done_reason")) or "stop",
            usage=usage_of(data, "prompt_eval_count", "eval_count"),
            model_id=string(data.get("model")),
        )


class _OllamaStream:
    """One JSON object per line; the ``done: true`` line ends the answer."""

    def __init__(self, adapter: OllamaAdapter) -> None:
        self._adapter = adapter
        self._lines = LineDecoder()
        self._text = False
        self._done = False
        self._think = ThinkBlock()  # (a reasoning block at the answer's start is no answer)

    #: the event with the finish reason is the last one: there is nothing after it to wait for
    finished = False

    def feed(self, data: bytes) -> list[StreamEvent]:
        return collect(self._handle, self._lines.feed(data))

    def end(self) -> list[StreamEvent]:
        events = collect(self._handle, self._lines.close())
        if self._done:
            return events
        raise broken(self._adapter.provider, self._text, 'without the "done": true line')

    def _handle(self, lines: list[str], events: list[StreamEvent]) -> None:
        for line in lines:
            if self._done or not line.strip():
                continue
            try:
                data = load_json(line)
            except ValueError:
                events.append(Malformed(detail=not_json(line)))
                continue
            if not isinstance(data, dict):
                events.append(Malformed(detail="line is not a JSON object"))
                continue
            if "error" in data:
                adapter = self._adapter
                raise stream_error(
                    adapter.provider, data, secret=adapter.api_key, output_began=self._text
                )
            raw = string(obj(data.get("message")).get("content"))
            text = self._think.feed(raw) if raw else ""
            if data.get("done") is True:
                text += self._think.end()
            if text:
                self._text = True
                events.append(TextDelta(text=text))
            if data.get("done") is True:
                self._done = True
                done = OllamaAdapter._completion(data, "")
                events.append(
                    StreamEnd(
                        finish_reason=done.finish_reason,
                        usage=done.usage,
                        model_id=done.model_id,
                    )
                )


async def discover_ollama_models(
    client: httpx.AsyncClient, base_url: str, headers: Mapping[str, str] | None = None
) -> list[str]:
    """The model names an Ollama server has pulled (``GET {base}/api/tags``, with
    ``headers``: its key, a proxy's); ``[]`` when it lists none (``list_ollama_models``)."""
    names, _ = await list_ollama_models(client, base_url, headers)
    return names


async def list_ollama_models(
    client: httpx.AsyncClient, base_url: str, headers: Mapping[str, str] | None = None
) -> tuple[list[str], str]:
    """The model names an Ollama server has pulled, and when there are none, why, in
    words for a log (``HTTP 401``, ``no answer``, ``an answer that is not its list``).

    Never raises for connection errors or timeouts (the client's timeouts apply; a
    cancellation propagates); the response is closed either way.
    """
    try:
        response = await client.get(f"{base_url.rstrip('/')}/api/tags", headers=headers)
    except httpx.HTTPError as exc:
        return [], f"no answer ({type(exc).__name__})"
    if response.status_code != 200:
        return [], f"HTTP {response.status_code}"
    try:
        models = obj(load_json(response.content)).get("models")
    except ValueError:
        return [], "an answer that is not its list"
    names = [string(obj(m).get("name")) for m in models] if isinstance(models, list) else []
    return [n for n in names if n], "an empty list"
