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
"""

from __future__ import annotations

import logging
import os
import tomllib
from collections.abc import Mapping
from typing import Any, Final

import attrs

from switchman._convert import structure
from switchman._errors import FieldError, ValidationError
from switchman.catalog._catalog import (
    SIM_PROVIDER,
    Catalog,
    build_model,
    build_provider,
    build_route,
    builtin_catalog,
    flatten_routes,
)
from switchman.catalog._spec import (
    BudgetsConfig,
    Config,
    KeySpec,
    ModelSpec,
    ProviderSpec,
    RouterConfig,
    RouteSpec,
    ServerConfig,
)

log = logging.getLogger(__name__)

_TOP_KEYS: Final = frozenset(
    {"server", "router", "sim", "providers", "models", "routes", "budgets", "keys"}
)
_LIMIT_KEYS: Final = frozenset({"hourly_usd", "daily_usd", "monthly_usd"})
_KEY_KEYS: Final = frozenset(f.name for f in attrs.fields(KeySpec)) - {"secret"}
NOT_DETECTED: Final = "not detected"
DISABLED_BY_CONFIG: Final = "disabled in configuration"


def api_key(provider: ProviderSpec, env: Mapping[str, str] | None = None) -> str | None:
    """The provider's API key from the environment (``env`` defaults to ``os.environ``).

    None when the provider needs no key or its variable is unset or empty.
    """
    if not provider.api_key_env:
        return None
    return (os.environ if env is None else env).get(provider.api_key_env) or None


def load_config(
    path: str | os.PathLike[str] | None = None, *, env: Mapping[str, str] | None = None
) -> Config:
    """The configuration from a TOML file merged over the built-in catalog.

    ``path`` None gives the defaults. ``env`` (default ``os.environ``) is where
    API keys and gateway key secrets are looked up; it is only read. Raises
    ``ValidationError`` naming every bad field, ``OSError`` if the file cannot
    be read.
    """
    if path is None:
        return config_from_dict({}, env=env)
    with open(path, "rb") as f:
        raw = f.read()
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ValidationError([FieldError(os.fspath(path), f"invalid TOML: {exc}")]) from None
    return config_from_dict(data, env=env)


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


def _join(path: str, name: str | int) -> str:
    return f"{path}[{name}]" if isinstance(name, int) else f"{path}.{name}"


class _Loader:
    """One load: collects every error, then either raises them all or builds the Config."""

    def __init__(self, data: Mapping[str, Any], env: Mapping[str, str], catalog: Catalog) -> None:
        self.data = data
        self.env = env
        self.catalog = catalog
        self.errors: list[FieldError] = []

    def load(self) -> Config:
        if not isinstance(self.data, Mapping):
            raise ValidationError([FieldError("config", "must be a table")])
        self.errors.extend(FieldError(k, "unknown field") for k in self.data if k not in _TOP_KEYS)
        provider_tables = self.table("providers")
        providers = self.providers(provider_tables)
        has_key = any(api_key(p, self.env) for p in providers.values() if p.kind != "sim")
        auto_sim = not has_key
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
        server = self.knobs("server", ServerConfig)
        router = self.knobs("router", RouterConfig)
        if server is not None:
            self.check_server(server)
        if router is not None:
            self.check_router(router)
        if self.errors:
            raise ValidationError(self.errors)
        assert server is not None and router is not None
        enabled = [p for p in providers.values() if p.disabled_reason is None]
        return Config(
            providers=providers,
            models=models,
            routes=routes,
            budgets=budgets,
            keys=keys,
            server=server,
            router=router,
            simulated=bool(enabled) and all(p.kind == "sim" for p in enabled),
        )

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
        try:
            return structure(self.table(key), cls)
        except ValidationError as exc:
            self.errors.extend(exc.prefixed(key).fields)
            return None

    def number_at_least(self, path: str, value: float | None, low: float) -> None:
        if value is not None and not value >= low:
            self.errors.append(FieldError(path, f"must be at least {low:g}; got {value!r}"))

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
        return providers

    def disabled_reason(self, p: ProviderSpec, tables: Mapping[str, Any]) -> str | None:
        table = tables.get(p.name)
        if isinstance(table, dict) and table.get("enabled") is False:
            return DISABLED_BY_CONFIG
        if p.kind == "sim":
            return None
        if p.api_key_env and api_key(p, self.env) is None:
            return f"missing API key: set {p.api_key_env}"
        if p.kind == "ollama" and p.name in self.catalog.providers and table is None:
            return NOT_DETECTED
        return None

    def sim_seed(self) -> int | None:
        sim = self.table("sim")
        self.errors.extend(FieldError(f"sim.{k}", "unknown field") for k in sim if k != "seed")
        seed = sim.get("seed")
        if seed is None:
            return None
        if isinstance(seed, bool) or not isinstance(seed, int):
            self.errors.append(FieldError("sim.seed", "must be an integer"))
            return None
        return seed

    def models(
        self, providers: Mapping[str, ProviderSpec]
    ) -> tuple[dict[str, ModelSpec], set[str]]:
        """Catalog models of the providers present, then ``[[models]]`` merged by alias.

        Returns the models and the built-in route names a user model replaced.
        """
        models = {a: m for a, m in self.catalog.models.items() if m.provider in providers}
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
            if base is None:
                missing = [k for k in ("provider", "model_id") if k not in table]
                self.errors.extend(
                    FieldError(f"{path}.{k}", "is required for a model not in the catalog")
                    for k in missing
                )
                if missing:
                    continue
            spec = build_model(table, path=path, errors=self.errors, base=base)
            if spec is None:
                continue
            provider = providers.get(spec.provider)
            if provider is None:
                self.errors.append(
                    FieldError(f"{path}.provider", f"unknown provider {spec.provider!r}")
                )
                continue
            if spec.sim is not None and provider.kind != "sim":
                self.errors.append(
                    FieldError(
                        f"{path}.sim", 'only models of a kind = "sim" provider take a profile'
                    )
                )
                continue
            models[alias] = spec
            if alias in self.catalog.routes:
                shadowed.add(alias)
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
            if name in models:
                self.errors.append(FieldError(path, f"{name!r} is already a model alias"))
                continue
            if name == "auto":
                self.errors.append(FieldError(path, "'auto' is reserved"))
                continue
            user_route = build_route(name, table, path=path, errors=self.errors)
            if user_route is not None:
                routes[name] = user_route
        flat, errors = flatten_routes(routes, models)
        self.errors.extend(errors)
        return flat

    def budgets(self, providers: Mapping[str, ProviderSpec]) -> BudgetsConfig:
        table = self.table("budgets")
        allowed = {f.name for f in attrs.fields(BudgetsConfig)}
        self.errors.extend(
            FieldError(f"budgets.{k}", "unknown field") for k in table if k not in allowed
        )
        values: dict[str, Any] = {}
        for key in ("global_hourly_usd", "global_daily_usd", "global_monthly_usd"):
            if key in table:
                values[key] = self.usd(f"budgets.{key}", table[key])
        for group in ("providers", "callers"):
            out: dict[str, dict[str, float]] = {}
            for name, limits in self.table(group, table, "budgets").items():
                path = f"budgets.{group}.{name}"
                if group == "providers" and name not in providers:
                    self.errors.append(FieldError(path, f"unknown provider {name!r}"))
                    continue
                if not isinstance(limits, dict):
                    self.errors.append(FieldError(path, "must be a table"))
                    continue
                self.errors.extend(
                    FieldError(f"{path}.{k}", "unknown field")
                    for k in limits
                    if k not in _LIMIT_KEYS
                )
                out[name] = {
                    k: v
                    for k, v in (
                        (k, self.usd(f"{path}.{k}", v))
                        for k, v in limits.items()
                        if k in _LIMIT_KEYS
                    )
                    if v is not None
                }
            values[group] = out
        return BudgetsConfig(**values)

    def usd(self, path: str, value: Any) -> float | None:
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.errors.append(FieldError(path, "must be a number (USD)"))
            return None
        if not value >= 0:
            self.errors.append(FieldError(path, f"must be at least 0; got {value!r}"))
            return None
        return float(value)

    def keys(
        self,
        models: Mapping[str, ModelSpec],
        routes: Mapping[str, RouteSpec],
        providers: Mapping[str, ProviderSpec],
    ) -> tuple[KeySpec, ...]:
        """Gateway keys; a key whose secret is not in the environment is dropped (logged)."""
        out: list[KeySpec] = []
        handles: dict[str, int] = {}
        secrets: dict[str, int] = {}
        for i, table in enumerate(self.array("keys")):
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
                self.errors.extend(exc.prefixed(path).fields)
                continue
            for limit in ("hourly_usd", "daily_usd", "monthly_usd"):
                self.number_at_least(f"{path}.{limit}", getattr(key, limit), 0)
            if not key.key_env:
                self.errors.append(FieldError(f"{path}.key_env", "must not be empty"))
            if not key.handle:
                self.errors.append(FieldError(f"{path}.handle", "must not be empty"))
            elif key.handle in handles:
                self.errors.append(
                    FieldError(
                        f"{path}.handle",
                        f"{key.handle!r} is already used by keys[{handles[key.handle]}]",
                    )
                )
            handles.setdefault(key.handle, i)
            patterns = self.key_models(path, key.models, models, routes, providers)
            secret = self.env.get(key.key_env) if key.key_env else None
            if not secret:
                log.warning(
                    "gateway key for %r dropped: environment variable %s is not set",
                    key.handle,
                    key.key_env,
                )
                continue
            if secret in secrets:
                self.errors.append(
                    FieldError(f"{path}.key_env", f"same secret as keys[{secrets[secret]}]")
                )
                continue
            secrets[secret] = i
            out.append(attrs.evolve(key, models=patterns, secret=secret))
        return tuple(out)

    def key_models(
        self,
        path: str,
        patterns: tuple[str, ...],
        models: Mapping[str, ModelSpec],
        routes: Mapping[str, RouteSpec],
        providers: Mapping[str, ProviderSpec],
    ) -> tuple[str, ...]:
        """A key's allow-list: fnmatch patterns over aliases and provider names.

        A route name stands for its chain's aliases; a plain name must exist.
        """
        out: dict[str, None] = {}
        for j, pattern in enumerate(patterns):
            if pattern in routes:
                out.update(dict.fromkeys(routes[pattern].chain))
            elif pattern in models or pattern in providers or _is_glob(pattern):
                out[pattern] = None
            else:
                self.errors.append(
                    FieldError(
                        f"{path}.models[{j}]", f"unknown model, route or provider {pattern!r}"
                    )
                )
        return tuple(out)

    def check_server(self, server: ServerConfig) -> None:
        if not 0 <= server.port <= 65535:
            self.errors.append(
                FieldError("server.port", f"must be between 0 and 65535; got {server.port}")
            )
        self.number_at_least("server.max_body_bytes", server.max_body_bytes, 1)
        self.number_at_least("server.job_retention_count", server.job_retention_count, 0)
        self.number_at_least("server.job_retention_days", server.job_retention_days, 0)
        self.number_at_least("server.grace_s", server.grace_s, 0)

    def check_router(self, router: RouterConfig) -> None:
        self.number_at_least("router.capacity", router.capacity, 1)
        for name in ("default_ttft_ms", "default_soft_ms", "default_hard_ms", "stall_ms"):
            self.number_at_least(f"router.{name}", getattr(router, name), 1)
        self.number_at_least("router.exploration", router.exploration, 0)


def _is_glob(pattern: str) -> bool:
    return any(c in pattern for c in "*?[")
