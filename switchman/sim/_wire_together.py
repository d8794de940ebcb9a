"""Together (providers.md section 7): usage in every stream's final chunk, ``text`` beside
``delta``, a used-up free tier as a 429 ``credit_limit``."""

from __future__ import annotations

import zlib
from collections.abc import Callable
from typing import Any

from switchman.sim._plan import Failure
from switchman.sim._wire import (
    CREATED,
    SLOT,
    Exchange,
    Headers,
    Reply,
    filler,
    json_reply,
    sse,
)
from switchman.sim._wire_openai import (
    PlainTextRefusal,
    finish_reason,
    openai_error,
    plain_usage,
    sse_frame,
)


def _together(
    status: int, message: str, type_: str, code: str | None, headers: Headers = ()
) -> Reply:
    return json_reply(status, openai_error(message, type_, code), headers)


class TogetherWire(PlainTextRefusal):
    """Together (providers.md section 7): OpenAI's error shape, ``x-ratelimit-*`` and
    ``x-tokenlimit-*`` headers, stream chunks with ``text`` beside ``delta`` and the usage
    always in the final chunk, a used-up free tier as a 429 ``credit_limit``."""

    name = "together"
    request_id_header = None  # none documented
    has_fingerprint = False

    def reply_id(self, ex: Exchange) -> str:
        return f"oSim{zlib.crc32(ex.id.encode()):08x}-{ex.id}"

    def usage(self, ex: Exchange) -> dict[str, Any]:
        return plain_usage(ex)

    def ok_headers(self, ex: Exchange) -> Headers:
        return (
            ("x-ratelimit-limit", "60"),
            ("x-ratelimit-remaining", "59"),
            ("x-ratelimit-reset", "1"),
            ("x-tokenlimit-limit", "180000"),
            ("x-tokenlimit-remaining", str(180_000 - ex.plan.usage.input_tokens)),
        )

    def _stream_chunk(self, ex: Exchange, text: str, finish: str | None) -> dict[str, Any]:
        obj = self.base(ex)
        obj["choices"] = [
            {
                "index": 0,
                "text": text,
                "logprobs": None,
                "finish_reason": finish,
                "seed": 1234567890123456789 if finish else None,
                "delta": {
                    "token_id": 200002 if finish else 1000,
                    "role": "assistant",
                    "content": text,
                    "tool_calls": None,
                },
            }
        ]
        obj["usage"] = None
        return obj

    def whole_body(self, ex: Exchange) -> dict[str, Any]:
        message = self.message(ex)
        message["tool_calls"] = []
        return {
            "id": self.reply_id(ex),
            "object": "chat.completion",
            "created": CREATED,
            "model": ex.model,
            "prompt": [],
            "choices": [
                {
                    "finish_reason": finish_reason(ex.plan),
                    "seed": 1234567890123456789,
                    "index": 0,
                    "logprobs": None,
                    "message": message,
                }
            ],
            "usage": self.usage(ex),
        }

    def head(self, ex: Exchange) -> bytes:
        return b""  # the first chunk already carries text

    def chunker(self, ex: Exchange) -> Callable[[str], bytes]:
        return filler(self._stream_chunk(ex, SLOT, None), sse_frame)

    def finish(self, ex: Exchange) -> bytes:
        """The finish chunk always carries the usage (no ``stream_options`` needed)."""
        chunk = self._stream_chunk(ex, "", finish_reason(ex.plan))
        chunk["usage"] = self.usage(ex)
        return sse(chunk)

    def no_key(self) -> Reply:
        message = (
            "Invalid API key provided. You can find your API key at "
            "https://api.together.xyz/settings/api-keys."
        )
        return _together(401, message, "invalid_request_error", "invalid_api_key")

    def bad_request(self, message: str) -> Reply:
        return _together(400, message, "invalid_request_error", None)

    def not_found(self, message: str) -> Reply:
        return _together(404, message, "invalid_request_error", "model_not_available")

    def error(self, failure: Failure, ex: Exchange) -> Reply:
        match failure.kind:
            case "rate_limited":
                headers: Headers = (
                    ("x-ratelimit-limit", "60"),
                    ("x-ratelimit-remaining", "0"),
                )
                if failure.retry_after is not None:
                    headers += (("x-ratelimit-reset", f"{failure.retry_after:g}"),)
                message = (
                    f"You are being rate limited on model {ex.model}. Your rate limit is 60 "
                    "queries per minute."
                )
                return _together(429, message, "model_rate_limit", None, headers)
            case "quota_exhausted" | "spend_limit":
                message = (
                    "You have been rate limited. Your rate limit is 60 queries per minute. "
                    "Please navigate to https://api.together.xyz/settings/billing to upgrade to "
                    "a paid plan."
                )
                return _together(429, message, "credit_limit", None)
            case "bad_key":
                return self.no_key()
            case "server_error":
                return _together(500, "Internal server error", "server_error", None)
            case "context_length":
                tokens = 131_073 + ex.plan.usage.input_tokens
                message = (
                    "Input validation error: `inputs` tokens + `max_new_tokens` must be <= "
                    f"131073. Given: {tokens} `inputs` tokens and 0 `max_new_tokens`"
                )
                return _together(400, message, "invalid_request_error", None)
            case "content_policy":
                message = "The request was flagged by the safety model."
                return _together(400, message, "invalid_request_error", None)
            case "not_found":
                message = (
                    f"Unable to access model {ex.model}. Please visit "
                    "https://api.together.ai/models to view the list of supported models."
                )
                return self.not_found(message)
            case _:
                message = "The server is overloaded or not ready yet."
                return _together(503, message, "server_error", None)

    def mid_error(self, ex: Exchange) -> bytes:
        return sse(openai_error("The model failed mid-answer.", "server_error", None))
