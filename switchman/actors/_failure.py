"""What a call no model answered says: its lead error (the real cause, first, with when
to retry for a rate limit), and the error of a call no model could take (with the reasons
that tell, and when one left out for now is back). Pure."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import attrs

from switchman._call import Call
from switchman._result import ErrorInfo, Exclusion
from switchman.actors._callrun import CallRun
from switchman.catalog import Config, named_aliases
from switchman.catalog._spec import ModelSpec
from switchman.policy._eligibility import Eligibility, exclusions_to_tell


def soonest_back(
    excluded: Sequence[Exclusion], back_at: Mapping[str, float], now: float
) -> float | None:
    """Seconds until the soonest excluded model that is only paused is back; None when
    none is (every model is left out for good, or for what the call asks)."""
    waits = [back_at[e.alias] - now for e in excluded if e.alias in back_at]
    return round(max(min(waits), 0.0), 3) if waits else None


def no_eligible(
    call: Call,
    elig: Eligibility,
    models: Mapping[str, ModelSpec],
    retry_after_s: float | None = None,
) -> ErrorInfo:
    """The error of a call no model could take; ``retry_after_s``: when one of those only
    paused (a breaker's cool-down, a rate limit, every attempt slot taken) is back."""
    excluded = elig.excluded
    if elig.eligible:
        message = f"no eligible model for {call.model!r}: its chain has no eligible member"
    elif not models:
        message = "no eligible model: the configuration has no models"
    else:
        message = "no eligible model"
    named = [e for e in excluded if e.alias == call.model]
    shown = named or _telling(call, excluded, models)
    if shown:
        # each told as ``alias: reason``, which a key's view of the platform cuts whole
        # when the key may not know the model (gateway/_views.py)
        message += ": " + "; ".join(f"{e.alias}: {e.reason}" for e in shown)
    return ErrorInfo(code="no_eligible_model", message=message, retry_after_s=retry_after_s)


def _telling(
    call: Call, excluded: Sequence[Exclusion], models: Mapping[str, ModelSpec]
) -> list[Exclusion]:
    """The exclusions to tell (``exclusions_to_tell``), first those of the models that
    have every capability the call needs: what kept them out is what the caller wants."""
    wanted = set(call.capabilities)
    first = [
        e
        for e in excluded
        if wanted and e.alias in models and wanted.issubset(models[e.alias].capabilities)
    ]
    return exclusions_to_tell(excluded, first)


def summarise(run: CallRun) -> tuple[ErrorInfo, ...]:
    """The caller's errors: the real cause first, then every attempt's own error."""
    errors = list(run.errors)
    if not errors:
        return (ErrorInfo(code="all_models_failed", message="every model failed"),)
    if errors[-1].code == "cancelled" and errors[-1].provider is None and len(errors) > 1:
        # the call was cut (its caller gone, a shutdown): that is the cause, told once, with
        # what had failed before it (not "N attempt(s) failed; last: <the cut>", which
        # blamed the cut on the attempts, nor a broken stream's code while a model was
        # continuing it)
        cut, before = errors[-1], errors[:-1]
        prior = before[-1]
        where = f" ({prior.provider}" + (f", HTTP {prior.status})" if prior.status else ")")
        lead = ErrorInfo(
            code="cancelled",
            message=f"{cut.message}; before it, {len(before)} error(s), the last: "
            f"{prior.message}" + (where if prior.provider else ""),
        )
        return (lead, *before)
    if run.break_error is not None:
        first = run.break_error
        why = (
            "the model refused after its answer began, and a refusal is not continued by "
            "another model (it would finish what the refusal stopped)"
            if first.code == "refused"
            else "the stream broke after output was sent and no model could continue it"
        )
        lead = ErrorInfo(
            code=first.code if first.code != "all_models_failed" else "all_models_failed",
            message=f"{why}: {first.message}" + (f"; {run.stopped}" if run.stopped else ""),
            provider=first.provider,
            status=first.status,
        )
        return (lead, *errors)
    codes = {e.code for e in errors}
    if codes == {"budget_exceeded"}:
        return tuple(errors)
    if len(errors) == 1:
        return (errors[0],)
    attempted = [e for e in errors if e.code not in ("budget_exceeded", "no_eligible_model")]
    # the real cause is the last error a provider gave, not a later "breaker open" or
    # budget refusal that only stopped the next try
    last = (
        errors[-1]
        if errors[-1].code in ("timeout", "cancelled") or not attempted
        else attempted[-1]
    )
    code = last.code
    if len({e.code for e in attempted}) > 1 and code not in ("timeout", "cancelled"):
        code = "all_models_failed"
    where = f" ({last.provider}" + (f", HTTP {last.status}" if last.status else "") + ")"
    # a budget that kept a fallback from being tried is part of why the call failed
    unaffordable = sum(e.code == "budget_exceeded" for e in errors)
    over = f"; {unaffordable} more model(s) not tried: over budget" if unaffordable else ""
    if run.over_cap:  # (the call's own cap; a model turned away shares their code)
        over += f"; {run.over_cap} more model(s) not tried: over max_cost_usd"
    stopped = f", and {run.stopped}" if run.stopped else ""
    back = last.retry_after_s if code == "rate_limited" else None
    if code == "no_eligible_model":  # the soonest any model left out for now is back
        back = min((e.retry_after_s for e in errors if e.retry_after_s is not None), default=None)
    lead = ErrorInfo(
        code=code,
        message=f"{len(run.attempts)} attempt(s) failed{stopped}; last: {last.message}"
        + (where if last.provider else "")
        + over,
        provider=last.provider,
        status=last.status,
        retry_after_s=back,
    )
    return (lead, *errors)


def told_left_out(
    errors: tuple[ErrorInfo, ...], call: Call, config: Config, excluded: Sequence[Exclusion]
) -> tuple[ErrorInfo, ...]:
    """``errors`` with the lead's message ending in the models the call named (its
    route's chain or model, and its ``fallback``) that eligibility left out, each as
    ``alias: reason`` (the form a key's view of the platform reads): a failure blamed on
    the models tried, silent on the fallback ``max_tokens`` kept out, sent the caller to
    the trace. Not for ``auto``, whose every other model would be named, nor for a call
    no model could take or one cut short (those say why themselves)."""
    lead = errors[0]
    if lead.code in ("no_eligible_model", "cancelled") or not excluded:
        return errors
    why = {e.alias: e.reason for e in excluded}
    named = named_aliases(config, (call.model, *call.options.fallback))
    left = [f"{a}: {why[a]}" for a in named if a in why]
    if not left:
        return errors
    told = attrs.evolve(lead, message=f"{lead.message}; not tried: " + "; ".join(left))
    return (told, *errors[1:])
