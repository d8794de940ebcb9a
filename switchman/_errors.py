"""The one exception tree of switchman.

::

    SwitchmanError
     ├── ValidationError          bad input; names every bad field       (validation_error)
     ├── PermissionDenied         override without acknowledgements, model not allowed
     ├── BudgetExceeded           a budget cannot cover the reservation
     ├── NoEligibleModel          every model was excluded, with reasons
     ├── UnknownCall              feedback for a call the router does not know (a KeyError)
     ├── CallFailed               a failed Result, raised by ``raise_for_status``; carries it
     │    ├── CallCancelled        the call was cancelled (``cancelled``)
     │    └── (private)            one per code, each also its code's class below or above:
     │                             BudgetExceeded, NoEligibleModel, PermissionDenied,
     │                             AttemptTimeout, RateLimited, Refused
     └── ProviderError            one attempt against one provider failed
          ├── RateLimited          429 and friends; ``retry_after`` seconds when known
          ├── AttemptTimeout       ttft, stall before output, or attempt deadline passed
          ├── UpstreamError        5xx, 529, overloaded; ``status``
          ├── TransientError       connect error or reset before any byte
          │    └── ResentFailed     the pool sent it again on a new connection: failed too
          ├── AuthError            bad or missing key; never retried
          │    └── QuotaExhausted   the account's quota or credit is used up (billing)
          ├── ContextExceeded      prompt too long for the model
          ├── ContentRejected      request rejected for its content (HTTP 400 policy)
          ├── Refused              the model answered with a refusal or filtered output
          ├── BadRequest           any other 4xx caused by the request
          │    └── ModelNotFound    404: the provider does not serve this model
          ├── BadReply             malformed body or stream
          └── StreamBroken         stream cut or stalled after output began

Besides the errors of a call, the router's own: ``RouterClosed`` (``feedback`` or
``spend`` after it closed), ``RouterFailed`` (a part of it failed and restarted meanwhile)
and ``supervisor.SupervisorEscalation`` (it gave up: its restarts ran out), each a
``SwitchmanError`` too.

Error codes (``.code``) are the public strings of DESIGN.md; attempt outcomes
(``.outcome``) are what the trace records for a failed attempt.

``Result.raise_for_status`` raises a ``CallFailed`` that is also the class of the
result's code (:func:`failed_call_error`): ``except BudgetExceeded`` catches a call
refused by a budget whether it came from ``raise_for_status`` or elsewhere, and
``except CallFailed`` still catches every failed result.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Final, cast

import attrs

if TYPE_CHECKING:
    from switchman._result import Result


class SwitchmanError(Exception):
    """Root of every error switchman raises on purpose. ``result``: the failed call's
    result when ``Result.raise_for_status`` raised it (``except switchman.BudgetExceeded as
    e: e.result``), else None."""

    code: ClassVar[str] = "error"
    result: Result | None = None


@attrs.frozen
class FieldError:
    """One bad field: a dotted path (``params.temperature``) and what is wrong with it."""

    field: str
    message: str


class ValidationError(SwitchmanError, ValueError):
    """Input that does not describe a valid call; ``fields`` names every bad field."""

    code = "validation_error"

    def __init__(self, fields: Sequence[FieldError], *, source: str | None = None) -> None:
        self.fields = tuple(fields)
        #: where the input came from (a configuration file's path), named in the message
        self.source = source
        said = "; ".join(
            f"{_shown(f.field)}: {f.message}" if f.field != source else f.message
            for f in self.fields
        )
        super().__init__(f"invalid configuration {source}: {said}" if source else said)

    def __reduce__(self) -> tuple[Any, ...]:  # (pickled across a process pool, copied)
        return (_validation_error, (self.fields, self.source), self.__dict__)  # (notes too)

    def prefixed(self, prefix: str) -> ValidationError:
        """The same errors with ``prefix.`` before every field path."""
        return ValidationError(
            [
                FieldError(_join(prefix, f.field) if f.field else prefix, f.message)
                for f in self.fields
            ]
        )


def _validation_error(fields: Sequence[FieldError], source: str | None) -> ValidationError:
    return ValidationError(fields, source=source)


def _shown(path: str) -> str:
    """``path`` with what is not printable escaped: a name refused for a line break or a
    bidi control in it is shown in the message (a log line), not obeyed there."""
    if path.isprintable():
        return path
    return "".join(c if c.isprintable() else f"\\u{ord(c):04x}" for c in path)


def _join(prefix: str, field: str) -> str:
    return f"{prefix}{field}" if field.startswith("[") else f"{prefix}.{field}"


class RouterFailed(SwitchmanError):
    """``Router.feedback`` or ``Router.spend`` asked while a part of the router failed (a
    bug, logged) and restarted: nothing was recorded or read; asking again works."""

    code = "internal_error"

    def __init__(self) -> None:
        super().__init__(
            "the router failed while handling this (a bug, logged; it restarted): try again"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (), self.__dict__)


class PermissionDenied(SwitchmanError):
    """The caller may not do this: a model outside its allow-list, redaction turned off
    without the override and its acknowledgements. Also the class of a failed result's
    ``permission_denied`` (see :func:`failed_call_error`)."""

    code = "permission_denied"


class BudgetExceeded(SwitchmanError):
    """A budget (global, a provider's, a caller's) cannot hold the call's reservation, so it
    was not sent. A failed result's code ``budget_exceeded``; its message names the budget
    and its figures."""

    code = "budget_exceeded"


class NoEligibleModel(SwitchmanError):
    """No model may take the call (intent, trust, capabilities, context window, cost cap,
    allow-list, breakers...): the result's trace says why each was left out. A failed
    result's code ``no_eligible_model``."""

    code = "no_eligible_model"


class UnknownCall(SwitchmanError, KeyError):
    """``Router.feedback`` for a call the router does not know (it remembers who answered
    its last 10,000 calls since it started) and no ``model`` said who answered. A
    ``SwitchmanError`` and a ``KeyError`` whose message says what to do."""

    code = "unknown_call"

    def __init__(self, call_id: str, said: str | None = None) -> None:
        super().__init__(call_id)
        self.call_id = call_id
        self._said = said

    @classmethod
    def out_of_service(cls, call_id: str) -> UnknownCall:
        """The model that answered the call is not in service in this router."""
        said = (
            f"the model that answered call {call_id!r} is not in service in this router (its"
            " provider has no key, or the config no longer has it): rate the call once it"
            " is back"
        )
        return cls(call_id, said)

    def __str__(self) -> str:
        if self._said is not None:
            return self._said
        return (
            f"this router does not know call {self.call_id!r} (it remembers who answered its "
            "last 10,000 calls since it started): pass model= (the result's model) and "
            "intent= (the call's) to credit it"
        )


class ProviderError(SwitchmanError):
    """One attempt failed. ``outcome`` is the attempt outcome the trace records.

    ``retry_same`` says whether the same model may be tried once more;
    ``trips_breaker`` whether the failure counts against the model's health.
    """

    code = "all_models_failed"
    outcome: ClassVar[str] = "error"
    retry_same: ClassVar[bool] = False
    trips_breaker: ClassVar[bool] = True

    def __init__(
        self, message: str, *, provider: str | None = None, status: int | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.provider = provider
        self.status = status
        #: what the provider billed for this failed attempt, when it said so (an answer
        #: that ended abnormally, with its usage): input and output tokens, and its own
        #: cost figure when it gave one. Budgets count it; the result does not.
        self.billed: tuple[int, int] | None = None
        self.billed_cost_usd: float | None = None
        #: of the input billed, the tokens billed at the model's cached-input price
        self.billed_cached: int = 0
        #: stream events parsed from the same read before the failure (text that came in
        #: one network read with a provider's error event): delivered before it is raised
        self.events_before: tuple[Any, ...] = ()
        #: the error a stream's error event carried, when this one stands for it (a stream
        #: broken after its text began by a rate limit, an overload...): what the model's
        #: provider actor learns from (a rate limit holds the model back, not its breaker)
        self.cause: ProviderError | None = None


class RateLimited(ProviderError):
    """A 429 (or the provider's counters at 0): ``retry_after`` seconds when the provider
    said. Waited for when short and inside the deadline, else the call falls back. Never
    trips the breaker."""

    code = "rate_limited"
    outcome = "rate_limited"
    trips_breaker = False

    def __init__(
        self,
        message: str,
        *,
        provider: str | None = None,
        status: int | None = 429,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, provider=provider, status=status)
        self.retry_after = retry_after


class AttemptTimeout(ProviderError):
    """An attempt passed its deadline, its time to first token, or stalled before output
    (after output began it is :class:`StreamBroken`); or the call passed ``hard_ms``. Not
    retried on the same model."""

    code = "timeout"
    outcome = "timeout"


class UpstreamError(ProviderError):
    """5xx, 529, overloaded. What the provider said about retrying, when it said it:
    ``retry_after``, seconds to wait (``retry-after-ms`` / ``retry-after`` on a 503 or
    529, or Gemini's ``RetryInfo.retryDelay``); ``should_retry``, its ``x-should-retry``
    header (False: the provider says another try will fail too)."""

    retry_same = True

    def __init__(
        self,
        message: str,
        *,
        provider: str | None = None,
        status: int | None = None,
        retry_after: float | None = None,
        should_retry: bool | None = None,
    ) -> None:
        super().__init__(message, provider=provider, status=status)
        self.retry_after = retry_after
        self.should_retry = should_retry


class TransientError(ProviderError):
    """The connection failed or could not be made in time, before any output: the same
    model is tried once more, with backoff, before the call falls back."""

    retry_same = True


class ResentFailed(TransientError):
    """A request the connection pool sent again at once on a new connection (its
    kept-alive one had gone stale) failed there too: the provider may have had it twice,
    as a retry would have given it, so the call falls back without trying the model
    again."""

    retry_same = False


class AuthError(ProviderError):
    """The provider rejected switchman's own key for it (its 401/403): the whole provider is
    held out for a while (``status()`` says why), since every call would meet the same
    answer. Never trips a model's breaker; the caller's result says ``permission_denied``."""

    code = "permission_denied"
    trips_breaker = False


#: how a used-up quota's message begins (its code is ``permission_denied``, as a rejected
#: key's: this tells the two apart where only the message travels, e.g. the gateway)
QUOTA_EXHAUSTED: Final = "quota exhausted: "


class QuotaExhausted(AuthError):
    """The account's quota, credit or spend limit is used up (OpenAI ``insufficient_quota``,
    Anthropic 402 ``billing_error`` or ``enforced_spend_limit_reached``): a billing matter,
    not a rate limit, so it is never retried and the provider is held out like a bad key.
    Its message begins with :data:`QUOTA_EXHAUSTED`."""

    def __init__(
        self,
        message: str,
        *,
        provider: str | None = None,
        status: int | None = None,
        per_model: bool = False,
        retry_after: float | None = None,
    ) -> None:
        if not message.startswith(QUOTA_EXHAUSTED):
            message = QUOTA_EXHAUSTED + message
        super().__init__(message, provider=provider, status=status)
        #: the quota is the model's own (Gemini's ``...PerDayPerProjectPerModel``): only
        #: that model is held out, for ``retry_after`` when the provider said it
        self.per_model = per_model
        self.retry_after = retry_after


class ContextExceeded(ProviderError):
    """The provider says the prompt and ``max_tokens`` do not fit the model's window: never
    retried on that model; the call falls back to one with more room."""

    outcome = "context_exceeded"
    trips_breaker = False


class ContentRejected(ProviderError):
    """The provider's content policy rejected the request (a 400 saying so): never retried
    on that model; the call falls back."""

    code = "refused"
    outcome = "content_filtered"
    trips_breaker = False


class Refused(ProviderError):
    """The model answered with a refusal (OpenAI ``message.refusal``, a ``content_filter``
    or ``refusal`` stop), not an answer: the call switches model."""

    code = "refused"
    outcome = "refused"
    trips_breaker = False

    def __init__(
        self,
        message: str,
        *,
        provider: str | None = None,
        status: int | None = None,
        content_filtered: bool = False,
    ) -> None:
        super().__init__(message, provider=provider, status=status)
        self.content_filtered = content_filtered

    @property
    def attempt_outcome(self) -> str:
        return "content_filtered" if self.content_filtered else "refused"


class BadRequest(ProviderError):
    """The provider refused the request itself (a 400 or 422 that is not about the
    context or content): the request, not the model's health, so it never trips the
    breaker, and the call falls back."""

    trips_breaker = False


class ModelNotFound(BadRequest):
    """The provider does not serve this model (a 404: an unknown or retired model id, a
    model the key has no access to, an Ollama model not pulled, or a ``base_url`` that
    points elsewhere). Never retried; the provider actor holds the model out for a while,
    with this message as the reason, instead of trying it first on every call."""


class BadReply(ProviderError):
    """The provider answered with something that is not its wire format (a web page, broken
    JSON, an empty body, text past what ``max_tokens`` allows): a failed attempt."""


#: how the message of a ``NoAnswerText`` begins (the gateway tells such a failure by it)
NO_ANSWER: Final = "no answer: "


class NoAnswerText(BadReply):
    """The answer ended with no text, or only white space: the model spent ``max_tokens``
    on reasoning (billed as output), or reasoned aloud and a stop sequence cut it there, or
    said nothing. Not an answer, so another model answers; not counted against the model's
    breaker (a larger ``max_tokens``, or another stop sequence, leaves it room)."""

    trips_breaker = False


class StreamBroken(ProviderError):
    """A stream was cut or stalled after output began: a failure, never a success."""

    outcome = "error"


class CallFailed(SwitchmanError):
    """Raised by ``Result.raise_for_status`` for a failed call; ``result`` says why.

    What is raised is the class of the result's code (its first error's, the one the
    trace's ``outcome`` holds), each a ``CallFailed`` too: see :func:`failed_call_error`.
    ``code`` is that code; ``error_code`` the result's own (the same, except for a code
    no class here stands for, e.g. ``internal_error``, raised as a plain ``CallFailed``).
    """

    code = "all_models_failed"
    result: Result

    def __init__(self, result: Result) -> None:
        self.result = result
        first = result.errors[0] if result.errors else None
        message = first.message if first is not None else "call failed"
        super().__init__(message)

    @property
    def error_code(self) -> str:
        return self.result.errors[0].code if self.result.errors else self.code

    def __reduce__(self) -> tuple[Any, tuple[Result]]:
        """Pickled as its result (a process pool, a task queue): unpickled, the same class
        is raised for it again."""
        return failed_call_error, (self.result,)


class CallCancelled(CallFailed):
    """The call was cancelled (``cancel_job``, the router stopping): code ``cancelled``."""

    code = "cancelled"


def _failed_as(kind: type[SwitchmanError]) -> type[CallFailed]:
    """A ``CallFailed`` that is also a ``kind``, for a failed result of ``kind``'s code. A
    traceback names it as the class a caller catches (``switchman.BudgetExceeded``)."""
    name = kind.__name__
    made = type(name, (CallFailed, kind), {"code": kind.code, "__module__": "switchman"})
    made.__qualname__ = name
    return cast("type[CallFailed]", made)


#: a failed result's code -> the class raised for it (a CallFailed carrying the result)
_FAILED_BY_CODE: Final[Mapping[str, type[CallFailed]]] = {
    kind.code: _failed_as(kind)
    for kind in (
        BudgetExceeded,
        NoEligibleModel,
        PermissionDenied,
        AttemptTimeout,
        RateLimited,
        Refused,
    )
} | {CallCancelled.code: CallCancelled}


def failed_call_error(result: Result) -> CallFailed:
    """The exception ``result.raise_for_status()`` raises for a failed ``result``.

    By the result's code (``result.errors[0].code``), an exception that is a
    ``CallFailed`` carrying ``result`` and also:

    ==================== ===========================================================
    ``budget_exceeded``  ``BudgetExceeded``
    ``no_eligible_model`` ``NoEligibleModel``
    ``permission_denied`` ``PermissionDenied``
    ``timeout``          ``AttemptTimeout`` (a ``ProviderError``; ``provider`` and
                         ``status`` those of the error, when one gave it)
    ``rate_limited``     ``RateLimited`` (a ``ProviderError``, as above; its
                         ``retry_after`` what the provider said to wait, if it said)
    ``refused``          ``Refused`` (a ``ProviderError``, as above)
    ``cancelled``        ``CallCancelled``
    anything else        ``CallFailed`` itself (``all_models_failed``, ``internal_error``)
    ==================== ===========================================================

    Its ``code`` is the result's code (``all_models_failed`` for a plain ``CallFailed``).
    """
    first = result.errors[0] if result.errors else None
    exc = _FAILED_BY_CODE.get(first.code if first else CallFailed.code, CallFailed)(result)
    if isinstance(exc, ProviderError) and first is not None:
        exc.provider = first.provider  # who gave the error that ended the call
        exc.status = first.status
        if isinstance(exc, RateLimited):
            exc.retry_after = first.retry_after_s  # (what the provider said to wait)
    return exc


def attempt_outcome(exc: ProviderError) -> str:
    """The trace outcome of a failed attempt."""
    if isinstance(exc, Refused):
        return exc.attempt_outcome
    return exc.outcome
