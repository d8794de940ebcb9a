"""Configuration loading: a TOML file (every key optional) merged over the built-in catalog.

::

    [server]  [router]  [sim]           plain knobs
    [providers.NAME]                    override a catalog provider, or add one (needs kind)
    [[models]]                          override a model by alias, or add one
    [routes.NAME] chain = [...]         add or replace a route (chains may name routes)
    [budgets]  [budgets.providers.NAME]  [budgets.callers.HANDLE]
    [[keys]]                            gateway keys; secrets come from the environment

Provider API keys are never stored in the ``Config``: ``api_key(provider)``
reads them from the environment when an actor starts. A provider whose key
is missing stays in the configuration, disabled with a reason. With no
provider key at all, the simulator fleet is switched on and the short routes
(``claude``, ``gpt``...) point at it, so a fresh machine can answer.

Every mistake is reported at once in one ``ValidationError`` naming each bad
field by its TOML path (``providers.openai.rpm``, ``models[2].provider``).
Loading reads one file and blocks briefly; it has nothing to cancel.

The loader deals with what is TOML's own (unknown keys, types, merging over
the catalog, route names in chains, ``[[models]]`` and
``[[keys]]`` by index); the rules on values and on references between parts
are ``validate_config``'s, which checks what the loader built (even when it
already found mistakes, so all are reported together) and can check a
``Config`` built in Python the same way.
"""

from __future__ import annotations

import logging
import math
import os
import tomllib
from collections.abc import Mapping
from typing import Any, Final

import attrs

from switchman._convert import structure
from switchman._errors import FieldError, ValidationError
from switchman.catalog._brought import (
    catalog_facts,
    priced_by,
    warn_unbilled,
    warn_unsaid,
    wire_defaults,
)
from switchman.catalog._catalog import (
    SIM_PROVIDER,
    Catalog,
    build_model,
    build_provider,
    build_route,
    builtin_catalog,
    flatten_routes,
)
from switchman.catalog._credentials import credential_header
from switchman.catalog._hints import did_you_mean, hinted, unknown_field
from switchman.catalog._keys import allowed_for as allowed_for  # (the gateway's and router's)
from switchman.catalog._keys import key_clashes, keys_problems, known_pattern, matches_no_model
from switchman.catalog._paths import _join, _one, _under, as_written
from switchman.catalog._spec import (
    MAX_INT,
    BudgetsConfig,
    Config,
    KeySpec,
    ModelSpec,
    ProviderSpec,
    RouterConfig,
    RouteSpec,
    ServerConfig,
    _number,
)

log = logging.getLogger(__name__)

_TOP_KEYS: Final = frozenset(
    {"server", "router", "sim", "providers", "models", "routes", "budgets", "keys"}
)
_KEY_KEYS: Final = frozenset(f.name for f in attrs.fields(KeySpec)) - {"secret"}
NOT_DETECTED: Final = "not detected"
DISABLED_BY_CONFIG: Final = "disabled in configuration"


#: below this many characters a gateway key is easy to guess: it is warned of
MIN_GATEWAY_KEY_CHARS: Final = 16


def api_key(provider: ProviderSpec, env: Mapping[str, str] | None = None) -> str | None:
    """The provider's API key from the environment (``env`` defaults to ``os.environ``),
    without the whitespace around it (a secret file's trailing newline).

    None when the provider needs no key, its variable is unset or empty, or what it
    holds cannot be a key (see ``key_problem``): such a key is never sent.
    """
    if not provider.api_key_env:
        return None
    value = clean_secret((os.environ if env is None else env).get(provider.api_key_env))
    return value if value and key_problem(value) is None else None


def key_missing(provider: ProviderSpec, env: Mapping[str, str] | None = None) -> str | None:
    """Why ``provider`` cannot be used for want of its API key (``missing API key: set
    X``, or what is wrong with the key ``X`` holds), or None: it needs none (no
    ``api_key_env``, or the simulator), ``env`` (default ``os.environ``) has it, or its
    ``headers`` carry a credential (a proxy's ``Authorization``, Azure's ``api-key``).

    ``load_config`` disables a provider for this reason; ``run_router`` applies it to a
    ``Config`` built in Python, so a provider without its key is never called keyless.
    """
    if provider.kind == "sim" or not provider.api_key_env or api_key(provider, env) is not None:
        return None
    if any(credential_header(name) and value.strip() for name, value in provider.headers.items()):
        return None
    value = clean_secret((os.environ if env is None else env).get(provider.api_key_env))
    if value is not None and (problem := key_problem(value)) is not None:
        return f"the API key in {provider.api_key_env} {problem}"
    return f"missing API key: set {provider.api_key_env}"


def clean_secret(value: str | None) -> str | None:
    """A secret read from the environment, without surrounding whitespace; None if empty."""
    return (value or "").strip() or None


def key_problem(value: str) -> str | None:
    """Why ``value`` cannot be sent as a key in an HTTP header, or None. Never says the
    value: the reason is shown wherever the provider's state is."""
    if any(not ("!" <= ch <= "~") for ch in value):
        return "holds whitespace or characters an HTTP header cannot carry (not printable ASCII)"
    return None


#: how to make a ``Config`` of what was given in its place
_MAKE_CONFIG: Final = {
    "str": "from a file, switchman.load_config(path)",
    "dict": "from a dict, switchman.catalog.config_from_dict(data)",
}


def load_config(
    path: str | os.PathLike[str] | None = None, *, env: Mapping[str, str] | None = None
) -> Config:
    """The configuration from a TOML file merged over the built-in catalog.

    ``path`` None gives the defaults. ``env`` (default ``os.environ``) is where
    API keys and gateway key secrets are looked up; it is only read. Raises
    ``ValidationError`` naming every bad field, ``OSError`` if the file cannot
    be read. What it returns passes ``validate_config``. A ``[[keys]]`` entry
    whose variable is unset is dropped with a warning, unless none of them can
    be used: then it is an error (a gateway must not run open by accident).
    """
    if path is None:
        return config_from_dict({}, env=env)
    if isinstance(path, Mapping):
        raise TypeError(f"load_config takes a file's path; got a dict: {_MAKE_CONFIG['dict']}")
    with open(path, "rb") as f:
        raw = f.read()
    source = os.fspath(path)
    try:
        data = tomllib.loads(raw.decode("utf-8-sig"))  # (a BOM, as some editors write)
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ValidationError([FieldError(source, f"invalid TOML: {exc}")], source=source) from None
    try:
        return config_from_dict(data, env=env)
    except ValidationError as exc:  # (the file named: an application may load several)
        raise ValidationError(exc.fields, source=source) from None


def default_config(*, env: Mapping[str, str] | None = None) -> Config:
    """The built-in catalog with keys from ``env``: ``load_config(None, env=env)``."""
    return load_config(None, env=env)


def config_from_dict(
    data: Mapping[str, Any],
    *,
    env: Mapping[str, str] | None = None,
    catalog: Catalog | None = None,
) -> Config:
    """The configuration from already-parsed TOML data (see ``load_config``)."""
    return _Loader(data, os.environ if env is None else env, catalog or builtin_catalog()).load()


def _beside_the_broken(
    errors: list[FieldError], providers: set[str], models: set[str]
) -> list[FieldError]:
    """``errors`` once each, without those that only say a name is unknown where the name
    is one the file defines, of the kind the error looks for, with mistakes of its own
    (already reported): one typo in a model is one line, not one more per route and key
    that names the model. A route naming a broken provider is still a mistake."""
    looked_for = {
        "unknown provider": {repr(n) for n in providers},
        "unknown model or route": {repr(n) for n in models},
        "unknown model alias": {repr(n) for n in models},
        "unknown model, route or provider": {repr(n) for n in providers | models},
    }
    kept = []
    for e in dict.fromkeys(errors):
        what, _, name = e.message.rpartition(" ")
        if name not in looked_for.get(what, ()):
            kept.append(e)
    return kept


class _Loader:
    """One load: builds the Config from what parses, checks it by ``validate_config``'s
    rules, then raises every error found (TOML's and the rules') or returns it."""

    def __init__(self, data: Mapping[str, Any], env: Mapping[str, str], catalog: Catalog) -> None:
        self.data = data
        self.env = env
        self.catalog = catalog
        self.errors: list[FieldError] = []
        #: providers and model aliases the file defines that were left out for mistakes of
        #: their own (reported): a reference to one is not another mistake to report
        self.broken_providers: set[str] = set()
        self.broken_models: set[str] = set()

    def load(self) -> Config:
        if not isinstance(self.data, Mapping):
            raise ValidationError([FieldError("config", "must be a table")])
        self.errors.extend(unknown_field(k, k, _TOP_KEYS) for k in self.data if k not in _TOP_KEYS)
        provider_tables = self.table("providers")
        providers = self.providers(provider_tables)
        auto_sim = not any(self.serves(p, provider_tables) for p in providers.values())
        if auto_sim and SIM_PROVIDER not in providers:
            providers[SIM_PROVIDER] = self.catalog.sim_provider
        sim_seed = self.sim_seed()
        if sim_seed is not None and SIM_PROVIDER in providers:
            providers[SIM_PROVIDER] = attrs.evolve(providers[SIM_PROVIDER], seed=sim_seed)
        providers = {
            name: attrs.evolve(p, disabled_reason=self.disabled_reason(p, provider_tables))
            for name, p in providers.items()
        }
        models, shadowed = self.models(providers)
        routes = self.routes(providers, models, shadowed, auto_sim=auto_sim)
        budgets = self.budgets(providers)
        keys = self.keys(models, routes, providers)
        self.caller_budgets(budgets)
        server = self.knobs("server", ServerConfig)
        if isinstance(server.db, str) and server.db.startswith("~"):  # (as a shell would)
            server = attrs.evolve(server, db=os.path.expanduser(server.db))
        router = self.knobs("router", RouterConfig)
        for name in ("default_ttft_ms", "default_soft_ms"):  # (written out at its default:
            said = self.table("router").get(name)  # the rule sees only values, in _spec)
            if said == attrs.fields_dict(RouterConfig)[name].default == getattr(router, name):
                if said > router.default_hard_ms:
                    hard = router.default_hard_ms
                    self.errors.append(
                        FieldError(f"router.{name}", f"must not exceed default_hard_ms ({hard})")
                    )
        enabled = [p for p in providers.values() if p.disabled_reason is None]
        # built from what did parse (a part with a mistake is left out), then checked
        # by validate_config's rules: their paths are the TOML ones for these parts
        config = Config(
            providers=providers,
            models=models,
            routes=routes,
            budgets=budgets,
            keys=keys,
            server=server,
            router=router,
            simulated=bool(enabled) and all(p.kind == "sim" for p in enabled),
        )
        entries = self.data.get("models")
        self.errors.extend(as_written(e, entries) for e in config_problems(config))
        if self.errors:
            raise ValidationError(
                _beside_the_broken(self.errors, self.broken_providers, self.broken_models)
            )
        return config

    # -- helpers -------------------------------------------------------------

    def table(
        self, key: str, data: Mapping[str, Any] | None = None, path: str = ""
    ) -> dict[str, Any]:
        source = self.data if data is None else data
        value = source.get(key, {})
        if not isinstance(value, dict):
            self.errors.append(FieldError(_join(path, key) if path else key, "must be a table"))
            return {}
        return value

    def array(self, key: str) -> list[Any]:
        value = self.data.get(key, [])
        if not isinstance(value, list):
            self.errors.append(FieldError(key, f"must be an array of tables ([[{key}]])"))
            return []
        return value

    def knobs(self, key: str, cls: type[Any]) -> Any:
        """``[key]`` structured as ``cls``; its defaults (and the errors noted) if it does not."""
        try:
            return structure(self.table(key), cls)
        except ValidationError as exc:
            self.errors.extend(hinted(exc.prefixed(key).fields, key, cls))
            return cls()

    # -- sections ------------------------------------------------------------

    def providers(self, tables: Mapping[str, Any]) -> dict[str, ProviderSpec]:
        providers = dict(self.catalog.providers)
        for name, table in tables.items():
            path = f"providers.{name}"
            if name == SIM_PROVIDER:
                if isinstance(table, dict) and table.get("kind", "sim") != "sim":
                    self.errors.append(FieldError(f"{path}.kind", "the sim provider's kind is sim"))
                    continue
                base: ProviderSpec | None = self.catalog.sim_provider
            else:
                base = providers.get(name)
            spec = build_provider(
                name,
                table,
                path=path,
                errors=self.errors,
                base=base,
                extra_keys=frozenset({"enabled"}),
            )
            if isinstance(table, dict) and not isinstance(table.get("enabled", True), bool):
                self.errors.append(FieldError(f"{path}.enabled", "must be true or false"))
            if spec is not None:
                providers[name] = spec
            elif name not in providers:
                self.broken_providers.add(name)
        return providers

    def serves(self, p: ProviderSpec, tables: Mapping[str, Any]) -> bool:
        """Whether ``p`` is a real provider switchman can call: its key is set, or the file
        configures it and it needs none (a vLLM or Ollama server of the user's, a proxy
        whose ``headers`` carry the credential). Without one, the simulator serves."""
        table = tables.get(p.name)
        if p.kind == "sim" or (isinstance(table, dict) and table.get("enabled") is False):
            return False
        if api_key(p, self.env) is not None:
            return True
        return isinstance(table, dict) and key_missing(p, self.env) is None

    def disabled_reason(self, p: ProviderSpec, tables: Mapping[str, Any]) -> str | None:
        table = tables.get(p.name)
        if isinstance(table, dict) and table.get("enabled") is False:
            return DISABLED_BY_CONFIG
        if p.kind == "sim":
            return None
        if (reason := key_missing(p, self.env)) is not None:
            return reason
        if p.kind == "ollama" and p.name in self.catalog.providers and table is None:
            return NOT_DETECTED
        return None

    def sim_seed(self) -> int | None:
        sim = self.table("sim")
        self.errors.extend(unknown_field(f"sim.{k}", k, ("seed",)) for k in sim if k != "seed")
        seed = sim.get("seed")
        if seed is None:
            return None
        found = len(self.errors)
        _number(self.errors, "sim.seed", seed, -math.inf, integer=True)
        return seed if len(self.errors) == found else None

    def models(
        self, providers: Mapping[str, ProviderSpec]
    ) -> tuple[dict[str, ModelSpec], set[str]]:
        """Catalog models of the providers present, then ``[[models]]`` merged by alias.

        Returns the models and the built-in route names a user model replaced.
        """
        # (a catalog model on a provider the file turned kind = "anthropic" takes no seed:
        # that wire has none, and only the file saying so is a mistake)
        models = {
            a: attrs.evolve(m, supports_seed=False)
            if m.supports_seed and providers[m.provider].kind == "anthropic"
            else m
            for a, m in self.catalog.models.items()
            if m.provider in providers
        }
        if SIM_PROVIDER in providers:
            models.update(self.catalog.sim_models)
        shadowed: set[str] = set()
        seen: dict[str, int] = {}
        for i, table in enumerate(self.array("models")):
            path = f"models[{i}]"
            if not isinstance(table, dict):
                self.errors.append(FieldError(path, "must be a table"))
                continue
            alias = table.get("alias")
            if not isinstance(alias, str):
                self.errors.append(FieldError(f"{path}.alias", "is required (a string)"))
                continue
            if alias in seen:
                self.errors.append(
                    FieldError(
                        f"{path}.alias", f"{alias!r} is already defined by models[{seen[alias]}]"
                    )
                )
                continue
            seen[alias] = i
            base = models.get(alias)
            missing = [] if base else [k for k in ("provider", "model_id") if k not in table]
            self.errors.extend(
                FieldError(f"{path}.{k}", "is required for a model not in the catalog")
                for k in missing
            )
            spec = None
            if not missing:
                like = priced_by(table, base or catalog_facts(self.catalog, table, providers))
                spec = build_model(table, path=path, errors=self.errors, base=like)
                if spec is not None and spec.provider in providers:
                    spec = wire_defaults(spec, table, providers[spec.provider])
                    warn_unbilled(path, table, providers[spec.provider])
                    if like is None:
                        warn_unsaid(path, table, providers[spec.provider])
            # checked even when the model has other mistakes: every one is reported
            references = model_references(
                table.get("provider", base.provider if base else None),
                table.get("sim", base.sim if base else None),
                providers,
                supports_seed=table.get("supports_seed", base.supports_seed if base else False),
            )
            self.errors.extend(_under(path, references))
            if spec is None or references:
                self.broken_models.add(alias)
                continue
            models[alias] = spec
            if alias in self.catalog.routes:
                shadowed.add(alias)
                log.warning(
                    "%s: alias %r is a built-in route's name too: the model takes it, and the"
                    " route (%s) is gone; give the model another alias to keep the route",
                    path, alias, ", ".join(self.catalog.routes[alias].chain),
                )  # fmt: skip
        return models, shadowed

    def routes(
        self,
        providers: Mapping[str, ProviderSpec],
        models: Mapping[str, ModelSpec],
        shadowed: set[str],
        *,
        auto_sim: bool,
    ) -> dict[str, RouteSpec]:
        routes = {n: r for n, r in self.catalog.routes.items() if n not in shadowed}
        if auto_sim:
            flat, _ = flatten_routes(routes, models)
            for name, route in flat.items():
                usable = any(
                    models[a].enabled and providers[models[a].provider].disabled_reason is None
                    for a in route.chain
                )
                if not usable and name in self.catalog.sim_routes:
                    routes[name] = self.catalog.sim_routes[name]
        for name, table in self.table("routes").items():
            path = f"routes.{name}"
            problem = route_name_problem(name, models)
            if problem is not None:
                self.errors.append(FieldError(path, problem))
                continue
            user_route = build_route(name, table, path=path, errors=self.errors)
            if user_route is not None:
                routes[name] = user_route
        flat, errors = flatten_routes(routes, models)
        self.errors.extend(errors)
        # a chain left empty lost every entry to an error already reported
        return {name: route for name, route in flat.items() if route.chain}

    def budgets(self, providers: Mapping[str, ProviderSpec]) -> BudgetsConfig:
        """``[budgets]`` as written, amounts as floats; its values and provider names are
        checked with the rest of the configuration (here too, if it has other mistakes)."""
        table = self.table("budgets")
        try:
            budgets = structure(table, BudgetsConfig)
        except ValidationError as exc:
            self.errors.extend(hinted(exc.prefixed("budgets").fields, "budgets", BudgetsConfig))
            self.errors.extend(budget_references(table.get("providers"), providers))
            return BudgetsConfig()
        return attrs.evolve(
            budgets, providers=_floats(budgets.providers), callers=_floats(budgets.callers)
        )

    def caller_budgets(self, budgets: BudgetsConfig) -> None:
        """With ``[[keys]]``, a gateway call's caller is its key's handle (the gateway sets
        it), so a ``[budgets.callers.NAME]`` naming no key's handle would never apply: an
        error (a typo'd handle). Without keys, a caller is any handle an application
        gives (embedding), and every name is taken."""
        tables = self.data.get("keys")
        if not isinstance(tables, list) or not tables:
            return
        handles = {t["handle"] for t in tables if isinstance(t, dict) and "handle" in t}
        if not all(isinstance(h, str) for h in handles):
            return  # (a key's own mistake, reported)
        callers = budgets.callers if isinstance(budgets.callers, Mapping) else {}
        self.errors.extend(
            FieldError(
                f"budgets.callers.{name}",
                f"no [[keys]] entry has the handle {name!r}: with gateway keys a call's "
                f"caller is its key's handle, so this budget would never apply"
                f"{did_you_mean(name, handles)}",
            )
            for name in callers
            if name not in handles
        )

    def keys(
        self,
        models: Mapping[str, ModelSpec],
        routes: Mapping[str, RouteSpec],
        providers: Mapping[str, ProviderSpec],
    ) -> tuple[KeySpec, ...]:
        """Gateway keys, secrets from the environment.

        A key whose variable is unset or empty is dropped (logged), unless no key at all
        can be used: then the gateway would run open, and that is an error naming each
        variable.
        """
        tables = self.array("keys")
        parsed: list[tuple[int, KeySpec, bool]] = []  # TOML index, key, free of mistakes
        missing: list[str] = []
        for i, table in enumerate(tables):
            path = f"keys[{i}]"
            if not isinstance(table, dict):
                self.errors.append(FieldError(path, "must be a table"))
                continue
            if "secret" in table:
                self.errors.append(
                    FieldError(f"{path}.secret", "secrets come from the environment: use key_env")
                )
                continue
            try:
                key = structure(table, KeySpec)
            except ValidationError as exc:
                self.errors.extend(
                    hinted(exc.prefixed(path).fields, path, KeySpec, unsaid=frozenset({"secret"}))
                )
                continue
            before = len(self.errors)
            problems = _under(path, KeySpec._problems(key))
            self.errors.extend(problems)
            patterns = self.key_models(path, key.models, models, routes, providers)
            if any(p.field == f"{path}.key_env" for p in problems):
                continue  # (not a variable's name: maybe the secret itself; never repeated)
            secret = clean_secret(self.env.get(key.key_env)) if key.key_env else None
            if secret is not None and (problem := key_problem(secret)) is not None:
                missing.append(f"{key.key_env} {problem}")  # no client could send it
                secret = None
            elif key.key_env and not secret:
                state = "is empty" if key.key_env in self.env else "is not set"
                missing.append(f"{key.key_env} {state}")
            key = attrs.evolve(key, models=patterns, secret=secret or None)
            parsed.append((i, key, len(self.errors) == before))
        clashes = key_clashes([(i, key) for i, key, _ in parsed])
        self.errors.extend(error for _, error in clashes)
        clashing = {i for i, _ in clashes}
        if tables and missing and not any(key.secret for _, key, _ in parsed):
            self.errors.append(
                FieldError(
                    "keys", f"[[keys]] are configured but none can be used: {', '.join(missing)}"
                )
            )
        out: list[KeySpec] = []
        for i, key, clean in parsed:
            if key.secret is None:
                log.warning(
                    "gateway key for %r dropped: environment variable %s is unset, empty or "
                    "unusable",
                    key.handle,
                    key.key_env,
                )
            elif clean and i not in clashing:
                if len(key.secret) < MIN_GATEWAY_KEY_CHARS:
                    log.warning(
                        "gateway key for %r (%s) is only %d characters: anyone may guess it;"
                        " use at least %d random ones",
                        key.handle,
                        key.key_env,
                        len(key.secret),
                        MIN_GATEWAY_KEY_CHARS,
                    )
                out.append(key)
        return tuple(out)

    def key_models(
        self,
        path: str,
        patterns: tuple[str, ...],
        models: Mapping[str, ModelSpec],
        routes: Mapping[str, RouteSpec],
        providers: Mapping[str, ProviderSpec],
    ) -> tuple[str, ...]:
        """A key's allow-list: fnmatch patterns over aliases and provider names, and route
        names, each granting that route (:func:`allowed_for`); a plain name must exist. A
        glob or a provider's name allowing no model is warned of (not an error: Ollama's
        models are found when the router starts)."""
        out: dict[str, None] = {}
        for j, pattern in enumerate(patterns):
            if pattern in routes or known_pattern(pattern, models, providers):
                out[pattern] = None
                if pattern in routes and pattern in providers:
                    reached = {models[a].provider for a in routes[pattern].chain if a in models}
                    if reached - {pattern}:
                        log.warning(
                            "%s.models[%d]: %r is the route of that name, whose chain reaches "
                            "%s too, not the provider alone: '%s/*' allows the provider's "
                            "models only",
                            path, j, pattern, ", ".join(sorted(reached - {pattern})), pattern,
                        )  # fmt: skip
                if pattern not in routes and matches_no_model(pattern, models):
                    like = [x for x in (*models, *(f"{p}/*" for p in providers)) if x != pattern]
                    log.warning(
                        "%s.models[%d]: %r allows no model of the configuration (no alias, "
                        "provider/alias or provider it matches): the key may call none through "
                        "it, unless it matches models discovered on Ollama%s",
                        path, j, pattern, did_you_mean(pattern, like),
                    )  # fmt: skip
            else:
                self.errors.append(
                    FieldError(
                        f"{path}.models[{j}]", f"unknown model, route or provider {pattern!r}"
                    )
                )
        return tuple(out)


def _floats(tables: Mapping[str, Any]) -> dict[str, Any]:
    """Budget amounts as floats (TOML's ``10`` is an int); anything else as it is (an
    integer past ``MAX_INT`` too: no float may hold it, and the rules refuse it)."""
    return {
        name: {
            k: float(v)
            if isinstance(v, int) and not isinstance(v, bool) and abs(v) <= MAX_INT
            else v
            for k, v in limits.items()
        }
        if isinstance(limits, Mapping)
        else limits
        for name, limits in tables.items()
    }


# -- the rules on values and references, shared with load_config --------------------------


def validate_config(config: Config) -> None:
    """Check a ``Config`` (built in Python, or changed with ``attrs.evolve``) by the rules
    ``load_config`` applies.

    Raises ``ValidationError`` whose ``fields`` name every problem by its path in the
    ``Config``: ``router.capacity: must be at least 1; got 0``,
    ``routes.fast.chain[1]: unknown model alias 'y'``, ``models.m.provider: unknown
    provider 'p'``, ``budgets.global_daily_usd: must be at least 0; got -1``,
    ``models.m.sim.error_rate: must be between 0 and 1; got 5.0``,
    ``keys[0].secret: must be set``. Returns None when there is nothing to say.
    Pure and quick; nothing to cancel.
    """
    errors = config_problems(config)
    if errors:
        raise ValidationError(errors)


def config_problems(config: object) -> list[FieldError]:
    """Every problem of ``config``, by path; empty when it is valid (see ``validate_config``).

    Route chains must name model aliases (``load_config`` has flattened routes of
    routes), and key allow-lists aliases, provider names, globs or route names (a route
    name grants the route: :func:`allowed_for`).
    """
    if not isinstance(config, Config):
        how = "str" if isinstance(config, str | os.PathLike) else type(config).__name__
        hint = f": {_MAKE_CONFIG[how]}" if how in _MAKE_CONFIG else ""
        return [FieldError("config", f"must be a Config; got {type(config).__name__}{hint}")]
    errors: list[FieldError] = []
    providers = _section(errors, "providers", config.providers, ProviderSpec, "name")
    models = _section(errors, "models", config.models, ModelSpec, "alias")
    routes = _section(errors, "routes", config.routes, RouteSpec, "name")
    for alias, model in models.items():
        errors.extend(
            _under(
                f"models.{alias}",
                model_references(
                    model.provider, model.sim, providers, supports_seed=model.supports_seed
                ),
            )
        )
    for name, route in routes.items():
        problem = route_name_problem(name, models)
        if problem is not None:
            errors.append(FieldError(f"routes.{name}", problem))
        if isinstance(route.chain, list | tuple):
            errors.extend(
                FieldError(f"routes.{name}.chain[{i}]", f"unknown model alias {entry!r}")
                for i, entry in enumerate(route.chain)
                if isinstance(entry, str) and entry and entry not in models
            )
    _one(errors, "budgets", config.budgets, BudgetsConfig)
    errors.extend(budget_references(getattr(config.budgets, "providers", None), providers))
    errors.extend(keys_problems(config.keys, models, routes, providers))
    _one(errors, "server", config.server, ServerConfig)
    _one(errors, "router", config.router, RouterConfig)
    if not isinstance(config.simulated, bool):
        errors.append(FieldError("simulated", "must be true or false"))
    return errors


def _section(
    errors: list[FieldError], path: str, table: object, cls: type[Any], key_field: str
) -> dict[str, Any]:
    """The entries of a name -> spec table that are ``cls`` values, each checked, and
    named by the key it is under."""
    if not isinstance(table, Mapping):
        errors.append(FieldError(path, f"must be a mapping; got {type(table).__name__}"))
        return {}
    out: dict[str, Any] = {}
    for name, spec in table.items():
        where = f"{path}.{name}"
        _one(errors, where, spec, cls)
        if not isinstance(spec, cls):
            continue
        out[name] = spec
        own = getattr(spec, key_field)
        if own != name:
            errors.append(
                FieldError(f"{where}.{key_field}", f"must be its key {name!r}; got {own!r}")
            )
    return out


def model_references(
    provider: object,
    sim: object,
    providers: Mapping[str, ProviderSpec],
    *,
    supports_seed: object = False,
) -> list[FieldError]:
    """A model's provider exists, only a simulated provider's model has a profile, and
    no model of a ``kind = "anthropic"`` provider takes a seed (its wire has none)."""
    if not isinstance(provider, str):
        return []  # a wrong type is the model's own problem
    spec = providers.get(provider)
    if spec is None:
        return [FieldError("provider", f"unknown provider {provider!r}")]
    if sim is not None and spec.kind != "sim":
        return [FieldError("sim", 'only models of a kind = "sim" provider take a profile')]
    if supports_seed is True and spec.kind == "anthropic":
        return [
            FieldError(
                "supports_seed",
                'cannot be true on a kind = "anthropic" provider: its wire has no seed, so '
                'a call asking determinism = "strict" would be served unseeded',
            )
        ]
    return []


def budget_references(budgeted: object, providers: Mapping[str, ProviderSpec]) -> list[FieldError]:
    """Each provider given a budget exists."""
    if not isinstance(budgeted, Mapping):
        return []  # the budgets' own problem
    return [
        FieldError(f"budgets.providers.{name}", f"unknown provider {name!r}")
        for name in budgeted
        if name not in providers
    ]


def route_name_problem(name: str, models: Mapping[str, ModelSpec]) -> str | None:
    """Why ``name`` cannot name a route, or None."""
    if name in models:
        return f"{name!r} is already a model alias"
    if name == "auto":
        return "'auto' is reserved"
    return None
