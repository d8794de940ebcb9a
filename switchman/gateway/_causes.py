"""Why a call no model answered failed, and when one will be back, as ``/v1`` says it.

Pure functions over a ``Result``, the ``Config`` and ``router.status()``; no I/O.

**Why no model was tried.** A call the router tried no model for fails
``no_eligible_model``, and its trace names each model left out with the reason
(``result.trace.eligibility.excluded``). The reasons are worded by the
eligibility policy (``switchman.policy._eligibility._exclusion_reason``) and the
dispatcher (``unavailable_models``, providers out of service); they are read here
by how they begin, in three kinds (:func:`exclusion_kind`):

- ``request``: the request itself (:data:`REQUEST_REASONS`): its intent, the trust
  tier it needs, capabilities, ``max_tokens`` above the model's limit, the context
  window, determinism strict without seed support, stop sequences the model does not
  take, the estimated cost above ``max_cost_usd``. Sending it again fails again.
- ``caller``: the caller's key may not use the model (:data:`CALLER_REASON`).
- ``availability``: anything else: breaker open or its probe in flight, a rate
  budget or a provider's 429, a provider misconfigured or held out, a model
  disabled or its provider out of service. A wording not listed here counts as
  this kind: answering 503 (retrying may help) is the safe side.

**When a model is back** (:func:`retry_hint`): from ``router.status()``, for each
model the call could use (its model, route or fallbacks, every model for
``auto``; those its key may use and not left out for the request itself), the
time until nothing holds it back (breaker ``retry_at``, ``rate_limited_for_s``,
the provider's empty rate budget, ``held_for_s``); a model whose provider is
disabled or misconfigured (held out for minutes), or absent, is not back soon. A call
that retried a model, failing again, asks for a second (``RETRIED_WAIT_S``) when a
model could serve now: the SDK's own backoff had sent a third request to that model
within 1.35 s of the first.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Final, Literal

from switchman._call import Call
from switchman._result import Exclusion, Result
from switchman.catalog import Config, named_aliases
from switchman.gateway._auth import model_allowed
from switchman.gateway._protocol import ModelStatusLike, ProviderStatusLike, RouterStatusLike
from switchman.policy._eligibility import CONTEXT_EXCLUSION, exclusions_to_tell

ExclusionKind = Literal["request", "caller", "availability"]

#: how the reasons that are the request's own fault begin (the eligibility policy's words)
REQUEST_REASONS: Final = (
    "intent ",  # intent 'code' not supported (supports: ...)
    "trust tier ",  # trust tier standard below required trusted
    "missing capabilities: ",
    "max_tokens ",  # max_tokens 9000 above the model's limit of 8192 output tokens
    CONTEXT_EXCLUSION,  # context window 32768 too small for ...
    "determinism strict ",  # determinism strict needs a seed, which the model ...
    "stop sequences",  # stop sequences, which the model does not take
    "estimated cost ",  # estimated cost $0.01 (...) above max_cost_usd $0.001
)
#: how the reason for a model the caller's key may not use begins
CALLER_REASON: Final = "not allowed for this caller"
#: the longest wait ``retry-after`` is sent for; a longer one says not to retry
MAX_RETRY_AFTER_S: Final = 60.0
#: what a client is told to wait when the provider has every attempt slot taken
BUSY_RETRY_S: Final = 1.0


def exclusion_kind(reason: str) -> ExclusionKind:
    """The kind of an exclusion's reason (see the module's docstring)."""
    if reason.startswith(REQUEST_REASONS):
        return "request"
    if reason.startswith(CALLER_REASON):
        return "caller"
    return "availability"


def unrouted(result: Result) -> tuple[Exclusion, ...]:
    """The models left out of a call the router tried no model for (it failed
    ``no_eligible_model`` with no attempt and no eligible model); () for any other."""
    trace = result.trace
    if not result.errors or result.errors[0].code != "no_eligible_model":
        return ()
    if trace.attempts or trace.eligibility.eligible:
        return ()
    return trace.eligibility.excluded


def describe(excluded: Sequence[Exclusion]) -> str:
    """``alias: reason; ...`` for the exclusions that tell most (``exclusions_to_tell``):
    each a fragment a key's view cuts whole, and no count of the rest (the trace has
    them), which would tell a key how many models the platform has."""
    return "; ".join(f"{e.alias}: {e.reason}" for e in exclusions_to_tell(excluded))


def call_aliases(call: Call, config: Config) -> tuple[str, ...]:
    """Every alias the call could use: its model or route, then its fallbacks; every
    model when ``auto`` is among them. Unknown names are skipped."""
    names = (call.model, *call.options.fallback)
    if "auto" in names:
        return tuple(config.models)
    return named_aliases(config, names)


#: the wait a 503 asks for when the call retried a model and it failed again (the first
#: retry after it comes at least 1.75 s after the model's first attempt)
RETRIED_WAIT_S: Final = 1.0


def retry_hint(
    result: Result,
    call: Call,
    config: Config,
    status: RouterStatusLike,
    *,
    allowed: Sequence[str],
    now: float,
) -> float | None:
    """Seconds until the soonest model the call could use is back; ``0`` when one could
    serve now, ``math.inf`` when none is back soon (held out, disabled, out of service),
    ``None`` when the call could use no model at all. ``now`` is on the trio clock,
    as ``status``'s ``retry_at``."""
    left_out = {
        e.alias
        for e in result.trace.eligibility.excluded
        if exclusion_kind(e.reason) != "availability"
    }
    aliases = [
        a
        for a in call_aliases(call, config)
        if a not in left_out and model_allowed(allowed, a, config)
    ]
    if not aliases:
        return None
    waits = dict.fromkeys(aliases, math.inf)
    for provider in status.providers:
        for model in provider.models:
            if model.alias in waits:
                spec = config.models.get(model.alias)
                if spec is not None and spec.enabled:
                    waits[model.alias] = _wait(provider, model, now)
    soonest = min(waits.values())
    own = result.errors[0].retry_after_s if result.errors else None
    if soonest == 0 and own is not None and own > 0:
        # one looks free, yet none could take this call: a rate budget with room, not for
        # this call's tokens (the router said when it would be; no retry-after was sent)
        return own
    if soonest == 0 and _retried(result):
        # the SDK would send it again within half a second: a third request to a model
        # that just failed twice, within 1.5 s of the first (no tight loops)
        return RETRIED_WAIT_S
    return soonest


def _retried(result: Result) -> bool:
    """Whether the call tried a model twice, failing both times."""
    failed: set[str] = set()
    for attempt in result.trace.attempts:
        if attempt.outcome != "success":
            if attempt.alias in failed:
                return True
            failed.add(attempt.alias)
    return False


def _wait(provider: ProviderStatusLike, model: ModelStatusLike, now: float) -> float:
    """Seconds until nothing holds ``model`` back (``math.inf``: not soon)."""
    if provider.disabled_reason is not None:  # missing key, or misconfigured for minutes
        return math.inf
    waits = [0.0, model.rate_limited_for_s]
    if model.held_out is not None:
        waits.append(model.held_for_s if model.held_for_s > 0 else math.inf)
    if model.breaker == "open":
        waits.append(model.retry_at - now if model.retry_at is not None else math.inf)
    blocked = provider.rate_headroom.get("blocked_for_s")
    if isinstance(blocked, int | float) and not isinstance(blocked, bool):
        waits.append(float(blocked))
    if provider.in_flight >= provider.max_concurrency:  # a slot frees as an attempt ends
        waits.append(BUSY_RETRY_S)
    return max(waits)


def retry_headers(wait: float | None) -> Iterable[tuple[bytes, bytes]]:
    """What a 503 tells a client about sending it again, for :func:`retry_hint`'s
    ``wait``: ``retry-after`` (whole seconds, rounded up) when every model is held back
    and the soonest is back within :data:`MAX_RETRY_AFTER_S`; ``x-should-retry:
    false`` when none is back sooner; nothing when one could serve now or it is not
    known (the client's own backoff)."""
    if wait is None or wait <= 0:
        return ()
    if wait <= MAX_RETRY_AFTER_S:
        return ((b"retry-after", str(max(math.ceil(wait), 1)).encode()),)
    return ((b"x-should-retry", b"false"),)
