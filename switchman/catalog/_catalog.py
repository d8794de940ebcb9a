"""The built-in catalog: the providers, models and routes shipped in ``catalog.json``.

``builtin_catalog()`` reads and validates the data file once; ``load_config``
merges a user's TOML over it. The builders here (``build_provider``,
``build_model``) are shared by both, so the shipped data passes exactly the
checks a user's configuration does, and a bad field is named by its path.

Nothing here does I/O beyond reading the package's own data file, and nothing
blocks: there is no cancellation to speak of.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Iterable, Mapping
from importlib import resources
from typing import Any, Final

import attrs

from switchman._call import INTENTS
from switchman._convert import structure
from switchman._errors import FieldError, ValidationError
from switchman.catalog._hints import hinted, unknown_field
from switchman.catalog._spec import (
    _SIM_RATES,
    KINDS,
    Config,
    ModelSpec,
    ProviderSpec,
    RouteSpec,
)

SIM_PROVIDER: Final = "sim"
#: keys a provider table may set (``name`` comes from the table's name)
PROVIDER_KEYS: Final = frozenset(
    {
        "kind",
        "base_url",
        "api_key_env",
        "max_concurrency",
        "rpm",
        "tpm",
        "headers",
        "connect_timeout_s",
        "read_timeout_s",
        "seed",
    }
)
MODEL_KEYS: Final = frozenset(f.name for f in attrs.fields(ModelSpec))
#: keys a route table may set (``name`` comes from the table's name)
_ROUTE_KEYS: Final = frozenset(f.name for f in attrs.fields(RouteSpec)) - {"name"}
_SIM_TIMES: Final = ("latency_ms", "ttft_ms", "tokens_per_s")
_INTENT_LIST: Final = ", ".join(sorted(INTENTS))


@attrs.frozen(kw_only=True)
class Catalog:
    """The shipped catalog, validated.

    ``routes`` keep their chains as written (a chain may name another route);
    ``load_config`` flattens them to model aliases. The simulator fleet is kept
    apart: it joins a configuration only when no provider key is set or when
    ``[providers.sim]`` asks for it. ``sim_routes`` are what the short route
    names point at in that case.
    """

    providers: Mapping[str, ProviderSpec]
    models: Mapping[str, ModelSpec]
    routes: Mapping[str, RouteSpec]
    sim_provider: ProviderSpec
    sim_models: Mapping[str, ModelSpec]
    sim_routes: Mapping[str, RouteSpec]
    notes: Mapping[str, str] = attrs.field(factory=dict)
    #: model ids the catalog leaves out on purpose (retired, deprecated, unpriced), and
    #: why: said when a call names one
    left_out: Mapping[str, str] = attrs.field(factory=dict)


def model_alias(provider: str, model_id: str) -> str:
    """The catalog's alias for a model: ``<provider>/<model_id>``."""
    return f"{provider}/{model_id}"


def _join(path: str, name: str | int) -> str:
    if isinstance(name, int):
        return f"{path}[{name}]"
    return f"{path}.{name}" if path else name


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _at_least(
    errors: list[FieldError], path: str, value: float | None, low: float, *, strict: bool = False
) -> None:
    if value is None:
        return
    if isinstance(value, float) and not math.isfinite(value):
        errors.append(FieldError(path, "must be finite"))
    elif value < low or (strict and value == low):
        word = "greater than" if strict else "at least"
        errors.append(FieldError(path, f"must be {word} {low:g}; got {value!r}"))


def _unknown_keys(
    errors: list[FieldError], path: str, table: Mapping[str, Any], allowed: frozenset[str]
) -> None:
    errors.extend(unknown_field(_join(path, k), k, allowed) for k in table if k not in allowed)


#: an API root of each wire format, for a message asking for one
_ROOT_EXAMPLES: Final = {
    "openai": "http://127.0.0.1:8000/v1",
    "anthropic": "https://api.anthropic.com",
    "gemini": "https://generativelanguage.googleapis.com/v1beta",
    "ollama": "http://localhost:11434",
}


def build_provider(
    name: str,
    table: Any,
    *,
    path: str,
    errors: list[FieldError],
    base: ProviderSpec | None = None,
    extra_keys: frozenset[str] = frozenset(),
) -> ProviderSpec | None:
    """A ``ProviderSpec`` from a provider table merged over ``base``, or None if invalid.

    Every problem is appended to ``errors`` with its path under ``path``.
    ``extra_keys`` are keys the caller handles itself (accepted, ignored here).
    An empty ``api_key_env`` means "no key".
    """
    if not isinstance(table, dict):
        errors.append(FieldError(path, "must be a table"))
        return None
    before = len(errors)
    _unknown_keys(errors, path, table, PROVIDER_KEYS | extra_keys)
    data: dict[str, Any] = attrs.asdict(base, recurse=False) if base else {"name": name}
    data.update((k, v) for k, v in table.items() if k in PROVIDER_KEYS)
    if data.get("api_key_env") == "":
        data["api_key_env"] = None
    if base is None and "kind" not in table:
        errors.append(
            FieldError(_join(path, "kind"), "is required for a provider not in the catalog")
        )
        return None
    if "kind" in table and table["kind"] not in KINDS:  # (what base_url needs depends on it)
        got = table["kind"]
        errors.append(
            FieldError(_join(path, "kind"), f"must be one of {', '.join(KINDS)}; got {got!r}")
        )
        return None
    if base is not None and table.get("kind", base.kind) != base.kind and "base_url" not in table:
        errors.append(
            FieldError(
                _join(path, "base_url"),
                f"is required when kind is not the catalog's ({base.kind!r}): its base_url "
                "is of that wire format",
            )
        )
        return None
    if data.get("kind") != "sim" and data.get("base_url") in (None, ""):
        errors.append(
            FieldError(
                _join(path, "base_url"),
                "is required: the provider's API root (such as "
                f"{_ROOT_EXAMPLES.get(str(data.get('kind')), 'http://127.0.0.1:8000/v1')})",
            )
        )
        return None
    try:
        spec = structure(data, ProviderSpec)
    except ValidationError as exc:
        errors.extend(hinted(exc.prefixed(path).fields, path, ProviderSpec))
        return None
    # (every rule of the spec, so one mistake does not hide another of the same table)
    errors.extend(FieldError(_join(path, e.field), e.message) for e in ProviderSpec._problems(spec))
    return spec if len(errors) == before else None


def build_model(
    table: Any,
    *,
    path: str,
    errors: list[FieldError],
    base: ModelSpec | None = None,
    defaults: Mapping[str, Any] | None = None,
) -> ModelSpec | None:
    """A ``ModelSpec`` from a model table merged over ``base``, or None if invalid.

    ``defaults`` are values the table does not carry itself (the catalog's
    derived ``alias`` and ``provider``). Problems go to ``errors`` by path.
    """
    if not isinstance(table, dict):
        errors.append(FieldError(path, "must be a table"))
        return None
    before = len(errors)
    _unknown_keys(errors, path, table, MODEL_KEYS)
    data: dict[str, Any] = attrs.asdict(base, recurse=False) if base else {}
    if base is not None and base.sim is not None:
        data["sim"] = attrs.asdict(base.sim)
    data.update(defaults or {})
    data.update((k, v) for k, v in table.items() if k in MODEL_KEYS)
    if base is not None and base.sim is not None and isinstance(table.get("sim"), dict):
        data["sim"] = {**attrs.asdict(base.sim), **table["sim"]}  # a profile merges field by field
    intents = data.get("intents")
    if isinstance(intents, list | tuple):
        bad = [i for i, x in enumerate(intents) if x not in INTENTS]
        errors.extend(
            FieldError(_join(_join(path, "intents"), i), f"must be one of {_INTENT_LIST}")
            for i in bad
        )
        data["intents"] = [x for i, x in enumerate(intents) if i not in bad]
    sim = data.get("sim")
    if isinstance(sim, dict):
        _check_sim(sim, _join(path, "sim"), errors)
    try:
        spec = structure(data, ModelSpec)
    except ValidationError as exc:
        errors.extend(hinted(exc.prefixed(path).fields, path, ModelSpec))
        return None
    if not spec.alias or spec.alias != spec.alias.strip() or spec.alias == "auto":
        errors.append(FieldError(_join(path, "alias"), f"{spec.alias!r} cannot be an alias"))
    if not spec.model_id:
        errors.append(FieldError(_join(path, "model_id"), "must not be empty"))
    _at_least(errors, _join(path, "context_window"), spec.context_window, 1)
    _at_least(errors, _join(path, "max_output_tokens"), spec.max_output_tokens, 1)
    _at_least(errors, _join(path, "input_per_mtok"), spec.input_per_mtok, 0)
    _at_least(errors, _join(path, "output_per_mtok"), spec.output_per_mtok, 0)
    if spec.sim is not None:
        for name in _SIM_TIMES:
            _at_least(errors, _join(_join(path, "sim"), name), getattr(spec.sim, name), 0)
        for name in _SIM_RATES:
            value = getattr(spec.sim, name)
            if not 0.0 <= value <= 1.0:
                where = _join(_join(path, "sim"), name)
                errors.append(FieldError(where, f"must be between 0 and 1; got {value!r}"))
    return spec if len(errors) == before else None


def _check_sim(sim: Mapping[str, Any], path: str, errors: list[FieldError]) -> None:
    quality = sim.get("quality")
    if not isinstance(quality, dict):
        return  # absent, or the converter reports the wrong type
    for intent, value in quality.items():
        where = _join(_join(path, "quality"), intent)
        if intent not in INTENTS:
            errors.append(FieldError(where, f"not an intent; use one of {_INTENT_LIST}"))
        elif not _is_number(value) or not 0.0 <= value <= 1.0:
            errors.append(FieldError(where, f"must be a number between 0 and 1; got {value!r}"))


def build_route(name: str, table: Any, *, path: str, errors: list[FieldError]) -> RouteSpec | None:
    """A ``RouteSpec`` from ``{chain = [...], fallback_on_content_rejection = ...}``.

    The chain is kept as written (names are checked when routes are flattened).
    """
    if not isinstance(table, dict):
        errors.append(FieldError(path, "must be a table"))
        return None
    if "chain" not in table:
        errors.append(FieldError(_join(path, "chain"), "is required"))
        _unknown_keys(errors, path, table, _ROUTE_KEYS)  # (a misspelt chain among them)
        return None
    if "name" in table:
        errors.append(unknown_field(_join(path, "name"), "name", _ROUTE_KEYS))
        return None
    try:
        route = structure({"name": name, **table}, RouteSpec)
    except ValidationError as exc:
        errors.extend(hinted(exc.prefixed(path).fields, path, RouteSpec))
        return None
    if not route.chain:
        errors.append(FieldError(_join(path, "chain"), "must name at least one model"))
        return None
    return route


def flatten_routes(
    routes: Mapping[str, RouteSpec], models: Mapping[str, ModelSpec], *, path: str = "routes"
) -> tuple[dict[str, RouteSpec], list[FieldError]]:
    """Routes whose chains name only model aliases, each once, in first-seen order.

    A chain entry naming another route stands for that route's chain. Unknown
    names and cycles are reported as ``routes.NAME.chain[i]``.
    """
    errors: list[FieldError] = []
    done: dict[str, tuple[str, ...]] = {}

    def expand(name: str, stack: tuple[str, ...]) -> tuple[str, ...]:
        if name in done:
            return done[name]
        out: dict[str, None] = {}
        for i, entry in enumerate(routes[name].chain):
            where = _join(_join(_join(path, name), "chain"), i)
            if entry in models:
                out.setdefault(entry, None)
            elif entry in routes:
                if entry in stack or entry == name:
                    cycle = " -> ".join((*stack, name, entry))
                    errors.append(FieldError(where, f"routes form a cycle: {cycle}"))
                    continue
                for alias in expand(entry, (*stack, name)):
                    out.setdefault(alias, None)
            else:
                errors.append(FieldError(where, f"unknown model or route {entry!r}"))
        done[name] = tuple(out)
        return done[name]

    flat = {name: attrs.evolve(route, chain=expand(name, ())) for name, route in routes.items()}
    # a cycle is found once per route that enters it; report each place once
    unique = list(dict.fromkeys(errors))
    return flat, unique


def load_catalog(data: Any) -> Catalog:
    """Validate a catalog document (the shape of ``catalog.json``) into a ``Catalog``.

    Raises ``ValidationError`` naming each bad field as ``catalog.<path>``.
    """
    errors: list[FieldError] = []
    if not isinstance(data, dict):
        raise ValidationError([FieldError("catalog", "must be an object")])
    top = frozenset({"_notes", "left_out", "providers", "routes", "sim"})
    _unknown_keys(errors, "catalog", data, top)
    providers: dict[str, ProviderSpec] = {}
    models: dict[str, ModelSpec] = {}
    for name, table in _table(data, "providers", "catalog", errors).items():
        path = f"catalog.providers.{name}"
        if not isinstance(table, dict):
            errors.append(FieldError(path, "must be an object"))
            continue
        provider_table = {k: v for k, v in table.items() if k != "models"}
        spec = build_provider(name, provider_table, path=path, errors=errors)
        if spec is not None:
            providers[name] = spec
        _catalog_models(name, table.get("models"), f"{path}.models", errors, models)
    if SIM_PROVIDER in providers:
        errors.append(FieldError(f"catalog.providers.{SIM_PROVIDER}", "reserved for the simulator"))
    sim = _table(data, "sim", "catalog", errors)
    _unknown_keys(errors, "catalog.sim", sim, frozenset({"provider", "models", "routes"}))
    sim_provider = build_provider(
        SIM_PROVIDER, sim.get("provider", {}), path="catalog.sim.provider", errors=errors
    )
    if sim_provider is not None and sim_provider.kind != "sim":
        errors.append(FieldError("catalog.sim.provider.kind", "must be sim"))
    sim_models: dict[str, ModelSpec] = {}
    _catalog_models(SIM_PROVIDER, sim.get("models"), "catalog.sim.models", errors, sim_models)
    routes = _catalog_routes(_table(data, "routes", "catalog", errors), "catalog.routes", errors)
    sim_routes = _catalog_routes(
        _table(sim, "routes", "catalog.sim", errors), "catalog.sim.routes", errors
    )
    errors.extend(flatten_routes(routes, models, path="catalog.routes")[1])
    errors.extend(flatten_routes(sim_routes, sim_models, path="catalog.sim.routes")[1])
    errors.extend(
        FieldError(f"catalog.sim.routes.{name}", "has no matching route in catalog.routes")
        for name in sim_routes
        if name not in routes
    )
    notes = data.get("_notes", {})
    if not isinstance(notes, dict) or not all(isinstance(v, str) for v in notes.values()):
        errors.append(FieldError("catalog._notes", "must be an object of strings"))
        notes = {}
    left_out = data.get("left_out", {})
    if not isinstance(left_out, dict) or not all(isinstance(v, str) for v in left_out.values()):
        errors.append(FieldError("catalog.left_out", "must be an object of strings"))
        left_out = {}
    if errors or sim_provider is None:
        raise ValidationError(errors or [FieldError("catalog.sim.provider", "is invalid")])
    return Catalog(
        providers=providers,
        models=models,
        routes=routes,
        sim_provider=sim_provider,
        sim_models=sim_models,
        sim_routes=sim_routes,
        notes=notes,
        left_out=left_out,
    )


def _table(
    data: Mapping[str, Any], key: str, path: str, errors: list[FieldError]
) -> dict[str, Any]:
    value = data.get(key, {})
    if not isinstance(value, dict):
        errors.append(FieldError(_join(path, key), "must be an object"))
        return {}
    return value


def _catalog_models(
    provider: str, entries: Any, path: str, errors: list[FieldError], out: dict[str, ModelSpec]
) -> None:
    if not isinstance(entries, list):
        errors.append(FieldError(path, "must be an array"))
        return
    for i, entry in enumerate(entries):
        where = _join(path, i)
        if isinstance(entry, dict) and ("alias" in entry or "provider" in entry):
            errors.append(FieldError(where, "alias and provider are implied by the catalog"))
            continue
        model_id = entry.get("model_id") if isinstance(entry, dict) else None
        alias = model_alias(provider, model_id) if isinstance(model_id, str) else ""
        spec = build_model(
            entry, path=where, errors=errors, defaults={"alias": alias, "provider": provider}
        )
        if spec is None:
            continue
        if spec.alias in out:
            errors.append(
                FieldError(_join(where, "model_id"), f"duplicate model {spec.model_id!r}")
            )
        out[spec.alias] = spec


def _catalog_routes(
    table: Mapping[str, Any], path: str, errors: list[FieldError]
) -> dict[str, RouteSpec]:
    out: dict[str, RouteSpec] = {}
    for name, chain in table.items():
        route = build_route(name, {"chain": chain}, path=_join(path, name), errors=errors)
        if route is not None:
            out[name] = route
    return out


@functools.cache
def builtin_catalog() -> Catalog:
    """The catalog shipped with switchman (read and validated once, then shared: it is frozen)."""
    text = resources.files("switchman.catalog").joinpath("catalog.json").read_text("utf-8")
    return load_catalog(json.loads(text))


def resolve(config: Config, name: str) -> tuple[ModelSpec, ...]:
    """The models a name stands for in ``config``: a route's chain, or the one model.

    A name that is both (only possible in a hand-built ``Config``) means the
    route, as the dispatcher reads it. Raises ``KeyError`` for an unknown name;
    ``"auto"`` is the dispatcher's business, not a name here.
    """
    route = config.routes.get(name)
    if route is not None:
        return tuple(config.models[alias] for alias in route.chain)
    return (config.models[name],)


def named_aliases(config: Config, names: Iterable[str]) -> tuple[str, ...]:
    """The aliases ``names`` stand for (``resolve``), in their order, each once, up to an
    ``"auto"`` (the dispatcher's: every other model); unknown names are skipped."""
    out: dict[str, None] = {}
    for name in names:
        if name == "auto":
            break
        try:
            models = resolve(config, name)
        except KeyError:
            continue
        out.update((m.alias, None) for m in models)
    return tuple(out)
