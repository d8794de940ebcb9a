"""The in-process simulator provider (``kind = "sim"``): a plan played out with trio sleeps.

It speaks the adapters' event language (``ResponseStarted``, ``TextDelta``,
``Malformed``, ``StreamEnd``) and raises the same ``ProviderError`` branches a
real adapter would, so the router cannot tell it from a network provider.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from types import MappingProxyType
from typing import Final

import trio

from switchman._errors import (
    ContentRejected,
    ContextExceeded,
    ProviderError,
    RateLimited,
    Refused,
    StreamBroken,
    TransientError,
    UpstreamError,
)
from switchman.adapters._base import (
    Malformed,
    ProviderRequest,
    ResponseStarted,
    StreamEnd,
    StreamEvent,
    TextDelta,
)
from switchman.catalog._spec import ModelSpec, SimProfile
from switchman.sim._plan import Failure, Plan, plan_from_profile

_Emit = Callable[[StreamEvent], Awaitable[None]]
_DEFAULT_PROFILE: Final = SimProfile()
_OK: Final = ResponseStarted(status=200, headers=MappingProxyType({}))


def _error(failure: Failure, provider: str) -> ProviderError:
    """A new error for each failure: one object raised again and again (it was cached)
    kept every raise's frames on its traceback, each attempt's request and prompt with
    them, for the life of the process."""
    match failure.kind:
        case "rate_limited":
            return RateLimited(
                failure.message,
                provider=provider,
                status=failure.status,
                retry_after=failure.retry_after,
            )
        case "server_error" | "unavailable" | "overloaded":
            return UpstreamError(failure.message, provider=provider, status=failure.status)
        case "context_length":
            return ContextExceeded(failure.message, provider=provider, status=failure.status)
        case "content_policy":
            return ContentRejected(failure.message, provider=provider, status=failure.status)
        case _:
            return TransientError(failure.message, provider=provider)


def _headers(failure: Failure) -> MappingProxyType[str, str]:
    if failure.retry_after is None:
        return MappingProxyType({})
    return MappingProxyType({"retry-after": f"{failure.retry_after:g}"})


async def _fail(plan: Plan, failure: Failure, provider: str, emit: _Emit) -> None:
    if plan.ttft_s > 0:
        await trio.sleep(plan.ttft_s)
    if failure.kind == "silent":
        await trio.sleep_forever()
    if failure.status is not None:
        await emit(ResponseStarted(status=failure.status, headers=_headers(failure)))
    raise _error(failure, provider)


def _broken(plan: Plan, provider: str, delivered: int) -> ProviderError:
    if plan.ending == "error":
        message = "the provider sent an error event after the answer began"
        if delivered == 0:
            return UpstreamError(message, provider=provider, status=529)
        return StreamBroken(message, provider=provider)
    message = "the connection was closed in the middle of the answer"
    if delivered == 0:
        return TransientError(message, provider=provider)
    return StreamBroken(message, provider=provider)


def _end(plan: Plan, model: ModelSpec) -> StreamEnd:
    return StreamEnd(finish_reason=plan.finish_reason, usage=plan.usage, model_id=model.model_id)


async def _stream(plan: Plan, model: ModelSpec, emit: _Emit) -> None:
    await emit(_OK)
    if plan.ttft_s > 0:
        await trio.sleep(plan.ttft_s)
    if plan.ending == "refusal":
        raise Refused(plan.refusal, provider=model.provider, status=200)
    # chunks due at the same instant go out as one delta, as one network read of
    # several events would (the HTTP path joins the text of one read the same way)
    held: list[str] = []
    delivered = plan.delivered
    stop = len(delivered)
    walk = stop
    if plan.malformed_at is None and not any(plan.delays[:stop]):
        held.extend(delivered)  # all due at once (zero latency): one delta, no walk
        walk = 0
    for i in range(walk):
        if plan.delays[i] > 0 or i == plan.malformed_at:
            if held:
                await emit(TextDelta(text="".join(held)))
                held.clear()
            if plan.delays[i] > 0:
                await trio.sleep(plan.delays[i])
            if i == plan.malformed_at:
                await emit(Malformed(detail="simulated malformed event"))
        held.append(plan.chunks[i])
    if held:
        await emit(TextDelta(text="".join(held)))
    if plan.ending == "stall":
        await trio.sleep_forever()
    if plan.ending in ("cut", "error"):
        raise _broken(plan, model.provider, stop)
    await emit(_end(plan, model))


async def _whole(plan: Plan, model: ModelSpec, emit: _Emit) -> None:
    total = plan.ttft_s + sum(plan.delays)
    if total > 0:
        await trio.sleep(total)
    if plan.ending == "stall":
        await trio.sleep_forever()
    if plan.ending in ("cut", "error"):
        raise _broken(plan, model.provider, 0)
    if plan.ending == "refusal":
        raise Refused(plan.refusal, provider=model.provider, status=200)
    await emit(_OK)
    await emit(TextDelta(text=plan.text))
    await emit(_end(plan, model))


#: per trio run: when each model with an outage schedule was first attempted
#: (the fallback clock when the caller does not say when the provider started)
_FIRST_ATTEMPT: Final = trio.lowlevel.RunVar[dict[str, float]]("switchman_sim_first_attempt")


def _elapsed(model: ModelSpec, profile: SimProfile, started_at: float | None) -> float | None:
    """Seconds on the provider's outage clock, or None when the profile has no schedule."""
    if profile.outage_after_s is None:
        return None
    now = trio.current_time()
    if started_at is None:
        try:
            first = _FIRST_ATTEMPT.get()
        except LookupError:
            first = {}
            _FIRST_ATTEMPT.set(first)
        started_at = first.setdefault(model.alias, now)
    return now - started_at


async def run_sim_attempt(
    model: ModelSpec,
    request: ProviderRequest,
    rng: random.Random,
    emit: Callable[[StreamEvent], Awaitable[None]],
    *,
    started_at: float | None = None,
) -> None:
    """Play one simulated attempt of ``model``: emit its events or raise its ``ProviderError``.

    The plan comes from ``model.sim`` (a default, instant and faultless profile
    when unset) and ``rng``. A streaming request emits ``ResponseStarted(200)``,
    then ``TextDelta`` chunks (and a ``Malformed`` where the plan injects one),
    then one ``StreamEnd``; a non-streaming one emits a single ``TextDelta``
    with the whole answer after the whole latency. Failures before output
    raise ``RateLimited``, ``UpstreamError``, ``TransientError`` (reset),
    ``ContextExceeded`` or ``ContentRejected`` (after a ``ResponseStarted``
    carrying the status, as adapters do); a refusal raises ``Refused``; a cut
    after output raises ``StreamBroken``. A stall or a silent provider sleeps
    forever: the caller's deadline or stall detection cancels it. Zero delays
    mean no sleeps at all. Cancellation at any point simply stops the attempt;
    there is nothing to close.

    Scheduled outages (``SimProfile.outage_*``) run on trio time since
    ``started_at`` (the ``trio.current_time()`` at which the provider started);
    without it, since this model's first attempt in the current trio run. During
    an outage every attempt raises ``UpstreamError`` with status 503.
    """
    profile = model.sim or _DEFAULT_PROFILE
    plan = plan_from_profile(
        profile,
        request,
        rng,
        model_alias=model.alias,
        context_window=model.context_window,
        elapsed_s=_elapsed(model, profile, started_at),
    )
    if plan.failure is not None:
        await _fail(plan, plan.failure, model.provider, emit)
    elif request.stream:
        await _stream(plan, model, emit)
    else:
        await _whole(plan, model, emit)
