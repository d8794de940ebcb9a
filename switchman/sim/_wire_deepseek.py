"""DeepSeek (providers.md section 8): thinking by default, ``: keep-alive`` comments, a 402
for a used-up balance."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, ClassVar, Final

from switchman.sim._plan import Failure, Plan
from switchman.sim._wire import (
    CREATED,
    SLOT,
    Exchange,
    Headers,
    Rejected,
    Reply,
    delivered_tokens,
    dumps,
    filler,
    json_reply,
    masked_key,
    reasoning_tokens,
    sse,
    thinking_text,
)
from switchman.sim._wire_openai import (
    OpenAIWire,
    finish_reason,
    openai_error,
    reply_uuid,
    sse_frame,
)

_DS_CODE: Final = "invalid_request_error"
_KEEP_ALIVE: Final = b": keep-alive\n\n"
_THINKING_MULTI_TURN: Final = (
    "The reasoning_content in the thinking mode must be passed back to the API."
)


def _deepseek(status: int, message: str, type_: str, code: str = _DS_CODE) -> Reply:
    return json_reply(status, openai_error(message, type_, code))


class DeepSeekWire(OpenAIWire):
    """DeepSeek (providers.md section 8): thinking by default (``thinking: {"type":
    "disabled"}`` turns it off), its ``reasoning_content`` streamed before the answer and
    billed inside ``completion_tokens``; a thinking request whose earlier assistant turns
    lack their ``reasoning_content`` is a 400. Streams open with ``: keep-alive``, whole
    replies with blank lines; no rate-limit headers; a used-up balance is a 402; a
    refusal is ``finish_reason: "content_filter"``; a failure mid-answer is
    ``finish_reason: "insufficient_system_resource"``."""

    name = "deepseek"
    request_id_header = None  # none documented
    #: the beta's path (``/beta/chat/completions``): a trailing ``prefix`` turn is continued
    beta: ClassVar[bool] = False
    thinkers: ClassVar[tuple[str, ...]] = ()
    no_stop: ClassVar[tuple[str, ...]] = ()
    fingerprint: ClassVar[str | None] = "fp_sim_prod0623"
    usage_slot: ClassVar[bool] = False

    def thinks(self, obj: Mapping[str, Any], name: str) -> bool:
        thinking = obj.get("thinking")
        return not (isinstance(thinking, dict) and thinking.get("type") == "disabled")

    def check(self, obj: Mapping[str, Any], name: str) -> None:
        """A 400 for a trailing assistant turn but a ``prefix`` one on the beta's path,
        and for a thinking request whose earlier assistant turns lack their reasoning."""
        messages = obj.get("messages")
        last = messages[-1] if isinstance(messages, list) and messages else None
        if (
            isinstance(last, dict)
            and last.get("role") == "assistant"
            and not (self.beta and last.get("prefix") is True)
        ):
            message = (
                f"The last message of {name} must be a user message, or an assistant"
                " message with prefix mode on"
            )
            raise Rejected(_deepseek(400, message, "invalid_request_error"))
        if not self.thinks(obj, name):
            return
        for item in messages if isinstance(messages, list) else ():
            if (
                isinstance(item, dict)
                and item.get("role") == "assistant"
                and not isinstance(item.get("reasoning_content"), str)
            ):
                raise Rejected(_deepseek(400, _THINKING_MULTI_TURN, "invalid_request_error"))

    def reply_id(self, ex: Exchange) -> str:
        return reply_uuid(ex)

    def usage(self, ex: Exchange, answered: int | None = None) -> dict[str, Any]:
        """The answer's tokens (``answered`` when given: what went out of an answer that
        broke off) and the reasoning's, which went out whole before the answer."""
        usage = ex.plan.usage
        reasoning = reasoning_tokens(ex)
        completion = (usage.output_tokens if answered is None else answered) + reasoning
        return {
            "prompt_tokens": usage.input_tokens,
            "completion_tokens": completion,
            "total_tokens": usage.input_tokens + completion,
            "prompt_tokens_details": {"cached_tokens": usage.cached_input_tokens},
            "completion_tokens_details": {"reasoning_tokens": reasoning},
            "prompt_cache_hit_tokens": usage.cached_input_tokens,
            "prompt_cache_miss_tokens": usage.input_tokens - usage.cached_input_tokens,
        }

    def ok_headers(self, ex: Exchange) -> Headers:
        return ()

    def preamble(self, ex: Exchange) -> bytes:
        return _KEEP_ALIVE

    def message(self, ex: Exchange) -> dict[str, Any]:
        plan = ex.plan
        message: dict[str, Any] = {
            "role": "assistant",
            "content": "" if plan.ending == "refusal" else plan.text,
        }
        if ex.parsed.thinking:
            message["reasoning_content"] = thinking_text(plan)
        return message

    def _finish_reason(self, plan: Plan) -> str:
        return "content_filter" if plan.ending == "refusal" else finish_reason(plan)

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
                    "finish_reason": self._finish_reason(ex.plan),
                }
            ],
            "usage": self.usage(ex),
            "system_fingerprint": self.fingerprint,
        }

    def whole(self, ex: Exchange) -> Reply:
        """The body follows the blank lines DeepSeek sends while a request waits."""
        return Reply(status=200, body=b"\n\n" + dumps(self.whole_body(ex)))

    def head(self, ex: Exchange) -> bytes:
        if not ex.parsed.thinking:
            return sse(self.chunk(ex, {"role": "assistant", "content": ""}, None))
        start = self.chunk(
            ex, {"role": "assistant", "content": None, "reasoning_content": ""}, None
        )
        thought = {"content": None, "reasoning_content": thinking_text(ex.plan)}
        return sse(start) + sse(self.chunk(ex, thought, None))

    def chunker(self, ex: Exchange) -> Callable[[str], bytes]:
        delta: dict[str, Any] = {"content": SLOT}
        if ex.parsed.thinking:
            delta["reasoning_content"] = None
        return filler(self.chunk(ex, delta, None), sse_frame)

    def _final(self, ex: Exchange, finish: str, answered: int | None = None) -> bytes:
        chunk = self.chunk(ex, {"content": ""}, finish)
        if ex.parsed.include_usage:
            chunk["usage"] = self.usage(ex, answered)
        return sse(chunk)

    def finish(self, ex: Exchange) -> bytes:
        """The finish chunk carries the usage when the request asked for it."""
        return self._final(ex, self._finish_reason(ex.plan))

    def refusal(self, ex: Exchange) -> bytes:
        return self.finish(ex)

    def no_key(self) -> Reply:
        return self.bad_key("")

    def bad_key(self, key: str) -> Reply:
        shown = masked_key(key, keep_start=0, keep_end=4)
        message = f"Authentication Fails, Your api key: {shown} is invalid"
        return _deepseek(401, message, "authentication_error")

    def bad_request(self, message: str) -> Reply:
        return _deepseek(400, message, "invalid_request_error")

    def not_found(self, message: str) -> Reply:
        return _deepseek(404, message, "invalid_request_error")

    def error(self, failure: Failure, ex: Exchange) -> Reply:
        """No rate-limit header of any kind; an unknown model is a 400 "Model Not Exist"."""
        match failure.kind:
            case "rate_limited":
                return _deepseek(429, "Rate Limit Reached", "rate_limit_error")
            case "quota_exhausted" | "spend_limit":
                return _deepseek(402, "Insufficient Balance", "unknown_error")
            case "bad_key":
                return self.bad_key(ex.key)
            case "server_error":
                return _deepseek(500, "Server Error", "server_error")
            case "context_length":
                tokens = 131_072 + ex.plan.usage.input_tokens
                message = (
                    f"This model's maximum context length is 131072 tokens. However, you "
                    f"requested {tokens} tokens ({tokens} in the messages, 0 in the "
                    "completion). Please reduce the length of the messages or completion."
                )
                return _deepseek(400, message, "invalid_request_error")
            case "content_policy":
                return _deepseek(400, "Content Exists Risk", "invalid_request_error")
            case "not_found":
                return _deepseek(400, "Model Not Exist", "invalid_request_error")
            case _:
                return _deepseek(503, "Server Overloaded", "server_error")

    def mid_error(self, ex: Exchange) -> bytes:
        """``finish_reason: "insufficient_system_resource"``; the usage (when asked for)
        counts only the answer text that went out, and the reasoning."""
        failed = "insufficient_system_resource"
        return self._final(ex, failed, delivered_tokens(ex.plan)) + self.terminator(ex)


class DeepSeekBetaWire(DeepSeekWire):
    """DeepSeek's beta (``/beta/chat/completions``): as its API, and it continues a
    trailing assistant turn that says ``prefix: true`` (its prefix completion)."""

    beta = True
