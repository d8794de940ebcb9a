from __future__ import annotations

import attrs
import pytest

from switchman._call import Call, Options
from switchman._result import Ranked
from switchman.catalog._catalog import builtin_catalog
from switchman.catalog._spec import Config, ModelSpec, ProviderSpec, RouteSpec
from switchman.policy._candidates import (
    close_names,
    model_named,
    plan_attempt_order,
    resolve_target,
    unknown_name,
)

ALIASES = ("a", "b", "c", "d", "e")
MODELS = {alias: ModelSpec(alias=alias, provider="p", model_id=alias) for alias in ALIASES}
CONFIG = Config(
    models=MODELS,
    routes={
        "r": RouteSpec(name="r", chain=("c", "a", "e")),
        "other": RouteSpec(name="other", chain=("d", "b")),
        # a route named like a model alias
        "b": RouteSpec(name="b", chain=("e", "d")),
    },
)
#: the scorer's order
RANKING = tuple(Ranked(alias=a, score=float(10 - i)) for i, a in enumerate("dbeca"))


def plan(
    model: str,
    fallback: tuple[str, ...] = (),
    eligible: tuple[str, ...] = ALIASES,
) -> tuple[str, ...]:
    call = Call(prompt="x", model=model, options=Options(fallback=fallback))
    ranking = tuple(r for r in RANKING if r.alias in eligible)
    return plan_attempt_order(call, CONFIG, [MODELS[a] for a in eligible], ranking)


@pytest.mark.parametrize(
    ("name", "target"),
    [("auto", "auto"), ("r", "route"), ("a", "model"), ("b", "route"), ("nope", None)],
)
def test_resolve_target(name: str, target: str | None) -> None:
    assert resolve_target(name, CONFIG) == target


def test_auto_follows_the_ranking() -> None:
    assert plan("auto") == ("d", "b", "e", "c", "a")
    assert plan("auto", eligible=("a", "c", "d")) == ("d", "c", "a")


def test_auto_skips_ranked_models_that_are_not_eligible() -> None:
    call = Call(prompt="x")
    assert plan_attempt_order(call, CONFIG, [MODELS["a"], MODELS["e"]], RANKING) == ("e", "a")


def test_route_chain_in_order_then_nothing_else() -> None:
    assert plan("r") == ("c", "a", "e")


def test_route_skips_ineligible_chain_members() -> None:
    assert plan("r", eligible=("a", "b", "d", "e")) == ("a", "e")
    assert plan("r", eligible=("b", "d")) == ()


def test_route_then_fallback_without_duplicates() -> None:
    assert plan("r", fallback=("d", "a", "c", "d")) == ("c", "a", "e", "d")


def test_model_alias_first_then_fallback_only() -> None:
    assert plan("a") == ("a",)
    assert plan("a", fallback=("c", "a", "e")) == ("a", "c", "e")
    # an ineligible named model is skipped, its fallbacks still apply
    assert plan("a", fallback=("c",), eligible=("b", "c")) == ("c",)


def test_auto_in_fallback_adds_every_other_eligible_model_in_ranking_order() -> None:
    assert plan("a", fallback=("auto",)) == ("a", "d", "b", "e", "c")
    assert plan("a", fallback=("c", "auto")) == ("a", "c", "d", "b", "e")
    assert plan("r", fallback=("auto",), eligible=("a", "b", "c")) == ("c", "a", "b")
    # entries after "auto" are already in
    assert plan("e", fallback=("auto", "b")) == ("e", "d", "b", "c", "a")


def test_fallback_skips_ineligible_and_unknown_aliases() -> None:
    assert plan("a", fallback=("ghost", "d", "e"), eligible=("a", "e")) == ("a", "e")


def test_route_name_in_fallback_stands_for_its_chain() -> None:
    assert plan("a", fallback=("other",)) == ("a", "d", "b")


def test_route_wins_over_a_model_alias_of_the_same_name() -> None:
    assert plan("b") == ("e", "d")
    assert plan("a", fallback=("b",)) == ("a", "e", "d")


def test_unknown_target_plans_nothing() -> None:
    assert plan("nope", fallback=("auto",)) == ()


def test_an_unknown_name_is_told_the_names_it_may_have_meant() -> None:
    config = builtin_catalog()
    assert unknown_name("gpt-5.4-mni", config).startswith(
        "unknown model or route 'gpt-5.4-mni'; did you mean 'gpt-5.4-mini'"
    )
    # another case, a provider's prefix, a transposition
    assert close_names("GPT-5.4-MINI", config) == ["gpt-5.4-mini"]
    assert close_names("openai/gpt-5.4-mni", config)[0] == "openai/gpt-5.4-mini"
    assert "claude-sonnet" in close_names("claude-sonet", config)
    # nothing alike: no hint at all
    assert unknown_name("zzz", config) == "unknown model or route 'zzz'"
    # only what the caller may use is offered
    only_anthropic = close_names("gpt-5.4-mni", config, lambda n: n.startswith("claude"))
    assert only_anthropic == []


def test_a_hint_never_offers_a_model_id_that_names_several_models() -> None:
    base = ModelSpec(alias="a/x", provider="a", model_id="shared-1")
    config = Config(
        providers={
            "a": ProviderSpec(name="a", kind="sim"),
            "b": ProviderSpec(name="b", kind="sim"),
        },
        models={
            "a/x": base,
            "b/x": attrs.evolve(base, alias="b/x", provider="b"),
        },
        simulated=True,
    )
    # "shared-1" would not resolve (it is the id of two models): it is not offered
    assert close_names("shared-2", config) == []
    # the aliases with the same last part are both offered
    assert sorted(close_names("c/x", config)) == ["a/x", "b/x"]


def test_a_model_the_catalog_leaves_out_is_told_why() -> None:
    config = builtin_catalog()
    said = unknown_name("deepseek-chat", config)
    assert said.startswith("unknown model or route 'deepseek-chat': the built-in catalog")
    assert "DeepSeek retired it on 2026-07-24" in said and "[[models]]" in said
    assert "deprecates it on 2026-12-11" in unknown_name("openai/o3", config)
    together = "together/meta-llama/Llama-3.3-70B-Instruct-Turbo"
    assert "Together deprecated it" in unknown_name(together, config)
    assert "2026-09-15" in unknown_name("together/openai/gpt-oss-20b", config)
    # every id it names is indeed not in the catalog (a shipped id is never called left out)
    shipped = {f"{m.provider}/{m.model_id}" for m in config.models.values()}
    assert config.left_out and not shipped.intersection(config.left_out)
    # each reason is its provider's: another provider's prefix gets none
    assert "DeepSeek" not in unknown_name("groq/deepseek-chat", config)
    assert "OpenAI" not in unknown_name("anthropic/o3", config)
    assert "retired Sonar" in unknown_name("sonar-deep-research", config)
    # a dated snapshot of a model left out is told why as well
    dated = unknown_name("claude-sonnet-4-5-20250929", config)
    assert "the built-in catalog leaves it out (Anthropic deprecates" in dated, dated


def test_dated_tagged_and_cased_spellings() -> None:
    config = builtin_catalog()
    assert close_names("gpt-4o-2024-08-06", config) == ["gpt-4o"]
    assert close_names("openai/gpt-5.4-mini-2026-03-17", config) == ["openai/gpt-5.4-mini"]
    assert close_names("AUTO", config) == ["auto"]
    # Ollama's :latest is the untagged name: it resolves, as the untagged name does
    assert model_named("llama3.2:latest", config) == "ollama/llama3.2"
    assert model_named("ollama/llama3.2:latest", config) == "ollama/llama3.2"
    assert model_named("nosuch:latest", config) == "nosuch:latest"
    # and the untagged name is the model pulled as :latest
    pulled = attrs.evolve(
        config,
        models={
            **config.models,
            "local/qwen3": ModelSpec(
                alias="local/qwen3", provider="ollama", model_id="qwen3:latest"
            ),
        },
    )
    assert model_named("qwen3", pulled) == "local/qwen3"
    assert model_named("qwen3:latest", pulled) == "local/qwen3"
    assert model_named("qwen3:7b", pulled) == "qwen3:7b"  # another tag is another model
