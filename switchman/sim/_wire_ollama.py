"""Ollama native: ``POST /api/chat`` (NDJSON stream by default, the ``done: true`` line
carries the counts) and ``GET /api/tags``."""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final

from switchman.adapters._base import ProviderRequest
from switchman.sim._plan import Failure, Plan, answer_plan
from switchman.sim._wire import (
    CREATED_AT,
    SLOT,
    Exchange,
    Parsed,
    Reply,
    Wire,
    answer_text,
    chat_messages,
    dumps,
    filler,
    json_reply,
    positive_int,
    provider_request,
    require_object,
    require_str,
)

_NS_PER_WORD: Final = 20_000_000


def _line(data: bytes) -> bytes:
    return data + b"\n"


class OllamaWire(Wire):
    """Errors are ``{"error": str}``; a local server takes no key (a key, when sent, is a
    Bearer token for ollama.com's cloud models); no rate-limit headers, not even on a 429;
    a prompt longer than the context is cut to fit, not refused."""

    name = "ollama"
    stream_type = "application/x-ndjson"

    def refuse_headers(self, headers: Mapping[str, str], query: Mapping[str, str]) -> Reply | None:
        return None

    def no_key(self) -> Reply:
        return json_reply(401, {"error": "unauthorized"})

    def replan(self, plan: Plan, request: ProviderRequest) -> Plan:
        """A prompt over the context length is truncated and answered, as Ollama does."""
        if plan.failure is not None and plan.failure.kind == "context_length":
            return answer_plan(plan.behaviour, plan.model, request)
        return plan

    def parse(self, body: Any, *, path_model: str | None, stream: bool) -> Parsed:
        obj = require_object(body)
        model = require_str(obj, "model")
        options = obj.get("options")
        max_tokens = positive_int(options.get("num_predict")) if isinstance(options, dict) else None
        request = provider_request(
            model,
            chat_messages(obj.get("messages")),
            max_tokens=max_tokens,
            stream=obj.get("stream", True) is not False,
            stop=options.get("stop") if isinstance(options, dict) else None,
        )
        return Parsed(model=model, request=request)

    def bad_request(self, message: str) -> Reply:
        return json_reply(400, {"error": message})

    def not_found(self, message: str) -> Reply:
        return json_reply(404, {"error": message})

    def error(self, failure: Failure, ex: Exchange) -> Reply:
        match failure.kind:
            case "rate_limited" | "quota_exhausted" | "spend_limit":
                message = "you have reached your hourly usage limit, please try again later"
                return json_reply(429, {"error": message})
            case "bad_key":
                return self.no_key()
            case "server_error":
                return json_reply(
                    500, {"error": "an error was encountered while running the model"}
                )
            case "content_policy":
                return json_reply(400, {"error": "the request was blocked by a content policy"})
            case "not_found":
                message = f'model "{ex.model}" not found, try pulling it first'
                return json_reply(404, {"error": message})
            case _:
                message = "server busy, please try again.  maximum pending requests exceeded"
                return json_reply(503, {"error": message})

    def _done(self, ex: Exchange, text: str) -> dict[str, Any]:
        plan = ex.plan
        out = plan.usage.output_tokens
        return {
            "model": ex.model,
            "created_at": CREATED_AT,
            "message": {"role": "assistant", "content": text},
            "done_reason": "length" if plan.finish_reason == "length" else "stop",
            "done": True,
            "total_duration": (out + 1) * _NS_PER_WORD,
            "load_duration": 1_000_000,
            "prompt_eval_count": plan.usage.input_tokens,
            "prompt_eval_duration": _NS_PER_WORD,
            "eval_count": out,
            "eval_duration": out * _NS_PER_WORD,
        }

    def whole(self, ex: Exchange) -> Reply:
        return json_reply(200, self._done(ex, answer_text(ex.plan)))

    def chunker(self, ex: Exchange) -> Callable[[str], bytes]:
        line = {
            "model": ex.model,
            "created_at": CREATED_AT,
            "message": {"role": "assistant", "content": SLOT},
            "done": False,
        }
        return filler(line, _line)

    def malformed(self, ex: Exchange) -> bytes:
        return b'{"model":"broken","message":{"role":"assistant","content":"\n'

    def finish(self, ex: Exchange) -> bytes:
        return b""  # the done line is both the finish and the terminator

    def terminator(self, ex: Exchange) -> bytes:
        return _line(dumps(self._done(ex, "")))

    def refusal(self, ex: Exchange) -> bytes:
        # Ollama has no refusal signal: a refusal is ordinary answer text.
        return self.chunker(ex)(ex.plan.refusal)

    def mid_error(self, ex: Exchange) -> bytes:
        return _line(dumps({"error": "an error was encountered while running the model"}))


def tags_reply(names: Iterable[str]) -> Reply:
    """``GET /api/tags``: the locally "pulled" models."""
    models = [
        {
            "name": f"{name}:latest",
            "model": f"{name}:latest",
            "modified_at": CREATED_AT,
            "size": 2_019_393_189,
            "digest": f"{zlib.crc32(name.encode()):08x}" * 8,
            "details": {
                "format": "gguf",
                "family": "llama",
                "parameter_size": "3.2B",
                "quantization_level": "Q4_K_M",
            },
        }
        for name in names
    ]
    return json_reply(200, {"models": models})
