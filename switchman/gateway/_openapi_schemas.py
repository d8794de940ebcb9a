"""The schemas of ``/openapi.json``: the bodies the gateway takes and answers, written as
data (``_openapi`` has the routes; a test checks real answers name no field outside these).
"""

from __future__ import annotations

from typing import Any, Final, get_args

from switchman._call import Intent


def ref(name: str) -> dict[str, str]:
    """A reference to the schema ``name`` of the document's components."""
    return {"$ref": f"#/components/schemas/{name}"}


_NUMBER_OR_NULL: Final = {"type": ["number", "null"]}
HEALTH: Final = {
    "type": "object",
    "required": ["status"],
    "properties": {
        "status": {"type": "string", "enum": ["ok", "degraded", "draining"]},
        "version": {"type": "string", "description": "admin key (or no keys) only"},
        "uptime_s": {"type": "number", "description": "admin key (or no keys) only"},
        "simulated": {"type": "boolean", "description": "admin key (or no keys) only"},
        "jobs": {"type": "object", "description": "admin key (or no keys) only"},
        "jobs_in_flight": {"type": "integer", "description": "admin key (or no keys) only"},
        "calls_waiting": {
            "type": "integer",
            "description": "calls waiting for one of the router's capacity slots; admin key "
            "(or no keys) only",
        },
        "providers": {"type": "array", "description": "admin key (or no keys) only"},
        "store_problem": {
            "type": "string",
            "description": "why the job store cannot keep what it is given (degraded meanwhile);"
            " admin key (or no keys) only",
        },
        "global_budget_left_usd": {
            "type": "object",
            "additionalProperties": {"type": "number"},
            "description": "what is left of each global budget by period (hour, day, month;"
            " degraded while one has nothing left); admin key (or no keys) only",
        },
        "global_budget_refusing": {
            "type": "array",
            "items": {"type": "string"},
            "description": "the periods whose global budget refused the last attempt it was"
            " asked to hold (degraded meanwhile); admin key (or no keys) only",
        },
    },
}
_STRINGS: Final = {"type": "array", "items": {"type": "string"}}


def _list_of(**properties: Any) -> dict[str, Any]:
    """A list of objects with these ``properties``."""
    return {"type": "array", "items": {"type": "object", "properties": properties}}


_TRUST: Final[dict[str, Any]] = {"enum": ["untrusted", "standard", "trusted"]}
_OPTIONS: Final[dict[str, Any]] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "verbosity": {"enum": ["minimal", "standard", "full"]},
        "determinism": {"enum": ["strict", "best_effort", "off"]},
        "timeouts": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "ttft_ms": {"type": "integer"},
                "soft_ms": {"type": "integer"},
                "hard_ms": {"type": "integer"},
            },
        },
        "redaction": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "mode": {"enum": ["auto", "off"]},
                "override": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "enabled": {"type": "boolean"},
                        "acknowledgements": _STRINGS,
                        "reason": {"type": "string"},
                    },
                },
            },
        },
        "max_cost_usd": {"type": "number", "minimum": 0},
        "fallback": _STRINGS,
    },
}

SCHEMAS: Final[dict[str, Any]] = {
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["code", "message"],
                "properties": {
                    "code": {"type": "string"},
                    "message": {"type": "string"},
                    "details": _list_of(field={"type": "string"}, message={"type": "string"}),
                    "type": {"type": "string", "description": "OpenAI-compatible routes only"},
                    "param": {"type": ["string", "null"], "description": "/v1 routes only"},
                },
            }
        },
    },
    "Message": {
        "type": "object",
        "required": ["role", "content"],
        "additionalProperties": False,
        "properties": {
            "role": {"enum": ["system", "user", "assistant"]},
            "content": {"type": "string"},
        },
    },
    "Call": {
        "type": "object",
        "additionalProperties": False,
        "description": "Give exactly one of prompt or messages.",
        "properties": {
            "prompt": {"type": "string"},
            "messages": {"type": "array", "items": ref("Message")},
            "model": {"type": "string", "default": "auto"},
            "intent": {"enum": list(get_args(Intent)), "default": "unknown"},
            "caller": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "handle": {"type": "string"},
                    "account_id": {"type": "string"},
                    "key_id": {"type": ["string", "null"]},
                },
            },
            "min_trust": _TRUST,
            "capabilities": _STRINGS,
            "params": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "temperature": {"type": "number", "minimum": 0, "maximum": 2},
                    "top_p": {"type": "number", "minimum": 0, "maximum": 1},
                    "max_tokens": {"type": "integer", "minimum": 1},
                    "seed": {"type": "integer", "minimum": 0},
                    "stop": {**_STRINGS, "maxItems": 4},
                },
            },
            "options": _OPTIONS,
            "metadata": {"type": "object"},
        },
    },
    "Result": {
        "type": "object",
        "required": ["call_id", "status"],
        "properties": {
            "call_id": {"type": "string"},
            "job_id": {"type": ["string", "null"]},
            "status": {"enum": ["complete", "failed"]},
            "answer": {"type": "string"},
            "model": {"type": ["string", "null"]},
            "provider": {"type": ["string", "null"]},
            "provider_model_id": {"type": ["string", "null"]},
            "usage": {
                "type": "object",
                "description": "of the input and output tokens: those read from the "
                "provider's cache, and those the model spent reasoning (billed as output)",
                "properties": {
                    t: {"type": "integer"}
                    for t in (
                        "input_tokens",
                        "output_tokens",
                        "cached_input_tokens",
                        "reasoning_tokens",
                    )
                },
            },
            "cost_usd": {"type": "number"},
            "latency_ms": {"type": "number"},
            "ttft_ms": _NUMBER_OR_NULL,
            "redaction": {
                "type": "object",
                "properties": {
                    "performed": {"type": "boolean"},
                    "items": {
                        **_list_of(kind={"type": "string"}, count={"type": "integer"}),
                        "description": "a count per kind hidden of the answer",
                    },
                },
            },
            "errors": _list_of(
                code={"type": "string"},
                message={"type": "string"},
                provider={"type": ["string", "null"]},
                status={"type": ["integer", "null"]},
                retry_after_s=_NUMBER_OR_NULL,
            ),
            "trace": {"type": "object"},
            "simulated": {"type": "boolean"},
            "citations": {
                "type": "array",
                "items": {"type": "string"},
                "description": "the URLs of the sources the answer cites, in the order of "
                "its [1], [2] markers (Perplexity's search results), an empty string in "
                "place of one left out; empty when none",
            },
            "finish_reason": {
                "type": ["string", "null"],
                "description": "stop; length when the answer reached max_tokens (cut by "
                "the caller's limit); or the provider's own reason; null for a failed call",
            },
        },
    },
    "Job": {
        "type": "object",
        "required": ["job_id", "status"],
        "properties": {
            "job_id": {"type": "string"},
            "status": {"enum": ["queued", "running", "complete", "failed"]},
            "handle": {"type": "string"},
            "submitted_at": {"type": "number"},
            "started_at": _NUMBER_OR_NULL,
            "finished_at": _NUMBER_OR_NULL,
            "reason": {"type": "string", "description": "why it failed: shutdown, interrupted"},
            "result": ref("Result"),
        },
    },
    "Accepted": {
        "type": "object",
        "required": ["job_id", "status"],
        "properties": {"job_id": {"type": "string"}, "status": {"type": "string"}},
    },
    "Budget": {
        "type": "object",
        "required": ["scope", "spent_usd", "limit_usd", "left_usd"],
        "properties": {
            "scope": {
                "type": "string",
                "description": "global, provider:NAME or caller:HANDLE",
            },
            "spent_usd": {
                "type": "object",
                "description": "USD spent this hour, day and month (UTC calendar periods)",
                "properties": {p: {"type": "number"} for p in ("hour", "day", "month")},
            },
            "limit_usd": {
                "type": "object",
                "description": "the scope's budget per period, for the periods that have "
                "one (a handle limited by its key and by budgets.callers: the stricter)",
            },
            "left_usd": {"type": "object", "description": "what is left of each limit"},
        },
    },
    "Feedback": {
        "type": "object",
        "required": ["score"],
        "additionalProperties": False,
        "properties": {
            "score": {"type": "number", "minimum": 0, "maximum": 1},
            "intent": {"type": "string"},
        },
    },
    "ChatCompletionRequest": {
        "type": "object",
        "required": ["model", "messages"],
        "description": "OpenAI-compatible; fields not listed are ignored, except what "
        "switchman cannot do, refused with a 400 naming it: tools, functions, tool_choice, "
        "an assistant turn's tool_calls, a non-text response_format, logprobs, audio, a "
        "non-empty logit_bias, n > 1. Without max_tokens or max_completion_tokens the "
        "call asks for verbosity full (up to 16,384 output tokens, capped at each model's "
        "maximum). An assistant turn with empty content is dropped.",
        "properties": {
            "model": {"type": "string", "description": "an alias, a route or auto"},
            "messages": _list_of(
                role={"enum": ["system", "developer", "user", "assistant"]},
                content={"type": ["string", "array"]},
            ),
            "temperature": {"type": "number"},
            "top_p": {"type": "number"},
            "max_tokens": {"type": "integer"},
            "max_completion_tokens": {"type": "integer"},
            "seed": {"type": "integer"},
            "stop": {"type": ["string", "array"]},
            "n": {"const": 1},
            "stream": {"type": "boolean"},
            "stream_options": {
                "type": "object",
                "properties": {"include_usage": {"type": "boolean"}},
            },
            "user": {"type": "string"},
            "metadata": {"type": "object"},
            "intent": {"type": "string", "description": "switchman extension"},
            "switchman": {
                "type": "object",
                "description": "switchman extension (the SDK's extra_body): the call's own "
                "fields, as /call takes them",
                "additionalProperties": False,
                "properties": {
                    "intent": {"type": "string"},
                    "min_trust": _TRUST,
                    "capabilities": _STRINGS,
                    "options": _OPTIONS,
                },
            },
        },
    },
    "ChatCompletion": {
        "type": "object",
        "properties": {
            "id": {"type": "string"},
            "object": {"const": "chat.completion"},
            "created": {"type": "integer"},
            "model": {"type": "string"},
            "system_fingerprint": {"type": "null"},
            "choices": {"type": "array"},
            "usage": {"type": "object"},
            "switchman": {"type": "object"},
        },
    },
}
