"""What to do after a failed attempt: retry the same model, switch model, or stop.

A pure decision over the error, the attempts already made on the model, ``now``
and the call's ``deadline`` (both monotonic seconds). Nothing here blocks: the
caller sleeps ``delay_s`` itself, inside its own cancel scope.

Rules:

* ``ContentRejected``: stop (the caller gets the provider's reason), or switch
  when the route opted in to ``content_fallback``.
* ``RateLimited``: retry the same model after ``retry_after`` when it is known,
  short (``<= max_wait_s``), ends before the deadline and the model had fewer
  than two attempts; otherwise switch.
* Errors with ``retry_same`` (``UpstreamError``, ``TransientError``): retry once
  after ``MIN_RETRY_GAP_S`` and a jittered backoff (or the provider's own
  ``retry_after`` on a 503/529 when that is longer and at most ``max_wait_s``) if
  that ends before the deadline; otherwise switch. A provider that says not to retry
  (``x-should-retry: false``) is switched away from at once. Never more than two
  attempts on one model. (A 429's Retry-After is the provider's to set: a retry
  after it may come sooner than ``MIN_RETRY_GAP_S``, still at most twice; it waits a
  little more, up to ``RATE_JITTER`` of it at random and at least ``MIN_429_WAIT_S``,
  so the calls a 429 turned away do not all come back at the same instant, its reset.)
  With another model left, a retry whose wait would pass ``RETRY_SHARE`` of the call's
  time left is a switch instead: that time is the other models'.
* Everything else (refusals, context length, auth, bad request, timeouts, broken
  streams, bad replies): switch. A silent or cut provider is never retried.
* A stream an error event broke after its text began (``StreamBroken`` with a
  ``cause``), when no other model is left to continue it (``nothing_else``): decided as
  its cause would be (an overload or a server error once, after a backoff; a rate limit
  after its short retry-after), so a call naming one model is continued by it rather
  than failed on a passing overload. With another model left, that one continues it.
"""

from __future__ import annotations

import random
from typing import Literal

import attrs

from switchman._errors import (
    ContentRejected,
    ContextExceeded,
    ProviderError,
    RateLimited,
    Refused,
    StreamBroken,
    UpstreamError,
)

#: Two attempts on one model are never closer together than this.
MIN_RETRY_GAP_S = 0.75
#: the share of a 429's Retry-After a retry may wait beyond it (drawn), and the least it
#: waits (``retry-after: 0`` from a model answering every call 429: 939 requests in 1.5 s)
RATE_JITTER = 0.2
MIN_429_WAIT_S = 0.25
#: At most this many attempts on one model per call.
MAX_ATTEMPTS_PER_MODEL = 2
#: with another model left, a retry waits at most this share of the call's time left
RETRY_SHARE = 0.5

RetryAction = Literal["retry", "switch", "stop"]


@attrs.frozen(kw_only=True)
class RetryDecision:
    """``action`` to take after waiting ``delay_s`` (retry only); ``reason`` is for humans."""

    action: RetryAction
    delay_s: float = 0.0
    reason: str = ""


def backoff_delay(
    retry_number: int, rng: random.Random, *, base_s: float = 0.25, cap_s: float = 2.0
) -> float:
    """Exponential backoff with full jitter: uniform in ``[0, min(cap_s, base_s * 2**(n-1))]``.

    ``retry_number`` counts from 1 (the first retry). ``rng`` is the injected,
    seedable source of randomness.
    """
    if retry_number < 1:
        raise ValueError(f"retry_number counts from 1, got {retry_number}")
    if base_s < 0 or cap_s < 0:
        raise ValueError("base_s and cap_s must be >= 0")
    # bound the exponent: past ~64 doublings the cap has long been reached
    ceiling = min(cap_s, base_s * 2.0 ** min(retry_number - 1, 64))
    return rng.uniform(0.0, ceiling)


def decide_after_failure(
    error: ProviderError,
    *,
    attempts_on_model: int,
    now: float,
    deadline: float,
    rng: random.Random,
    content_fallback: bool = False,
    nothing_else: bool = False,
    max_wait_s: float = 5.0,
    backoff_base_s: float = 0.25,
    backoff_cap_s: float = 2.0,
) -> RetryDecision:
    """Decide what follows a failed attempt.

    ``attempts_on_model``: attempts already made on this model in this call,
    the failed one included. ``deadline``: the call's overall deadline; a retry
    is only offered when its wait ends strictly before it, and, with another model
    left (not ``nothing_else``), within ``RETRY_SHARE`` of the time left: a retry that
    failed again had left the next model a few milliseconds, and the call timed out with
    a healthy model waiting. ``backoff_base_s`` / ``backoff_cap_s`` shape the jittered
    backoff of transient errors, added to ``MIN_RETRY_GAP_S``. ``nothing_else``: no other
    model is left to try (see the module's rules on broken streams).
    """
    decision = _decide(
        error,
        attempts_on_model=attempts_on_model,
        now=now,
        deadline=deadline,
        rng=rng,
        content_fallback=content_fallback,
        nothing_else=nothing_else,
        max_wait_s=max_wait_s,
        backoff_base_s=backoff_base_s,
        backoff_cap_s=backoff_cap_s,
    )
    left = deadline - now
    if decision.action == "retry" and not nothing_else and decision.delay_s > RETRY_SHARE * left:
        return RetryDecision(
            action="switch",
            reason=f"{decision.reason.partition(', retry in')[0]}: a retry in "
            f"{decision.delay_s:.2f} s would leave the other models too little of "
            f"the {left:.2f} s left",
        )
    return decision


def _decide(
    error: ProviderError,
    *,
    attempts_on_model: int,
    now: float,
    deadline: float,
    rng: random.Random,
    content_fallback: bool,
    nothing_else: bool,
    max_wait_s: float,
    backoff_base_s: float,
    backoff_cap_s: float,
) -> RetryDecision:
    cause = error.cause if isinstance(error, StreamBroken) else None
    if nothing_else and isinstance(cause, UpstreamError | RateLimited):
        again = decide_after_failure(
            cause,
            attempts_on_model=attempts_on_model,
            now=now,
            deadline=deadline,
            rng=rng,
            nothing_else=True,
            max_wait_s=max_wait_s,
            backoff_base_s=backoff_base_s,
            backoff_cap_s=backoff_cap_s,
        )
        if again.action == "retry":
            return attrs.evolve(again, reason=f"stream broken by {again.reason}")
    if isinstance(error, ContentRejected):
        if content_fallback:
            return RetryDecision(action="switch", reason="request rejected for its content")
        return RetryDecision(action="stop", reason=f"request rejected: {error.message}")
    if isinstance(error, RateLimited):
        return _after_rate_limit(
            error,
            attempts=attempts_on_model,
            now=now,
            deadline=deadline,
            max_wait=max_wait_s,
            rng=rng,
        )
    if error.retry_same:
        if isinstance(error, UpstreamError) and error.should_retry is False:
            return RetryDecision(action="switch", reason="the provider said not to retry")
        jitter = backoff_delay(
            max(1, attempts_on_model), rng, base_s=backoff_base_s, cap_s=backoff_cap_s
        )
        delay = MIN_RETRY_GAP_S + jitter  # (calls failing together come back apart)
        asked = error.retry_after if isinstance(error, UpstreamError) else None
        if asked is not None and asked > delay:
            if asked > max_wait_s:
                return RetryDecision(
                    action="switch", reason=f"{_describe(error)}, back in {asked:g} s: too long"
                )
            delay = asked
        return _after_transient(
            error, attempts=attempts_on_model, now=now, deadline=deadline, delay=delay
        )
    return RetryDecision(action="switch", reason=_switch_reason(error))


def _after_rate_limit(
    error: RateLimited,
    *,
    attempts: int,
    now: float,
    deadline: float,
    max_wait: float,
    rng: random.Random,
) -> RetryDecision:
    said = error.retry_after
    if said is None:
        return RetryDecision(action="switch", reason="rate limited, no retry time given")
    said = max(0.0, said)
    if attempts >= MAX_ATTEMPTS_PER_MODEL:
        return RetryDecision(action="switch", reason="rate limited again on this model")
    if said > max_wait:
        return RetryDecision(action="switch", reason=f"rate limited for {said:g} s, too long")
    if now + said >= deadline:
        return RetryDecision(
            action="switch", reason=f"rate limited for {said:g} s, past the deadline"
        )
    # a little more than it said (calls it turned away together come back apart), inside
    # the deadline
    wait = max(MIN_429_WAIT_S, said) * (1.0 + rng.uniform(0.0, RATE_JITTER))
    if now + wait >= deadline:
        wait = said
    return RetryDecision(
        action="retry", delay_s=wait, reason=f"rate limited, retry in {wait:.2f} s"
    )


def _after_transient(
    error: ProviderError, *, attempts: int, now: float, deadline: float, delay: float
) -> RetryDecision:
    what = _describe(error)
    if attempts >= MAX_ATTEMPTS_PER_MODEL:
        return RetryDecision(action="switch", reason=f"{what} again on this model")
    if now + delay >= deadline:
        return RetryDecision(action="switch", reason=f"{what}, no time left to retry")
    return RetryDecision(action="retry", delay_s=delay, reason=f"{what}, retry in {delay:.2f} s")


def _describe(error: ProviderError) -> str:
    if error.status is not None:
        return f"upstream error {error.status}"
    return type(error).__name__.lower().replace("error", " error").strip()


def _switch_reason(error: ProviderError) -> str:
    if isinstance(error, Refused):
        return "the model refused"
    if isinstance(error, ContextExceeded):
        return "prompt too long for the model"
    return f"{error.outcome}: {error.message}" if error.message else error.outcome
