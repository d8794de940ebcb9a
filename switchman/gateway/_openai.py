"""The OpenAI-compatible wire: chat-completion requests in, completions and chunks out.

Pure functions (no I/O) used by the ``/v1`` routes. Request fields mapped to a
``Call``: ``messages`` (``developer`` is read as ``system``; content as a string
or a list of text parts; an assistant turn with empty or whitespace-only content,
as replayed histories have, is dropped), ``model``, ``temperature``, ``top_p``,
``max_completion_tokens`` (else ``max_tokens``), ``seed``, ``stop``, ``user``
(the caller handle, and its account id), ``metadata``, the extension
``intent``, and the extension object ``switchman`` (the SDK's ``extra_body``):
the call's ``intent``, ``min_trust``, ``capabilities`` and ``options``, which the
chat-completions body has no place for, each checked as ``/call`` checks it and
a bad one named as the request spelled it (``switchman.options.fallback[0]``).
A request with neither ``max_completion_tokens`` nor ``max_tokens``
asks for verbosity ``full`` (OpenAI's answer is as long as the model makes it;
``full`` asks for up to 16,384 output tokens, capped at each model's own
maximum), not the native API's ``standard``. ``n`` must be 1; tools, function
calls (``tools``, an assistant turn's ``tool_calls``), non-text output and
``logit_bias``, log probabilities and ``web_search_options`` are refused with a
400 naming them (a logit bias cannot be honoured across providers, and a
classifier relying on it would get unbiased labels; a web search asked for would
silently not happen), and so are penalties outside -2..2 and ``stream_options``
without ``stream``, as OpenAI refuses them. Every other field is ignored, as the SDK
sends extras.

Every chunk of a stream carries the same ``model``, as OpenAI's do: the name
the request asked for (an alias, a route or ``auto``). The model that answers
is not known when the first chunk leaves, and a stream that breaks can be
continued by another model; the final chunk's ``switchman.model`` names the
one that answered. A non-streamed completion names the answering alias.

A failed call answers by its cause (:func:`failure`). Some causes come first,
found in the attempts or the models left out rather than the call's error code:

- every attempt failed because of the request itself (the model's context
  length, or a provider's 400, 413 or 422 other than a content-policy one): **400**
  ``invalid_request_error`` with the provider's message, code
  ``context_length_exceeded`` (as OpenAI answers) or ``invalid_request``; sending
  it again would fail again.
- the router tried no model (``no_eligible_model``) and every model the call could
  use was left out for a reason of the request itself (see ``_causes``: its
  intent, trust tier, capabilities, ``max_tokens``, the context window,
  determinism, stop sequences, the cost cap), the others, if any, being models the
  caller's key may not use: **400** naming the reasons, code
  ``context_length_exceeded`` when each is the context window, else
  ``invalid_request``. Every model left out because the key may not use it:
  **403** ``permission_denied``. A model left out for its availability (a breaker,
  a rate limit, a provider held out...) keeps the 503: it may be back.
- a provider rejected switchman's own provider key (its 401/403:
  ``permission_denied`` from a provider): **502** ``upstream_error``, code
  ``provider_key_rejected``, or ``provider_quota_exhausted`` when the key is good
  but the account's quota, credit or spend limit is used up; with
  ``x-should-retry: false`` (the official SDK then does not retry). 403 is kept
  for the *gateway* key.
- a timeout: **504** with ``x-should-retry: false``: the router already moved on
  to other models inside the call's deadline, and the SDK's retries would triple
  the wait and the spend. So does a call every model it tried answered with no text
  (its 503 carries ``x-should-retry: false``): each try is billed, and the same request
  would do it again.

Otherwise the status is that of the first error code (:data:`FAILURE_STATUS`,
also used for ``x-switchman-*`` consumers):

=================== ====== ==============================================
code                status why
=================== ====== ==============================================
validation_error    400    OpenAI answers bad values with 400
permission_denied   403    the gateway key may not do this
budget_exceeded     402    a budget cannot cover the call
no_eligible_model   503    no provider available for this call
all_models_failed   503    every eligible provider failed (not the request)
rate_limited        503    every eligible provider is rate limited
refused             422    the models refused the request's content
timeout             504    the call's deadline passed
cancelled           503    the gateway shut down before the call finished
internal_error      500    a bug
=================== ====== ==============================================

The gateway adds to a 503 ``no_eligible_model``, ``rate_limited`` or
``all_models_failed`` when a model is back (``_causes.retry_hint``):
``retry-after`` when it is soon, ``x-should-retry: false`` when it is not.

Every answer about a job carries ``x-switchman-job-id`` and the same id as
``x-request-id`` (the SDK's ``_request_id``); a non-streamed one adds
``x-switchman-model`` and ``x-switchman-provider`` (omitted when no model
answered), ``x-switchman-attempts``, ``x-switchman-fallbacks`` and
``x-switchman-cost-usd``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, Final

import attrs

from switchman._call import (
    INTENTS,
    Call,
    Caller,
    Message,
    Options,
    Params,
    text_problem,
    unprintable,
)
from switchman._convert import MAX_ARRAY, capped, structure
from switchman._errors import NO_ANSWER, QUOTA_EXHAUSTED, ValidationError
from switchman._result import Result, Usage
from switchman.gateway._causes import describe, exclusion_kind, unrouted
from switchman.gateway._http import Headers, HttpError
from switchman.policy._eligibility import CONTEXT_EXCLUSION

FAILURE_STATUS: Final[Mapping[str, int]] = {
    "validation_error": 400,
    "permission_denied": 403,
    "budget_exceeded": 402,
    "no_eligible_model": 503,
    "all_models_failed": 503,
    "rate_limited": 503,
    "refused": 422,
    "timeout": 504,
    "cancelled": 503,
    "internal_error": 500,
}

_ERROR_TYPES: Final[Mapping[int, str]] = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "insufficient_quota",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    413: "invalid_request_error",
    422: "invalid_request_error",
    429: "rate_limit_error",
    502: "upstream_error",
}
#: provider statuses that say the request itself was at fault (sending it again fails again)
_REQUEST_STATUSES: Final = frozenset({400, 413, 422})
_ROLES: Final[Mapping[str, str]] = {
    "system": "system",
    "developer": "system",
    "user": "user",
    "assistant": "assistant",
}


@attrs.frozen(kw_only=True)
class ChatRequest:
    call: Call
    stream: bool
    include_usage: bool


def error_body(err: HttpError) -> dict[str, Any]:
    """OpenAI's error shape: ``{error: {message, type, param, code}}``."""
    error: dict[str, Any] = {
        "message": err.message,
        "type": _ERROR_TYPES.get(err.status, "api_error"),
        "param": err.param,
        "code": err.code,
    }
    if err.details is not None:
        error["details"] = list(err.details)
    return {"error": error}


def _text(content: Any, where: str, errors: list[tuple[str, str]]) -> str | None:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts: list[str] = []
        for i, part in enumerate(content):
            if isinstance(part, Mapping) and part.get("type") == "text":
                if isinstance(part.get("text"), str):
                    parts.append(part["text"])
                    continue
            errors.append((f"{where}.content[{i}]", "only text content parts are supported"))
        return "".join(parts)
    errors.append((f"{where}.content", "must be a string or a list of text parts"))
    return None


def _messages(
    raw: Any, errors: list[tuple[str, str]], origin: list[int] | None = None
) -> list[Message]:
    """The messages of a request; ``origin`` gets the request's index of each one kept (an
    empty assistant or system turn is dropped), so that an error about one names it as
    sent."""
    if not isinstance(raw, list) or not raw:
        errors.append(("messages", "must be a non-empty array of messages"))
        return []
    if len(raw) > MAX_ARRAY:  # (as ``/call`` bounds an array: each is read on the loop)
        errors.append(("messages", f"must have at most {MAX_ARRAY:,} items; got {len(raw):,}"))
        return []
    out: list[Message] = []
    origin = [] if origin is None else origin
    for i, m in enumerate(raw):
        where = f"messages[{i}]"
        if not isinstance(m, Mapping):
            errors.append((where, "must be an object"))
            continue
        said = m.get("role")
        role = _ROLES.get(said) if isinstance(said, str) else None
        if role is None:
            what = f"{said!r}" if said is None or isinstance(said, str) else type(said).__name__
            errors.append((f"{where}.role", f"unsupported role {what}"))
        calls = [name for name in ("tool_calls", "function_call") if m.get(name)]
        for name in calls:
            errors.append((f"{where}.{name}", "tool and function calls are not supported"))
        content = m.get("content")
        if role in ("assistant", "system") and (content is None or content == []) and not calls:
            continue  # an empty assistant or system turn (no tool call either): dropped
        if content is None and calls:
            continue  # the tool call is the error; a null content goes with it
        text = _text(content, where, errors)
        if role in ("assistant", "system") and text is not None and not text.strip():
            # replayed histories have empty assistant turns, and apps an optional system
            # prompt left empty (OpenAI takes both): nothing to send
            continue
        if role is not None and text is not None:
            out.append(Message(role=role, content=text))  # type: ignore[arg-type]
            origin.append(i)
    if out and all(m.role == "system" for m in out):
        # instructions alone, which OpenAI answers: the last of them is what the model is
        # asked (providers such as Anthropic take no conversation without a user turn)
        out[-1] = Message(role="user", content=out[-1].content)
    return out


def _stop(raw: Any) -> Any:
    if raw is None:
        return ()
    if isinstance(raw, str):
        return (raw,)
    return tuple(raw) if isinstance(raw, list) else raw


def _unsupported(body: Mapping[str, Any], errors: list[tuple[str, str]]) -> None:
    """Parameters that would change what the client gets back, which switchman does not do:
    a clear 400 naming them, rather than a text answer the client did not ask for."""
    for name in ("tools", "functions"):
        if body.get(name):
            errors.append((name, "tool and function calling are not supported"))
    for name in ("tool_choice", "function_call"):
        if body.get(name) not in (None, "none", "auto"):
            errors.append((name, "tool and function calling are not supported"))
    fmt = body.get("response_format")
    if fmt is not None and fmt != {"type": "text"}:
        errors.append(("response_format", "only text answers are supported"))
    if body.get("logprobs"):
        errors.append(("logprobs", "log probabilities are not supported"))
    if body.get("top_logprobs") is not None:
        errors.append(("top_logprobs", "log probabilities are not supported"))
    if body.get("web_search_options") is not None:
        errors.append(
            (
                "web_search_options",
                "web search options are not supported: they cannot be honoured across"
                " providers (a search model, such as Perplexity's sonar, searches on its own)",
            )
        )
    for name in ("presence_penalty", "frequency_penalty"):
        value = body.get(name)
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, (int, float)) or not -2 <= value <= 2
        ):
            errors.append((name, "must be a number between -2 and 2"))
    if body.get("logit_bias"):
        errors.append(
            (
                "logit_bias",
                "token biases are not supported: they cannot be honoured across providers",
            )
        )
    if body.get("audio") is not None or body.get("modalities") not in (None, ["text"]):
        errors.append(("modalities", "only text output is supported"))


#: what the ``switchman`` object of a request may hold: the call's own fields that the
#: chat-completions body has no place for
EXTENSION_FIELDS: Final = ("intent", "min_trust", "capabilities", "options")


def _extension(raw: Any, errors: list[tuple[str, str]]) -> Mapping[str, Any]:
    """The request's ``switchman`` object (the SDK's ``extra_body``); its unknown keys named."""
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        errors.append(("switchman", f"must be an object with any of {', '.join(EXTENSION_FIELDS)}"))
        return {}
    for key in raw:
        if key not in EXTENSION_FIELDS:
            errors.append(
                (f"switchman.{key}", f"unknown field; allowed: {', '.join(EXTENSION_FIELDS)}")
            )
    return raw


def v1_field(field: str, origin: Sequence[int] = ()) -> str:
    """A ``Call`` field's name as a chat-completions request spells it (``origin``: the
    request's index of each message the call kept)."""
    if field == "prompt":  # /v1 sends messages, never a prompt: the size check names prompt
        return "messages"
    head = field.split(".")[0].split("[")[0]
    if head == "params":
        return field.removeprefix("params.")
    if head == "caller":  # the caller is the request's ``user``
        return "user"
    if head == "messages" and (found := re.match(r"messages\[(\d+)\]", field)):
        k = int(found.group(1))
        if k < len(origin):
            return f"messages[{origin[k]}]{field[found.end() :]}"
    if head in ("min_trust", "capabilities", "options"):
        return f"switchman.{field}"
    return field


def v1_error(err: HttpError) -> HttpError:
    """A gateway error about a call's fields, as ``/v1`` answers it: the fields named as the
    request spelled them, and a bad value (a 422 elsewhere) a 400, OpenAI's status for it."""
    details = [{**d, "field": v1_field(d["field"])} for d in err.details or ()]
    if err.status != 422:
        return HttpError(
            err.status, err.code, err.message, details=details, param=err.param, headers=err.headers
        )
    message = "; ".join(f"{d['field']}: {d['message']}" for d in details) or err.message
    param = details[0]["field"] if details else None
    return HttpError(400, "invalid_value", message, param=param, details=details)


def chat_request(body: Any) -> ChatRequest:
    """A ``ChatRequest`` from a chat-completions body; ``HttpError(400)`` naming bad params."""
    if not isinstance(body, Mapping):
        raise HttpError(400, "invalid_request_error", "the body must be a JSON object")
    errors: list[tuple[str, str]] = []
    model = body.get("model")
    if not isinstance(model, str) or not model:
        errors.append(("model", "must be a model alias, a route name or 'auto'"))
    origin: list[int] = []
    messages = _messages(body.get("messages"), errors, origin)
    n = body.get("n")
    if n is not None and (isinstance(n, bool) or n != 1):
        errors.append(("n", "only n = 1 is supported"))
    _unsupported(body, errors)
    stream = body.get("stream")
    if stream is not None and not isinstance(stream, bool):
        errors.append(("stream", "must be true or false"))
    options = body.get("stream_options")
    include_usage = False
    if options is not None and stream is not True:
        errors.append(("stream_options", "only allowed when stream is true"))
    elif options is not None:
        if not isinstance(options, Mapping) or not isinstance(
            options.get("include_usage", False), bool
        ):
            errors.append(("stream_options", "must be an object with a boolean include_usage"))
        else:
            include_usage = bool(options.get("include_usage", False))
    user = body.get("user")
    if user is not None and (not isinstance(user, str) or len(user) > 200):
        errors.append(("user", "must be a string of at most 200 characters"))
        user = None
    elif user is not None and (problem := text_problem(user) or unprintable(user)) is not None:
        errors.append(("user", problem))
        user = None
    metadata = body.get("metadata")
    if metadata is not None and not isinstance(metadata, Mapping):
        errors.append(("metadata", "must be an object"))
        metadata = None
    ext = _extension(body.get("switchman"), errors)
    intent_name = "switchman.intent" if "intent" in ext else "intent"
    intent: Any = ext.get("intent", body.get("intent", "unknown"))
    if "intent" in ext and "intent" in body and body["intent"] != ext["intent"]:
        errors.append(("intent", "differs from switchman.intent: give one of them"))
    elif not isinstance(intent, str) or intent not in INTENTS:
        errors.append((intent_name, f"must be one of {', '.join(sorted(INTENTS))}"))
        intent = "unknown"
    max_tokens = body.get("max_completion_tokens")
    max_name = "max_completion_tokens"
    if max_tokens is None:
        max_tokens, max_name = body.get("max_tokens"), "max_tokens"
    elif body.get("max_tokens") is not None:  # the one not used is still checked
        try:
            Params(max_tokens=body["max_tokens"])
        except ValidationError as exc:
            errors.extend(("max_tokens", f.message) for f in exc.fields)
    options = Options(verbosity="full" if max_tokens is None else "standard")
    if "options" in ext:
        try:
            options = structure(ext["options"], Options)
        except ValidationError as exc:
            errors.extend(
                (
                    "switchman.options" if f.field == "body" else f"switchman.options.{f.field}",
                    f.message,
                )
                for f in exc.fields
            )
        else:
            if "verbosity" not in ext["options"] and max_tokens is None:
                options = attrs.evolve(options, verbosity="full")
    params: Params | None = None
    try:
        params = Params(
            temperature=body.get("temperature"),
            top_p=body.get("top_p"),
            max_tokens=max_tokens,
            seed=body.get("seed"),
            stop=_stop(body.get("stop")),
        )
    except ValidationError as exc:
        for f in exc.fields:
            errors.append((max_name if f.field == "max_tokens" else f.field, f.message))
    except TypeError:
        errors.append(("stop", "must be a string or an array of strings"))
    call: Call | None = None
    if not errors:
        try:
            call = Call(
                messages=tuple(messages),
                model=model,  # type: ignore[arg-type]
                intent=intent,
                caller=Caller(handle=user or "anonymous", account_id=user or ""),
                min_trust=ext.get("min_trust", "untrusted"),
                capabilities=ext.get("capabilities", ()),
                params=params or Params(),
                # no limit asked for: as long an answer as the model gives (OpenAI's way)
                options=options,
                metadata=dict(metadata or {}),
            )
        except ValidationError as exc:
            errors.extend((v1_field(f.field, origin), f.message) for f in exc.fields)
    errors = capped(errors, lambda field, message: (field, message))
    if errors or call is None:
        param, message = errors[0]
        raise HttpError(
            400,
            "invalid_value",
            f"{param}: {message}",
            param=param,
            details=[{"field": f, "message": m} for f, m in errors],
        )
    return ChatRequest(call=call, stream=bool(stream), include_usage=include_usage)


def fallbacks(result: Result) -> int:
    """How many times the call moved on to another model."""
    models = {attempt.alias for attempt in result.trace.attempts}
    return max(len(models) - 1, 0)


def result_headers(result: Result | None, job_id: str) -> Headers:
    """The headers of an answer about job ``job_id`` (``result`` None: a stream's, whose
    result comes in its final chunk); the model and provider only when one answered."""
    job = job_id.encode()
    headers: list[tuple[bytes, bytes]] = [(b"x-switchman-job-id", job), (b"x-request-id", job)]
    if result is not None:
        if result.model:
            headers.append((b"x-switchman-model", result.model.encode()))
        if result.provider:
            headers.append((b"x-switchman-provider", result.provider.encode()))
        headers += [
            (b"x-switchman-attempts", str(len(result.trace.attempts)).encode()),
            (b"x-switchman-fallbacks", str(fallbacks(result)).encode()),
            (b"x-switchman-cost-usd", _decimal(result.cost_usd).encode()),
        ]
    return headers


def _decimal(usd: float) -> str:
    """``usd`` to the nano-dollar, in plain decimals (``0.000023``, never ``2.3e-05``)."""
    return f"{usd:.9f}".rstrip("0").rstrip(".") or "0"


def switchman_info(result: Result, job_id: str) -> dict[str, Any]:
    return {
        "job_id": job_id,
        "call_id": result.call_id,
        "model": result.model,
        "provider": result.provider,
        "attempts": len(result.trace.attempts),
        "fallbacks": fallbacks(result),
        "cost_usd": result.cost_usd,
        # a provider reported no usage (or not all) for an attempt billed: its usage and
        # cost are switchman's bound, at the most the text could have been billed
        "usage_estimated": any(a.usage_estimated for a in result.trace.attempts),
        "simulated": result.simulated,
        "citations": list(result.citations),
    }


def usage_body(usage: Usage) -> dict[str, Any]:
    """OpenAI's usage object, details always there as OpenAI sends them: the prompt tokens
    read from cache and the completion's reasoning tokens (0 when the provider reported
    none)."""
    return {
        "prompt_tokens": usage.input_tokens,
        "completion_tokens": usage.output_tokens,
        "total_tokens": usage.input_tokens + usage.output_tokens,
        "prompt_tokens_details": {"cached_tokens": usage.cached_input_tokens},
        "completion_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
    }


def completion_body(result: Result, *, job_id: str, created: int, requested: str) -> dict[str, Any]:
    return {
        "id": f"chatcmpl-{job_id}",
        "object": "chat.completion",
        "created": created,
        "model": result.model or requested,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": result.answer, "refusal": None},
                "finish_reason": result.finish_reason or "stop",
                "logprobs": None,
            }
        ],
        "usage": usage_body(result.usage),
        "system_fingerprint": None,
        # (where Perplexity's own chat completions put an answer's sources)
        **({"citations": list(result.citations)} if result.citations else {}),
        "switchman": switchman_info(result, job_id),
    }


def chunk_body(
    *,
    job_id: str,
    created: int,
    model: str,
    delta: Mapping[str, Any] | None,
    finish_reason: str | None = None,
    usage: Usage | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """One ``chat.completion.chunk``; ``delta=None`` gives the usage-only chunk (no choices)."""
    body: dict[str, Any] = {
        "id": f"chatcmpl-{job_id}",
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "choices": []
        if delta is None
        else [{"index": 0, "delta": dict(delta), "finish_reason": finish_reason, "logprobs": None}],
    }
    if usage is not None:
        body["usage"] = usage_body(usage)
    if extra is not None:
        body["switchman"] = dict(extra)
        if extra.get("citations"):  # (where Perplexity's own chunks carry them too)
            body["citations"] = list(extra["citations"])
    return body


def _request_fault(result: Result) -> bool:
    """Whether every failure of the call was caused by the request itself: each failed
    attempt ran out of context or got a 400/413/422, and every error came from such an
    attempt (none is a timeout, a budget, a model left out, a refusal...)."""
    failed = [a for a in result.trace.attempts if a.outcome != "success"]
    if not failed or not result.errors:
        return False
    if not all(
        a.outcome == "context_exceeded"
        or (a.outcome == "error" and a.status_code in _REQUEST_STATUSES)
        for a in failed
    ):
        return False
    context = any(a.outcome == "context_exceeded" for a in failed)
    return all(
        e.provider is not None
        and e.code == "all_models_failed"
        and (e.status in _REQUEST_STATUSES or context)
        for e in result.errors
    )


def _unroutable(result: Result) -> HttpError | None:
    """The 400 or 403 for a call the router tried no model for, when no model it could
    use was left out for its availability (see the module's docstring); else None."""
    excluded = unrouted(result)
    if not excluded:
        return None
    kinds = [exclusion_kind(e.reason) for e in excluded]
    if "availability" in kinds:
        return None
    request = [e for e, kind in zip(excluded, kinds, strict=True) if kind == "request"]
    if request:
        context = all(e.reason.startswith(CONTEXT_EXCLUSION) for e in request)
        return HttpError(
            400,
            "context_length_exceeded" if context else "invalid_request",
            f"no eligible model for this request: {describe(request)}",
            param="messages" if context else None,  # (where OpenAI points a context error)
        )
    return HttpError(
        403,
        "permission_denied",
        f"this key may use none of the models the call could use: {describe(excluded)}",
    )


def failure(result: Result) -> HttpError:
    """The HTTP error for a failed call: by its cause (see the module's docstring), else
    by its first error code."""
    first = result.errors[0] if result.errors else None
    unroutable = _unroutable(result)
    if unroutable is not None:
        return unroutable
    if first is not None and _request_fault(result):
        context = any(a.outcome == "context_exceeded" for a in result.trace.attempts)
        code = "context_length_exceeded" if context else "invalid_request"
        return HttpError(400, code, first.message, param="messages" if context else None)
    if first is not None and first.code == "permission_denied" and first.provider is not None:
        # the provider's own words: the last attempt's error (the lead one says "N attempts")
        last = result.errors[-1]
        said = last if last.code == first.code and last.provider == first.provider else first
        status = f" (HTTP {said.status})" if said.status is not None else ""
        if said.message.startswith(QUOTA_EXHAUSTED):  # the key is good; the account is not
            return HttpError(
                502,
                "provider_quota_exhausted",
                f"the provider {said.provider} says switchman's account with it has no quota "
                f"or credit left{status}: {said.message.removeprefix(QUOTA_EXHAUSTED)}",
                headers=[(b"x-should-retry", b"false")],
            )
        return HttpError(
            502,
            "provider_key_rejected",
            f"the provider {said.provider} rejected switchman's API key for it{status}: "
            f"{said.message}",
            headers=[(b"x-should-retry", b"false")],
        )
    code = first.code if first is not None else "all_models_failed"
    message = first.message if first is not None else "the call failed"
    # the router already moved on to other models inside the deadline, or every model it
    # tried answered with no text (billed; the same request would do it again): sending
    # it again (the SDK does, twice) triples the wait and the spend
    failed = [a for a in result.trace.attempts if a.outcome != "success"]
    textless = bool(failed) and all((a.error or "").startswith(NO_ANSWER) for a in failed)
    no_retry = [(b"x-should-retry", b"false")] if code == "timeout" or textless else []
    return HttpError(FAILURE_STATUS.get(code, 503), code, message, headers=no_retry)
