"""The gateway's OpenAPI 3.1 description, written as data.

A test checks that every route of the app is described here.
"""

from __future__ import annotations

import copy
from typing import Any, Final

from switchman._version import __version__


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _error(description: str, *headers: str) -> dict[str, Any]:
    return _with_headers(_json(_ref("Error"), description), *headers)


def _with_headers(response: dict[str, Any], *names: str) -> dict[str, Any]:
    """``response`` with the named response headers (``components.headers``) it sends."""
    if not names:
        return response
    return {**response, "headers": {n: {"$ref": f"#/components/headers/{n}"} for n in names}}


_PAGE: Final = (
    "without [[keys]]: a request from a web page not of this machine, or addressed to a name"
    " other than localhost (forbidden)"
)
_UNAUTHORIZED: Final = {
    "401": _error("no valid gateway key (only when [[keys]] are configured)"),
}
_AUTH_ERRORS: Final = {
    **_UNAUTHORIZED,
    "403": _error("the key may not use a model the call names (permission_denied)"),
}
_RATE_LIMITED: Final = {
    "429": _error(
        "the key is over its [[keys]] rpm (rate_limited); send it again after retry-after",
        "retry-after",
        "retry-after-ms",
    ),
}
#: what a non-streamed /v1 answer (a completion or a failed call) says about its job
_RESULT_HEADERS: Final = (
    "x-switchman-job-id",
    "x-request-id",
    "x-switchman-model",
    "x-switchman-provider",
    "x-switchman-attempts",
    "x-switchman-fallbacks",
    "x-switchman-cost-usd",
)
_HEADERS: Final[dict[str, Any]] = {
    "location": {
        "description": "where the job is read: /result/{job_id}",
        "schema": {"type": "string"},
    },
    "allow": {
        "description": "the methods the route answers",
        "schema": {"type": "string"},
    },
    "retry-after": {
        "description": "whole seconds to wait before sending the request again",
        "schema": {"type": "integer"},
    },
    "retry-after-ms": {
        "description": "the same wait in milliseconds (read first by the official OpenAI SDKs)",
        "schema": {"type": "integer"},
    },
    "x-should-retry": {
        "description": "false: sending the same request again will not help (the SDKs obey it)",
        "schema": {"const": "false"},
    },
    "x-switchman-job-id": {
        "description": "the job behind the answer, readable at /result/{job_id}; the only "
        "x-switchman header of a streamed answer, whose final chunk's switchman object "
        "names the model, provider, attempts and fallbacks",
        "schema": {"type": "string"},
    },
    "x-request-id": {
        "description": "the same job id (the OpenAI SDKs' _request_id); on streams too",
        "schema": {"type": "string"},
    },
    "x-switchman-model": {
        "description": "the alias that answered (omitted when none did); not on streams",
        "schema": {"type": "string"},
    },
    "x-switchman-provider": {
        "description": "its provider (omitted when none answered); not on streams",
        "schema": {"type": "string"},
    },
    "x-switchman-attempts": {
        "description": "attempts made, retries included; not on streams",
        "schema": {"type": "integer"},
    },
    "x-switchman-fallbacks": {
        "description": "times the call moved on to another model; not on streams",
        "schema": {"type": "integer"},
    },
    "x-switchman-cost-usd": {
        "description": "what the call cost, USD (its answer, and what attempts cut short or "
        "refused with usage were billed): the result's cost_usd; not on streams",
        "schema": {"type": "number"},
    },
}
_JOB_ID: Final = {"name": "job_id", "in": "path", "required": True, "schema": {"type": "string"}}
_WAIT: Final = {
    "name": "wait",
    "in": "query",
    "required": False,
    "description": "wait up to this many seconds (0..300) for the job to finish",
    "schema": {"type": "number", "minimum": 0, "maximum": 300},
}
_NUMBER_OR_NULL: Final = {"type": ["number", "null"]}
_HEALTH: Final = {
    "type": "object",
    "required": ["status"],
    "properties": {
        "status": {"type": "string", "enum": ["ok", "degraded", "draining"]},
        "version": {"type": "string", "description": "admin key (or no keys) only"},
        "uptime_s": {"type": "number", "description": "admin key (or no keys) only"},
        "simulated": {"type": "boolean", "description": "admin key (or no keys) only"},
        "jobs": {"type": "object", "description": "admin key (or no keys) only"},
        "jobs_in_flight": {"type": "integer", "description": "admin key (or no keys) only"},
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

_SCHEMAS: Final[dict[str, Any]] = {
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
                    "details": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "properties": {
                                "field": {"type": "string"},
                                "message": {"type": "string"},
                            },
                        },
                    },
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
            "messages": {"type": "array", "items": _ref("Message")},
            "model": {"type": "string", "default": "auto"},
            "intent": {
                "enum": [
                    "lookup",
                    "summarize",
                    "extract",
                    "compare",
                    "draft",
                    "classify",
                    "reason",
                    "critique",
                    "translate",
                    "code",
                    "unknown",
                ],
                "default": "unknown",
            },
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
                "properties": {
                    "input_tokens": {"type": "integer"},
                    "output_tokens": {"type": "integer"},
                },
            },
            "cost_usd": {"type": "number"},
            "latency_ms": {"type": "number"},
            "ttft_ms": _NUMBER_OR_NULL,
            "redaction": {"type": "object"},
            "errors": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "code": {"type": "string"},
                        "message": {"type": "string"},
                        "provider": {"type": ["string", "null"]},
                        "status": {"type": ["integer", "null"]},
                        "retry_after_s": _NUMBER_OR_NULL,
                    },
                },
            },
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
            "result": _ref("Result"),
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
            "messages": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "role": {"enum": ["system", "developer", "user", "assistant"]},
                        "content": {"type": ["string", "array"]},
                    },
                },
            },
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
            "choices": {"type": "array"},
            "usage": {"type": "object"},
            "switchman": {"type": "object"},
        },
    },
}

_DOCUMENT: Final[dict[str, Any]] = {
    "openapi": "3.1.0",
    "info": {
        "title": "switchman gateway",
        "version": __version__,
        "description": "LLM router gateway: jobs, live traces and an OpenAI-compatible API. "
        "Every route answers 405 (with allow) to a method it does not take, and 500 "
        "internal_error to a bug.",
    },
    "components": {
        "schemas": _SCHEMAS,
        "headers": _HEADERS,
        "securitySchemes": {
            "bearer": {"type": "http", "scheme": "bearer"},
            "apiKey": {"type": "apiKey", "in": "header", "name": "x-api-key"},
        },
    },
    "security": [{"bearer": []}, {"apiKey": []}],
    "paths": {
        "/call": {
            "post": {
                "summary": "Submit a call as a job",
                "parameters": [_WAIT],
                "requestBody": {"required": True, **_json(_ref("Call"), "the call")},
                "responses": {
                    "200": _with_headers(
                        _json(
                            _ref("Job"),
                            "finished within ?wait: complete or failed (a call no model "
                            "could answer is a failed job here, its result.errors say why)",
                        ),
                        "location",
                    ),
                    "202": _with_headers(
                        _json(_ref("Accepted"), "accepted; poll /result/{job_id}"), "location"
                    ),
                    "400": _error("malformed JSON or Content-Length"),
                    "413": _error("body too large"),
                    "422": _error("invalid fields or ?wait, each named in details"),
                    **_RATE_LIMITED,
                    "503": _error(
                        "shutting_down (retry-after), overloaded (too many calls in flight;"
                        " retry-after), or store_unavailable (the job store cannot be written;"
                        " retry-after)",
                        "retry-after",
                    ),
                    **_AUTH_ERRORS,
                },
            }
        },
        "/result/{job_id}": {
            "get": {
                "summary": "A job and, once finished, its result",
                "parameters": [_JOB_ID, _WAIT],
                "responses": {
                    "200": _json(_ref("Job"), "the job (its result once finished)"),
                    "404": _error("unknown job, or another handle's"),
                    "422": _error("?wait is not a number between 0 and 300"),
                    **_UNAUTHORIZED,
                },
            }
        },
        "/jobs": {
            "get": {
                "summary": "Recent jobs (all callers' with an admin key)",
                "parameters": [
                    {
                        "name": "status",
                        "in": "query",
                        "schema": {"enum": ["queued", "running", "complete", "failed"]},
                    },
                    {
                        "name": "limit",
                        "in": "query",
                        "schema": {"type": "integer", "minimum": 1, "maximum": 1000},
                    },
                ],
                "responses": {
                    "200": _json(
                        {"type": "object", "properties": {"jobs": {"type": "array"}}}, "jobs"
                    ),
                    "422": _error("bad status or limit"),
                    **_UNAUTHORIZED,
                },
            }
        },
        "/health": {
            "get": {
                "summary": "Liveness for anyone (no key needed): {status}; with an admin key "
                "(or without keys) also version, uptime, job counts, providers and breakers",
                "security": [],
                "responses": {
                    "200": _json(_HEALTH, "ok or degraded"),
                    "503": _json(_HEALTH, "draining for shutdown"),
                },
            }
        },
        "/providers": {
            "get": {
                "summary": "Catalog with live state (details with an admin key)",
                "responses": {"200": _json({"type": "object"}, "providers"), **_UNAUTHORIZED},
            }
        },
        "/budgets": {
            "get": {
                "summary": "Spend this hour, day and month (UTC) per scope, with its limits "
                "and what is left (every scope with an admin key or without keys, a removed "
                "key's handle with spend this month included; a key's own caller scope "
                "otherwise)",
                "responses": {
                    "200": _json(
                        {
                            "type": "object",
                            "properties": {"budgets": {"type": "array", "items": _ref("Budget")}},
                        },
                        "spend per scope",
                    ),
                    **_UNAUTHORIZED,
                },
            }
        },
        "/feedback/{job_id}": {
            "post": {
                "summary": "Quality feedback for a finished job",
                "parameters": [_JOB_ID],
                "requestBody": {"required": True, **_json(_ref("Feedback"), "the score")},
                "responses": {
                    "200": _json({"type": "object"}, "recorded"),
                    "400": _error("malformed JSON"),
                    "404": _error(
                        "unknown job, or the model that answered is no longer configured"
                    ),
                    "409": _error(
                        "not_finished: the job has no answer yet; not_answered: it failed, "
                        "no model answered it; already_rated: feedback counts once per job"
                    ),
                    "413": _error("body too large"),
                    "422": _error("invalid fields (score, intent), each named in details"),
                    "503": _error(
                        "shutting_down: a stop began; the job stays unrated", "retry-after"
                    ),
                    **_UNAUTHORIZED,
                },
            }
        },
        "/v1/chat/completions": {
            "post": {
                "summary": "OpenAI-compatible chat completions (stream: true gives SSE)",
                "requestBody": {
                    "required": True,
                    **_json(_ref("ChatCompletionRequest"), "the request"),
                },
                "responses": {
                    "200": _with_headers(
                        {
                            "description": "a completion (with every x-switchman header), or "
                            "an event stream of chunks (x-switchman-job-id only; the final "
                            "chunk's switchman object names the model that answered)",
                            "content": {
                                "application/json": {"schema": _ref("ChatCompletion")},
                                "text/event-stream": {"schema": {"type": "string"}},
                            },
                        },
                        *_RESULT_HEADERS,
                    ),
                    "400": _error(
                        "malformed JSON, bad values, or a request that fails by itself: too "
                        "long for every model (context_length_exceeded), rejected by the "
                        "providers, or one no model it could use takes (intent, trust tier, "
                        "max_tokens, stop sequences...: invalid_request, naming each reason); "
                        "the job headers only when a call ran (not for malformed JSON or bad "
                        "values)",
                        *_RESULT_HEADERS,
                    ),
                    "402": _error("budget exceeded", *_RESULT_HEADERS),
                    "403": _error(
                        "the key may not use a model the call names, or any model the "
                        "call could use (permission_denied)",
                        *_RESULT_HEADERS,
                    ),
                    "404": _error("unknown model (see GET /v1/models)"),
                    "413": _error("body too large"),
                    "422": _error(
                        "refused: the models refused it, or a provider rejected its content",
                        *_RESULT_HEADERS,
                    ),
                    **_RATE_LIMITED,
                    "502": _error(
                        "a provider rejected switchman's own API key for it "
                        "(provider_key_rejected), or said switchman's account with it has no "
                        "quota or credit left (provider_quota_exhausted)",
                        *_RESULT_HEADERS,
                        "x-should-retry",
                    ),
                    "503": _error(
                        "no provider available, every provider failed or rate limited "
                        "(retry-after when a model the call could use is back within 60 s; "
                        "x-should-retry: false when none is back sooner), or shutting down "
                        "/ overloaded / store_unavailable (retry-after)",
                        *_RESULT_HEADERS,
                        "retry-after",
                        "x-should-retry",
                    ),
                    "504": _error(
                        "the call's deadline passed (the router already tried other models "
                        "within it)",
                        *_RESULT_HEADERS,
                        "x-should-retry",
                    ),
                    **_UNAUTHORIZED,
                },
            }
        },
        "/v1/models": {
            "get": {
                "summary": "OpenAI-compatible model list: auto, aliases and routes",
                "responses": {"200": _json({"type": "object"}, "models"), **_UNAUTHORIZED},
            }
        },
        "/v1/models/{model}": {
            "get": {
                "summary": "One entry of /v1/models (the SDKs' models.retrieve)",
                "parameters": [
                    {
                        "name": "model",
                        "in": "path",
                        "required": True,
                        "description": "an id /v1/models lists; ids with a / (openai/gpt-4o) "
                        "are taken as they are or percent-encoded",
                        "schema": {"type": "string"},
                    }
                ],
                "responses": {
                    "200": _json({"type": "object"}, "the model"),
                    "404": _error("not a model this key sees in /v1/models (model_not_found)"),
                    **_UNAUTHORIZED,
                },
            }
        },
        "/metrics": {
            "get": {
                "summary": "Prometheus metrics (with [[keys]], an admin key's only)",
                "responses": {
                    "200": {
                        "description": "text exposition format",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    },
                    **_UNAUTHORIZED,
                    "403": _error("a key that is not an admin's (permission_denied)"),
                },
            }
        },
        "/openapi.json": {
            "get": {
                "summary": "This document",
                "responses": {"200": _json({"type": "object"}, "OpenAPI 3.1"), **_UNAUTHORIZED},
            }
        },
        "/ws": {
            "get": {
                "summary": "WebSocket: live trace events and results",
                "description": (
                    "Client messages: {type: subscribe, job_id?}, {type: call, call: Call} "
                    "and {type: auth, key}: with gateway keys, a page's socket (with Origin) "
                    "opened without one in its headers sends auth first, within 10 s, and is "
                    "answered {type: authenticated, handle}; else an unauthorized error and "
                    "close code 1008. "
                    "Server messages: trace events {type, call_id, job_id, ts, ...}, "
                    "{type: submitted, job_id}, {type: result, job_id, result}, "
                    "{type: events.dropped, count} and {type: error, error: {code, message, "
                    "details?, retry_after_s?}}: bad_request, validation_error, "
                    "permission_denied (the key may not use a model), not_found, rate_limited "
                    "(over the key's rpm, with retry_after_s), shutting_down, overloaded, "
                    "store_unavailable."
                ),
                "responses": {
                    "101": {"description": "switching protocols"},
                    "426": _error("a plain HTTP request: /ws speaks WebSocket only"),
                    "429": _error(
                        "the key's team holds 64 websockets already (rate_limited); a page's"
                        " socket is told so by an error after its auth message"
                    ),
                    **_UNAUTHORIZED,
                },
            }
        },
    },
}


#: what every route may answer before it is reached
_SEVERAL_KEYS: Final = "the headers name two different keys (bad_request)"


def _also(responses: dict[str, Any], status: str, description: str) -> None:
    """``responses`` with ``status`` saying ``description`` too (after its own words)."""
    if status not in responses:
        responses[status] = _error(description)
    elif description not in responses[status]["description"]:
        responses[status] = {
            **responses[status],
            "description": f"{responses[status]['description']}; {description}",
        }


def _with_common_statuses(document: dict[str, Any]) -> dict[str, Any]:
    """Every route answers another method with 405 (and ``allow``), two different keys in
    its headers with 400, and, without keys, a page not of this machine with 403; every
    route that reads a body answers 408 when the body does not arrive in time."""
    for operations in document["paths"].values():
        for method, operation in operations.items():
            responses = operation["responses"]
            _also(responses, "400", _SEVERAL_KEYS)
            _also(responses, "403", _PAGE)
            responses.setdefault(
                "405",
                _with_headers(
                    _error(f"another method than {method.upper()} (method_not_allowed)"),
                    "allow",
                ),
            )
            if "requestBody" in operation:
                responses.setdefault(
                    "408", _error("the body did not arrive within 60 s (request_timeout)")
                )
    return document


#: what ``openapi_document`` copies
_COMPLETE: Final = _with_common_statuses(_DOCUMENT)


def openapi_document() -> dict[str, Any]:
    """A fresh copy of the OpenAPI description."""
    return copy.deepcopy(_COMPLETE)
