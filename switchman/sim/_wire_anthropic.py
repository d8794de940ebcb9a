"""Anthropic Messages: ``POST /v1/messages``, JSON or named SSE events ending with message_stop."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any, Final

import attrs

from switchman.sim._plan import Failure, Plan
from switchman.sim._wire import (
    SLOT,
    BadBody,
    Exchange,
    Headers,
    Parsed,
    Rejected,
    Reply,
    Wire,
    bearer,
    chat_messages,
    dumps,
    filler,
    json_reply,
    named,
    positive_int,
    provider_request,
    require_object,
    require_str,
    retry_headers,
    rfc3339,
    text_of,
    with_header,
)

_CONTEXT_LIMIT: Final = 200_000
_STOP_DETAILS_CATEGORY: Final = "general_harms"
_VERSION_REQUIRED: Final = "anthropic-version: header is required"
#: per rate-limit family: its limit (a tier-4-like organisation)
_LIMITS: Final = {
    "requests": 4_000,
    "tokens": 2_400_000,
    "input-tokens": 2_000_000,
    "output-tokens": 400_000,
}
_BILLING: Final = (
    "Your credit balance is too low to access the Anthropic API. Please go to Plans & "
    "Billing to upgrade or purchase credits."
)
_SPEND_LIMIT: Final = (
    "You have reached your specified workspace API usage limits. You will regain access "
    "at the start of next month."
)


def _error(type_: str, message: str, request_id: str | None = None) -> dict[str, Any]:
    """An error body; without ``request_id``, ``AnthropicWire.stamped`` adds the reply's."""
    body: dict[str, Any] = {"type": "error", "error": {"type": type_, "message": message}}
    if request_id is not None:
        body["request_id"] = request_id
    return body


def _stop_reason(plan: Plan) -> str:
    if plan.ending == "refusal":
        return "refusal"
    if plan.stop_sequence is not None:
        return "stop_sequence"
    return "max_tokens" if plan.finish_reason == "length" else "end_turn"


def _stop_sequence(plan: Plan) -> str | None:
    """The stop sequence the answer ended at (``stop_reason: "stop_sequence"``), else None."""
    return None if plan.ending == "refusal" else plan.stop_sequence


def _stop_details(plan: Plan) -> dict[str, Any] | None:
    if plan.ending != "refusal":
        return None
    return {"type": "refusal", "category": _STOP_DETAILS_CATEGORY, "explanation": plan.refusal}


def _sse_frame(data: bytes) -> bytes:
    return b"event: content_block_delta\ndata: " + data + b"\n\n"


def _families(remaining: dict[str, int], wall: float, resets: dict[str, float] | None) -> Headers:
    """``anthropic-ratelimit-<family>-{limit,remaining,reset}`` for each family; resets are
    RFC 3339 times ``resets[family]`` seconds after ``wall`` (none when ``resets`` is None):
    a spent family's (remaining 0) rounded down, so it is never later than the 429's
    ``retry-after``, the others rounded up, so they are never in the past."""
    out: list[tuple[str, str]] = []
    for family, limit in _LIMITS.items():
        prefix = f"anthropic-ratelimit-{family}"
        out += [(f"{prefix}-limit", str(limit)), (f"{prefix}-remaining", str(remaining[family]))]
        if resets is not None:
            up = remaining[family] > 0
            out.append((f"{prefix}-reset", rfc3339(wall + resets[family], up=up)))
    return tuple(out)


class AnthropicWire(Wire):
    name = "anthropic"

    def api_key(self, headers: Mapping[str, str], query: Mapping[str, str]) -> str | None:
        """``x-api-key``, or an ``Authorization: Bearer`` token (the SDK sends one of them)."""
        return headers.get("x-api-key", "").strip() or bearer(headers)

    def refuse_headers(self, headers: Mapping[str, str], query: Mapping[str, str]) -> Reply | None:
        """No key: 401; no ``anthropic-version``: 400."""
        if self.api_key(headers, query) is None:
            return self.no_key()
        if not headers.get("anthropic-version", "").strip():
            body = _error("invalid_request_error", _VERSION_REQUIRED)
            return json_reply(400, body)
        return None

    def no_key(self) -> Reply:
        return json_reply(401, _error("authentication_error", "invalid x-api-key"))

    def stamped(self, reply: Reply, rid: str) -> Reply:
        """Every reply has a ``request-id`` header; an error's body repeats it as its
        ``request_id`` (providers.md section 2)."""
        reply = with_header(reply, "request-id", f"req_{rid}")
        if reply.status < 400:
            return reply
        body = json.loads(reply.body)
        if not isinstance(body, dict) or body.get("type") != "error":
            return reply
        body["request_id"] = dict(reply.headers)["request-id"]
        return attrs.evolve(reply, body=dumps(body))

    def parse(self, body: Any, *, path_model: str | None, stream: bool) -> Parsed:
        """Also rejects (400) a turn whose role is not ``user`` or ``assistant`` (a system
        prompt belongs in the top-level ``system``), a first turn not the user's, a prefill
        ending in whitespace, a temperature above 1, and
        ``temperature`` with ``top_p`` (Claude's models since Sonnet 4.5 take one or the
        other)."""
        obj = require_object(body)
        model = require_str(obj, "model")
        max_tokens = positive_int(obj.get("max_tokens"))
        if max_tokens is None:
            raise BadBody("max_tokens: Field required")
        items = obj.get("messages")
        for i, item in enumerate(items if isinstance(items, list) else ()):
            role = item.get("role") if isinstance(item, dict) else None
            if role == "system":
                message = (
                    'messages: Unexpected role "system". The Messages API accepts a top-level '
                    '`system` parameter, not "system" as an input message role.'
                )
                raise Rejected(self.bad_request(message))
            if role not in ("user", "assistant"):
                message = f"messages.{i}.role: Input should be 'user' or 'assistant'"
                raise Rejected(self.bad_request(message))
            if i == 0 and role != "user":
                raise Rejected(self.bad_request('messages: first message must use the "user" role'))
            last = isinstance(items, list) and i == len(items) - 1
            content = item.get("content")
            if (
                last
                and role == "assistant"
                and isinstance(content, str)
                and content != content.rstrip()
            ):
                message = "messages: final assistant content cannot end with trailing whitespace"
                raise Rejected(self.bad_request(message))
        temperature = obj.get("temperature")
        if isinstance(temperature, int | float) and not 0 <= temperature <= 1:
            message = "temperature: Input should be less than or equal to 1"
            if temperature < 0:
                message = "temperature: Input should be greater than or equal to 0"
            raise Rejected(self.bad_request(message))
        if temperature is not None and obj.get("top_p") is not None:
            message = (
                "`temperature` and `top_p` cannot both be specified for this model. "
                "Please use only one."
            )
            raise Rejected(self.bad_request(message))
        messages = chat_messages(items)
        request = provider_request(
            model,
            messages,
            max_tokens=max_tokens,
            stream=obj.get("stream") is True,
            system=text_of(obj.get("system")),
            stop=obj.get("stop_sequences"),
        )
        return Parsed(model=model, request=request)

    def ok_headers(self, ex: Exchange) -> Headers:
        """The four documented families, with headroom left and resets just ahead."""
        usage = ex.plan.usage
        remaining = {
            "requests": _LIMITS["requests"] - 1,
            "tokens": _LIMITS["tokens"] - usage.input_tokens - usage.output_tokens,
            "input-tokens": _LIMITS["input-tokens"] - usage.input_tokens,
            "output-tokens": _LIMITS["output-tokens"] - usage.output_tokens,
        }
        resets = {family: 1.0 for family in _LIMITS}
        return (("request-id", f"req_{ex.id}"), *_families(remaining, ex.wall, resets))

    def bad_request(self, message: str) -> Reply:
        return json_reply(400, _error("invalid_request_error", message))

    def not_found(self, message: str) -> Reply:
        return json_reply(404, _error("not_found_error", message))

    def error(self, failure: Failure, ex: Exchange) -> Reply:
        rid = f"req_{ex.id}"
        retry: Headers = (("x-should-retry", "true"),)
        match failure.kind:
            case "rate_limited":
                # the requests family is spent; without a retry hint, no reset times either
                remaining = dict(_LIMITS, requests=0)
                resets = None
                if failure.retry_after is not None:
                    resets = {family: 60.0 for family in _LIMITS}
                    resets["requests"] = failure.retry_after
                headers = (
                    *retry_headers(failure),
                    *_families(remaining, ex.wall, resets),
                    ("request-id", rid),
                    *retry,
                )
                message = (
                    "This request would exceed the rate limit for your organization of "
                    f"{_LIMITS['requests']} requests per minute. For details, refer to: "
                    "https://docs.claude.com/en/api/rate-limits. You can see the response "
                    "headers for current usage. Please try again later."
                )
                return json_reply(429, _error("rate_limit_error", message, rid), headers)
            case "bad_key":
                body = _error("authentication_error", "invalid x-api-key", rid)
                return json_reply(401, body, (("x-should-retry", "false"),))
            case "quota_exhausted":
                body = _error("billing_error", _BILLING, rid)
                return json_reply(402, body, (("x-should-retry", "false"),))
            case "spend_limit":
                body = _error("rate_limit_error", _SPEND_LIMIT, rid)
                body["error"]["details"] = {"error_code": "enforced_spend_limit_reached"}
                return json_reply(429, body, (("request-id", rid), ("x-should-retry", "false")))
            case "server_error":
                body = _error("api_error", "Internal server error", rid)
                return json_reply(500, body, retry)
            case "context_length":
                tokens = _CONTEXT_LIMIT + ex.plan.usage.input_tokens
                message = f"prompt is too long: {tokens} tokens > {_CONTEXT_LIMIT} maximum"
                return json_reply(400, _error("invalid_request_error", message, rid))
            case "content_policy":
                message = "Output blocked by content filtering policy"
                return json_reply(400, _error("invalid_request_error", message, rid))
            case "not_found":
                return json_reply(404, _error("not_found_error", f"model: {ex.model}", rid))
            case _:  # down or overloaded: the documented 529 (Anthropic lists no 503)
                return json_reply(529, _error("overloaded_error", "Overloaded", rid), retry)

    def _usage(self, plan: Plan) -> dict[str, int]:
        """``input_tokens`` leaves out what was read from cache (``cache_read_input_tokens``)."""
        cached = plan.usage.cached_input_tokens
        return {
            "input_tokens": plan.usage.input_tokens - cached,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": cached,
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
            "stop_sequence": _stop_sequence(plan),
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
            "stop_sequence": _stop_sequence(plan),
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
