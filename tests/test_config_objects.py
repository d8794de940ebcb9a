"""validate_config: a Config built in Python is checked by the rules load_config applies."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs
import pytest

import switchman
from switchman.catalog import (
    BudgetsConfig,
    Config,
    KeySpec,
    ModelSpec,
    ProviderSpec,
    RouterConfig,
    RouteSpec,
    ServerConfig,
    SimProfile,
    config_from_dict,
    default_config,
    validate_config,
)

OPENAI = {"OPENAI_API_KEY": "sk-openai-SECRET-0001"}


@pytest.fixture(scope="module")
def base() -> Config:
    """The built-in catalog with OpenAI keyed and the simulator asked for: real and sim
    providers side by side."""
    return config_from_dict({"providers": {"sim": {}}}, env=OPENAI)


def problems(config: Any) -> dict[str, str]:
    with pytest.raises(switchman.ValidationError) as exc:
        validate_config(config)
    return {f.field: f.message for f in exc.value.fields}


def with_model(config: Config, key: str, **changes: Any) -> Config:
    return attrs.evolve(
        config, models={**config.models, key: attrs.evolve(config.models[key], **changes)}
    )


def with_route(config: Config, route: RouteSpec) -> Config:
    return attrs.evolve(config, routes={**config.routes, route.name: route})


def test_what_load_config_builds_passes() -> None:
    for env in ({}, OPENAI):
        assert validate_config(default_config(env=env)) is None
    key = {"key_env": "K", "handle": "a", "models": ["claude", "openai/*"]}
    loaded = config_from_dict(
        {"keys": [key], "budgets": {"providers": {"openai": {"daily_usd": 3}}}},
        env={**OPENAI, "K": "k-secret"},
    )
    assert validate_config(loaded) is None


def test_the_audits_examples_are_all_named_at_once(base: Config) -> None:
    fast = base.models["sim/fast"]
    assert fast.sim is not None
    config = attrs.evolve(
        with_model(base, "sim/fast", sim=attrs.evolve(fast.sim, error_rate=5.0)),
        router=RouterConfig(capacity=0),
        budgets=BudgetsConfig(global_daily_usd=-1),
        routes={**base.routes, "x": RouteSpec(name="x", chain=("sim/fast", "y"))},
    )
    assert problems(config) == {
        "router.capacity": "must be at least 1; got 0",
        "routes.x.chain[1]": "unknown model alias 'y'",
        "budgets.global_daily_usd": "must be at least 0; got -1",
        "models.sim/fast.sim.error_rate": "must be between 0 and 1; got 5.0",
    }


def _keys(*keys: KeySpec) -> Callable[[Config], Config]:
    return lambda c: attrs.evolve(c, keys=keys)


CASES: list[tuple[Callable[[Config], Config], str, str]] = [
    (
        lambda c: attrs.evolve(c, router=RouterConfig(stall_ms=0)),
        "router.stall_ms",
        "must be at least 1; got 0",
    ),
    (
        lambda c: attrs.evolve(c, router=RouterConfig(capacity=2.5)),  # type: ignore[arg-type]
        "router.capacity",
        "must be an integer; got float",
    ),
    (
        lambda c: attrs.evolve(c, server=ServerConfig(port=70000)),
        "server.port",
        "must be between 0 and 65535; got 70000",
    ),
    (lambda c: attrs.evolve(c, router="fast"), "router", "must be a RouterConfig; got str"),
    (
        lambda c: attrs.evolve(c, budgets=BudgetsConfig(providers={"nowhere": {"daily_usd": 1}})),
        "budgets.providers.nowhere",
        "unknown provider 'nowhere'",
    ),
    (
        lambda c: attrs.evolve(c, budgets=BudgetsConfig(callers={"bob": {"weekly_usd": 1}})),
        "budgets.callers.bob.weekly_usd",
        "unknown field (did you mean 'daily_usd'?)",
    ),
    (
        lambda c: attrs.evolve(
            c, providers={**c.providers, "openai": attrs.evolve(c.providers["openai"], rpm=0)}
        ),
        "providers.openai.rpm",
        "must be at least 1; got 0",
    ),
    (
        lambda c: attrs.evolve(
            c, providers={**c.providers, "x": ProviderSpec(name="x", kind="openai")}
        ),
        "providers.x.base_url",
        "must be an http(s) URL; got ''",
    ),
    (
        lambda c: attrs.evolve(
            c, providers={**c.providers, "x": ProviderSpec(name="y", kind="sim")}
        ),
        "providers.x.name",
        "must be its key 'x'; got 'y'",
    ),
    (
        lambda c: with_model(c, "sim/fast", provider="nowhere"),
        "models.sim/fast.provider",
        "unknown provider 'nowhere'",
    ),
    (
        lambda c: with_model(c, "sim/fast", provider="openai"),
        "models.sim/fast.sim",
        'only models of a kind = "sim" provider take a profile',
    ),
    (
        lambda c: with_model(c, "sim/fast", input_per_mtok=-1),
        "models.sim/fast.input_per_mtok",
        "must be at least 0; got -1",
    ),
    (
        lambda c: with_model(c, "sim/fast", capabilities="code"),
        "models.sim/fast.capabilities",
        "must be a list of strings, not a string",
    ),
    (
        lambda c: with_model(c, "sim/fast", intents=("code", "poetry")),
        "models.sim/fast.intents[1]",
        "must be one of classify, code, compare, critique, draft, extract, lookup, reason, "
        "summarize, translate, unknown",
    ),
    (
        lambda c: with_model(c, "sim/fast", sim=SimProfile(quality={"code": 2.0})),
        "models.sim/fast.sim.quality.code",
        "must be a number between 0 and 1; got 2.0",
    ),
    (
        lambda c: with_model(c, "sim/fast", alias="sim/quick"),
        "models.sim/fast.alias",
        "must be its key 'sim/fast'; got 'sim/quick'",
    ),
    (
        lambda c: with_route(c, RouteSpec(name="x", chain="sim/fast")),  # type: ignore[arg-type]
        "routes.x.chain",
        "must be a list of strings, not a string",
    ),
    (
        lambda c: with_route(c, RouteSpec(name="x", chain=())),
        "routes.x.chain",
        "must name at least one model",
    ),
    (
        lambda c: with_route(c, RouteSpec(name="x", chain=("claude",))),
        "routes.x.chain[0]",
        "unknown model alias 'claude'",
    ),
    (
        lambda c: with_route(c, RouteSpec(name="sim/fast", chain=("sim/fast",))),
        "routes.sim/fast",
        "'sim/fast' is already a model alias",
    ),
    (
        lambda c: with_route(c, RouteSpec(name="auto", chain=("sim/fast",))),
        "routes.auto",
        "'auto' is reserved",
    ),
    (
        _keys(KeySpec(key_env="K", handle="a")),
        "keys[0].secret",
        "must be set (load_config reads it from key_env)",
    ),
    (
        _keys(KeySpec(key_env="K", handle="a", secret="s", daily_usd=-5)),
        "keys[0].daily_usd",
        "must be at least 0; got -5",
    ),
    (
        _keys(KeySpec(key_env="K", handle="a", secret="s", models=("claude", "nope"))),
        "keys[0].models[1]",  # (a route's name grants the route)
        "unknown model, route or provider 'nope'",
    ),
    (
        _keys(KeySpec(key_env="K", handle="a", secret="s", models="*")),  # type: ignore[arg-type]
        "keys[0].models",
        "must be a list of strings, not a string",
    ),
    (
        _keys(
            KeySpec(key_env="K", handle="a", secret="s1"),
            KeySpec(key_env="K2", handle="a", secret="s2", models=("sim/fast",), daily_usd=1.0),
        ),
        "keys[1].handle",
        "'a' is already used by keys[0] with another models, daily_usd: keys sharing a "
        "handle (a key being rotated) must agree on all but key_env",
    ),
    (
        _keys(
            KeySpec(key_env="K", handle="a", secret="s1"),
            KeySpec(key_env="K2", handle="b", secret="s1"),
        ),
        "keys[1].key_env",
        "same secret as keys[0]",
    ),
    (
        _keys(KeySpec(key_env="K", handle="a", secret="s", admin="yes")),  # type: ignore[arg-type]
        "keys[0].admin",
        "must be true or false; got str",
    ),
    (
        _keys(KeySpec(key_env="K", handle="a", secret="s", rpm=0)),
        "keys[0].rpm",
        "must be at least 1; got 0",
    ),
    (
        _keys(KeySpec(key_env="K", handle="a", secret="s", rpm=1.5)),  # type: ignore[arg-type]
        "keys[0].rpm",
        "must be an integer; got float",
    ),
]


@pytest.mark.parametrize(("change", "field", "message"), CASES)
def test_each_problem_is_named_by_its_path(
    base: Config, change: Callable[[Config], Config], field: str, message: str
) -> None:
    assert problems(change(base)) == {field: message}


def test_not_a_config() -> None:
    how = "from a dict, switchman.catalog.config_from_dict(data)"
    assert problems({"router": {}}) == {"config": f"must be a Config; got dict: {how}"}
    assert problems(7) == {"config": "must be a Config; got int"}


@pytest.mark.parametrize(
    ("toml", "change"),
    [
        ({"router": {"capacity": 0}}, lambda c: attrs.evolve(c, router=RouterConfig(capacity=0))),
        (
            {"budgets": {"global_daily_usd": -1.5}},
            lambda c: attrs.evolve(c, budgets=BudgetsConfig(global_daily_usd=-1.5)),
        ),
        ({"server": {"port": -1}}, lambda c: attrs.evolve(c, server=ServerConfig(port=-1))),
        (
            {"providers": {"openai": {"read_timeout_s": 0}}},
            lambda c: attrs.evolve(
                c,
                providers={
                    **c.providers,
                    "openai": attrs.evolve(c.providers["openai"], read_timeout_s=0.0),
                },
            ),
        ),
    ],
)
def test_the_toml_path_and_the_python_path_say_the_same(
    base: Config, toml: dict[str, Any], change: Callable[[Config], Config]
) -> None:
    with pytest.raises(switchman.ValidationError) as from_toml:
        config_from_dict({"providers": {"sim": {}}, **toml}, env=OPENAI)
    with pytest.raises(switchman.ValidationError) as from_python:
        validate_config(change(base))
    assert from_toml.value.fields == from_python.value.fields


def test_a_config_with_a_new_provider_model_and_route_passes(base: Config) -> None:
    provider = ProviderSpec(name="local", kind="ollama", base_url="http://127.0.0.1:11434")
    model = ModelSpec(alias="mine", provider="local", model_id="llama", capabilities=["code"])  # type: ignore[arg-type]
    config = attrs.evolve(
        base,
        providers={**base.providers, "local": provider},
        models={**base.models, "mine": model},
        routes={**base.routes, "home": RouteSpec(name="home", chain=["mine", "sim/fast"])},  # type: ignore[arg-type]
        keys=(KeySpec(key_env="K", handle="a", secret="s", models=("mine", "sim/*")),),
    )
    assert validate_config(config) is None


def test_long_input_prices_come_as_a_set_and_stop_support_is_a_model_key() -> None:
    model = {"alias": "big", "provider": "sim", "model_id": "big", "long_input_above": 1000}
    with pytest.raises(switchman.ValidationError) as info:
        config_from_dict({"providers": {"sim": {}}, "models": [model]}, env=OPENAI)
    assert {f.field: f.message for f in info.value.fields} == {
        "models[0].long_input_per_mtok": "is required with long_input_above",
        "models[0].long_output_per_mtok": "is required with long_input_above",
    }
    model.update(long_input_per_mtok=2.0, long_output_per_mtok=8.0, input_per_mtok=1.0)
    model["supports_stop"] = False
    config = config_from_dict({"providers": {"sim": {}}, "models": [model]}, env=OPENAI)
    big = config.models["big"]
    assert big.cost(1000, 0) == pytest.approx(0.001) and big.cost(1001, 0) == 0.002002
    assert big.supports_stop is False
