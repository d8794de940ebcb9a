"""OpenAI chat completions: ``POST .../chat/completions``.

``OpenAIWire`` is OpenAI's own flavour and the base of the OpenAI-compatible providers
(``_wire_xai``, ``_wire_mistral``, ``_wire_groq``, ``_wire_together``, ``_wire_deepseek``),
which change what their docs say differs.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, Final

from switchman.sim._plan import Failure, Plan
from switchman.sim._wire import (
    CREATED,
    SLOT,
    Exchange,
    Headers,
    Parsed,
    Rejected,
    Reply,
    Wire,
    answer_text,
    chat_messages,
    filler,
    json_reply,
    masked_key,
    positive_int,
    provider_request,
    reasoning_tokens,
    require_object,
    require_str,
    retry_headers,
    sse,
    with_header,
)

_MALFORMED: Final = (
    b'data: {"id":"chatcmpl-broken","object":"chat.completion.chunk",'
    b'"choices":[{"index":0,"delta":{"content":"\n\n'
)
_CONTEXT_LIMIT: Final = 128_000


def openai_error(
    message: str, type_: str, code: str | None, param: str | None = None
) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


def finish_reason(plan: Plan) -> str:
    """``length`` for an answer cut at max_tokens, else ``stop``."""
    return "length" if plan.finish_reason == "length" else "stop"


def sse_frame(data: bytes) -> bytes:
    """``data: <payload>`` and the blank line that ends the event."""
    return b"data: " + data + b"\n\n"


class OpenAIWire(Wire):
    """``POST .../chat/completions``: JSON, or SSE ``data:`` chunks ending with ``data: [DONE]``.

    OpenAI's own flavour; the OpenAI-compatible providers subclass it
    (``_wire_compat``) and change what differs: error shapes, rate-limit headers,
    when usage is sent, what they reject.
    """

    name = "openai"
    #: model families (by name prefix) that think before answering, billing reasoning tokens
    thinkers: ClassVar[tuple[str, ...]] = ("gpt-5", "o1", "o3", "o4")
    #: model families (by name prefix) that reject ``stop``
    no_stop: ClassVar[tuple[str, ...]] = ("o3", "o4-mini")
    #: whether chunks carry ``system_fingerprint``, and its value
    has_fingerprint: ClassVar[bool] = True
    fingerprint: ClassVar[str | None] = None
    #: whether a stream asked for usage carries ``usage: null`` on every chunk but the last
    usage_slot: ClassVar[bool] = True
    #: the header every reply carries the request id in (``req_...``), where documented
    request_id_header: ClassVar[str | None] = "x-request-id"

    # -- requests ---------------------------------------------------------------------------

    def parse(self, body: Any, *, path_model: str | None, stream: bool) -> Parsed:
        obj = require_object(body)
        model = require_str(obj, "model")
        messages = chat_messages(obj.get("messages"))
        max_tokens = positive_int(obj.get("max_completion_tokens")) or positive_int(
            obj.get("max_tokens")
        )
        name = model.rsplit("/", 1)[-1]
        self.check(obj, name)
        options = obj.get("stream_options")
        return Parsed(
            model=model,
            request=provider_request(
                model,
                messages,
                max_tokens=max_tokens,
                stream=obj.get("stream") is True,
                stop=obj.get("stop"),
            ),
            include_usage=isinstance(options, dict) and options.get("include_usage") is True,
            thinking=self.thinks(obj, name),
        )

    def check(self, obj: Mapping[str, Any], name: str) -> None:
        """Raise ``Rejected`` for what the provider refuses for model ``name`` (after the last /).

        OpenAI's reasoning models (o-series, GPT-5) reject ``max_tokens``; o3 and o4-mini
        reject ``stop``.
        """
        if "max_tokens" in obj and name.startswith(self.thinkers):
            raise Rejected(self._unsupported("max_tokens", " Use 'max_completion_tokens' instead."))
        if "stop" in obj and name.startswith(self.no_stop):
            raise Rejected(self._unsupported("stop", ""))

    def _unsupported(self, param: str, advice: str) -> Reply:
        message = f"Unsupported parameter: '{param}' is not supported with this model.{advice}"
        body = openai_error(message, "invalid_request_error", "unsupported_parameter", param)
        return json_reply(400, body)

    def thinks(self, obj: Mapping[str, Any], name: str) -> bool:
        """Whether model ``name`` thinks (and bills reasoning tokens) for this request."""
        return name.startswith(self.thinkers)

    # -- what a reply carries -------------------------------------------------------------

    def reply_id(self, ex: Exchange) -> str:
        return f"chatcmpl-{ex.id}"

    def usage(self, ex: Exchange) -> dict[str, Any]:
        """The usage object; a thinking model's reasoning tokens are inside completion_tokens."""
        usage = ex.plan.usage
        reasoning = reasoning_tokens(ex)
        completion = usage.output_tokens + reasoning
        return {
            "prompt_tokens": usage.input_tokens,
            "completion_tokens": completion,
            "total_tokens": usage.input_tokens + completion,
            "prompt_tokens_details": {"cached_tokens": usage.cached_input_tokens},
            "completion_tokens_details": {"reasoning_tokens": reasoning},
        }

    def stamped(self, reply: Reply, rid: str) -> Reply:
        """Errors too carry ``x-request-id`` (providers.md: OpenAI's, Groq's)."""
        if self.request_id_header is None:
            return reply
        return with_header(reply, self.request_id_header, f"req_{rid}")

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

    # -- errors ---------------------------------------------------------------------------

    def no_key(self) -> Reply:
        return self.bad_key("")

    def bad_key(self, key: str) -> Reply:
        shown = masked_key(key, keep_start=8, keep_end=4)
        message = (
            f"Incorrect API key provided: {shown}. You can find your API key at "
            "https://platform.openai.com/account/api-keys."
        )
        return json_reply(401, openai_error(message, "invalid_request_error", "invalid_api_key"))

    def bad_request(self, message: str) -> Reply:
        return json_reply(400, openai_error(message, "invalid_request_error", None))

    def not_found(self, message: str) -> Reply:
        return json_reply(404, openai_error(message, "invalid_request_error", "not_found"))

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
                body = openai_error(message, "requests", "rate_limit_exceeded")
                return json_reply(429, body, headers)
            case "bad_key":
                return self.bad_key(ex.key)
            case "quota_exhausted" | "spend_limit":
                message = (
                    "You exceeded your current quota, please check your plan and billing details."
                )
                body = openai_error(message, "insufficient_quota", "insufficient_quota")
                return json_reply(429, body)
            case "server_error":
                message = "The server had an error while processing your request. Sorry about that!"
                return json_reply(500, openai_error(message, "server_error", None))
            case "context_length":
                tokens = _CONTEXT_LIMIT + ex.plan.usage.input_tokens
                message = (
                    f"This model's maximum context length is {_CONTEXT_LIMIT} tokens. However, "
                    f"your messages resulted in {tokens} tokens. Please reduce the length of "
                    "the messages."
                )
                body = openai_error(
                    message, "invalid_request_error", "context_length_exceeded", "messages"
                )
                return json_reply(400, body)
            case "content_policy":
                message = (
                    "Your request was rejected as a result of our safety system. Your prompt "
                    "may contain text that is not allowed by our safety system."
                )
                body = openai_error(message, "invalid_request_error", "content_policy_violation")
                return json_reply(400, body)
            case "not_found":
                message = f"The model `{model}` does not exist or you do not have access to it."
                body = openai_error(message, "invalid_request_error", "model_not_found")
                return json_reply(404, body)
            case _:
                message = "The server is overloaded or not ready yet."
                return json_reply(503, openai_error(message, "server_error", None))

    # -- bodies and streams ---------------------------------------------------------------

    def base(self, ex: Exchange) -> dict[str, Any]:
        """The fields every chunk repeats."""
        obj: dict[str, Any] = {
            "id": self.reply_id(ex),
            "object": "chat.completion.chunk",
            "created": CREATED,
            "model": ex.model,
        }
        if self.has_fingerprint:
            obj["system_fingerprint"] = self.fingerprint
        return obj

    def chunk(self, ex: Exchange, delta: dict[str, Any], finish: str | None) -> dict[str, Any]:
        obj = self.base(ex)
        obj["choices"] = [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]
        if self.usage_slot and ex.parsed.include_usage:
            obj["usage"] = None
        return obj

    def message(self, ex: Exchange) -> dict[str, Any]:
        """The non-streaming reply's ``choices[0].message``."""
        plan = ex.plan
        refused = plan.ending == "refusal"
        return {
            "role": "assistant",
            "content": None if refused else plan.text,
            "refusal": plan.refusal if refused else None,
            "annotations": [],
        }

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
            "service_tier": "default",
            "system_fingerprint": None,
        }

    def whole(self, ex: Exchange) -> Reply:
        return json_reply(200, self.whole_body(ex), self.ok_headers(ex))

    def head(self, ex: Exchange) -> bytes:
        return sse(self.chunk(ex, {"role": "assistant", "content": "", "refusal": None}, None))

    def chunker(self, ex: Exchange) -> Callable[[str], bytes]:
        return filler(self.chunk(ex, {"content": SLOT}, None), sse_frame)

    def malformed(self, ex: Exchange) -> bytes:
        return _MALFORMED

    def finish(self, ex: Exchange) -> bytes:
        """The chunk with the finish reason; usage follows in a chunk of its own, only when
        the request asked for it (``stream_options.include_usage``)."""
        out = sse(self.chunk(ex, {}, finish_reason(ex.plan)))
        if ex.parsed.include_usage:
            usage = self.base(ex)
            usage["choices"] = []
            usage["usage"] = self.usage(ex)
            out += sse(usage)
        return out

    def terminator(self, ex: Exchange) -> bytes:
        return b"data: [DONE]\n\n"

    def refusal(self, ex: Exchange) -> bytes:
        return sse(self.chunk(ex, {"refusal": ex.plan.refusal}, None)) + self.finish(ex)

    def mid_error(self, ex: Exchange) -> bytes:
        message = "The server had an error while processing your request. Sorry about that!"
        return sse(openai_error(message, "server_error", None))


def reply_uuid(ex: Exchange) -> str:
    """A UUID for the reply, fixed by its exchange id."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"switchman-sim:{ex.id}"))


def reply_hex(ex: Exchange) -> str:
    """``reply_uuid`` as 32 hex digits."""
    return uuid.uuid5(uuid.NAMESPACE_URL, f"switchman-sim:{ex.id}").hex


def plain_usage(ex: Exchange, answered: int | None = None) -> dict[str, int]:
    """``{prompt_tokens, completion_tokens, total_tokens}`` of the plan; ``answered``, when
    given, is the output counted (what went out of an answer that broke off)."""
    usage = ex.plan.usage
    output = usage.output_tokens if answered is None else answered
    return {
        "prompt_tokens": usage.input_tokens,
        "completion_tokens": output,
        "total_tokens": usage.input_tokens + output,
    }


class PlainTextRefusal(OpenAIWire):
    """A provider with no refusal field: a refusal is the model's ordinary answer text."""

    thinkers: ClassVar[tuple[str, ...]] = ()
    no_stop: ClassVar[tuple[str, ...]] = ()

    def message(self, ex: Exchange) -> dict[str, Any]:
        return {"role": "assistant", "content": answer_text(ex.plan)}

    def refusal(self, ex: Exchange) -> bytes:
        return self.chunker(ex)(ex.plan.refusal) + self.finish(ex)
