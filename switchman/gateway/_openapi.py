"""The gateway's OpenAPI 3.1 description, written as data.

A test checks that every route of the app is described here.
"""

from __future__ import annotations

import copy
from typing import Any, Final

from switchman._version import __version__
from switchman.gateway._openapi_schemas import HEALTH, SCHEMAS, ref


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _error(description: str, *headers: str) -> dict[str, Any]:
    return _with_headers(_json(ref("Error"), description), *headers)


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
        "schemas": SCHEMAS,
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
                "requestBody": {"required": True, **_json(ref("Call"), "the call")},
                "responses": {
                    "200": _with_headers(
                        _json(
                            ref("Job"),
                            "finished within ?wait: complete or failed (a call no model "
                            "could answer is a failed job here, its result.errors say why)",
                        ),
                        "location",
                    ),
                    "202": _with_headers(
                        _json(ref("Accepted"), "accepted; poll /result/{job_id}"), "location"
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
                    "200": _json(ref("Job"), "the job (its result once finished)"),
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
                    "200": _json(HEALTH, "ok or degraded"),
                    "503": _json(HEALTH, "draining for shutdown"),
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
                            "properties": {"budgets": {"type": "array", "items": ref("Budget")}},
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
                "requestBody": {"required": True, **_json(ref("Feedback"), "the score")},
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
                    **_json(ref("ChatCompletionRequest"), "the request"),
                },
                "responses": {
                    "200": _with_headers(
                        {
                            "description": "a completion (with every x-switchman header), or "
                            "an event stream of chunks (x-switchman-job-id only; the final "
                            "chunk's switchman object names the model that answered)",
                            "content": {
                                "application/json": {"schema": ref("ChatCompletion")},
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
