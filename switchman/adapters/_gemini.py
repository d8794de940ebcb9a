"""Google Gemini ``generateContent``: ``POST {base}/models/{model}:generateContent``.

Streaming is ``:streamGenerateContent?alt=sse``: ``data:`` events framed with
CRLF, no ``[DONE]``, the stream ends at EOF after the chunk carrying
``finishReason``. The model is in the path, not the body; roles are ``user``
and ``model``; the system prompt is ``systemInstruction``; sampling lives in
``generationConfig``. A blocked prompt is HTTP 200 with
``promptFeedback.blockReason`` and no candidates; a blocked answer has a safety
``finishReason``: both are ``Refused(content_filtered=True)`` keeping the reason.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import attrs

from switchman._errors import ContentRejected, ProviderError, Refused
from switchman._result import Usage
from switchman.adapters._base import (
    OPENING_TURN,
    Completion,
    HttpRequest,
    Malformed,
    ProviderRequest,
    StreamEnd,
    StreamEvent,
    TextDelta,
)
from switchman.adapters._sse import (
    SseDecoder,
    SseEvent,
    bad_reply,
    broken,
    collect,
    count,
    detailed_usage,
    first,
    load_json,
    map_error,
    not_json,
    obj,
    stream_error,
    string,
)

DEFAULT_BASE_URL: Final = "https://generativelanguage.googleapis.com/v1beta"
#: finish reasons that mean the answer was filtered
FILTERED: Final = frozenset(
    {
        "SAFETY",
        "RECITATION",
        "PROHIBITED_CONTENT",
        "BLOCKLIST",
        "SPII",
        "IMAGE_SAFETY",
        "IMAGE_PROHIBITED_CONTENT",
        "IMAGE_RECITATION",
    }
)


def _usage(data: dict[str, Any]) -> Usage:
    """Thinking tokens are billed as output but counted outside ``candidatesTokenCount``;
    ``cachedContentTokenCount`` is the part of ``promptTokenCount`` read from cache."""
    meta = obj(data.get("usageMetadata"))
    thoughts = count(meta.get("thoughtsTokenCount"))
    return detailed_usage(
        count(meta.get("promptTokenCount")),
        count(meta.get("candidatesTokenCount")) + thoughts,
        meta.get("cachedContentTokenCount"),
        thoughts,
    )


def _billed(error: ProviderError, usage: Usage | None) -> ProviderError:
    """``error`` carrying the ``usage`` the provider reported for the blocked request or
    answer (it bills it as it bills an answer's); none reported, or nothing in it:
    unbilled."""
    if usage is not None and (usage.input_tokens or usage.output_tokens):
        error.billed = (usage.input_tokens, usage.output_tokens)
    return error


def _text(candidate: dict[str, Any]) -> str:
    parts = obj(candidate.get("content")).get("parts")
    return "".join(
        p["text"]
        for p in (parts if isinstance(parts, list) else ())
        if isinstance(p, dict) and isinstance(p.get("text"), str) and not p.get("thought")
    )


@attrs.frozen(kw_only=True)
class GeminiAdapter:
    """The Gemini Developer API for one provider; ``api_key`` is never shown."""

    provider: str = "gemini"
    base_url: str = DEFAULT_BASE_URL
    api_key: str | None = attrs.field(default=None, repr=False)
    extra_headers: Mapping[str, str] = attrs.field(factory=dict)

    def build_request(self, request: ProviderRequest) -> HttpRequest:
        """The body; consecutive turns of one role become parts of one content, and a
        conversation opening with the model's turn gets a user turn before it
        (``OPENING_TURN``)."""
        contents: list[dict[str, Any]] = []
        for m in request.messages:
            if m.role == "system":
                continue
            role = "model" if m.role == "assistant" else "user"
            if contents and contents[-1]["role"] == role:
                contents[-1]["parts"].append({"text": m.content})
            else:
                contents.append({"role": role, "parts": [{"text": m.content}]})
        if contents and contents[0]["role"] == "model":  # the user's turn first
            contents.insert(0, {"role": "user", "parts": [{"text": OPENING_TURN}]})
        body: dict[str, Any] = {"contents": contents}
        system = [{"text": m.content} for m in request.messages if m.role == "system"]
        if system:
            body["systemInstruction"] = {"parts": system}
        config: dict[str, Any] = {}
        for key, value in (
            ("temperature", request.temperature),
            ("topP", request.top_p),
            ("maxOutputTokens", request.max_tokens),
            ("seed", request.seed),
        ):
            if value is not None:
                config[key] = value
        if request.stop:
            config["stopSequences"] = list(request.stop)
        if config:
            body["generationConfig"] = config
        model = request.model_id.removeprefix("models/")
        action = "streamGenerateContent?alt=sse" if request.stream else "generateContent"
        headers = {
            "Content-Type": "application/json",
            "Accept": "text/event-stream" if request.stream else "application/json",
        }
        if self.api_key:
            headers["x-goog-api-key"] = self.api_key
        headers.update(self.extra_headers)
        return HttpRequest(
            method="POST",
            url=f"{self.base_url.rstrip('/')}/models/{model}:{action}",
            headers=headers,
            json=body,
        )

    def parse_response(self, body: bytes) -> Completion:
        try:
            data = load_json(body)
        except ValueError:
            raise bad_reply(self.provider, "response body is not JSON") from None
        if isinstance(data, list):  # an unexpected array form: take the first response
            data = first(data)
        data = obj(data)
        candidate = self._check(data, output_began=False)
        if candidate is None:
            raise bad_reply(self.provider, "response has no candidates")
        return Completion(
            text=_text(candidate),
            finish_reason=string(candidate.get("finishReason")),
            usage=_usage(data),
            model_id=string(data.get("modelVersion")),
        )

    def parse_error(self, status: int, headers: Mapping[str, str], body: bytes) -> ProviderError:
        return map_error(self.provider, status, headers, body, secret=self.api_key)

    def stream_parser(self) -> _GeminiStream:
        return _GeminiStream(self)

    def _check(
        self, data: dict[str, Any], *, output_began: bool, usage: Usage | None = None
    ) -> dict[str, Any] | None:
        """Raise for an error or a block; the first candidate, if any.

        A block is billed the ``usage`` reported with it (the response's own
        ``usageMetadata`` unless a stream's earlier chunk said it): none, unbilled.
        """
        if "error" in data:
            raise stream_error(self.provider, data, secret=self.api_key, output_began=output_began)
        if usage is None and "usageMetadata" in data:
            usage = _usage(data)
        candidate = first(data.get("candidates"))
        feedback = obj(data.get("promptFeedback"))
        block = string(feedback.get("blockReason"))
        if not candidate and block:
            detail = string(feedback.get("blockReasonMessage"))
            # the request itself was rejected for its content: like a content-policy 400
            raise _billed(
                ContentRejected(
                    f"the prompt was blocked ({block})" + (f": {detail}" if detail else ""),
                    provider=self.provider,
                    status=200,
                ),
                usage,
            )
        finish = string(candidate.get("finishReason"))
        if finish in FILTERED or finish == "LANGUAGE":
            detail = string(candidate.get("finishMessage"))
            raise _billed(
                Refused(
                    f"the answer was stopped ({finish})" + (f": {detail}" if detail else ""),
                    provider=self.provider,
                    status=200,
                    content_filtered=finish in FILTERED,
                ),
                usage,
            )
        return candidate or None


class _GeminiStream:
    """Each ``data:`` event is a whole response holding only the new text.

    There is no terminator: the chunk carrying ``finishReason`` ends the answer.
    """

    def __init__(self, adapter: GeminiAdapter) -> None:
        self._adapter = adapter
        self._sse = SseDecoder()
        self._model: str | None = None
        self._usage = Usage()
        self._reported = False  # whether a chunk carried usageMetadata
        self._text = False
        self._done = False

    #: the event with the finish reason is the last one: there is nothing after it to wait for
    finished = False

    def feed(self, data: bytes) -> list[StreamEvent]:
        return collect(self._handle, self._sse.feed(data))

    def end(self) -> list[StreamEvent]:
        events = collect(self._handle, self._sse.close())
        if self._done:
            return events
        raise broken(self._adapter.provider, self._text, "without a finishReason")

    def _handle(self, sse_events: list[SseEvent], events: list[StreamEvent]) -> None:
        for sse in sse_events:
            if self._done:
                break
            # A bare JSON error (no ``data:`` prefix) can arrive mid-stream.
            for text in (sse.data, sse.raw):
                if text is None or self._done:
                    continue
                try:
                    chunk = load_json(text)
                except ValueError:
                    events.append(Malformed(detail=not_json(text)))
                    continue
                if isinstance(chunk, list):
                    chunk = first(chunk)
                if not isinstance(chunk, dict):
                    events.append(Malformed(detail="chunk is not a JSON object"))
                    continue
                events.extend(self._chunk(chunk))

    def _chunk(self, chunk: dict[str, Any]) -> list[StreamEvent]:
        if "usageMetadata" in chunk and "error" not in chunk:
            self._usage = _usage(chunk)
            self._reported = True
        usage = self._usage if self._reported else None
        candidate = self._adapter._check(chunk, output_began=self._text, usage=usage) or {}
        self._model = string(chunk.get("modelVersion")) or self._model
        events: list[StreamEvent] = []
        text = _text(candidate)
        if text:
            self._text = True
            events.append(TextDelta(text=text))
        finish = string(candidate.get("finishReason"))
        if finish is not None:
            # The chunk with finishReason is the last one (usage included): end now.
            self._done = True
            events.append(StreamEnd(finish_reason=finish, usage=self._usage, model_id=self._model))
        return events
