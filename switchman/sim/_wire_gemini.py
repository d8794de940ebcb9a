"""Gemini: ``POST /v1beta/models/{model}:generateContent`` and ``:streamGenerateContent``
(``?alt=sse``: ``data:`` events with CRLF framing and no terminator; without it, one JSON array)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final

from switchman.sim._plan import Failure, Plan
from switchman.sim._wire import (
    SLOT,
    BadBody,
    Exchange,
    Parsed,
    Reply,
    Wire,
    chat_messages,
    dumps,
    filler,
    json_reply,
    positive_int,
    provider_request,
    reasoning_tokens,
    require_object,
    text_of,
)

_CONTEXT_LIMIT: Final = 1_048_576
#: model families (by name prefix) that think by default, reporting ``thoughtsTokenCount``
_THINKERS: Final = (
    "gemini-2.5-pro",
    "gemini-2.5-flash",
    "gemini-3",
    "gemini-4",
    "gemini-pro-latest",
    "gemini-flash-latest",
)
_BAD_KEY: Final = {
    "error": {
        "code": 400,
        "message": "API key not valid. Please pass a valid API key.",
        "status": "INVALID_ARGUMENT",
        "details": [
            {
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": "API_KEY_INVALID",
                "domain": "googleapis.com",
                "metadata": {"service": "generativelanguage.googleapis.com"},
            },
            {
                "@type": "type.googleapis.com/google.rpc.LocalizedMessage",
                "locale": "en-US",
                "message": "API key not valid. Please pass a valid API key.",
            },
        ],
    }
}
_ROLES: Final = frozenset({"user", "model", "function"})
_BLOCKED: Final = [
    {"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "HIGH", "blocked": True}
]


def _status_body(code: int, status: str, message: str, details: list[Any] | None = None) -> Any:
    error: dict[str, Any] = {"code": code, "message": message, "status": status}
    if details:
        error["details"] = details
    return {"error": error}


def _sse_frame(data: bytes) -> bytes:
    return b"data: " + data + b"\r\n\r\n"


def _contents(items: Any) -> list[Any]:
    if not isinstance(items, list):
        raise BadBody("contents: a list is required")
    for item in items:
        if isinstance(item, dict) and item.get("role", "user") not in _ROLES:
            raise BadBody("Please use a valid role: user, model.")
    return [
        {"role": item.get("role", "user"), "content": item.get("parts")}
        for item in items
        if isinstance(item, dict)
    ]


def _quota_failure(model: str, quota_id: str) -> dict[str, Any]:
    return {
        "@type": "type.googleapis.com/google.rpc.QuotaFailure",
        "violations": [
            {
                "quotaMetric": "generativelanguage.googleapis.com/generate_content_requests",
                "quotaId": quota_id,
                "quotaDimensions": {"location": "global", "model": model},
            }
        ],
    }


class GeminiWire(Wire):
    """Errors are ``{"error": {code, message, status, details}}``; a bad or missing key is a
    400 ``API_KEY_INVALID``; a 429 carries no header at all, its delay is the body's
    ``RetryInfo.retryDelay``; thinking models report ``thoughtsTokenCount`` outside
    ``candidatesTokenCount``."""

    name = "gemini"

    def api_key(self, headers: Mapping[str, str], query: Mapping[str, str]) -> str | None:
        """``x-goog-api-key``, or the ``key`` query parameter."""
        return headers.get("x-goog-api-key", "").strip() or query.get("key", "").strip() or None

    def no_key(self) -> Reply:
        return json_reply(400, _BAD_KEY)

    def parse(self, body: Any, *, path_model: str | None, stream: bool) -> Parsed:
        obj = require_object(body)
        if not path_model:
            raise BadBody("the model belongs in the path: /v1beta/models/{model}:generateContent")
        messages = chat_messages(_contents(obj.get("contents")))
        config = obj.get("generationConfig") or obj.get("generation_config") or {}
        max_tokens = (
            positive_int(config.get("maxOutputTokens")) if isinstance(config, dict) else None
        )
        system = obj.get("systemInstruction") or obj.get("system_instruction") or {}
        request = provider_request(
            path_model,
            messages,
            max_tokens=max_tokens,
            stream=stream,
            system=text_of(system.get("parts")) if isinstance(system, dict) else "",
            stop=config.get("stopSequences") if isinstance(config, dict) else None,
        )
        thinking = path_model.startswith(_THINKERS) and "lite" not in path_model
        return Parsed(model=path_model, request=request, thinking=thinking)

    def bad_request(self, message: str) -> Reply:
        return json_reply(400, _status_body(400, "INVALID_ARGUMENT", message))

    def not_found(self, message: str) -> Reply:
        return json_reply(404, _status_body(404, "NOT_FOUND", message))

    def error(self, failure: Failure, ex: Exchange) -> Reply:
        match failure.kind:
            case "rate_limited":
                per_minute = "GenerateRequestsPerMinutePerProjectPerModel"
                details: list[Any] = [_quota_failure(ex.model, per_minute)]
                if failure.retry_after is not None:
                    details.append(
                        {
                            "@type": "type.googleapis.com/google.rpc.RetryInfo",
                            "retryDelay": f"{failure.retry_after:g}s",
                        }
                    )
                message = (
                    "You exceeded your current quota, please check your plan and billing details."
                )
                body = _status_body(429, "RESOURCE_EXHAUSTED", message, details)
                return json_reply(429, body)
            case "quota_exhausted" | "spend_limit":
                # no billing failure is documented: the day's quota is spent, no retry delay
                per_day = "GenerateRequestsPerDayPerProjectPerModel-FreeTier"
                message = (
                    "You exceeded your current quota, please check your plan and billing "
                    "details. For more information on this error, head to: "
                    "https://ai.google.dev/gemini-api/docs/rate-limits."
                )
                body = _status_body(
                    429, "RESOURCE_EXHAUSTED", message, [_quota_failure(ex.model, per_day)]
                )
                return json_reply(429, body)
            case "bad_key":
                return self.no_key()
            case "server_error":
                message = "An internal error has occurred. Please retry or report the problem."
                return json_reply(500, _status_body(500, "INTERNAL", message))
            case "context_length":
                tokens = _CONTEXT_LIMIT + ex.plan.usage.input_tokens
                message = (
                    f"The input token count ({tokens}) exceeds the maximum number of tokens "
                    f"allowed ({_CONTEXT_LIMIT})."
                )
                return json_reply(400, _status_body(400, "INVALID_ARGUMENT", message))
            case "content_policy":
                # Gemini rejects a prompt for its content with a 200 and no candidates.
                body = {
                    "promptFeedback": {"blockReason": "SAFETY", "safetyRatings": _BLOCKED},
                    "usageMetadata": self._usage(ex, final=False),
                    "modelVersion": ex.model,
                    "responseId": ex.id,
                }
                if ex.parsed.request.stream:
                    return Reply(
                        status=200, body=_sse_frame(dumps(body)), content_type=self.stream_type
                    )
                return json_reply(200, [body] if ex.parsed.array else body)
            case "not_found":
                message = (
                    f"models/{ex.model} is not found for API version v1beta, or is not "
                    "supported for generateContent. Call ListModels to see the list of "
                    "available models and their supported methods."
                )
                return json_reply(404, _status_body(404, "NOT_FOUND", message))
            case _:
                message = "The model is overloaded. Please try again later."
                return json_reply(503, _status_body(503, "UNAVAILABLE", message))

    def _usage(self, ex: Exchange, *, final: bool) -> dict[str, int]:
        plan = ex.plan
        prompt = plan.usage.input_tokens
        cached = plan.usage.cached_input_tokens
        if not final:
            early = {"promptTokenCount": prompt, "totalTokenCount": prompt}
            return {**early, "cachedContentTokenCount": cached} if cached else early
        out = plan.usage.output_tokens
        usage = {"promptTokenCount": prompt, "candidatesTokenCount": out}
        if cached:  # (part of promptTokenCount)
            usage["cachedContentTokenCount"] = cached
        thoughts = reasoning_tokens(ex)
        if thoughts:
            usage["thoughtsTokenCount"] = thoughts
        usage["totalTokenCount"] = prompt + out + thoughts
        return usage

    def _chunk(self, ex: Exchange, text: str, finish: str | None, *, final: bool) -> Any:
        candidate: dict[str, Any] = {
            "content": {"parts": [{"text": text}], "role": "model"},
            "index": 0,
        }
        if finish is not None:
            candidate["finishReason"] = finish
        return {
            "candidates": [candidate],
            "usageMetadata": self._usage(ex, final=final),
            "modelVersion": ex.model,
            "responseId": ex.id,
        }

    def _refused(self, ex: Exchange) -> Any:
        return {
            "candidates": [{"finishReason": "SAFETY", "index": 0, "safetyRatings": _BLOCKED}],
            "usageMetadata": self._usage(ex, final=False),
            "modelVersion": ex.model,
            "responseId": ex.id,
        }

    def _finish_reason(self, plan: Plan) -> str:
        return "MAX_TOKENS" if plan.finish_reason == "length" else "STOP"

    def whole(self, ex: Exchange) -> Reply:
        plan = ex.plan
        if plan.ending == "refusal":
            body = self._refused(ex)
            return json_reply(200, [body] if ex.parsed.array else body)
        if ex.parsed.array:
            parts = [self._chunk(ex, chunk, None, final=False) for chunk in plan.chunks]
            parts.append(self._chunk(ex, "", self._finish_reason(plan), final=True))
            return json_reply(200, parts)
        return json_reply(200, self._chunk(ex, plan.text, self._finish_reason(plan), final=True))

    def chunker(self, ex: Exchange) -> Callable[[str], bytes]:
        return filler(self._chunk(ex, SLOT, None, final=False), _sse_frame)

    def malformed(self, ex: Exchange) -> bytes:
        return b'data: {"candidates":[{"content":{"parts":[{"text":"\r\n\r\n'

    def finish(self, ex: Exchange) -> bytes:
        return _sse_frame(dumps(self._chunk(ex, "", self._finish_reason(ex.plan), final=True)))

    def refusal(self, ex: Exchange) -> bytes:
        return _sse_frame(dumps(self._refused(ex)))

    def mid_error(self, ex: Exchange) -> bytes:
        """A raw JSON line, not a ``data:`` event (an SSE parser that drops unknown lines
        loses it)."""
        message = "The model is overloaded. Please try again later."
        return dumps(_status_body(503, "UNAVAILABLE", message)) + b"\r\n"
