"""Which catalog models count their output against the context window, and its validation."""

from __future__ import annotations

import copy
import json
from importlib import resources
from typing import Any

import pytest

from switchman import catalog as catalog_pkg
from switchman._errors import ValidationError
from switchman.catalog import ModelSpec, builtin_catalog, config_from_dict, load_catalog

OPENAI = {"OPENAI_API_KEY": "sk-openai-SECRET-0001"}


def raw() -> Any:
    return json.loads(resources.files(catalog_pkg).joinpath("catalog.json").read_text())


def test_separate_input_windows_are_openai_gpt5_and_gpt6_and_gemini() -> None:
    cat = builtin_catalog()
    separate = {m.alias for m in cat.models.values() if not m.context_includes_output}
    assert {a.split("/")[0] for a in separate} == {"openai", "gemini"}
    gemini = {a for a, m in cat.models.items() if m.provider == "gemini"}
    assert gemini <= separate
    # 272k or 922k of input beside 128k of output (providers.md line 21)
    for alias in separate - gemini:
        m = cat.models[alias]
        assert (m.context_window, m.max_output_tokens) in {(272_000, 128_000), (922_000, 128_000)}
    assert "openai/gpt-5.4-mini" in separate and "openai/gpt-6.1-sol" in separate
    # providers.md's 1,050,000 for gpt-5.4 and gpt-5.5 is 922k + 128k: 922k of input is the
    # limit whether it is a total or not (a longer prompt would be refused, not cut)
    for alias in ("openai/gpt-5.4", "openai/gpt-5.5"):
        assert alias in separate and cat.models[alias].context_window == 922_000
    # gpt-4o's 128k is one window
    for alias in ("openai/gpt-4o", "openai/gpt-4.1"):
        assert cat.models[alias].context_includes_output, alias
    for provider in ("anthropic", "xai", "mistral", "groq", "together", "deepseek", "ollama"):
        assert all(
            m.context_includes_output for m in cat.models.values() if m.provider == provider
        ), provider
    assert all(m.context_includes_output for m in cat.sim_models.values())
    assert "context_includes_output" in cat.notes


def test_the_flag_must_be_a_boolean_in_the_catalog() -> None:
    data = copy.deepcopy(raw())
    data["providers"]["gemini"]["models"][0]["context_includes_output"] = "no"
    with pytest.raises(ValidationError) as exc:
        load_catalog(data)
    assert "catalog.providers.gemini.models[0].context_includes_output" in {
        f.field for f in exc.value.fields
    }


def test_the_flag_is_a_model_key_of_a_users_config() -> None:
    model: dict[str, Any] = {"alias": "big", "provider": "sim", "model_id": "big"}
    model["context_includes_output"] = "no"
    with pytest.raises(ValidationError) as exc:
        config_from_dict({"providers": {"sim": {}}, "models": [model]}, env=OPENAI)
    assert {f.field: f.message for f in exc.value.fields} == {
        "models[0].context_includes_output": "must be true or false; got string"
    }
    model["context_includes_output"] = False
    config = config_from_dict({"providers": {"sim": {}}, "models": [model]}, env=OPENAI)
    assert config.models["big"].context_includes_output is False
    assert ModelSpec._problems(config.models["big"]) == []
