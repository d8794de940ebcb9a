"""JSON views of the router's live state: ``/health`` and ``/providers``.

Pure functions over the configuration, a status snapshot and the caller; the
caller's allow-list decides which models it sees, and only a principal that
sees everything (admin, or the open gateway) gets the operational details
(in flight, rate headroom, learned stats, disabled reasons, base URLs).
Nothing here ever includes provider headers or API keys; base URLs are
stripped of user info and query strings.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any, Final
from urllib.parse import urlsplit, urlunsplit

import trio

from switchman._version import __version__
from switchman.actors._ledger import limits_from_config
from switchman.catalog import Config
from switchman.gateway._auth import Principal, granted_routes, may_reach, model_allowed
from switchman.gateway._protocol import RouterStatusLike
from switchman.policy._budget import from_nanos, ledger_from_snapshot, to_nanos, window_key


def safe_url(url: str) -> str:
    """A base URL without user info or query (where credentials could hide)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return ""
    host = parts.hostname or ""
    if port is not None:
        host = f"{host}:{port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def health_body(
    status: RouterStatusLike,
    *,
    jobs: Mapping[str, int],
    jobs_in_flight: int,
    draining: bool,
    store_problem: str | None = None,
    budget_left: Mapping[str, float] | None = None,
) -> dict[str, Any]:
    """``ok`` while some model of an enabled provider that is not held out (a rejected
    key, a 404) has a breaker not open, ``degraded`` otherwise, ``draining`` during
    shutdown. A model never tried counts as usable: only trying it can tell.
    ``store_problem`` (the job store cannot be written, its file was deleted...) makes it
    ``degraded`` too, and is shown as ``store_problem``; so does a global budget with
    nothing left (``budget_left``: what is left of each, by period, shown as
    ``global_budget_left_usd``) or that refused the last attempt it was asked to hold
    (``global_budget_refusing``: calls that could cost more than is left are refused
    until its period ends)."""
    usable = False
    providers = []
    for p in status.providers:
        models: list[dict[str, Any]] = [
            # a model its provider holds out (a 404: it does not serve it) says why
            {"alias": m.alias, "breaker": m.breaker}
            | ({"held_out": m.held_out} if m.held_out is not None else {})
            for m in p.models
        ]
        if p.disabled_reason is None and any(
            m.breaker != "open" and m.held_out is None for m in p.models
        ):
            usable = True
        providers.append(
            {
                "name": p.name,
                "kind": p.kind,
                "disabled": p.disabled_reason is not None,
                "models": models,
            }
        )
    refusing = tuple(status.global_budget_refusing)
    spent = refusing or any(left <= 0.0 for left in (budget_left or {}).values())
    healthy = usable and store_problem is None and not spent
    state = "draining" if draining else "ok" if healthy else "degraded"
    body = {
        "status": state,
        "version": __version__,
        "uptime_s": status.uptime_s,
        "simulated": status.simulated,
        "jobs": dict(jobs),
        "jobs_in_flight": jobs_in_flight,
        # (of those, calls waiting for one of the router's capacity slots)
        "calls_waiting": status.waiting_calls,
        "providers": providers,
    }
    if store_problem is not None:
        body["store_problem"] = store_problem
    if budget_left:
        body["global_budget_left_usd"] = dict(budget_left)
    if refusing:
        body["global_budget_refusing"] = list(refusing)
    return body


def providers_body(
    config: Config, status: RouterStatusLike, principal: Principal, *, now: float
) -> dict[str, Any]:
    """The catalog with live state, as much of it as ``principal`` may see.

    ``now`` is the trio clock the status's ``retry_at`` is on.
    """
    detailed = principal.sees_everything
    live = {p.name: p for p in status.providers}
    out = []
    for name, spec in config.providers.items():
        state = live.get(name)
        models_live = {m.alias: m for m in state.models} if state is not None else {}
        models = []
        for alias, m in config.models.items():
            if m.provider != name or not may_reach(principal, alias, config):
                continue
            ml = models_live.get(alias)
            entry: dict[str, Any] = {
                "alias": alias,
                "model_id": m.model_id,
                "trust_tier": m.trust_tier,
                "context_window": m.context_window,
                "context_includes_output": m.context_includes_output,
                "max_output_tokens": m.max_output_tokens,
                "input_per_mtok": m.input_per_mtok,
                "output_per_mtok": m.output_per_mtok,
                "intents": list(m.intents),
                "capabilities": list(m.capabilities),
                "enabled": m.enabled,
                "breaker": ml.breaker if ml is not None else "closed",
            }
            if detailed:
                retry_at = ml.retry_at if ml is not None else None
                entry["retry_in_s"] = None if retry_at is None else max(retry_at - now, 0.0)
                entry["rate_limited_for_s"] = ml.rate_limited_for_s if ml is not None else 0.0
                entry["provider_remaining"] = dict(ml.provider_remaining) if ml is not None else {}
                entry["held_out"] = ml.held_out if ml is not None else None
                entry["held_for_s"] = ml.held_for_s if ml is not None else 0.0
                entry["breaker_opened_by"] = ml.breaker_opened_by if ml is not None else None
                entry["stats"] = dict(ml.stats) if ml is not None else {}
            # what a call may ask of it: every key needs that to choose its params
            entry["supports_seed"] = m.supports_seed
            entry["supports_prefill"] = m.supports_prefill
            entry["supports_stop"] = m.supports_stop
            if m.request_fee_usd:
                entry["request_fee_usd"] = m.request_fee_usd
            if m.long_input_above is not None:  # the price of a long prompt
                entry["long_input_above"] = m.long_input_above
                entry["long_input_per_mtok"] = m.long_input_per_mtok
                entry["long_output_per_mtok"] = m.long_output_per_mtok
            models.append(entry)
        if not models and not detailed:
            continue
        reason = state.disabled_reason if state is not None else spec.disabled_reason
        provider: dict[str, Any] = {
            "name": name,
            "kind": spec.kind,
            "disabled": reason is not None,
            "models": models,
        }
        if reason is not None and state is not None and state.held_for_s > 0:
            # held out for now, not for good: when it is back, told to every key
            provider["back_in_s"] = round(state.held_for_s, 1)
        if detailed:
            provider.update(
                disabled_reason=reason,
                base_url=safe_url(spec.base_url),
                max_concurrency=spec.max_concurrency,
                rpm=spec.rpm,
                tpm=spec.tpm,
                in_flight=state.in_flight if state is not None else 0,
                rate_headroom=dict(state.rate_headroom) if state is not None else {},
                restarts=state.restarts if state is not None else 0,
            )
        out.append(provider)
    granted = granted_routes(principal, config)
    routes = {
        name: list(r.chain)
        for name, r in config.routes.items()
        if detailed
        or name in granted
        or any(model_allowed(principal.models, a, config) for a in r.chain)
    }
    return {"providers": out, "routes": routes, "simulated": config.simulated}


#: the periods a budget is kept for, in the order they are shown
PERIODS: Final = ("hour", "day", "month")


def budget_scopes(
    config: Config,
    principal: Principal,
    *,
    spent_by: Iterable[str] = (),
    spent_at: Iterable[str] = (),
) -> list[str]:
    """The spend scopes ``principal`` may read: every one for the gateway without keys or
    an admin key (global, each provider in service or with a budget, each key's handle,
    each caller with a budget, each of ``spent_by``: the handles with spend in the current
    windows, a key removed since among them, and of ``spent_at``: the providers with spend
    in them, one out of service or the config no longer has among them); a key's own handle
    otherwise."""
    if not principal.sees_everything:
        return [f"caller:{principal.handle}"]
    limited = budget_limits(config)
    named = [
        name
        for name, spec in config.providers.items()
        if spec.disabled_reason is None or f"provider:{name}" in limited
    ]
    # (with spend, and out of service: one the config no longer has, or a built-in one
    # the catalog keeps, disabled, after the file renamed or dropped it)
    gone = sorted(set(spent_at) - set(named))
    providers = [f"provider:{name}" for name in [*named, *gone]]
    handles = {k.handle for k in config.keys} | set(config.budgets.callers) | set(spent_by)
    return ["global", *providers, *(f"caller:{h}" for h in sorted(handles))]


def spending_callers(
    snapshot: Mapping[str, Any], *, wall_now: float, kind: str = "caller"
) -> set[str]:
    """The handles (``kind`` "provider": the providers) a stored spend snapshot (the
    ledger's, as the store keeps it) has spend for in the current hour, day or month (UTC,
    ``wall_now`` in Unix seconds); none from a snapshot that cannot be read."""
    try:
        ledger = ledger_from_snapshot(snapshot)
    except ValueError:
        return set()
    current = {window_key(p, wall_now) for p in PERIODS}
    prefix = f"{kind}:"
    return {
        scope.removeprefix(prefix)
        for (scope, key), nanos in ledger.spent.items()
        if nanos > 0 and scope.startswith(prefix) and key in current
    }


def budget_limits(config: Config) -> dict[str, dict[str, float]]:
    """Every budget of ``config``: scope -> period -> USD. A scope limited twice in one
    period (a key's ``daily_usd`` and a ``[budgets.callers.HANDLE]`` entry) shows the
    stricter limit: the ledger holds calls to both."""
    out: dict[str, dict[str, float]] = {}
    for limit in limits_from_config(config):
        periods = out.setdefault(limit.scope, {})
        periods[limit.period] = min(limit.limit_usd, periods.get(limit.period, math.inf))
    return out


async def budget_figures(
    router: Any, config: Config
) -> dict[str, tuple[dict[str, float], dict[str, float]]]:
    """Each budgeted scope's spend and limits, by period (for ``/metrics``)."""
    return {scope: (await router.spend(scope), lim) for scope, lim in budget_limits(config).items()}


async def global_left(router: Any, config: Config) -> dict[str, float]:
    """What is left of each global budget, by period (none without one; none from a router
    that closed meanwhile)."""
    limits = budget_limits(config).get("global")
    if not limits:
        return {}
    try:
        spent = await router.spend()
    except trio.ClosedResourceError:  # (RouterClosed is one)
        return {}
    left: dict[str, float] = budget_entry("global", spent, limits)["left_usd"]
    return left


def budget_entry(
    scope: str, spent: Mapping[str, float], limits: Mapping[str, float]
) -> dict[str, Any]:
    """One scope's spend this hour, day and month (UTC), with its ``limits`` (period ->
    USD, from ``budget_limits``) and what is left of each, counted in nano-dollars as
    the ledger counts when it refuses a call."""
    return {
        "scope": scope,
        "spent_usd": {p: round(spent.get(p, 0.0), 9) for p in PERIODS},
        "limit_usd": {p: limits[p] for p in PERIODS if p in limits},
        "left_usd": {
            p: from_nanos(max(to_nanos(limits[p]) - to_nanos(spent.get(p, 0.0)), 0))
            for p in PERIODS
            if p in limits
        },
    }
