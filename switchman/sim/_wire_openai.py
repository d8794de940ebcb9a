"""OpenAI chat completions (also xAI, Mistral, Groq, Together, DeepSeek) and the
Responses-style Agent API that replaced Perplexity's Sonar chat completions."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from switchman.sim._plan import Failure, Plan
from switchman.sim._wire import (
    CREATED,
    SLOT,
    BadBody,
    Exchange,
    Headers,
    Parsed,
    Reply,
    Wire,
    answer_text,
    chat_messages,
    filler,
    json_reply,
    named,
    positive_int,
    provider_request,
    require_object,
    require_str,
    retry_headers,
    sse,
)

_MALFORMED: Final = (
    b'data: {"id":"chatcmpl-broken","object":"chat.completion.chunk",'
    b'"choices":[{"index":0,"delta":{"content":"\n\n'
)
_CONTEXT_LIMIT: Final = 128_000


def _openai_error(
    message: str, type_: str, code: str | None, param: str | None = None
) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


def _usage(plan: Plan) -> dict[str, Any]:
    usage = plan.usage
    return {
        "prompt_tokens": usage.input_tokens,
        "completion_tokens": usage.output_tokens,
        "total_tokens": usage.input_tokens + usage.output_tokens,
        "prompt_tokens_details": {"cached_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0},
    }


def _finish_reason(plan: Plan) -> str:
    return "length" if plan.finish_reason == "length" else "stop"


class OpenAIWire(Wire):
    """``POST .../chat/completions``: JSON, or SSE ``data:`` chunks ending with ``data: [DONE]``."""

    name = "openai"

    def parse(self, body: Any, *, path_model: str | None, stream: bool) -> Parsed:
        obj = require_object(body)
        model = require_str(obj, "model")
        messages = chat_messages(obj.get("messages"))
        max_tokens = positive_int(obj.get("max_completion_tokens")) or positive_int(
            obj.get("max_tokens")
        )
        options = obj.get("stream_options")
        return Parsed(
            model=model,
            request=provider_request(
                model, messages, max_tokens=max_tokens, stream=obj.get("stream") is True
            ),
            include_usage=isinstance(options, dict) and options.get("include_usage") is True,
        )

    def ok_headers(self, ex: Exchange) -> Headers:
        return (
            ("x-request-id", f"req_{ex.id}"),
            ("x-ratelimit-limit-requests", "10000"),
            ("x-ratelimit-remaining-requests", "9999"),
            ("x-ratelimit-reset-requests", "6ms"),
            ("x-ratelimit-limit-tokens", "200000"),
            ("x-ratelimit-remaining-tokens", "199000"),
            ("x-ratelimit-reset-tokens", "300ms"),
        )

    def bad_request(self, message: str) -> Reply:
        return json_reply(400, _openai_error(message, "invalid_request_error", None))

    def not_found(self, message: str) -> Reply:
        return json_reply(404, _openai_error(message, "invalid_request_error", "not_found"))

    def error(self, failure: Failure, ex: Exchange) -> Reply:
        model = ex.model
        match failure.kind:
            case "rate_limited":
                headers: Headers = (
                    ("x-ratelimit-limit-requests", "10000"),
                    ("x-ratelimit-remaining-requests", "0"),
                    ("x-ratelimit-limit-tokens", "200000"),
                    ("x-ratelimit-remaining-tokens", "200000"),
                )
                wait = ""
                if failure.retry_after is not None:
                    wait = f" Please try again in {failure.retry_after:g}s."
                    headers += (
                        ("x-ratelimit-reset-requests", f"{failure.retry_after:g}s"),
                        ("x-ratelimit-reset-tokens", "0s"),
                        *retry_headers(failure),
                    )
                message = (
                    f"Rate limit reached for {model} in organization org-sim on requests per "
                    f"min (RPM): Limit 10000, Used 10000, Requested 1.{wait}"
                )
                body = _openai_error(message, "requests", "rate_limit_exceeded")
                return json_reply(429, body, headers)
            case "server_error":
                message = "The server had an error while processing your request. Sorry about that!"
                return json_reply(500, _openai_error(message, "server_error", None))
            case "context_length":
                tokens = _CONTEXT_LIMIT + ex.plan.usage.input_tokens
                message = (
                    f"This model's maximum context length is {_CONTEXT_LIMIT} tokens. However, "
                    f"your messages resulted in {tokens} tokens. Please reduce the length of "
                    "the messages."
                )
                body = _openai_error(
                    message, "invalid_request_error", "context_length_exceeded", "messages"
                )
                return json_reply(400, body)
            case "content_policy":
                message = (
                    "Your request was rejected as a result of our safety system. Your prompt "
                    "may contain text that is not allowed by our safety system."
                )
                body = _openai_error(message, "invalid_request_error", "content_policy_violation")
                return json_reply(400, body)
            case "not_found":
                message = f"The model `{model}` does not exist or you do not have access to it."
                body = _openai_error(message, "invalid_request_error", "model_not_found")
                return json_reply(404, body)
            case _:
                message = "The server is overloaded or not ready yet."
                return json_reply(503, _openai_error(message, "server_error", None))

    def _base(self, ex: Exchange) -> dict[str, Any]:
        return {
            "id": f"chatcmpl-{ex.id}",
            "object": "chat.completion.chunk",
            "created": CREATED,
            "model": ex.model,
            "system_fingerprint": None,
        }

    def _chunk(self, ex: Exchange, delta: dict[str, Any], finish: str | None) -> dict[str, Any]:
        obj = self._base(ex)
        obj["choices"] = [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]
        if ex.parsed.include_usage:
            obj["usage"] = None
        return obj

    def whole(self, ex: Exchange) -> Reply:
        plan = ex.plan
        refused = plan.ending == "refusal"
        message: dict[str, Any] = {
            "role": "assistant",
            "content": None if refused else plan.text,
            "refusal": plan.refusal if refused else None,
            "annotations": [],
        }
        body = {
            "id": f"chatcmpl-{ex.id}",
            "object": "chat.completion",
            "created": CREATED,
            "model": ex.model,
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "logprobs": None,
                    "finish_reason": _finish_reason(plan),
                }
            ],
            "usage": _usage(plan),
            "service_tier": "default",
            "system_fingerprint": None,
        }
        return json_reply(200, body, self.ok_headers(ex))

    def head(self, ex: Exchange) -> bytes:
        return sse(self._chunk(ex, {"role": "assistant", "content": "", "refusal": None}, None))

    def chunker(self, ex: Exchange) -> Callable[[str], bytes]:
        return filler(self._chunk(ex, {"content": SLOT}, None), _sse_frame)

    def malformed(self, ex: Exchange) -> bytes:
        return _MALFORMED

    def finish(self, ex: Exchange) -> bytes:
        out = sse(self._chunk(ex, {}, _finish_reason(ex.plan)))
        if ex.parsed.include_usage:
            usage = self._base(ex)
            usage["choices"] = []
            usage["usage"] = _usage(ex.plan)
            out += sse(usage)
        return out

    def terminator(self, ex: Exchange) -> bytes:
        return b"data: [DONE]\n\n"

    def refusal(self, ex: Exchange) -> bytes:
        return sse(self._chunk(ex, {"refusal": ex.plan.refusal}, None)) + self.finish(ex)

    def mid_error(self, ex: Exchange) -> bytes:
        message = "The server had an error while processing your request. Sorry about that!"
        return sse(_openai_error(message, "server_error", None))


def _sse_frame(data: bytes) -> bytes:
    return b"data: " + data + b"\n\n"


# -- Perplexity's Agent API (OpenAI Responses-style) ----------------------------------------


def _responses_input(obj: dict[str, Any]) -> list[Any]:
    messages: list[Any] = []
    instructions = obj.get("instructions")
    if isinstance(instructions, str) and instructions:
        messages.append({"role": "system", "content": instructions})
    items = obj.get("input")
    if isinstance(items, str):
        messages.append({"role": "user", "content": items})
    elif isinstance(items, list):
        messages.extend(items)
    else:
        raise BadBody("input: a string or a list of messages is required")
    return messages


class ResponsesWire(Wire):
    """``POST /v1/responses`` (= ``/v1/agent``): a response object, or named SSE events
    ending with ``response.completed``."""

    name = "responses"

    def parse(self, body: Any, *, path_model: str | None, stream: bool) -> Parsed:
        obj = require_object(body)
        model = obj.get("model") or obj.get("preset")
        if not isinstance(model, str) or not model:
            raise BadBody("model: a non-empty string (or a preset) is required")
        messages = chat_messages(_responses_input(dict(obj)))
        max_tokens = positive_int(obj.get("max_output_tokens"))
        return Parsed(
            model=model,
            request=provider_request(
                model, messages, max_tokens=max_tokens, stream=obj.get("stream") is True
            ),
        )

    def bad_request(self, message: str) -> Reply:
        return json_reply(400, _pplx_error(message, "invalid_request", 400))

    def not_found(self, message: str) -> Reply:
        return json_reply(404, _pplx_error(message, "not_found", 404))

    def error(self, failure: Failure, ex: Exchange) -> Reply:
        match failure.kind:
            case "rate_limited":
                body = _pplx_error(
                    "Rate limit exceeded. Please retry after a short wait.",
                    "rate_limit_exceeded",
                    429,
                )
                return json_reply(429, body, retry_headers(failure))
            case "server_error":
                return json_reply(500, _pplx_error("Internal server error", "server_error", 500))
            case "context_length":
                message = f"Prompt too long: {ex.plan.usage.input_tokens} tokens over the limit"
                return json_reply(400, _pplx_error(message, "invalid_request", 400))
            case "content_policy":
                message = "The request was blocked by the content policy."
                return json_reply(400, _pplx_error(message, "content_policy_violation", 400))
            case "not_found":
                message = f"Model '{ex.model}' not found"
                return json_reply(404, _pplx_error(message, "not_found", 404))
            case _:
                return json_reply(503, _pplx_error("Service unavailable", "server_error", 503))

    def _message(self, ex: Exchange, status: str) -> dict[str, Any]:
        content: list[dict[str, Any]] = []
        if status == "completed":
            content = [{"type": "output_text", "text": answer_text(ex.plan), "annotations": []}]
        return {
            "type": "message",
            "id": f"msg_{ex.id}",
            "role": "assistant",
            "status": status,
            "content": content,
        }

    def _response(self, ex: Exchange, status: str) -> dict[str, Any]:
        plan = ex.plan
        obj: dict[str, Any] = {
            "id": f"resp_{ex.id}",
            "object": "response",
            "created_at": CREATED,
            "model": ex.model,
            "status": status,
            "output": [],
        }
        if status in ("completed", "incomplete"):
            obj["output"] = [self._message(ex, "completed")]
            obj["usage"] = {
                "input_tokens": plan.usage.input_tokens,
                "output_tokens": plan.usage.output_tokens,
                "total_tokens": plan.usage.input_tokens + plan.usage.output_tokens,
            }
        if status == "incomplete":
            obj["incomplete_details"] = {"reason": "max_output_tokens"}
        return obj

    def _final_status(self, plan: Plan) -> str:
        return "incomplete" if plan.finish_reason == "length" else "completed"

    def whole(self, ex: Exchange) -> Reply:
        return json_reply(200, self._response(ex, self._final_status(ex.plan)))

    def head(self, ex: Exchange) -> bytes:
        return named(
            "response.created",
            {"type": "response.created", "response": self._response(ex, "in_progress")},
        ) + named(
            "response.output_item.added",
            {
                "type": "response.output_item.added",
                "output_index": 0,
                "item": self._message(ex, "in_progress"),
            },
        )

    def chunker(self, ex: Exchange) -> Callable[[str], bytes]:
        event = {
            "type": "response.output_text.delta",
            "item_id": f"msg_{ex.id}",
            "output_index": 0,
            "content_index": 0,
            "delta": SLOT,
        }
        return filler(event, _named_frame(b"response.output_text.delta"))

    def malformed(self, ex: Exchange) -> bytes:
        return (
            b"event: response.output_text.delta\n"
            b'data: {"type":"response.output_text.delta","delta":"\n\n'
        )

    def finish(self, ex: Exchange) -> bytes:
        return named(
            "response.output_text.done",
            {
                "type": "response.output_text.done",
                "item_id": f"msg_{ex.id}",
                "output_index": 0,
                "content_index": 0,
                "text": answer_text(ex.plan),
            },
        ) + named(
            "response.output_item.done",
            {
                "type": "response.output_item.done",
                "output_index": 0,
                "item": self._message(ex, "completed"),
            },
        )

    def terminator(self, ex: Exchange) -> bytes:
        status = self._final_status(ex.plan)
        return named(
            "response.completed",
            {"type": "response.completed", "response": self._response(ex, status)},
        )

    def refusal(self, ex: Exchange) -> bytes:
        # Perplexity has no refusal signal: a refusal is ordinary answer text.
        return self.chunker(ex)(ex.plan.refusal) + self.finish(ex)

    def mid_error(self, ex: Exchange) -> bytes:
        response = self._response(ex, "failed")
        response["error"] = {"code": "server_error", "message": "The model failed mid-answer."}
        return named("response.failed", {"type": "response.failed", "response": response})


def _pplx_error(message: str, type_: str, code: int) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "code": code}}


def _named_frame(event: bytes) -> Callable[[bytes], bytes]:
    def frame(data: bytes) -> bytes:
        return b"event: " + event + b"\ndata: " + data + b"\n\n"

    return frame
