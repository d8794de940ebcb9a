"""The gateway keys' rules: what a key's allow-list may name, what it grants for one
call, and the keys that clash (a secret shared, a handle reused with other settings).

Shared by ``load_config`` and ``validate_config``; pure and quick, nothing to cancel.
"""

from __future__ import annotations

import glob
from collections.abc import Collection, Mapping, Sequence
from fnmatch import fnmatchcase
from typing import Final

from switchman._errors import FieldError
from switchman.catalog._paths import _one
from switchman.catalog._spec import KeySpec, ModelSpec, ProviderSpec, RouteSpec


def allowed_for(
    patterns: Sequence[str],
    target: str,
    routes: Mapping[str, RouteSpec],
    providers: Collection[str] = (),
) -> tuple[str, ...]:
    """A key's allow-list (``KeySpec.models``) for one call to ``target``.

    An entry that names a route grants that route, not its models: a call to the route
    may try its whole chain (its models are added here, for this call only), while a
    call naming one of them, ``auto``, or another route through them needs them allowed
    otherwise. Any other entry (an alias, a provider, a glob) is a pattern as it is, a
    provider's name allowing its models (``is_allowed``); a name that is a route's and
    a provider's (``gemini``) is the route's, and left out of the patterns, where it
    would read as the provider's. Shared by the gateway's checks and the router's
    eligibility, so both agree.
    """
    kept = tuple(p for p in patterns if not (p in routes and p in providers))
    route = routes.get(target)
    if route is None or target not in patterns:
        return kept
    granted = [_alone(alias, providers) for alias in route.chain]
    return tuple(dict.fromkeys((*kept, *granted)))


def _alone(alias: str, providers: Collection[str]) -> str:
    """A pattern matching ``alias`` alone: escaped, and for an alias that is also a
    provider's name (a one-model server, ``vllm``), a bracket around its first letter, as
    the bare name would allow every model of that provider (``is_allowed``)."""
    pattern = glob.escape(alias)
    if pattern in providers:
        pattern = f"[{alias[0]}]{glob.escape(alias[1:])}"
    return pattern


def _is_glob(pattern: str) -> bool:
    return any(c in pattern for c in "*?[")


def known_pattern(
    pattern: str, models: Mapping[str, ModelSpec], providers: Mapping[str, ProviderSpec]
) -> bool:
    """Whether a key's allow-list entry is a model alias, a provider name or a glob."""
    return pattern in models or pattern in providers or _is_glob(pattern)


def matches_no_model(pattern: str, models: Mapping[str, ModelSpec]) -> bool:
    """Whether a key's allow-list entry allows none of ``models``: it matches no alias,
    no ``provider/alias`` (as the router's eligibility matches), and names no provider
    of one of them."""
    return not any(
        pattern == m.provider
        or fnmatchcase(alias, pattern)
        or fnmatchcase(f"{m.provider}/{alias}", pattern)
        for alias, m in models.items()
    )


#: what keys sharing a handle (a key being rotated) must agree on
_SHARED_BY_HANDLE: Final = (
    "admin",
    "models",
    "min_trust",
    "rpm",
    "hourly_usd",
    "daily_usd",
    "monthly_usd",
)


def key_clashes(keys: Sequence[tuple[int, KeySpec]]) -> list[tuple[int, FieldError]]:
    """A secret shared, a handle used twice with other settings: ``(i, error)`` for key
    ``keys[i]`` (``i`` as given: the TOML index for ``load_config``).

    Two keys may share a handle (a key being rotated: the new secret in another
    variable), and then its jobs, spend and rate, when they agree on everything
    but ``key_env``."""
    handles: dict[str, tuple[int, KeySpec]] = {}
    secrets: dict[str, int] = {}
    out: list[tuple[int, FieldError]] = []
    for i, key in keys:
        if isinstance(key.handle, str) and key.handle:
            first = handles.setdefault(key.handle, (i, key))
            differ = [f for f in _SHARED_BY_HANDLE if getattr(key, f) != getattr(first[1], f)]
            if differ and first[1] is not key:  # (itself differs where a value is NaN)
                used = (
                    f"{key.handle!r} is already used by keys[{first[0]}] with another "
                    f"{', '.join(differ)}: keys sharing a handle (a key being rotated) "
                    "must agree on all but key_env"
                )
                out.append((i, FieldError(f"keys[{i}].handle", used)))
        if isinstance(key.secret, str) and key.secret:
            if key.secret in secrets:
                same = f"same secret as keys[{secrets[key.secret]}]"
                out.append((i, FieldError(f"keys[{i}].key_env", same)))
            secrets.setdefault(key.secret, i)
    return out


def keys_problems(
    keys: object,
    models: Mapping[str, ModelSpec],
    routes: Mapping[str, RouteSpec],
    providers: Mapping[str, ProviderSpec],
) -> list[FieldError]:
    if isinstance(keys, str) or not isinstance(keys, list | tuple):
        return [FieldError("keys", f"must be a tuple of KeySpec; got {type(keys).__name__}")]
    errors: list[FieldError] = []
    specs: list[tuple[int, KeySpec]] = []
    for i, key in enumerate(keys):
        where = f"keys[{i}]"
        _one(errors, where, key, KeySpec)
        if not isinstance(key, KeySpec):
            continue
        specs.append((i, key))
        if not key.secret:
            errors.append(
                FieldError(f"{where}.secret", "must be set (load_config reads it from key_env)")
            )
        if not isinstance(key.models, list | tuple):
            continue
        for j, pattern in enumerate(key.models):
            if not isinstance(pattern, str) or pattern in routes:
                continue
            if not known_pattern(pattern, models, providers):
                message = f"unknown model, route or provider {pattern!r}"
                errors.append(FieldError(f"{where}.models[{j}]", message))
    errors.extend(error for _, error in key_clashes(specs))
    return errors
