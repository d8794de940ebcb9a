"""Anthropic Messages API: ``POST {base}/v1/messages`` with named SSE events.

Quirks handled here: ``x-api-key`` + ``anthropic-version`` headers, the system
prompt as a top-level ``system`` field, ``max_tokens`` always sent (the API has
no default), ``stop_sequences``, no seed, a trailing assistant message kept as a
prefill (Anthropic continues it natively), ``stop_reason: refusal`` as
``Refused``, and an ``event: error`` after HTTP 200 mapped into the error tree.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import attrs

from switchman._errors import ProviderError, Refused
from switchman.adapters._base import (
    OPENING_TURN,
    Completion,
    HttpRequest,
    Malformed,
    ProviderRequest,
    StreamEnd,
    StreamEvent,
    TextDelta,
    alternating,
)
from switchman.adapters._sse import (
    SseDecoder,
    SseEvent,
    after_the_end,
    bad_reply,
    broken,
    collect,
    count,
    detailed_usage,
    load_json,
    map_error,
    not_json,
    obj,
    stream_error,
    string,
)

DEFAULT_BASE_URL: Final = "https://api.anthropic.com"
API_VERSION: Final = "2023-06-01"
#: sent when the request names no limit: the API requires one
DEFAULT_MAX_TOKENS: Final = 4096
#: Anthropic's temperature range is 0-1 (switchman's, like OpenAI's, is 0-2)
MAX_TEMPERATURE: Final = 1.0
#: the usage fields that together are the input the model read
_INPUT_FIELDS: Final = ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")


def _input_tokens(usage: dict[str, Any]) -> int:
    """All input the model read: ``input_tokens`` excludes cache writes and reads."""
    return sum(count(usage.get(name)) for name in _INPUT_FIELDS)


def _thinking(usage: dict[str, Any]) -> Any:
    """The output the model spent thinking, where reported (``output_tokens_details.
    thinking_tokens``, part of ``output_tokens``); None when not."""
    return obj(usage.get("output_tokens_details")).get("thinking_tokens")


@attrs.frozen(kw_only=True)
class AnthropicAdapter:
    """The Messages API for one provider; ``api_key`` is never shown in a repr or error."""

    provider: str = "anthropic"
    base_url: str = DEFAULT_BASE_URL
    api_key: str | None = attrs.field(default=None, repr=False)
    extra_headers: Mapping[str, str] = attrs.field(factory=dict)

    def build_request(self, request: ProviderRequest) -> HttpRequest:
        """The Messages body.

        Consecutive turns of one role are joined (the API wants alternation), and a
        conversation opening with the assistant's turn gets a user turn before it
        (``OPENING_TURN``: the API wants the user's first); a trailing assistant turn is
        the prefill, with trailing whitespace removed (the API rejects it). Temperature
        is clamped to Anthropic's 0-1 range (a value above 1 is sent as 1.0); ``top_p``
        (0-1 on both sides) is sent as it is, unless a temperature is sent too: Claude's
        models since Sonnet 4.5 reject the two together ("cannot both be specified"), and
        Anthropic advises setting one.
        """
        system, turns = alternating(request.messages)
        if turns and turns[-1]["role"] == "assistant":
            turns[-1]["content"] = turns[-1]["content"].rstrip()
        if turns and turns[0]["role"] == "assistant":
            turns.insert(0, {"role": "user", "content": OPENING_TURN})
        body: dict[str, Any] = {
            "model": request.model_id,
            "max_tokens": request.max_tokens or DEFAULT_MAX_TOKENS,
            "messages": turns,
        }
        if system:
            body["system"] = system
        if request.temperature is not None:
            body["temperature"] = min(request.temperature, MAX_TEMPERATURE)
        elif request.top_p is not None:
            body["top_p"] = request.top_p
        if request.stop:
            body["stop_sequences"] = list(request.stop)
        body["stream"] = request.stream
        headers = {
            "content-type": "application/json",
            "accept": "text/event-stream" if request.stream else "application/json",
            "anthropic-version": API_VERSION,
        }
        if self.api_key:
            headers["x-api-key"] = self.api_key
        headers.update(self.extra_headers)
        return HttpRequest(
            method="POST",
            url=f"{self.base_url.rstrip('/')}/v1/messages",
            headers=headers,
            json=body,
        )

    def parse_response(self, body: bytes) -> Completion:
        try:
            data = obj(load_json(body))
        except ValueError:
            raise bad_reply(self.provider, "response body is not JSON") from None
        if data.get("type") == "error" or "error" in data:
            raise stream_error(self.provider, data, secret=self.api_key, output_began=False)
        if data.get("type") != "message" and "content" not in data:
            raise bad_reply(self.provider, "response is not a message")
        stop_reason = string(data.get("stop_reason"))
        usage = obj(data.get("usage"))
        if stop_reason == "refusal":
            raise self._refused(
                data.get("stop_details"),
                (_input_tokens(usage), count(usage.get("output_tokens"))),
            )
        content = data.get("content")
        blocks: list[Any] = content if isinstance(content, list) else []
        text = "".join(
            b["text"]
            for b in blocks
            if isinstance(b, dict) and b.get("type") == "text" and isinstance(b.get("text"), str)
        )
        return Completion(
            text=text,
            finish_reason=stop_reason,
            usage=detailed_usage(
                _input_tokens(usage),
                count(usage.get("output_tokens")),
                usage.get("cache_read_input_tokens"),
                _thinking(usage),
            ),
            model_id=string(data.get("model")),
        )

    def parse_error(self, status: int, headers: Mapping[str, str], body: bytes) -> ProviderError:
        return map_error(self.provider, status, headers, body, secret=self.api_key)

    def stream_parser(self) -> _AnthropicStream:
        return _AnthropicStream(self)

    def _refused(self, details: Any, usage: tuple[int, int]) -> Refused:
        """The refusal ``details`` describe, billed the ``usage`` (input, output tokens) the
        response reported: the provider bills a refusal as it bills an answer (none
        reported: left unbilled)."""
        details = obj(details)
        reason = "the model refused to answer (stop_reason refusal)"
        category = string(details.get("category"))
        explanation = string(details.get("explanation"))
        if category:
            reason += f", category {category}"
        if explanation:
            reason += f": {explanation}"
        refused = Refused(reason, provider=self.provider, status=200)
        if any(usage):
            refused.billed = usage
        return refused


class _AnthropicStream:
    """``message_start`` ... ``content_block_delta`` ... ``message_delta`` ... ``message_stop``."""

    def __init__(self, adapter: AnthropicAdapter) -> None:
        self._adapter = adapter
        self._sse = SseDecoder()
        self._model: str | None = None
        self._input: dict[str, int] = {}
        self._output = 0
        #: ``message_delta`` gave the output's count (``message_start``'s is a placeholder,
        #: a token or so, whatever the answer comes to)
        self._output_said = False
        self._thinking: Any = None
        self._stop_reason: str | None = None
        self._text = False
        self._done = False

    @property
    def finished(self) -> bool:
        return self._stop_reason is not None

    def feed(self, data: bytes) -> list[StreamEvent]:
        return collect(self._handle, self._sse.feed(data))

    def end(self) -> list[StreamEvent]:
        rest = self._sse.close()
        if self._stop_reason is not None:  # a cut ``message_stop``: no text lost
            rest = after_the_end(rest, "content_block", typed=True)
        events = collect(self._handle, rest)
        if self._done:
            return events
        if self._stop_reason is not None:
            return [*events, self._end()]
        raise broken(self._adapter.provider, self._text, "without message_delta/message_stop")

    def _end(self) -> StreamEnd:
        self._done = True
        return StreamEnd(
            finish_reason=self._stop_reason,
            usage=detailed_usage(
                sum(self._input.values()),
                self._said_output(),
                self._input.get("cache_read_input_tokens"),
                self._thinking,
            ),
            model_id=self._model,
        )

    def _said_output(self) -> int:
        """The output's count as ``message_delta`` gave it; 0 (not said) when it gave none
        and text came: the attempt then bills the text's bound, as for any answer without
        usage (``message_start``'s placeholder billed a long answer as 1 token)."""
        return self._output if self._output_said or not self._text else 0

    def _handle(self, sse_events: list[SseEvent], events: list[StreamEvent]) -> None:
        for sse in sse_events:
            if self._done or sse.data is None:
                continue
            try:
                payload = load_json(sse.data)
            except ValueError:
                events.append(Malformed(detail=f"{sse.event or 'event'} {not_json(sse.data)}"))
                continue
            if not isinstance(payload, dict):
                events.append(Malformed(detail=f"{sse.event or 'event'} is not a JSON object"))
                continue
            kind = string(payload.get("type")) or sse.event or ""
            events.extend(self._event(kind, payload))

    def _event(self, kind: str, payload: dict[str, Any]) -> list[StreamEvent]:
        adapter = self._adapter
        if kind == "message_start":
            message = obj(payload.get("message"))
            self._model = string(message.get("model")) or self._model
            usage = obj(message.get("usage"))
            self._input = {name: count(usage.get(name)) for name in _INPUT_FIELDS}
            self._output = count(usage.get("output_tokens"))
            self._thinking = _thinking(usage)
        elif kind == "content_block_delta":
            delta = obj(payload.get("delta"))
            text = string(delta.get("text")) if delta.get("type") == "text_delta" else None
            if text:
                self._text = True
                self._stop_reason = None  # more text: the stop reason before it was not the end
                return [TextDelta(text=text)]
        elif kind == "message_delta":
            delta = obj(payload.get("delta"))
            usage = obj(payload.get("usage"))
            # cumulative counts; a field left out (or null) keeps what message_start said
            if usage.get("output_tokens") is not None:
                self._output = count(usage.get("output_tokens"))
                self._output_said = True
            if _thinking(usage) is not None:
                self._thinking = _thinking(usage)
            for name in _INPUT_FIELDS:
                if usage.get(name) is not None:
                    self._input[name] = count(usage.get(name))
            self._stop_reason = string(delta.get("stop_reason")) or self._stop_reason
            if self._stop_reason == "refusal":
                billed = (sum(self._input.values()), self._said_output())
                raise adapter._refused(delta.get("stop_details"), billed)
        elif kind == "message_stop":
            return [self._end()]
        elif kind == "error":
            raise stream_error(
                adapter.provider, payload, secret=adapter.api_key, output_began=self._text
            )
        return []
