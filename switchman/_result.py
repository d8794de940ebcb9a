"""``Result``, its ``Trace`` and the live ``TraceEvent``: frozen values out of the router."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final, Literal

import attrs

from switchman._errors import failed_call_error

Outcome = Literal[
    "success",
    "timeout",
    "error",
    "refused",
    "content_filtered",
    "rate_limited",
    "context_exceeded",
    "unavailable",
    "cancelled",
]
EventType = Literal[
    "call.accepted",
    "call.routed",
    "attempt.started",
    "attempt.delta",
    "attempt.finished",
    "breaker.changed",
    "budget.reserved",
    "budget.settled",
    "call.completed",
    "call.failed",
    "events.dropped",
]


@attrs.frozen(kw_only=True)
class Usage:
    """Tokens an attempt was billed for: as the provider reported them (reasoning and
    cached tokens included), else estimated from the text.

    Of them, as the provider reported them (0: it reported none): ``cached_input_tokens``,
    the input read from its prompt cache (OpenAI's ``prompt_tokens_details.cached_tokens``,
    DeepSeek's ``prompt_cache_hit_tokens``, Anthropic's ``cache_read_input_tokens``,
    Gemini's ``cachedContentTokenCount``), never above ``input_tokens``; and
    ``reasoning_tokens``, the output the model spent reasoning (thinking) before its
    answer, never above ``output_tokens``."""

    input_tokens: int = 0
    output_tokens: int = 0
    cached_input_tokens: int = 0
    reasoning_tokens: int = 0


@attrs.frozen(kw_only=True)
class RedactionItem:
    """What redaction replaced in an answer: ``count`` items of one ``kind``."""

    kind: str
    count: int


@attrs.frozen(kw_only=True)
class RedactionReport:
    """What redaction did to the answer: ``performed`` (whether it replaced anything; an
    answer with nothing to hide, or a call that turned redaction off, has False) and a count
    per kind replaced (``api_key``, ``email``...)."""

    performed: bool = False
    items: tuple[RedactionItem, ...] = ()


@attrs.frozen(kw_only=True)
class ErrorInfo:
    """Why a call failed: ``code`` (``budget_exceeded``, ``no_eligible_model``,
    ``all_models_failed``, ``timeout``, ``refused``, ``rate_limited``,
    ``permission_denied``, ``cancelled``...), a message carrying the real cause (the
    provider's own words, a refusal's reason), and the provider and HTTP status when one
    said so. ``retry_after_s``: for a rate limit, the seconds the provider said to wait
    (its Retry-After), when it said; for ``no_eligible_model``, the seconds until the
    soonest model left out only for now (a breaker's cool-down, a rate limit, every attempt
    slot taken) is back, None when every model was left out for good or for what the call
    asks (a window too small, a capability it lacks). A failed result's first error is the
    call's; more follow for its attempts."""

    code: str
    message: str
    provider: str | None = None
    status: int | None = None
    retry_after_s: float | None = None


@attrs.frozen(kw_only=True)
class Exclusion:
    """A model left out of a call, and why (``reason``, as the trace says it)."""

    alias: str
    reason: str


@attrs.frozen(kw_only=True)
class EligibilityTrace:
    """The models that could serve a call, and each one left out with its reason."""

    eligible: tuple[str, ...] = ()
    excluded: tuple[Exclusion, ...] = ()


@attrs.frozen(kw_only=True)
class Ranked:
    """A model's place in a call's ranking: its score and, for the first ten, the
    factors that sum to it."""

    alias: str
    score: float
    factors: Mapping[str, float] = attrs.field(factory=dict)


@attrs.frozen(kw_only=True)
class AttemptRecord:
    """One attempt of a call, in order (``n`` from 1): the model (``alias``) and provider,
    wall-clock ``started_at``/``ended_at`` (seconds since the epoch), time to first token,
    the ``outcome`` and, failed, the HTTP status and the provider's error; the tokens and
    cost it was billed (nothing for an attempt that failed before any output)."""

    n: int
    alias: str
    provider: str
    started_at: float
    ended_at: float
    ttft_ms: float | None
    outcome: Outcome
    status_code: int | None = None
    error: str | None = None
    usage: Usage = attrs.field(factory=Usage)
    cost_usd: float = 0.0
    malformed_events: int = 0
    #: why this attempt was made after the one before: None for the first, else
    #: ``retry: <why>`` (the same model again) or ``fallback[: <why>]`` (the next model);
    #: a continuation of a broken stream says how much of the answer it continues
    after: str | None = None
    #: the provider reported no usage (or not all of it): ``usage`` and ``cost_usd`` are
    #: switchman's bound, at the most the text could have been billed, not its report
    usage_estimated: bool = False
    #: the model's id at its provider as the config named it then (``alias`` may name
    #: another model after the config changed; the provider may report a dated id)
    model_id: str | None = None


@attrs.frozen(kw_only=True)
class Wait:
    """Time a call spent waiting that no attempt accounts for: ``ms`` after attempt
    ``after_attempt`` (0: before any) and why (its turn in the router, a model paused for
    a moment, a backoff before a retry). A wait the call's end cut short counts too."""

    after_attempt: int
    ms: float
    reason: str


@attrs.frozen(kw_only=True)
class BudgetTrace:
    """What a call held against its budgets (``scopes``) and what it settled at."""

    reserved_usd: float = 0.0
    settled_usd: float = 0.0
    scopes: tuple[str, ...] = ()


@attrs.frozen(kw_only=True)
class Trace:
    """How a call was routed: which models were eligible and why each other was left out,
    the ranking with each model's score factors, every attempt (and why it followed the
    one before), the waits outside any attempt, the candidates passed over once attempts
    began, the budget's reservation and settlement, and the call's outcome."""

    eligibility: EligibilityTrace = attrs.field(factory=EligibilityTrace)
    ranking: tuple[Ranked, ...] = ()
    attempts: tuple[AttemptRecord, ...] = ()
    budget: BudgetTrace = attrs.field(factory=BudgetTrace)
    outcome: str = ""
    #: wall-clock time the call was accepted: its ``latency_ms`` counts from here
    started_at: float = 0.0
    #: how the attempts were ordered: ``score`` (by the ranking) or ``named`` (the model
    #: or route the call named, in its chain's order: the ranking is for information)
    order: Literal["score", "named"] = "score"
    #: the waits between ``started_at`` and the attempts, and between attempts
    waits: tuple[Wait, ...] = ()
    #: candidates not tried (again) once attempts began, and why: a budget's refusal, the
    #: call's cost cap, a window too small to continue the answer, a breaker that opened
    #: before a retry, a second alias of a model the call had switched away from
    skipped: tuple[Exclusion, ...] = ()


@attrs.frozen(kw_only=True)
class Result:
    """What a call came to, complete or failed: the router returns it rather than raising
    (``raise_for_status()`` raises a failed one).

    ``answer`` is redacted, and whole (never a truncated answer marked complete); ``model``
    and ``provider`` name who actually answered, ``usage`` is that attempt's, ``cost_usd``
    what the call cost (its answer plus attempts cut short after output began);
    ``latency_ms`` and ``ttft_ms`` are the caller's wait; ``errors`` say why a call failed;
    ``trace`` how it was routed; ``simulated`` that the built-in simulator answered.
    """

    call_id: str
    job_id: str | None = None
    status: Literal["complete", "failed"]
    answer: str = ""
    model: str | None = None
    provider: str | None = None
    provider_model_id: str | None = None
    usage: Usage = attrs.field(factory=Usage)
    cost_usd: float = 0.0
    latency_ms: float = 0.0
    ttft_ms: float | None = None
    redaction: RedactionReport = attrs.field(factory=RedactionReport)
    errors: tuple[ErrorInfo, ...] = ()
    trace: Trace = attrs.field(factory=Trace)
    simulated: bool = False
    #: why the answering model stopped, in OpenAI's words: ``stop`` (it was done),
    #: ``length`` (it reached ``max_tokens``: the answer is cut, by the caller's limit),
    #: or the provider's own reason; None for a failed call
    finish_reason: str | None = None
    #: the URLs of the sources the answer cites, in the order of its ``[1]``, ``[2]``
    #: markers (Perplexity's search results), ``""`` in place of one left out (a URL
    #: carrying what redaction hides, or no web link); empty for a model that cites none
    citations: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.status == "complete"

    def raise_for_status(self) -> Result:
        """Return self when complete; otherwise raise a ``CallFailed`` carrying self whose
        class is also that of the result's code (``errors[0].code``), ``code`` that code:

        - ``budget_exceeded``: ``BudgetExceeded``
        - ``no_eligible_model``: ``NoEligibleModel``
        - ``permission_denied``: ``PermissionDenied``
        - ``timeout``: ``AttemptTimeout``
        - ``rate_limited``: ``RateLimited``
        - ``refused``: ``Refused``
        - ``cancelled``: ``CallCancelled``
        - ``all_models_failed`` and any other: ``CallFailed`` itself

        So ``except BudgetExceeded`` and ``except CallFailed`` both catch a call a budget
        refused (see ``switchman._errors.failed_call_error``)."""
        if self.status != "complete":
            raise failed_call_error(self)
        return self


def failed(call_id: str, job_id: str | None, code: str, message: str) -> Result:
    """The result of a call that ended before any attempt: its one error, ``code``."""
    return Result(
        call_id=call_id,
        job_id=job_id,
        status="failed",
        errors=(ErrorInfo(code=code, message=message),),
        trace=Trace(outcome=code),
    )


@attrs.frozen(kw_only=True)
class TraceEvent:
    """One live event. ``data`` holds the type's own fields (JSON-ready values)."""

    type: EventType
    call_id: str
    job_id: str | None
    ts: float
    data: Mapping[str, Any] = attrs.field(factory=dict)
    handle: str | None = None


@attrs.frozen(kw_only=True)
class Delta:
    """A piece of streamed answer text, already redacted."""

    text: str


#: every provider's word for "the model was done" (xAI sends "" too) and "it reached a
#: token limit" (the caller's max_tokens, or the context window: Mistral's
#: ``model_length``, Anthropic's ``model_context_window_exceeded``)
_FINISHED: Final = frozenset({"stop", "end_turn", "stop_sequence", "eos", "completed", ""})
_CUT: Final = frozenset(
    {"length", "max_tokens", "max_output_tokens", "model_length", "model_context_window_exceeded"}
)


def normal_finish(reason: str | None) -> str | None:
    """A provider's finish reason in OpenAI's words (``stop``, ``length``), else lowered."""
    if reason is None:
        return None
    lowered = reason.lower()
    if lowered in _FINISHED:
        return "stop"
    if lowered in _CUT:
        return "length"
    return lowered


def finish_is_normal(reason: str | None) -> bool:
    """Whether an answer that ended with ``reason`` is whole (``stop``) or cut at a token
    limit (``length``, which the result reports). Anything else (Gemini ``OTHER`` or
    ``MALFORMED_FUNCTION_CALL``, Anthropic ``pause_turn``, a tool call switchman never asked
    for, Ollama ``unload``) means the text may be incomplete: the attempt failed. So does no
    reason at all: every provider here says why its answer ended (an end marker without one
    is a broken upstream, or a proxy closing a cut stream cleanly)."""
    return reason is not None and normal_finish(reason) in ("stop", "length")
