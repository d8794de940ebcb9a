"""xAI (providers.md section 4): OpenAI's chat completions with flat ``{code, error}``
errors (a bad key is a 400), reasoning tokens billed outside ``completion_tokens``, and no
``stop`` on its reasoning models."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final

from switchman.sim._plan import Failure
from switchman.sim._wire import (
    CREATED,
    SLOT,
    Exchange,
    Headers,
    Rejected,
    Reply,
    filler,
    json_reply,
    masked_key,
    reasoning_tokens,
    retry_headers,
    sse,
)
from switchman.sim._wire_openai import (
    PlainTextRefusal,
    finish_reason,
    reply_uuid,
    sse_frame,
)

_GRPC_INVALID: Final = "Client specified an invalid argument"
_GRPC_EXHAUSTED: Final = "Some resource has been exhausted"


def _xai(status: int, code: str, error: str, headers: Headers = ()) -> Reply:
    return json_reply(status, {"code": code, "error": error}, headers)


class XaiWire(PlainTextRefusal):
    """xAI (providers.md section 4): flat ``{code, error}`` errors, a bad key is a 400,
    reasoning tokens outside ``completion_tokens``, no ``stop`` (nor penalties) on its
    reasoning models, usage in the finish chunk when asked for."""

    name = "xai"
    request_id_header = None  # none documented
    has_fingerprint = False
    thinkers = ("grok-4", "grok-3-mini", "grok-code-fast")

    def check(self, obj: Mapping[str, Any], name: str) -> None:
        if not name.startswith(self.thinkers):
            return
        for param in ("stop", "presence_penalty", "frequency_penalty"):
            if obj.get(param) is not None:
                message = f"Argument not supported on this model: {param}"
                raise Rejected(_xai(400, _GRPC_INVALID, message))

    def reply_id(self, ex: Exchange) -> str:
        return reply_uuid(ex)

    def usage(self, ex: Exchange) -> dict[str, Any]:
        """``completion_tokens`` leaves the reasoning out; ``total_tokens`` has it."""
        usage = ex.plan.usage
        reasoning = reasoning_tokens(ex)
        billed_out = usage.output_tokens + reasoning
        return {
            "prompt_tokens": usage.input_tokens,
            "completion_tokens": usage.output_tokens,
            "total_tokens": usage.input_tokens + billed_out,
            "prompt_tokens_details": {
                "text_tokens": usage.input_tokens,
                "audio_tokens": 0,
                "image_tokens": 0,
                "cached_tokens": usage.cached_input_tokens,
            },
            "completion_tokens_details": {
                "reasoning_tokens": reasoning,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
            "num_sources_used": 0,
            "cost_in_usd_ticks": usage.input_tokens * 30_000 + billed_out * 150_000,
        }

    def ok_headers(self, ex: Exchange) -> Headers:
        return ()  # its rate-limit header names are not documented

    def chunk(self, ex: Exchange, delta: dict[str, Any], finish: str | None) -> dict[str, Any]:
        obj = self.base(ex)
        choice: dict[str, Any] = {"index": 0, "delta": delta}
        if finish is not None:
            choice["finish_reason"] = finish
        obj["choices"] = [choice]
        obj["system_fingerprint"] = "fp_sim"
        return obj

    def whole_body(self, ex: Exchange) -> dict[str, Any]:
        message = self.message(ex)
        message["refusal"] = None
        return {
            "id": self.reply_id(ex),
            "object": "chat.completion",
            "created": CREATED,
            "model": ex.model,
            "choices": [{"index": 0, "message": message, "finish_reason": finish_reason(ex.plan)}],
            "usage": self.usage(ex),
            "system_fingerprint": "fp_sim",
        }

    def head(self, ex: Exchange) -> bytes:
        return b""  # the first chunk carries the role with the first text (``chunker``)

    def chunker(self, ex: Exchange) -> Callable[[str], bytes]:
        """The renderer of one stream's text chunks, called in order: the first carries
        ``"role": "assistant"`` beside its text (providers.md section 4 transcript)."""
        first = filler(self.chunk(ex, {"role": "assistant", "content": SLOT}, None), sse_frame)
        rest = super().chunker(ex)
        started = False

        def fill(text: str) -> bytes:
            nonlocal started
            if started:
                return rest(text)
            started = True
            return first(text)

        return fill

    def finish(self, ex: Exchange) -> bytes:
        """The finish chunk carries the usage, when the request asked for it."""
        chunk = self.chunk(ex, {}, finish_reason(ex.plan))
        if ex.parsed.include_usage:
            chunk["usage"] = self.usage(ex)
        return sse(chunk)

    def no_key(self) -> Reply:
        # providers.md §4: a missing key is 401 (its body unverified); a wrong one is 400
        message = "No API key provided. You can obtain an API key from https://console.x.ai."
        return _xai(401, "The request does not have valid authentication credentials", message)

    def bad_key(self, key: str) -> Reply:
        shown = masked_key(key, keep_start=2, keep_end=2, stars="***")
        message = (
            f"Incorrect API key provided: {shown}. You can obtain an API key from "
            "https://console.x.ai."
        )
        return _xai(400, _GRPC_INVALID, message)

    def bad_request(self, message: str) -> Reply:
        return _xai(400, _GRPC_INVALID, message)

    def not_found(self, message: str) -> Reply:
        return _xai(404, "Some requested entity was not found", message)

    def error(self, failure: Failure, ex: Exchange) -> Reply:
        match failure.kind:
            case "rate_limited":
                message = (
                    f"Too many requests for model {ex.model}: your team has exceeded its "
                    "requests per second limit. Please slow down."
                )
                return _xai(429, _GRPC_EXHAUSTED, message, retry_headers(failure))
            case "quota_exhausted" | "spend_limit":
                message = (
                    "Your team 0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0 has either used all "
                    "available credits or reached its monthly spending limit. To continue "
                    "making API requests, please purchase more credits or raise your spending "
                    "limit."
                )
                return _xai(429, _GRPC_EXHAUSTED, message)
            case "bad_key":
                return self.bad_key(ex.key)
            case "server_error":
                return _xai(500, "Internal error", "The service encountered an internal error.")
            case "context_length":
                tokens = 131_072 + ex.plan.usage.input_tokens
                message = (
                    f"This model's maximum prompt length is 131072 but the request contains "
                    f"{tokens} tokens."
                )
                return _xai(400, _GRPC_INVALID, message)
            case "content_policy":
                message = "Content violates usage guidelines. Failed check: SAFETY_CHECK_TYPE_BIO"
                return _xai(400, _GRPC_INVALID, message)
            case "not_found":
                message = (
                    f"The model {ex.model} does not exist or your team does not have access to it."
                )
                return self.not_found(message)
            case _:
                message = "The service is currently unavailable. Please try again later."
                return _xai(503, "The service is currently unavailable", message)

    def mid_error(self, ex: Exchange) -> bytes:
        return sse({"code": "Internal error", "error": "The model failed mid-answer."})
