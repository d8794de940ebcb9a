"""Anthropic Messages: ``POST /v1/messages``, JSON or named SSE events ending with message_stop."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from switchman.sim._plan import Failure, Plan
from switchman.sim._wire import (
    SLOT,
    BadBody,
    Exchange,
    Headers,
    Parsed,
    Reply,
    Wire,
    chat_messages,
    filler,
    json_reply,
    named,
    positive_int,
    provider_request,
    require_object,
    require_str,
    retry_headers,
    text_of,
)

_CONTEXT_LIMIT: Final = 200_000
_RESET: Final = "2025-11-25T16:01:00Z"
_STOP_DETAILS_CATEGORY: Final = "general_harms"


def _error(type_: str, message: str, request_id: str) -> dict[str, Any]:
    return {
        "type": "error",
        "error": {"type": type_, "message": message},
        "request_id": request_id,
    }


def _stop_reason(plan: Plan) -> str:
    if plan.ending == "refusal":
        return "refusal"
    return "max_tokens" if plan.finish_reason == "length" else "end_turn"


def _stop_details(plan: Plan) -> dict[str, Any] | None:
    if plan.ending != "refusal":
        return None
    return {"type": "refusal", "category": _STOP_DETAILS_CATEGORY, "explanation": plan.refusal}


def _sse_frame(data: bytes) -> bytes:
    return b"event: content_block_delta\ndata: " + data + b"\n\n"


class AnthropicWire(Wire):
    name = "anthropic"

    def parse(self, body: Any, *, path_model: str | None, stream: bool) -> Parsed:
        obj = require_object(body)
        model = require_str(obj, "model")
        max_tokens = positive_int(obj.get("max_tokens"))
        if max_tokens is None:
            raise BadBody("max_tokens: Field required")
        messages = chat_messages(obj.get("messages"))
        request = provider_request(
            model,
            messages,
            max_tokens=max_tokens,
            stream=obj.get("stream") is True,
            system=text_of(obj.get("system")),
        )
        return Parsed(model=model, request=request)

    def ok_headers(self, ex: Exchange) -> Headers:
        return (
            ("request-id", f"req_{ex.id}"),
            ("anthropic-ratelimit-requests-limit", "4000"),
            ("anthropic-ratelimit-requests-remaining", "3999"),
            ("anthropic-ratelimit-requests-reset", _RESET),
        )

    def bad_request(self, message: str) -> Reply:
        return json_reply(400, _error("invalid_request_error", message, "req_bad"))

    def not_found(self, message: str) -> Reply:
        return json_reply(404, _error("not_found_error", message, "req_missing"))

    def error(self, failure: Failure, ex: Exchange) -> Reply:
        rid = f"req_{ex.id}"
        retry: Headers = (("x-should-retry", "true"),)
        match failure.kind:
            case "rate_limited":
                headers = (
                    *retry_headers(failure),
                    ("anthropic-ratelimit-requests-limit", "50"),
                    ("anthropic-ratelimit-requests-remaining", "0"),
                    ("anthropic-ratelimit-requests-reset", _RESET),
                    ("request-id", rid),
                    *retry,
                )
                message = (
                    "This request would exceed the rate limit for your organization of 50 "
                    "requests per minute. Please try again later."
                )
                return json_reply(429, _error("rate_limit_error", message, rid), headers)
            case "server_error":
                body = _error("api_error", "Internal server error", rid)
                return json_reply(500, body, retry)
            case "unavailable":
                body = _error("api_error", "Service unavailable", rid)
                return json_reply(503, body, retry)
            case "context_length":
                tokens = _CONTEXT_LIMIT + ex.plan.usage.input_tokens
                message = f"prompt is too long: {tokens} tokens > {_CONTEXT_LIMIT} maximum"
                return json_reply(400, _error("invalid_request_error", message, rid))
            case "content_policy":
                message = "Output blocked by content filtering policy"
                return json_reply(400, _error("invalid_request_error", message, rid))
            case "not_found":
                return json_reply(404, _error("not_found_error", f"model: {ex.model}", rid))
            case _:
                return json_reply(529, _error("overloaded_error", "Overloaded", rid), retry)

    def _usage(self, plan: Plan) -> dict[str, int]:
        return {
            "input_tokens": plan.usage.input_tokens,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
            "output_tokens": plan.usage.output_tokens,
        }

    def whole(self, ex: Exchange) -> Reply:
        plan = ex.plan
        content = [] if plan.ending == "refusal" else [{"type": "text", "text": plan.text}]
        body = {
            "id": f"msg_{ex.id}",
            "type": "message",
            "role": "assistant",
            "model": ex.model,
            "content": content,
            "stop_reason": _stop_reason(plan),
            "stop_sequence": None,
            "stop_details": _stop_details(plan),
            "usage": self._usage(plan),
        }
        return json_reply(200, body, self.ok_headers(ex))

    def head(self, ex: Exchange) -> bytes:
        usage = dict(self._usage(ex.plan), output_tokens=1)
        message: dict[str, Any] = {
            "id": f"msg_{ex.id}",
            "type": "message",
            "role": "assistant",
            "model": ex.model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": usage,
        }
        out = named("message_start", {"type": "message_start", "message": message})
        if ex.plan.ending != "refusal":
            out += named(
                "content_block_start",
                {
                    "type": "content_block_start",
                    "index": 0,
                    "content_block": {"type": "text", "text": ""},
                },
            )
        return out + named("ping", {"type": "ping"})

    def chunker(self, ex: Exchange) -> Callable[[str], bytes]:
        event = {
            "type": "content_block_delta",
            "index": 0,
            "delta": {"type": "text_delta", "text": SLOT},
        }
        return filler(event, _sse_frame)

    def malformed(self, ex: Exchange) -> bytes:
        return (
            b"event: content_block_delta\n"
            b'data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"'
            b"\n\n"
        )

    def _message_delta(self, plan: Plan) -> bytes:
        delta = {
            "stop_reason": _stop_reason(plan),
            "stop_sequence": None,
            "stop_details": _stop_details(plan),
        }
        return named(
            "message_delta",
            {
                "type": "message_delta",
                "delta": delta,
                "usage": {"output_tokens": plan.usage.output_tokens},
            },
        )

    def finish(self, ex: Exchange) -> bytes:
        stop = named("content_block_stop", {"type": "content_block_stop", "index": 0})
        return stop + self._message_delta(ex.plan)

    def terminator(self, ex: Exchange) -> bytes:
        return named("message_stop", {"type": "message_stop"})

    def refusal(self, ex: Exchange) -> bytes:
        return self._message_delta(ex.plan)

    def mid_error(self, ex: Exchange) -> bytes:
        return named(
            "error",
            {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}},
        )
