"""Groq (providers.md section 6): a stream's usage always in ``x_groq.usage``."""

from __future__ import annotations

from typing import Any

from switchman.sim._plan import Failure
from switchman.sim._wire import (
    CREATED,
    Exchange,
    Headers,
    Reply,
    json_reply,
    sse,
)
from switchman.sim._wire_openai import (
    PlainTextRefusal,
    finish_reason,
    reply_uuid,
)


def _groq(status: int, message: str, type_: str, code: str | None, headers: Headers = ()) -> Reply:
    error: dict[str, Any] = {"message": message, "type": type_}
    if code is not None:
        error["code"] = code
    return json_reply(status, {"error": error}, headers)


class GroqWire(PlainTextRefusal):
    """Groq (providers.md section 6): ``{error: {message, type, code}}`` errors, the usage
    of a stream always in the final chunk's ``x_groq.usage`` (top-level ``usage`` only
    when asked for), a failure mid-answer as ``x_groq.error``."""

    name = "groq"
    fingerprint = "fp_sim"
    usage_slot = False

    def reply_id(self, ex: Exchange) -> str:
        return f"chatcmpl-{reply_uuid(ex)}"

    def usage(self, ex: Exchange) -> dict[str, Any]:
        usage = ex.plan.usage
        return {
            "queue_time": 0.021,
            "prompt_tokens": usage.input_tokens,
            "prompt_time": 0.004,
            "completion_tokens": usage.output_tokens,
            "completion_time": round(usage.output_tokens * 0.002, 3),
            "total_tokens": usage.input_tokens + usage.output_tokens,
            "total_time": round(0.004 + usage.output_tokens * 0.002, 3),
        }

    def ok_headers(self, ex: Exchange) -> Headers:
        return (
            ("x-request-id", f"req_{ex.id}"),
            ("x-ratelimit-limit-requests", "1000"),
            ("x-ratelimit-remaining-requests", "999"),
            ("x-ratelimit-reset-requests", "1m26.4s"),
            ("x-ratelimit-limit-tokens", "250000"),
            ("x-ratelimit-remaining-tokens", str(250_000 - ex.plan.usage.input_tokens)),
            ("x-ratelimit-reset-tokens", "7.66ms"),
        )

    def whole_body(self, ex: Exchange) -> dict[str, Any]:
        return {
            "id": self.reply_id(ex),
            "object": "chat.completion",
            "created": CREATED,
            "model": ex.model,
            "choices": [
                {
                    "index": 0,
                    "message": self.message(ex),
                    "logprobs": None,
                    "finish_reason": finish_reason(ex.plan),
                }
            ],
            "usage": self.usage(ex),
            "usage_breakdown": None,
            "system_fingerprint": self.fingerprint,
            "x_groq": {"id": f"req_{ex.id}"},
            "service_tier": "on_demand",
        }

    def head(self, ex: Exchange) -> bytes:
        chunk = self.chunk(ex, {"role": "assistant", "content": ""}, None)
        chunk["x_groq"] = {"id": f"req_{ex.id}"}
        return sse(chunk)

    def finish(self, ex: Exchange) -> bytes:
        chunk = self.chunk(ex, {}, finish_reason(ex.plan))
        chunk["x_groq"] = {"id": f"req_{ex.id}", "usage": self.usage(ex)}
        if ex.parsed.include_usage:
            chunk["usage"] = self.usage(ex)
        return sse(chunk)

    def no_key(self) -> Reply:
        return _groq(401, "Invalid API Key", "invalid_request_error", "invalid_api_key")

    def bad_request(self, message: str) -> Reply:
        return _groq(400, message, "invalid_request_error", None)

    def not_found(self, message: str) -> Reply:
        return _groq(404, message, "invalid_request_error", "model_not_found")

    def error(self, failure: Failure, ex: Exchange) -> Reply:
        """Groq documents no billing failure: a used-up quota is its 429, without hints."""
        match failure.kind:
            case "rate_limited" | "quota_exhausted" | "spend_limit":
                hint = failure.retry_after if failure.kind == "rate_limited" else None
                headers: Headers = (
                    ("x-ratelimit-limit-requests", "1000"),
                    ("x-ratelimit-remaining-requests", "990"),
                    ("x-ratelimit-limit-tokens", "250000"),
                    ("x-ratelimit-remaining-tokens", "0"),
                    ("x-request-id", f"req_{ex.id}"),
                )
                wait = ""
                if hint is not None:
                    wait = f" Please try again in {hint:g}s."
                    headers += (
                        ("retry-after", f"{hint:g}"),
                        ("x-ratelimit-reset-requests", "14m24s"),
                        ("x-ratelimit-reset-tokens", f"{hint:g}s"),
                    )
                message = (
                    f"Rate limit reached for model `{ex.model}` in organization `org_sim` "
                    "service tier `on_demand` on tokens per minute (TPM): Limit 250000, Used "
                    f"249800, Requested 1200.{wait} Visit https://console.groq.com/docs/"
                    "rate-limits for more information."
                )
                return _groq(429, message, "tokens", "rate_limit_exceeded", headers)
            case "bad_key":
                return self.no_key()
            case "server_error":
                return _groq(500, "Internal Server Error", "internal_server_error", None)
            case "context_length":
                message = "Please reduce the length of the messages or completion."
                return _groq(400, message, "invalid_request_error", "context_length_exceeded")
            case "content_policy":
                message = "The request was rejected by the content policy."
                return _groq(400, message, "invalid_request_error", None)
            case "not_found":
                message = f"The model `{ex.model}` does not exist or you do not have access to it."
                return self.not_found(message)
            case _:
                message = "Service Unavailable: the model is overloaded, please try again later."
                return _groq(503, message, "internal_server_error", "service_unavailable")

    def mid_error(self, ex: Exchange) -> bytes:
        chunk = self.chunk(ex, {}, None)
        chunk["x_groq"] = {"id": f"req_{ex.id}", "error": "the model failed mid-answer"}
        return sse(chunk)
