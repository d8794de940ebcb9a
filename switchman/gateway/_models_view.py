"""What ``/v1/models`` lists for a key, and why a model it knows cannot answer now."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from switchman._call import Call
from switchman.catalog import Config
from switchman.catalog._config import allowed_for
from switchman.gateway._auth import Principal, call_patterns, model_allowed
from switchman.policy._candidates import undated


def model_list(config: Config, principal: Principal, created: int) -> list[dict[str, Any]]:
    """The ``/v1/models`` entries ``principal`` sees (``created``: the gateway's start)."""
    pats = principal.models
    data = []
    if any(model_allowed(pats, a, config) for a in config.models):
        # (a key granted only routes may not call auto: it is not listed to it)
        data.append({"id": "auto", "object": "model", "created": created, "owned_by": "switchman"})
    # only what can answer: models of providers in service, routes with such a member
    # that a call to the route may use (any of a route the key was granted by name)
    serving = {
        alias
        for alias, m in config.models.items()
        if m.enabled
        and (p := config.providers.get(m.provider)) is not None
        and p.disabled_reason is None
    }
    for alias, m in config.models.items():
        if alias in serving and model_allowed(pats, alias, config):
            data.append(
                {"id": alias, "object": "model", "created": created, "owned_by": m.provider}
            )
    for name, r in config.routes.items():
        route_pats = allowed_for(pats, name, config.routes, config.providers)
        if any(a in serving and model_allowed(route_pats, a, config) for a in r.chain):
            data.append(
                {
                    "id": name,
                    "object": "model",
                    "created": created,
                    "owned_by": "switchman-route",
                }
            )
    return data


def not_serving(config: Config, name: str, principal: Principal) -> str:
    """Why the known model or route ``name`` cannot answer now (a provider's disabled
    reason only to the admin, as ``/providers`` shows it)."""
    models = (
        [config.models[a] for a in config.routes[name].chain]
        if name in config.routes
        else [config.models[name]]
    )
    if not principal.sees_everything:  # a route's members this key may not use go unnamed
        pats = call_patterns(principal, Call(prompt="?", model=name), config)
        models = [m for m in models if model_allowed(pats, m.alias, config)]
    reasons = []
    for m in models:
        provider = config.providers.get(m.provider)
        if not m.enabled:
            reasons.append(f"{m.alias} is disabled in the configuration")
        elif provider is not None and provider.disabled_reason is not None:
            why = f": {provider.disabled_reason}" if principal.sees_everything else ""
            reasons.append(f"{m.alias}: provider {m.provider} is not in service{why}")
    kind = "route" if name in config.routes else "model"
    return f"{kind} {name!r} cannot answer now ({'; '.join(reasons) or 'not in service'})"


def answered_by(result: Mapping[str, Any], config: Config) -> str | None:
    """The alias that names, now, the model that answered a stored result: its own alias if
    it still names that model, else one that names it since the config changed (an alias
    renamed); None when none does (an alias given to another model does not get the old
    one's rating). The model is the answering attempt's ``provider`` and ``model_id`` as the
    config named them then (a provider reports dated or resolved ids: ``gpt-4o-2024-08-06``,
    ``gemini-3.8-flash`` for ``gemini-flash-latest``). A result stored before attempts
    named their model is matched by the id its provider reported, a trailing date aside,
    else credited to its own alias where that names a moving ``-latest`` id of the same
    provider (which reports the model it resolved to)."""
    alias = result.get("model")
    if not isinstance(alias, str):
        return None
    trace = result.get("trace")
    attempts = trace.get("attempts") if isinstance(trace, Mapping) else None
    answered = next(
        (
            a
            for a in reversed(attempts if isinstance(attempts, list) else [])
            if isinstance(a, Mapping) and a.get("outcome") == "success"
        ),
        None,
    )
    model_id = answered.get("model_id") if answered is not None else None
    if answered is not None and isinstance(model_id, str):
        return _naming(config, alias, answered.get("provider"), model_id)
    provider, said = result.get("provider"), result.get("provider_model_id")
    found = _naming(config, alias, provider, said if isinstance(said, str) else "")
    named = config.models.get(alias)
    if found is None and named is not None and named.provider == provider:
        return alias if named.model_id.endswith("latest") else None
    return found


def _naming(config: Config, alias: str, provider: object, model_id: str) -> str | None:
    """``alias`` if it names ``model_id`` of ``provider``, else the first alias that does:
    by the id as it is, else by the id without its date; None when none does."""
    ours = [m for m in config.models.values() if m.provider == provider]
    for same in (
        [m.alias for m in ours if m.model_id == model_id],
        [m.alias for m in ours if undated(m.model_id) == undated(model_id)],
    ):
        if same:
            return alias if alias in same else same[0]
    return None
