"""Mistral (providers.md section 5): ``{object: "error", ...}`` errors, a 422 for any field
it does not take, usage in every stream's final chunk."""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from typing import Any, Final

from switchman.sim._plan import Failure
from switchman.sim._wire import (
    CREATED,
    Exchange,
    Headers,
    Parsed,
    Rejected,
    Reply,
    answer_text,
    delivered_tokens,
    json_reply,
    sse,
)
from switchman.sim._wire_openai import (
    PlainTextRefusal,
    finish_reason,
    plain_usage,
    reply_hex,
)

#: the request fields Mistral's chat completions take (providers.md section 5); any other
#: is a 422 ``extra_forbidden``
_MISTRAL_FIELDS: Final = frozenset(
    {
        "model",
        "messages",
        "max_tokens",
        "temperature",
        "top_p",
        "stop",
        "random_seed",
        "n",
        "presence_penalty",
        "frequency_penalty",
        "response_format",
        "tools",
        "tool_choice",
        "parallel_tool_calls",
        "prediction",
        "reasoning_effort",
        "prompt_mode",
        "guardrails",
        "prompt_cache_key",
        "safe_prompt",
        "metadata",
        "stream",
    }
)
_MISTRAL_MESSAGE_FIELDS: Final[Mapping[str, frozenset[str]]] = {
    "system": frozenset({"role", "content"}),
    "user": frozenset({"role", "content"}),
    "assistant": frozenset({"role", "content", "tool_calls", "prefix"}),
    "tool": frozenset({"role", "content", "tool_call_id", "name"}),
}


def _mistral(
    status: int, message: Any, type_: str, code: str | None, headers: Headers = ()
) -> Reply:
    body = {"object": "error", "message": message, "type": type_, "param": None, "code": code}
    return json_reply(status, body, headers)


def _extra_forbidden(obj: Mapping[str, Any]) -> list[dict[str, Any]]:
    extra = [
        {
            "type": "extra_forbidden",
            "loc": ["body", key],
            "msg": "Extra inputs are not permitted",
            "input": obj[key],
        }
        for key in obj
        if key not in _MISTRAL_FIELDS
    ]
    messages = obj.get("messages")
    for i, item in enumerate(messages if isinstance(messages, list) else ()):
        if not isinstance(item, dict):
            continue
        role = str(item.get("role"))
        allowed = _MISTRAL_MESSAGE_FIELDS.get(role, frozenset({"role", "content"}))
        extra.extend(
            {
                "type": "extra_forbidden",
                "loc": ["body", "messages", i, role, key],
                "msg": "Extra inputs are not permitted",
                "input": item[key],
            }
            for key in item
            if key not in allowed
        )
    return extra


def _said_again(ex: Exchange) -> str:
    """A ``prefix`` turn's text, which Mistral's answer begins with again (as its API's
    users see it: the prefill comes back at the start of the reply); "" for another
    request."""
    messages = ex.parsed.request.messages
    return messages[-1].content if messages and messages[-1].role == "assistant" else ""


class MistralWire(PlainTextRefusal):
    """Mistral (providers.md section 5): ``{object: "error", ...}`` errors, 422s for fields
    it does not take, usage in the final chunk whether asked for or not, capacity
    problems as a 429, a failure mid-answer as ``finish_reason: "error"``."""

    name = "mistral"
    request_id_header = None  # none documented
    has_fingerprint = False

    def parse(self, body: Any, *, path_model: str | None, stream: bool) -> Parsed:
        if isinstance(body, dict):
            missing = [
                {"type": "missing", "loc": ["body", key], "msg": "Field required", "input": body}
                for key in ("model", "messages")
                if key not in body
            ]
            if missing:
                raise Rejected(json_reply(422, {"detail": missing}))
        return super().parse(body, path_model=path_model, stream=stream)

    def check(self, obj: Mapping[str, Any], name: str) -> None:
        """Also a 400 for a system turn after another role's, and for a conversation
        ending with the assistant's turn that is not a ``prefix``."""
        extra = _extra_forbidden(obj)
        if extra:
            raise Rejected(_mistral(422, {"detail": extra}, "invalid_request_error", None))
        messages = [m for m in obj.get("messages") or () if isinstance(m, dict)]
        roles = [m.get("role") for m in messages]
        for before, role in itertools.pairwise(roles):
            if role == "system" and before != "system":
                message = f"Unexpected role 'system' after role '{before}'"
                raise Rejected(_mistral(400, message, "invalid_request_message_order", "3230"))
        if roles and roles[-1] == "assistant" and messages[-1].get("prefix") is not True:
            message = (
                "Expected last role User or Tool (or Assistant with prefix True) for serving"
                " but got assistant"
            )
            raise Rejected(_mistral(400, message, "invalid_request_message_order", "3230"))

    def reply_id(self, ex: Exchange) -> str:
        return f"cmpl-{reply_hex(ex)}"

    def usage(self, ex: Exchange, answered: int | None = None) -> dict[str, Any]:
        """``answered``, when given, is the output counted (``plain_usage``)."""
        return plain_usage(ex, answered)

    def ok_headers(self, ex: Exchange) -> Headers:
        return (
            ("x-ratelimit-limit-req-minute", "60"),
            ("x-ratelimit-remaining-req-minute", "59"),
            ("x-ratelimit-limit-tokens-minute", "500000"),
            ("x-ratelimit-remaining-tokens-minute", str(500_000 - ex.plan.usage.input_tokens)),
            ("x-ratelimit-tokens-query-cost", str(ex.plan.usage.input_tokens)),
        )

    def chunk(self, ex: Exchange, delta: dict[str, Any], finish: str | None) -> dict[str, Any]:
        obj = self.base(ex)
        obj["choices"] = [{"index": 0, "delta": delta, "finish_reason": finish}]
        return obj

    def message(self, ex: Exchange) -> dict[str, Any]:
        content = _said_again(ex) + answer_text(ex.plan)
        return {"role": "assistant", "content": content, "tool_calls": None}

    def whole_body(self, ex: Exchange) -> dict[str, Any]:
        return {
            "id": self.reply_id(ex),
            "object": "chat.completion",
            "model": ex.model,
            "usage": self.usage(ex),
            "created": CREATED,
            "choices": [
                {"index": 0, "message": self.message(ex), "finish_reason": finish_reason(ex.plan)}
            ],
        }

    def head(self, ex: Exchange) -> bytes:
        """The role, and the prefix of a ``prefix`` turn, said again first."""
        return sse(self.chunk(ex, {"role": "assistant", "content": _said_again(ex)}, None))

    def finish(self, ex: Exchange) -> bytes:
        """The finish chunk always carries the usage (Mistral takes no ``stream_options``)."""
        return self._final(ex, finish_reason(ex.plan))

    def _final(self, ex: Exchange, finish: str, answered: int | None = None) -> bytes:
        chunk = self.chunk(ex, {"content": ""}, finish)
        chunk["usage"] = self.usage(ex, answered)
        return sse(chunk)

    def no_key(self) -> Reply:
        return json_reply(401, {"message": "Unauthorized", "request_id": "0" * 32})

    def bad_request(self, message: str) -> Reply:
        detail = [{"type": "value_error", "loc": ["body"], "msg": message, "input": None}]
        return json_reply(422, {"detail": detail})

    def not_found(self, message: str) -> Reply:
        return _mistral(404, message, "not_found", None)

    def _rate_limited(self) -> Reply:
        headers = (
            ("x-ratelimit-limit-req-minute", "60"),
            ("x-ratelimit-remaining-req-minute", "0"),
            ("x-ratelimit-limit-tokens-minute", "500000"),
            ("x-ratelimit-remaining-tokens-minute", "498112"),
            ("x-ratelimit-tokens-query-cost", "0"),
        )
        return _mistral(429, "Rate limit exceeded", "rate_limited", "1300", headers)

    def error(self, failure: Failure, ex: Exchange) -> Reply:
        """No retry hint is documented (none is sent); no billing failure either, so a used-up
        quota is the plain 429; an unknown model is a 400 ``invalid_model``."""
        match failure.kind:
            case "rate_limited" | "quota_exhausted" | "spend_limit":
                return self._rate_limited()
            case "bad_key":
                return self.no_key()
            case "overloaded":
                message = "Service tier capacity exceeded for this model."
                return _mistral(429, message, "service_tier_capacity_exceeded", "3505")
            case "server_error":
                return _mistral(500, "Internal server error", "internal_server_error", None)
            case "context_length":
                tokens = 131_072 + ex.plan.usage.input_tokens
                message = (
                    f"Prompt contains {tokens} tokens and 0 draft tokens, too large for model "
                    "with 131072 maximum context length"
                )
                return _mistral(400, message, "invalid_request_error", None)
            case "content_policy":
                message = "The request was blocked by the moderation guardrails."
                return _mistral(400, message, "invalid_request_error", None)
            case "not_found":
                return _mistral(400, f"Invalid model: {ex.model}", "invalid_model", "1500")
            case _:
                return _mistral(503, "Service unavailable", "service_unavailable", None)

    def mid_error(self, ex: Exchange) -> bytes:
        """``finish_reason: "error"``; the usage counts only the text that went out."""
        return self._final(ex, "error", delivered_tokens(ex.plan)) + self.terminator(ex)
