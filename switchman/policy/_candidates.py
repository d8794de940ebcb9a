"""The order in which a call's attempts try models: honour what the caller named.

``call.model`` is ``"auto"``, a route name or a model alias. A route name
that is also a model alias means the route (routes are the more specific,
deliberate configuration). Pure functions; no I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from switchman._call import Call
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
    stands for its chain. Nothing else is tried, so a named model or route
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
        for r in ranking:
            add(r.alias)

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
