"""The order in which a call's attempts try models: honour what the caller named.

``call.model`` is ``"auto"``, a route name or a model alias. A route name
that is also a model alias means the route (routes are the more specific,
deliberate configuration). An application that names a model the way its
provider does (``gpt-5.4-mini``, ``claude-sonnet-5``: a model id, not the
alias ``openai/gpt-5.4-mini``) is understood when exactly one model of the
configuration has that id (``canonical_call``). Pure functions; no I/O.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Sequence
from typing import Final, Literal

import attrs

from switchman._call import Call
from switchman._errors import FieldError, ValidationError
from switchman._result import Ranked
from switchman.catalog._spec import Config, ModelSpec

Target = Literal["auto", "route", "model"]


def resolve_target(name: str, config: Config) -> Target | None:
    """What ``name`` refers to: ``"auto"``, a route, a model alias, or None if unknown.

    A name that is both a route and a model alias resolves to the route.
    """
    if name == "auto":
        return "auto"
    if name in config.routes:
        return "route"
    if name in config.models:
        return "model"
    return None


def models_with_id(name: str, config: Config) -> list[str]:
    """The aliases of the configuration's models whose provider id is ``name``."""
    return [alias for alias, m in config.models.items() if m.model_id == name]


def one_model(aliases: Sequence[str], config: Config) -> bool:
    """Whether ``aliases`` (of one model id) are one model upstream: all of one provider
    (a catalog entry and a [[models]] or discovered alias of it, which its provider
    actor already treats as one: one breaker, one learning)."""
    return bool(aliases) and len({config.models[a].provider for a in aliases}) == 1


def model_named(name: str, config: Config, usable: Callable[[str], bool] | None = None) -> str:
    """``name`` as the configuration knows it: itself when it is ``"auto"``, a route or an
    alias; else the alias of the one model whose provider id it is, among those
    ``usable`` allows when they are one model, else among all (several aliases of one
    provider's model: the first configured); Ollama's tags read as Ollama reads them
    (``llama3.2`` is ``llama3.2:latest``, and the other way round); else itself (unknown,
    or the id of models of several providers, which the caller must tell apart by alias)."""
    if name == "auto" or name in config.routes or name in config.models:
        return name
    if (alias := _by_id(name, config, usable)) is not None:
        return alias
    if name.endswith(_LATEST):  # Ollama's tag for the untagged name: llama3.2:latest
        bare = name[: -len(_LATEST)]
        if bare in config.models:
            return bare
        alias = _by_id(bare, config, usable)
    elif ":" not in name:  # the untagged name of a model pulled as llama3.2:latest
        alias = _by_id(name + _LATEST, config, usable)
    return name if alias is None else alias


def _by_id(name: str, config: Config, usable: Callable[[str], bool] | None) -> str | None:
    """The alias of the one model whose provider id is ``name`` (among those ``usable``
    allows first), or None."""
    found = models_with_id(name, config)
    if usable is not None and found:  # the models this caller may call, when that tells
        mine = [a for a in found if usable(a)]
        if one_model(mine, config):
            return mine[0]
    return found[0] if one_model(found, config) else None


_LATEST: Final = ":latest"
#: a dated snapshot's suffix (gpt-4o-2024-08-06, claude-...-20250929): compared without it
_DATED: Final = re.compile(r"-(?:\d{4}-\d{2}-\d{2}|\d{8})$")


def undated(model_id: str) -> str:
    """``model_id`` without a dated snapshot's suffix (``gpt-4o-2024-08-06``: ``gpt-4o``)."""
    return _DATED.sub("", model_id)


def close_names(
    name: str, config: Config, usable: Callable[[str], bool] | None = None
) -> list[str]:
    """Up to three names the configuration knows (routes, aliases, model ids) that look like
    ``name``: a typo, another case, a dated or prefixed spelling. ``usable`` (a route or an
    alias) keeps only what the caller may call, so a hint never names anything else.
    For error messages only: it scans the whole configuration."""
    names: dict[str, str] = {"auto": "auto"}  # as written -> the route or alias it stands for
    for route in config.routes:
        names[route] = route
    ids: dict[str, list[str]] = {}
    for alias, model in config.models.items():
        names[alias] = alias
        ids.setdefault(model.model_id, []).append(alias)
    for model_id, aliases in ids.items():
        if one_model(aliases, config):  # a bare id names a model only when it is one model's
            names.setdefault(model_id, aliases[0])
    if usable is not None:
        names = {n: target for n, target in names.items() if usable(target)}
    names.pop(name, None)  # (never the name asked for: it is not what the caller meant)
    folded = undated(name.casefold())
    same = [n for n in names if n.casefold() == folded]
    if same:
        return same[:3]
    bare: dict[str, list[str]] = {}  # compared without a provider's prefix
    for n in names:
        bare.setdefault(n.rsplit("/", 1)[-1].casefold(), []).append(n)
    found = difflib.get_close_matches(folded.rsplit("/", 1)[-1], list(bare), n=3, cutoff=0.75)
    # one name per model or route, written as the caller wrote theirs (with a prefix or not)
    prefixed = "/" in name
    chosen: dict[str, str] = {}
    for written in (n for f in found for n in bare[f]):
        target = names[written]
        if target not in chosen or ("/" in written) == prefixed != ("/" in chosen[target]):
            chosen[target] = written
    return list(chosen.values())[:3]


def unknown_name(
    name: str,
    config: Config,
    what: str = "model or route",
    usable: Callable[[str], bool] | None = None,
) -> str:
    """``unknown model or route 'x'``, with the names it may have meant (``close_names``);
    for the id of models of several providers, which of them (those ``usable`` allows)."""
    from switchman.catalog._catalog import builtin_catalog  # (error path only)

    several = [a for a in models_with_id(name, config) if usable is None or usable(a)]
    if len(several) > 1:
        return f"{name!r} is the id of several models: name one of {', '.join(several)}"
    close = close_names(name, config, usable)
    hint = f"; did you mean {' or '.join(map(repr, close))}?" if close else ""
    left_out = builtin_catalog().left_out  # provider/model id -> why
    why = None
    for asked in dict.fromkeys((name, undated(name))):  # (a dated snapshot of one too)
        why = left_out.get(asked)
        if why is None:  # by the model id alone, when one provider's model has it
            found = [k for k in left_out if k.split("/", 1)[1] == asked]
            why = left_out[found[0]] if len(found) == 1 else None
        if why is not None:
            break
    if why is not None:
        hint = (
            f": the built-in catalog leaves it out ({why}); add it under [[models]] if your"
            f" account still serves it{hint}"
        )
    return f"unknown {what} {name!r}{hint}"


def canonical_call(call: Call, config: Config, usable: Callable[[str], bool] | None = None) -> Call:
    """``call`` with its model and fallbacks named as the configuration names them (see
    ``model_named``; ``usable``: the aliases its caller may call): the same call when
    they already are."""
    model = call.model
    fallback = call.options.fallback
    if not fallback and (model in config.models or model in config.routes or model == "auto"):
        return call  # the usual call: nothing to rename
    named = model_named(model, config, usable)
    renamed = tuple(model_named(a, config, usable) for a in fallback)
    if named == model and renamed == fallback:
        return call
    return attrs.evolve(call, model=named, options=attrs.evolve(call.options, fallback=renamed))


def reachable(call: Call, config: Config) -> tuple[str, ...] | None:
    """Every alias ``call`` could ever try, in naming order; None when it may reach any
    model (``"auto"``, or ``"auto"`` among its fallbacks).

    What ``plan_attempt_order`` draws from before eligibility: the named model or the
    route's chain, then each fallback (a route name standing for its chain). Models
    outside it are neither checked for eligibility nor scored for a named call.
    """
    if call.model == "auto" or "auto" in call.options.fallback:
        return None
    order: dict[str, None] = {}
    for name in (call.model, *call.options.fallback):
        route = config.routes.get(name)
        for alias in route.chain if route is not None else (name,):
            order.setdefault(alias, None)
    return tuple(order)


def named_aliases(call: Call, config: Config) -> frozenset[str]:
    """The aliases ``call`` names itself: its model, or its route's chain, and each fallback
    (a route's chain for a route); none for ``"auto"``, which ranks every model (its
    fallbacks change nothing) and whatever ``"auto"`` opens."""
    if call.model == "auto":
        return frozenset()
    named: set[str] = set()
    for name in (call.model, *call.options.fallback):
        route = config.routes.get(name)
        if route is not None:
            named.update(route.chain)
        elif name != "auto":
            named.add(name)
    return frozenset(named)


def plan_attempt_order(
    call: Call,
    config: Config,
    eligible: Sequence[ModelSpec],
    ranking: Sequence[Ranked],
) -> tuple[str, ...]:
    """The aliases to try, in order, for ``call``; only eligible ones, no duplicates.

    - ``"auto"``: the ranking's order.
    - a route: its chain in order, then ``call.options.fallback``.
    - a model alias: that alias, then ``call.options.fallback``.

    ``options.fallback`` entries are model aliases, except that ``"auto"``
    means "then every other eligible model in ranking order" and a route name
    stands for its chain (the router refuses a route there before a call runs, with
    its chain in the error: ``validate_call``). Nothing else is tried, so a named model or route
    without ``"auto"`` in its fallback never silently reaches other models.
    Ineligible or unknown aliases are skipped. An unknown ``call.model``
    gives ``()`` (the dispatcher checks ``resolve_target`` first).
    """
    allowed = {m.alias for m in eligible}
    order: dict[str, None] = {}  # insertion-ordered set

    def add(alias: str) -> None:
        if alias in allowed:
            order.setdefault(alias, None)

    def add_ranking() -> None:
        for r in ranking:  # (``add`` inlined: a whole catalog's ranking goes through here)
            alias = r.alias
            if alias in allowed:
                order.setdefault(alias, None)

    target = resolve_target(call.model, config)
    if target == "auto":
        add_ranking()
        return tuple(order)
    if target == "route":
        for alias in config.routes[call.model].chain:
            add(alias)
    elif target == "model":
        add(call.model)
    else:
        return ()
    for name in call.options.fallback:
        if name == "auto":
            add_ranking()
        elif name in config.routes:
            for alias in config.routes[name].chain:
                add(alias)
        else:
            add(name)
    return tuple(order)


def unserved(model: ModelSpec, config: Config) -> str | None:
    """Why ``model``'s provider cannot serve it (disabled, say for a missing key, or not
    configured at all), as eligibility tells it; None when it can."""
    provider = config.providers.get(model.provider)
    if provider is None:
        return f"provider {model.provider} is not configured"
    if provider.disabled_reason:
        return f"provider disabled: {provider.disabled_reason}"
    return None


def unknown_capabilities(
    asked: Sequence[str], config: Config, usable: Callable[[str], bool] | None = None
) -> list[FieldError]:
    """The capabilities ``asked`` that no model in service offers (a typo, another case, a
    provider without its key: every model would be left out for it), each naming the ones
    there are (of the models ``usable`` allows, when given: a caller's), or the models
    not in service that offer it, and why they are not."""
    serving: set[str] = set()
    idle: dict[str, dict[str, list[str]]] = {}  # capability -> why -> models not in service
    for alias, m in config.models.items():
        if usable is not None and not usable(alias):
            continue
        why = "disabled" if not m.enabled else unserved(m, config)
        for c in m.capabilities:
            if why is None:
                serving.add(c)
            else:
                idle.setdefault(c, {}).setdefault(why, []).append(alias)
    errors = []
    for i, tag in enumerate(asked):
        if tag in serving:
            continue
        if tag in idle:
            told = "; ".join(
                ", ".join(aliases[:2])
                + (f" and {len(aliases) - 2} more" if len(aliases) > 2 else "")
                + f" ({why})"
                for why, aliases in idle[tag].items()
            )
            said = f"{tag!r}: only models not in service offer it: {told}"
        else:
            close = difflib.get_close_matches(tag.casefold(), sorted(serving), n=1, cutoff=0.6)
            hint = f"did you mean {close[0]!r}? " if close else ""
            said = (
                f"{tag!r}: no model offers it ({hint}the models offer: "
                f"{', '.join(sorted(serving)) or 'none'})"
            )
        errors.append(FieldError(f"capabilities[{i}]", said))
    return errors


def strictness_problems(call: Call) -> list[FieldError]:
    """What determinism ``strict`` needs of a call's params: a seed, and no temperature but 0
    (it samples at 0: a warmer one given beside it is a mistake told, not overridden)."""
    if call.options.determinism != "strict":
        return []
    errors = []
    if call.params.seed is None:
        errors.append(FieldError("params.seed", "is required when options.determinism is strict"))
    if call.params.temperature not in (None, 0):
        errors.append(
            FieldError(
                "params.temperature",
                f"is {call.params.temperature:g}, but options.determinism strict samples at "
                "temperature 0: leave it out, or set determinism best_effort or off",
            )
        )
    return errors


def validate_call(call: Call, config: Config) -> None:
    """What only the configuration can tell (the model, the fallbacks, capabilities), and
    strict determinism's needs: a seed, and no temperature but 0."""
    errors: list[FieldError] = []
    if resolve_target(call.model, config) is None:
        errors.append(FieldError("model", unknown_name(call.model, config)))
    for i, alias in enumerate(call.options.fallback):
        if alias != "auto" and (kind := resolve_target(alias, config)) != "model":
            why = (
                f"{alias!r} is a route: fallbacks are model aliases (its chain is "
                f"{', '.join(config.routes[alias].chain)})"
                if kind == "route"
                else unknown_name(alias, config, "model alias", config.models.__contains__)
            )
            errors.append(FieldError(f"options.fallback[{i}]", why))
    errors += strictness_problems(call)
    if call.capabilities:
        errors += unknown_capabilities(call.capabilities, config)
    if errors:
        raise ValidationError(errors)
