"""Gateway keys: who is calling, and what that caller may do.

Pure functions over the configured ``[[keys]]``. A request presents its key as
``Authorization: Bearer <key>`` or ``x-api-key: <key>``; the key is compared
with every configured secret in constant time (``hmac.compare_digest``, no
early exit), so timing tells nothing about which key nearly matched.

With no keys configured the gateway is open (and serves loopback only): every
request acts as :data:`OPEN`, which sees every job and every model.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Iterable, Mapping, Sequence
from fnmatch import fnmatchcase
from typing import Final

import attrs

from switchman._call import MAX_FALLBACK, MAX_NAME_CHARS, TRUST_RANK, Call, Caller, TrustTier
from switchman.catalog import Config, KeySpec
from switchman.catalog._config import allowed_for
from switchman.policy import resolve_target
from switchman.policy._candidates import model_named, unknown_name


@attrs.frozen(kw_only=True)
class Principal:
    """The caller behind a request.

    ``handle`` (the key's ``handle``) becomes ``Call.caller.handle`` and owns the jobs
    it submits: two keys of one handle (a key being rotated) share them, and a
    ``key_env`` variable given to another team brings none of them along. ``key_id``
    (the key's ``key_env`` name, never the secret) says which key made a call.
    ``None`` for both means the open gateway.
    """

    key_id: str | None
    handle: str | None
    admin: bool
    models: tuple[str, ...] = ("*",)
    min_trust: TrustTier = "untrusted"
    #: the key's requests a minute (``[[keys]] rpm``), None for no limit
    rpm: int | None = None

    @property
    def sees_everything(self) -> bool:
        return self.admin or self.key_id is None

    @property
    def owner(self) -> str | None:
        """Who owns the jobs this caller submits: its handle; None for the open gateway."""
        return None if self.key_id is None else self.handle

    def owns(self, owner: str | None) -> bool:
        """Whether a job owned by ``owner`` is visible to this caller (a job of the open
        gateway, owned by None, only to one that sees everything)."""
        return self.sees_everything or (owner is not None and owner == self.owner)

    def sees_handle(self, handle: str | None) -> bool:
        """Whether a trace event of the caller ``handle`` is visible to this caller."""
        return self.sees_everything or handle == self.handle


OPEN: Final = Principal(key_id=None, handle=None, admin=True)


def presented_key(headers: Mapping[str, str]) -> str | None:
    """The key a request presents (lower-cased header names), or None."""
    token = _bearer(headers.get("authorization", ""))
    if token is not None:
        return token
    key = headers.get("x-api-key", "").strip()
    return key or None


def _bearer(value: str) -> str | None:
    scheme, _, token = value.partition(" ")
    return (token.strip() or None) if scheme.lower() == "bearer" else None


#: the error of a request that :func:`presents_several_keys`
SEVERAL_KEYS: Final = (
    "the request presents more than one key (its Authorization and x-api-key headers, or two"
    " Authorization headers, name different keys): send one"
)


def presents_several_keys(raw_headers: Iterable[tuple[bytes, bytes]]) -> bool:
    """Whether a request's headers (as ASGI gives them) carry more than one distinct key:
    two ``Authorization`` headers, or one beside an ``x-api-key``, naming different keys.
    Which one counts would be the gateway's guess, so such a request is refused."""
    seen: set[str] = set()
    for name, value in raw_headers:
        lower = name.lower()
        if lower == b"authorization":
            key = _bearer(value.decode("latin-1"))
        elif lower == b"x-api-key":
            key = value.decode("latin-1").strip() or None
        else:
            continue
        if key is not None:
            seen.add(key)
    return len(seen) > 1


def authenticate(keys: Sequence[KeySpec], presented: str | None) -> Principal | None:
    """The principal for ``presented``; :data:`OPEN` without keys; None when it matches none.

    Every configured secret is compared (constant time each), whatever matches first.
    """
    if not keys:
        return OPEN
    if presented is None:
        return None
    # (a lone surrogate, which a JSON ``auth`` message can carry, matches no key)
    given = presented.encode("utf-8", "surrogatepass")
    found: KeySpec | None = None
    for spec in keys:
        secret = (spec.secret or "").encode()
        same = hmac.compare_digest(given, secret) and bool(secret)
        if same and found is None:
            found = spec
    if found is None:
        return None
    return Principal(
        key_id=found.key_env,
        handle=found.handle,
        admin=found.admin,
        models=tuple(found.models),
        min_trust=found.min_trust,
        rpm=found.rpm,
    )


def model_allowed(patterns: Sequence[str], alias: str, config: Config) -> bool:
    """Whether an fnmatch pattern matches the alias or ``provider/alias``, a provider's
    name allowing its models (a route's name is no pattern: it grants the route, not its
    models, see :func:`call_patterns`)."""
    spec = config.models.get(alias)
    if spec is not None and spec.provider in patterns and spec.provider not in config.routes:
        return True
    names = [alias] if spec is None else [alias, f"{spec.provider}/{alias}"]
    return any(fnmatchcase(name, p) for p in patterns if p not in config.routes for name in names)


def granted_routes(principal: Principal, config: Config) -> tuple[str, ...]:
    """The routes ``principal``'s key names in its ``models``: it may call each (its whole
    chain), whatever its other entries allow."""
    return tuple(p for p in principal.models if p in config.routes)


def call_patterns(principal: Principal, call: Call, config: Config) -> tuple[str, ...]:
    """The allow-list for this call: the key's, and the chain of the route it calls when
    the key was granted that route (as the router's eligibility has it)."""
    return allowed_for(principal.models, call.model, config.routes, config.providers)


def may_reach(principal: Principal, alias: str, config: Config) -> bool:
    """Whether a call of ``principal`` can reach the model ``alias`` at all: every model
    for the admin and the gateway without keys, else those its ``models`` allow and those
    of the routes it was granted. What a key may learn of the configuration's models
    (results, events, ``/providers``)."""
    if principal.sees_everything or model_allowed(principal.models, alias, config):
        return True
    return any(alias in config.routes[r].chain for r in granted_routes(principal, config))


def knows(principal: Principal | None, config: Config) -> Callable[[str], bool] | None:
    """Which routes and aliases an unknown name's hint may offer ``principal``: those it
    may call (None: any, for the admin, the gateway without keys, or no principal)."""
    if principal is None or principal.sees_everything:
        return None

    pats = principal.models
    return lambda name: may_name(pats, name, config)


def may_name(patterns: Sequence[str], name: str, config: Config) -> bool:
    """Whether a key of ``patterns`` may name ``name`` as a call's model (see
    :func:`target_problems`): ``auto`` when any model is allowed; a route when a glob
    matches its name or a model of its chain is allowed; an alias when it is allowed
    (a route granted by name does not allow its models by name)."""
    if name == "auto":
        return any(model_allowed(patterns, a, config) for a in config.models)
    route = config.routes.get(name)
    if route is not None:
        return any(fnmatchcase(name, p) for p in patterns) or any(
            model_allowed(patterns, a, config) for a in route.chain
        )
    return model_allowed(patterns, name, config)


def target_problems(
    principal: Principal, call: Call, config: Config
) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """Check the models a call names: (unknown names → 422, names not allowed → 403).

    ``model`` is ``auto``, a route (a route name wins over an alias of the same
    name) or an alias; ``options.fallback`` entries are aliases or ``auto``.
    A route is allowed when the key names it (its whole chain is tried), when a
    glob matches its name or when a model of its chain is allowed (the router's
    eligibility drops the models the key may not use); ``auto`` when any model is.
    A route granted by name allows nothing else: not its models by name, not
    ``auto``, not another route through them.
    """
    unknown: list[tuple[str, str]] = []
    denied: list[tuple[str, str]] = []
    pats = principal.models
    name = call.model
    if resolve_target(name, config) is None:
        unknown.append(("model", _unknown_model(name, config, principal)))
    elif not may_name(pats, name, config):
        if name == "auto":
            routes = [p for p in pats if p in config.routes]
            denied.append(
                (
                    "model",
                    f"auto: this key may call only the route(s) {', '.join(map(repr, routes))}"
                    if routes
                    else "this key may not use any model",
                )
            )
        else:
            kind = "route" if name in config.routes else "model"
            denied.append(("model", f"this key may not use {kind} {name!r}"))
    for i, alias in enumerate(call.options.fallback):
        field = f"options.fallback[{i}]"
        if alias == "auto":
            # (as ``model: auto``: a key granted routes alone may not widen its call so)
            if not may_name(pats, "auto", config):
                denied.append((field, "this key may not fall back to auto"))
            continue
        if alias not in config.models:
            unknown.append((field, _unknown_fallback(alias, config, principal)))
        elif not model_allowed(pats, alias, config):
            denied.append((field, f"this key may not use model {alias!r}"))
    return unknown, denied


def _unknown_model(name: str, config: Config, principal: Principal | None) -> str:
    return unknown_name(name, config, usable=knows(principal, config))


def _unknown_fallback(alias: str, config: Config, principal: Principal | None) -> str:
    usable = knows(principal, config)
    return unknown_name(
        alias,
        config,
        "model",
        lambda n: n in config.models and (usable is None or usable(n)),
    )


def unknown_targets(
    raw: object, config: Config, principal: Principal | None = None
) -> list[tuple[str, str]]:
    """The unknown names in a call's JSON that did not make a ``Call`` (other fields are
    wrong), so they are reported with the rest, as :func:`target_problems` words them:
    ``model`` (``auto`` when absent) and each string of ``options.fallback``. A value of
    the wrong type is left to the call's own errors."""
    if not isinstance(raw, Mapping):
        return []
    out: list[tuple[str, str]] = []
    name = raw.get("model", "auto")
    if (
        isinstance(name, str)
        and 0 < len(name) <= MAX_NAME_CHARS  # (a longer one: the call's own error says so)
        and resolve_target(model_named(name, config), config) is None
    ):
        out.append(("model", _unknown_model(name, config, principal)))
    options = raw.get("options")
    fallback = options.get("fallback") if isinstance(options, Mapping) else None
    if isinstance(fallback, list) and len(fallback) <= MAX_FALLBACK:
        for i, alias in enumerate(fallback):
            if (
                isinstance(alias, str)
                and 0 < len(alias) <= MAX_NAME_CHARS
                and alias != "auto"
                and model_named(alias, config) not in config.models
            ):
                out.append((f"options.fallback[{i}]", _unknown_fallback(alias, config, principal)))
    return out


def bind_principal(call: Call, principal: Principal) -> Call:
    """The call as this caller may make it: its handle and key id, at least its trust."""
    if principal.key_id is None:
        return call
    caller = Caller(
        handle=principal.handle or call.caller.handle,
        account_id=call.caller.account_id,
        key_id=principal.key_id,
    )
    min_trust = call.min_trust
    if TRUST_RANK[principal.min_trust] > TRUST_RANK[min_trust]:
        min_trust = principal.min_trust
    return attrs.evolve(call, caller=caller, min_trust=min_trust)
