"""The shipped catalog: complete, consistent, and validated like a user's config."""

from __future__ import annotations

import copy
import json
from importlib import resources
from typing import Any

import pytest

from switchman import catalog as catalog_pkg
from switchman._call import INTENTS
from switchman._errors import ValidationError
from switchman.catalog import (
    Catalog,
    builtin_catalog,
    default_config,
    load_catalog,
    resolve,
)

PROVIDERS = {
    "openai",
    "anthropic",
    "gemini",
    "xai",
    "mistral",
    "groq",
    "together",
    "deepseek",
    "perplexity",
    "ollama",
}
SHORT = {
    "claude",
    "claude-sonnet",
    "claude-opus",
    "claude-haiku",
    "gpt",
    "gpt-fast",
    "gemini",
    "gemini-flash",
    "gemini-pro",
    "grok",
    "mistral",
    "llama",
    "deepseek",
    "sonar",
    "local",
}
SOME_KEY = {"OPENAI_API_KEY": "sk-test-not-a-real-key"}


def raw() -> dict[str, Any]:
    text = resources.files("switchman.catalog").joinpath("catalog.json").read_text("utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


def fields_of(exc: pytest.ExceptionInfo[ValidationError]) -> dict[str, str]:
    return {f.field: f.message for f in exc.value.fields}


@pytest.fixture(scope="module")
def cat() -> Catalog:
    return builtin_catalog()


def test_all_ten_providers_with_their_wire_format(cat: Catalog) -> None:
    assert set(cat.providers) == PROVIDERS
    kinds = {name: p.kind for name, p in cat.providers.items()}
    assert kinds["anthropic"] == "anthropic"
    assert kinds["gemini"] == "gemini"
    assert kinds["ollama"] == "ollama"
    openai_like = {"openai", "xai", "mistral", "groq", "together", "deepseek", "perplexity"}
    assert {n for n, k in kinds.items() if k == "openai"} == openai_like


def test_base_urls_as_the_wire_formats_want_them(cat: Catalog) -> None:
    urls = {name: p.base_url for name, p in cat.providers.items()}
    assert urls["openai"] == "https://api.openai.com/v1"
    assert urls["anthropic"] == "https://api.anthropic.com"
    assert urls["gemini"] == "https://generativelanguage.googleapis.com/v1beta"
    assert urls["groq"] == "https://api.groq.com/openai/v1"
    assert urls["ollama"] == "http://localhost:11434"
    for url in urls.values():
        assert not url.endswith("/")
        assert not url.endswith(("/chat/completions", "/messages"))


def test_api_key_env_per_provider(cat: Catalog) -> None:
    for name, p in cat.providers.items():
        if name == "ollama":
            assert p.api_key_env is None
        else:
            assert p.api_key_env == f"{name.upper()}_API_KEY"


def test_every_provider_has_models_with_prices_context_and_output(cat: Catalog) -> None:
    per_provider = {name: 0 for name in cat.providers}
    for alias, m in cat.models.items():
        per_provider[m.provider] += 1
        assert alias == f"{m.provider}/{m.model_id}"
        assert m.context_window > 1000
        assert m.max_output_tokens > 0
        assert m.input_per_mtok >= 0 and m.output_per_mtok >= 0
        if m.provider != "ollama":
            assert m.input_per_mtok > 0 and m.output_per_mtok > 0, alias
        assert m.sim is None
        assert set(m.intents) <= INTENTS
    assert all(n >= 2 for n in per_provider.values()), per_provider


def test_documented_example_model_is_present(cat: Catalog) -> None:
    luna = cat.models["openai/gpt-6-luna"]
    assert (luna.input_per_mtok, luna.output_per_mtok) == (0.1, 0.5)
    assert cat.models["anthropic/claude-sonnet-5-5"].context_window == 1_000_000


def test_retired_models_are_not_shipped(cat: Catalog) -> None:
    for alias in ("deepseek/deepseek-chat", "deepseek/deepseek-reasoner", "openai/o4-mini"):
        assert alias not in cat.models


def test_seed_and_prefill_support_follow_the_providers(cat: Catalog) -> None:
    def flags(provider: str) -> set[tuple[bool, bool]]:
        return {
            (m.supports_seed, m.supports_prefill)
            for m in cat.models.values()
            if m.provider == provider
        }

    # (DeepSeek continues a prefill by its beta's prefix completion; it takes no seed)
    for name in ("anthropic", "deepseek"):
        assert flags(name) == {(False, True)}, name
    for name in ("openai", "xai", "mistral", "groq", "together", "gemini", "ollama"):
        assert flags(name) == {(True, False)}, name
    assert flags("perplexity") == {(False, False)}


def test_stop_support_follows_the_providers(cat: Catalog) -> None:
    no_stop = {m.alias for m in cat.models.values() if not m.supports_stop}
    assert "xai/grok-4.7" in no_stop and "perplexity/perplexity/sonar" in no_stop
    assert {a.split("/")[0] for a in no_stop} == {"xai", "perplexity"}
    assert "xai/grok-build-0.1" not in no_stop  # providers.md names only grok-4, 3-mini, code-fast


def test_a_long_prompt_is_priced_as_the_provider_bills_it(cat: Catalog) -> None:
    gpt = cat.models["openai/gpt-5.4"]
    assert gpt.cost(272_000, 1_000) == pytest.approx((272_000 * 2.5 + 1_000 * 15.0) / 1e6)
    assert gpt.cost(272_001, 1_000) == pytest.approx((272_001 * 5.0 + 1_000 * 22.5) / 1e6)
    haiku = cat.models["anthropic/claude-haiku-5-5"]
    assert haiku.cost(100_001, 0) == pytest.approx(100_001 * 0.5 / 1e6)
    gemini = cat.models["gemini/gemini-3.1-pro-preview"]
    assert gemini.cost(200_001, 10) == pytest.approx((200_001 * 4.0 + 10 * 18.0) / 1e6)
    # the alias of the newest Pro, at its prices, billed as it is (a budget reserved half)
    latest = cat.models["gemini/gemini-pro-latest"]
    assert latest.cost(250_000, 1_000) == gemini.cost(250_000, 1_000)
    # Perplexity serves gpt-5.4 at its own price, one price at any size
    assert cat.models["perplexity/openai/gpt-5.4"].long_input_above is None


def test_trust_tiers_are_consistent(cat: Catalog) -> None:
    tiers: dict[str, set[str]] = {}
    for m in cat.models.values():
        tiers.setdefault(m.provider, set()).add(m.trust_tier)
    for name in ("openai", "anthropic", "gemini"):
        assert tiers[name] == {"trusted", "standard"}, name
    for name in ("xai", "mistral", "deepseek", "perplexity"):
        assert tiers[name] == {"standard"}, name
    for name in ("groq", "together", "ollama"):
        assert tiers[name] == {"untrusted"}, name
    assert cat.models["anthropic/claude-sonnet-5-5"].trust_tier == "trusted"
    assert cat.models["anthropic/claude-haiku-5-5"].trust_tier == "standard"
    assert "trust_tier" in cat.notes


def test_capability_tags(cat: Catalog) -> None:
    for m in cat.models.values():
        assert ("long_context" in m.capabilities) == (m.context_window >= 400_000), m.alias
        assert ("local" in m.capabilities) == (m.provider == "ollama"), m.alias
        assert ("search" in m.capabilities) == (m.provider == "perplexity"), m.alias
    assert "code" in cat.models["mistral/codestral-latest"].capabilities
    assert cat.models["mistral/codestral-latest"].intents == ("code",)


def test_short_aliases_are_routes_that_resolve(cat: Catalog) -> None:
    assert set(cat.routes) == SHORT
    assert set(cat.sim_routes) == SHORT
    for name, route in cat.routes.items():
        assert route.chain, name
        for alias in route.chain:
            assert alias in cat.models, (name, alias)
    claude = cat.routes["claude"].chain
    assert claude[0].startswith("anthropic/claude-sonnet")
    assert {cat.models[a].provider for a in claude} == {"anthropic", "openai", "gemini"}
    assert {cat.models[a].provider for a in cat.routes["local"].chain} == {"ollama"}
    assert {cat.models[a].provider for a in cat.routes["sonar"].chain} == {"perplexity"}
    assert "llama" in cat.routes["llama"].chain[0]


def test_no_short_name_collides_with_a_model_alias(cat: Catalog) -> None:
    assert not set(cat.routes) & set(cat.models)
    assert not set(cat.routes) & set(cat.sim_models)


def test_every_route_of_the_default_config_resolves() -> None:
    for env in ({}, SOME_KEY):
        config = default_config(env=env)
        for name in config.routes:
            models = resolve(config, name)
            assert models and all(m.alias in config.models for m in models)
        for alias in config.models:
            assert resolve(config, alias) == (config.models[alias],)
        with pytest.raises(KeyError):
            resolve(config, "no-such-model")


def test_sim_fleet(cat: Catalog) -> None:
    assert cat.sim_provider.name == "sim" and cat.sim_provider.kind == "sim"
    assert set(cat.sim_models) == {
        "sim/fast",
        "sim/balanced",
        "sim/smart",
        "sim/flaky",
        "sim/refuser",
    }
    for m in cat.sim_models.values():
        assert m.provider == "sim" and m.sim is not None
        assert m.input_per_mtok > 0 and m.output_per_mtok > 0
    fast, smart = cat.sim_models["sim/fast"], cat.sim_models["sim/smart"]
    assert fast.sim is not None and smart.sim is not None
    # quick and cheap but weaker at reason/code; smart slower, pricier, best at them
    assert fast.sim.latency_ms < smart.sim.latency_ms
    assert fast.output_per_mtok < smart.output_per_mtok
    for intent in ("reason", "code"):
        best = max(
            cat.sim_models.values(), key=lambda m: m.sim.quality.get(intent, 0) if m.sim else 0
        )
        assert best.alias == "sim/smart"
        assert fast.sim.quality[intent] < smart.sim.quality[intent] - 0.4
    flaky, refuser = cat.sim_models["sim/flaky"].sim, cat.sim_models["sim/refuser"].sim
    assert flaky is not None and flaky.error_rate == pytest.approx(0.2)
    assert refuser is not None and refuser.refusal_rate > 0
    assert {m.trust_tier for m in cat.sim_models.values()} == {"untrusted", "standard", "trusted"}


def test_load_catalog_roundtrip_of_the_shipped_file() -> None:
    again = load_catalog(raw())
    assert again == builtin_catalog()


@pytest.mark.parametrize(
    ("edit", "field"),
    [
        (lambda d: d["providers"]["openai"].update(kind="grpc"), "catalog.providers.openai.kind"),
        (
            lambda d: d["providers"]["groq"]["models"][0].update(context_window="big"),
            "catalog.providers.groq.models[0].context_window",
        ),
        (
            lambda d: d["providers"]["openai"]["models"][1].update(input_per_mtok=-1),
            "catalog.providers.openai.models[1].input_per_mtok",
        ),
        (lambda d: d["routes"]["claude"].append("openai/nope"), "catalog.routes.claude.chain[3]"),
        (lambda d: d["sim"]["routes"].update(extra=["sim/fast"]), "catalog.sim.routes.extra"),
        (
            lambda d: d["sim"]["models"][0]["sim"].update(error_rate=2),
            "catalog.sim.models[0].sim.error_rate",
        ),
        (
            lambda d: d["sim"]["models"][0]["sim"]["quality"].update(poetry=0.5),
            "catalog.sim.models[0].sim.quality.poetry",
        ),
        (lambda d: d.update(extras={}), "catalog.extras"),
        (lambda d: d.update(left_out={"o3": 3}), "catalog.left_out"),
        (
            lambda d: d["providers"]["openai"]["models"].append(
                dict(d["providers"]["openai"]["models"][0])
            ),
            "catalog.providers.openai.models[18].model_id",
        ),
    ],
)
def test_a_broken_catalog_names_the_field(edit: Any, field: str) -> None:
    data = copy.deepcopy(raw())
    edit(data)
    with pytest.raises(ValidationError) as exc:
        load_catalog(data)
    assert field in fields_of(exc)


def test_package_exports_are_complete() -> None:
    expected = {
        "Catalog",
        "api_key",
        "builtin_catalog",
        "config_from_dict",
        "default_config",
        "load_catalog",
        "load_config",
        "resolve",
    }
    assert expected <= set(catalog_pkg.__all__)
    assert catalog_pkg.__all__ == sorted(catalog_pkg.__all__)
    for name in catalog_pkg.__all__:
        assert hasattr(catalog_pkg, name)
