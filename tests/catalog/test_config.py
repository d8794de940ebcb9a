"""load_config: TOML merged over the catalog, keys from the environment, every error named."""

from __future__ import annotations

import logging
import os
import textwrap
from pathlib import Path
from typing import Any

import pytest

from switchman._errors import ValidationError
from switchman.catalog import (
    Config,
    ProviderSpec,
    api_key,
    builtin_catalog,
    config_from_dict,
    default_config,
    load_config,
    resolve,
    validate_config,
)
from switchman.catalog._config import allowed_for

OPENAI = {"OPENAI_API_KEY": "sk-openai-SECRET-0001"}


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "switchman.toml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def load(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> Config:
    return load_config(write(tmp_path, text), env={} if env is None else env)


def errors(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> dict[str, str]:
    with pytest.raises(ValidationError) as exc:
        load(tmp_path, text, env)
    return {f.field: f.message for f in exc.value.fields}


def providers_of(config: Config, alias_or_route: str) -> set[str]:
    return {m.provider for m in resolve(config, alias_or_route)}


# -- no keys: the simulator fleet ------------------------------------------------


def test_no_key_gives_the_sim_fleet() -> None:
    config = default_config(env={})
    assert config.simulated is True
    sim = config.providers["sim"]
    assert sim.kind == "sim" and sim.disabled_reason is None
    assert {a for a in config.models if a.startswith("sim/")} == set(builtin_catalog().sim_models)
    assert config.providers["openai"].disabled_reason == "missing API key: set OPENAI_API_KEY"
    assert config.providers["gemini"].disabled_reason == "missing API key: set GEMINI_API_KEY"
    assert config.providers["ollama"].disabled_reason == "not detected"
    enabled = [p.name for p in config.providers.values() if p.disabled_reason is None]
    assert enabled == ["sim"]


def test_no_key_short_aliases_resolve_onto_sim_models() -> None:
    config = default_config(env={})
    for name in ("claude", "gpt", "gemini", "grok", "mistral", "llama", "sonar", "local"):
        assert providers_of(config, name) == {"sim"}, name
    # real models stay addressable, just disabled by their provider
    assert config.models["openai/gpt-6-luna"].provider == "openai"


def test_an_empty_key_counts_as_missing() -> None:
    config = default_config(env={"OPENAI_API_KEY": ""})
    assert config.simulated is True
    assert config.providers["openai"].disabled_reason == "missing API key: set OPENAI_API_KEY"


def test_some_key_means_real_providers_and_no_sim() -> None:
    config = default_config(env=OPENAI)
    assert config.simulated is False
    assert "sim" not in config.providers
    assert not any(a.startswith("sim/") for a in config.models)
    assert config.providers["openai"].disabled_reason is None
    assert config.providers["anthropic"].disabled_reason == "missing API key: set ANTHROPIC_API_KEY"
    chain = config.routes["claude"].chain
    assert chain[0] == "anthropic/claude-sonnet-5-5"
    assert any(a.startswith("openai/") for a in chain)  # falls back to the provider with a key


def test_a_keyless_provider_the_file_configures_switches_the_simulator_off(
    tmp_path: Path,
) -> None:
    """Ollama, a vLLM server, a proxy whose headers carry its credential: a provider of the
    file's that needs no key is a real one, and the simulator does not answer beside it
    (`auto` and the catalog's routes answered simulated text in a real deployment)."""
    config = load(tmp_path, "[providers.ollama]\n")
    assert config.providers["ollama"].disabled_reason is None
    assert "sim" not in config.providers
    assert providers_of(config, "local") == {"ollama"}  # its real models are usable
    assert "sim" not in providers_of(config, "claude")  # (none of its providers enabled)
    assert config.simulated is False  # ollama answers for real
    for table in (
        '[providers.vllm]\nkind = "openai"\nbase_url = "http://127.0.0.1:8000/v1"\n'
        '[[models]]\nalias = "mine"\nprovider = "vllm"\nmodel_id = "m"\n',
        '[providers.router]\nkind = "openai"\nbase_url = "https://proxy.example/v1"\n'
        'api_key_env = "UNSET_PROXY_KEY"\nheaders = { Authorization = "Bearer t-123456789" }\n',
    ):
        config = load(tmp_path, table)
        assert "sim" not in config.providers and not config.simulated, table
    # configured but disabled, or needing a key that is not set: the simulator serves
    for table in ("[providers.ollama]\nenabled = false\n", "[providers.openai]\nrpm = 10\n"):
        config = load(tmp_path, table)
        assert "sim" in config.providers and config.simulated, table


def test_sim_on_request_next_to_real_providers(tmp_path: Path) -> None:
    config = load(tmp_path, "[providers.sim]\nseed = 7\n", OPENAI)
    assert config.providers["sim"].seed == 7
    assert "sim/smart" in config.models
    assert config.simulated is False
    assert providers_of(config, "gpt") != {"sim"}


def test_sim_seed(tmp_path: Path) -> None:
    assert load(tmp_path, "[sim]\nseed = 42\n").providers["sim"].seed == 42


# -- merging -------------------------------------------------------------------------


def test_provider_table_overrides_fields_of_the_builtin(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        """
        [providers.openai]
        rpm = 1000
        max_concurrency = 8
        headers = { OpenAI-Project = "proj_1" }
        """,
        OPENAI,
    )
    openai = config.providers["openai"]
    assert (openai.rpm, openai.max_concurrency) == (1000, 8)
    assert openai.headers == {"OpenAI-Project": "proj_1"}
    builtin = builtin_catalog().providers["openai"]
    assert (openai.base_url, openai.kind, openai.tpm) == (builtin.base_url, "openai", builtin.tpm)


def test_new_provider_with_kind_and_its_models(tmp_path: Path) -> None:
    text = """
        [providers.proxy]
        kind = "openai"
        base_url = "http://127.0.0.1:9000/v1"
        api_key_env = "PROXY_KEY"

        [[models]]
        alias = "proxy-big"
        provider = "proxy"
        model_id = "big-1"
        input_per_mtok = 1.5
        output_per_mtok = 6
        intents = ["code", "reason"]
        capabilities = ["code"]

        [routes.work]
        chain = ["proxy-big", "claude"]
        """
    config = load(tmp_path, text, {"PROXY_KEY": "pk-1"})
    assert config.providers["proxy"].disabled_reason is None
    big = config.models["proxy-big"]
    assert (big.provider, big.model_id, big.output_per_mtok) == ("proxy", "big-1", 6.0)
    assert big.intents == ("code", "reason")
    chain = config.routes["work"].chain
    assert chain[0] == "proxy-big"
    assert chain[1:] == config.routes["claude"].chain  # a route in a chain stands for its chain
    # the proxy's key counts as "some key": no simulator
    assert config.simulated is False and "sim" not in config.providers
    missing = load(tmp_path, text, {})
    assert missing.providers["proxy"].disabled_reason == "missing API key: set PROXY_KEY"


def test_keyless_provider_has_no_disabled_reason(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        '[providers.vllm]\nkind = "openai"\nbase_url = "http://127.0.0.1:8000/v1"\n',
    )
    assert config.providers["vllm"].disabled_reason is None
    assert api_key(config.providers["vllm"], {}) is None


def test_provider_can_be_disabled(tmp_path: Path) -> None:
    config = load(tmp_path, "[providers.openai]\nenabled = false\n", OPENAI)
    assert config.providers["openai"].disabled_reason == "disabled in configuration"


def test_model_with_existing_alias_overrides_only_given_fields(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        """
        [[models]]
        alias = "openai/gpt-6-luna"
        trust_tier = "trusted"
        enabled = false
        """,
        OPENAI,
    )
    luna = config.models["openai/gpt-6-luna"]
    builtin = builtin_catalog().models["openai/gpt-6-luna"]
    assert (luna.trust_tier, luna.enabled) == ("trusted", False)
    assert (luna.model_id, luna.input_per_mtok, luna.capabilities) == (
        builtin.model_id,
        builtin.input_per_mtok,
        builtin.capabilities,
    )


def test_sim_model_profile_can_be_tuned(tmp_path: Path) -> None:
    config = load(tmp_path, '[[models]]\nalias = "sim/flaky"\nsim = { error_rate = 0.5 }\n')
    profile = config.models["sim/flaky"].sim
    assert profile is not None and profile.error_rate == 0.5
    assert profile.cut_rate == builtin_catalog().sim_models["sim/flaky"].sim.cut_rate  # type: ignore[union-attr]


DESIGN_EXAMPLE = """
[server]
host = "127.0.0.1"
port = 8265

[providers.openai]
kind = "openai"
base_url = "https://api.openai.com/v1"
api_key_env = "OPENAI_API_KEY"
max_concurrency = 64
rpm = 500
tpm = 200000

[[models]]
alias = "gpt-fast"
provider = "openai"
model_id = "gpt-6-luna"
trust_tier = "standard"
context_window = 272000
max_output_tokens = 16000
input_per_mtok = 0.25
output_per_mtok = 2.0
intents = []
capabilities = ["code", "reason"]

[routes.claude]
chain = ["claude-sonnet", "gpt-fast", "gemini-flash"]

[budgets]
global_daily_usd = 50.0

[[keys]]
key_env = "SWITCHMAN_KEY_TEAM_A"
handle = "team-a"
daily_usd = 5.0
models = ["*"]
min_trust = "standard"
"""


def test_the_design_example_loads(tmp_path: Path) -> None:
    env = {**OPENAI, "SWITCHMAN_KEY_TEAM_A": "team-a-SECRET-77"}
    config = load(tmp_path, DESIGN_EXAMPLE, env)
    # a model alias replaces the built-in route of the same name
    assert config.models["gpt-fast"].model_id == "gpt-6-luna"
    assert "gpt-fast" not in config.routes
    chain = config.routes["claude"].chain
    assert chain[0] == "anthropic/claude-sonnet-5-5"
    assert "gpt-fast" in chain and chain.index("gpt-fast") > 0
    assert len(chain) == len(set(chain))
    assert all(a in config.models for a in chain)
    assert config.budgets.global_daily_usd == 50.0
    (key,) = config.keys
    assert (key.handle, key.secret, key.daily_usd, key.min_trust) == (
        "team-a",
        "team-a-SECRET-77",
        5.0,
        "standard",
    )
    assert config.server.port == 8265


def test_knobs(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        """
        [server]
        port = 0
        db = ":memory:"
        [router]
        capacity = 16
        seed = 3
        exploration = 0.5
        learning_half_life_s = 3600
        failure_half_life_s = 90.5
        """,
    )
    assert (config.server.port, config.server.db) == (0, ":memory:")
    assert (config.router.capacity, config.router.seed, config.router.exploration) == (16, 3, 0.5)
    assert config.router.learning_half_life_s == 3600
    assert config.router.failure_half_life_s == 90.5


def test_learning_half_lives_must_be_positive(tmp_path: Path) -> None:
    path = tmp_path / "switchman.toml"
    path.write_text("[router]\nlearning_half_life_s = 0\nfailure_half_life_s = -1\n", "utf-8")
    with pytest.raises(ValidationError) as exc:
        load_config(path, env={})
    fields = {f.field for f in exc.value.fields}
    assert {"router.learning_half_life_s", "router.failure_half_life_s"} <= fields, fields


def test_budgets(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        """
        [budgets]
        global_hourly_usd = 2
        global_monthly_usd = 300.5
        [budgets.providers.openai]
        daily_usd = 10
        [budgets.callers.alice]
        hourly_usd = 0.5
        monthly_usd = 20
        """,
    )
    b = config.budgets
    assert (b.global_hourly_usd, b.global_daily_usd, b.global_monthly_usd) == (2.0, None, 300.5)
    assert b.providers == {"openai": {"daily_usd": 10.0}}
    assert b.callers == {"alice": {"hourly_usd": 0.5, "monthly_usd": 20.0}}


def test_a_limit_or_price_too_large_to_count_is_refused_at_load(tmp_path: Path) -> None:
    """A limit of 1e300 passed, then crashed the ledger at every reservation (nano-dollars
    of it overflow); a price that large did the same to every bill."""
    path = write(
        tmp_path,
        """
        [budgets]
        global_monthly_usd = 1e300
        [budgets.providers.sim]
        daily_usd = 2e12
        [[models]]
        alias = "sim/pricey"
        provider = "sim"
        model_id = "pricey"
        input_per_mtok = 1e300
        """,
    )
    with pytest.raises(ValidationError) as exc:
        load_config(path, env={})
    problems = {f.field: f.message for f in exc.value.fields}
    assert problems["budgets.global_monthly_usd"] == "must be between 0 and 1e+12; got 1e+300"
    assert problems["budgets.providers.sim.daily_usd"].startswith("must be between 0 and 1e+12")
    assert problems["models[0].input_per_mtok"].startswith("must be between 0 and 1e+06")
    # the largest limit taken is counted, to the nano-dollar
    big = load(tmp_path, "[budgets]\nglobal_monthly_usd = 1e12\n")
    assert big.budgets.global_monthly_usd == 1e12


# -- keys and secrets -------------------------------------------------------------------


def test_api_key_reads_the_environment() -> None:
    openai = builtin_catalog().providers["openai"]
    assert api_key(openai, OPENAI) == "sk-openai-SECRET-0001"
    assert api_key(openai, {}) is None
    assert api_key(openai, {"OPENAI_API_KEY": ""}) is None
    assert api_key(builtin_catalog().providers["ollama"], OPENAI) is None
    # env defaults to os.environ (read only)
    path_provider = ProviderSpec(name="p", kind="openai", api_key_env="PATH")
    assert api_key(path_provider) == os.environ.get("PATH")


def test_gateway_key_without_its_secret_is_dropped_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    text = """
        [[keys]]
        key_env = "KEY_A"
        handle = "a"
        [[keys]]
        key_env = "KEY_B"
        handle = "b"
        admin = true
        """
    with caplog.at_level(logging.WARNING):
        config = load(tmp_path, text, {"KEY_A": "a-SECRET-1"})
    assert [k.handle for k in config.keys] == ["a"]
    assert "KEY_B" in caplog.text and "'b'" in caplog.text
    assert "a-SECRET-1" not in caplog.text


def test_a_gateway_key_short_enough_to_guess_is_warned_of(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    text = """
        [[keys]]
        key_env = "KEY_A"
        handle = "a"
        [[keys]]
        key_env = "KEY_B"
        handle = "b"
        """
    env = {"KEY_A": "abc", "KEY_B": "long-enough-0123456789"}
    with caplog.at_level(logging.WARNING):
        config = load(tmp_path, text, env)
    assert [k.handle for k in config.keys] == ["a", "b"]  # (kept: it is the operator's call)
    said = [r.getMessage() for r in caplog.records]
    assert said == [
        "gateway key for 'a' (KEY_A) is only 3 characters: anyone may guess it; use at least"
        " 16 random ones"
    ]


def test_gateway_keys_none_of_which_can_be_used_are_an_error(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    text = """
        [[keys]]
        key_env = "SWK_ADMIN"
        handle = "admin"
        admin = true
        [[keys]]
        key_env = "SWK_TEAM"
        handle = "team"
        """
    # not an open gateway: every key was meant to be required
    assert errors(tmp_path, text, {"SWK_TEAM": ""}) == {
        "keys": "[[keys]] are configured but none can be used: "
        "SWK_ADMIN is not set, SWK_TEAM is empty"
    }
    # one key that resolves is enough: the other is dropped, with the warning
    with caplog.at_level(logging.WARNING):
        config = load(tmp_path, text, {"SWK_TEAM": "team-secret"})
    assert [k.handle for k in config.keys] == ["team"]
    assert "SWK_ADMIN" in caplog.text
    # no [[keys]] at all is an open gateway on purpose
    assert load(tmp_path, "", {}).keys == ()


def test_a_route_in_a_key_allow_list_grants_the_route_alone(tmp_path: Path) -> None:
    text = """
        [[keys]]
        key_env = "KEY_A"
        handle = "a"
        models = ["claude", "openai/*", "sim/fast", "claude"]
        """
    config = load(tmp_path, text, {"KEY_A": "x"})
    (key,) = config.keys
    assert key.models == ("claude", "openai/*", "sim/fast")  # kept as given, once each
    chain = config.routes["claude"].chain
    assert "sim/fast" in chain and "sim/smart" in chain
    # a call to the route may use its chain; a call to anything else only what is listed
    assert set(allowed_for(key.models, "claude", config.routes)) >= set(chain)
    assert allowed_for(key.models, "sim/smart", config.routes) == key.models
    assert allowed_for(key.models, "gpt", config.routes) == key.models  # not granted


def test_a_key_may_have_a_request_rate(tmp_path: Path) -> None:
    text = """
        [[keys]]
        key_env = "KEY_A"
        handle = "a"
        rpm = 30

        [[keys]]
        key_env = "KEY_B"
        handle = "b"
        """
    config = load(tmp_path, text, {"KEY_A": "x", "KEY_B": "y"})
    assert [(k.handle, k.rpm) for k in config.keys] == [("a", 30), ("b", None)]


def test_two_keys_may_share_a_handle_when_they_agree_on_all_but_the_variable(
    tmp_path: Path,
) -> None:
    rotation = """
        [[keys]]
        key_env = "KEY_OLD"
        handle = "team"
        daily_usd = 2.0
        models = ["sim/fast"]

        [[keys]]
        key_env = "KEY_NEW"
        handle = "team"
        daily_usd = 2.0
        models = ["sim/fast"]
        """
    env = {"KEY_OLD": "old-secret", "KEY_NEW": "new-secret"}
    config = load(tmp_path, rotation, env)
    assert [k.key_env for k in config.keys] == ["KEY_OLD", "KEY_NEW"]
    assert {k.handle for k in config.keys} == {"team"}
    found = errors(tmp_path, rotation.replace("daily_usd = 2.0\n        models", "models", 1), env)
    assert found == {
        "keys[1].handle": "'team' is already used by keys[0] with another daily_usd: keys "
        "sharing a handle (a key being rotated) must agree on all but key_env"
    }


def test_repr_never_contains_a_secret(tmp_path: Path) -> None:
    env = {
        **OPENAI,
        "ANTHROPIC_API_KEY": "sk-ant-SECRET-0002",
        "SWITCHMAN_KEY_TEAM_A": "team-a-SECRET-77",
    }
    config = load(tmp_path, DESIGN_EXAMPLE, env)
    assert config.keys[0].secret == "team-a-SECRET-77"
    text = repr(config) + str(config)
    for secret in env.values():
        assert secret not in text
    assert "SECRET" not in text


# -- validation: every bad field named ----------------------------------------------------


def test_errors_are_all_reported_at_once_by_toml_path(tmp_path: Path) -> None:
    found = errors(
        tmp_path,
        """
        colour = "blue"
        [server]
        port = 70000
        [router]
        capacity = "many"
        [providers.openai]
        rpm = "fast"
        timeout = 3
        [providers.mystery]
        base_url = "https://example.invalid"
        [providers.weird]
        kind = "grpc"
        base_url = "https://example.invalid"

        [[models]]
        alias = "ok"
        provider = "openai"
        model_id = "m"

        [[models]]
        alias = "a"
        provider = "openai"
        model_id = "m"
        intents = ["code", "poetry"]
        trust_tier = "high"

        [[models]]
        alias = "b"
        provider = "nowhere"
        model_id = "m"

        [[models]]
        alias = "c"
        provider = "openai"

        [routes.mix]
        chain = ["claude", "no-such-model"]
        """,
        OPENAI,
    )
    assert found == {
        "colour": "unknown field",
        "server.port": found["server.port"],
        "router.capacity": found["router.capacity"],
        "providers.openai.rpm": found["providers.openai.rpm"],
        "providers.openai.timeout": "unknown field (did you mean 'read_timeout_s'?)",
        "providers.mystery.kind": found["providers.mystery.kind"],
        "providers.weird.kind": found["providers.weird.kind"],
        "models[1].intents[1]": found["models[1].intents[1]"],
        "models[1].trust_tier": found["models[1].trust_tier"],
        "models[2].provider": "unknown provider 'nowhere'",
        "models[3].model_id": found["models[3].model_id"],
        "routes.mix.chain[1]": "unknown model or route 'no-such-model'",
    }
    assert "65535" in found["server.port"]
    assert "integer" in found["router.capacity"] and "integer" in found["providers.openai.rpm"]
    assert "required" in found["providers.mystery.kind"]
    assert "openai, anthropic, gemini, ollama, sim" in found["providers.weird.kind"]
    assert "lookup" in found["models[1].intents[1]"]
    assert "untrusted, standard, trusted" in found["models[1].trust_tier"]
    assert "required" in found["models[3].model_id"]


def test_a_models_mistakes_do_not_hide_each_other(tmp_path: Path) -> None:
    found = errors(
        tmp_path,
        """
        [[models]]
        alias = "a"
        provider = "nowhere"
        model_id = "m"
        input_per_mtok = -1

        [[models]]
        alias = "b"
        provider = "nowhere"

        [[models]]
        alias = "c"
        provider = "openai"
        model_id = "m"
        context_window = "big"
        output_per_mtok = -2

        [[models]]
        alias = "sim/fast"
        [models.sim]
        bogus = 1
        error_rate = 5.0
        """,
    )
    assert found == {
        "models[0].provider": "unknown provider 'nowhere'",
        "models[0].input_per_mtok": "must be at least 0; got -1.0",
        "models[1].provider": "unknown provider 'nowhere'",
        "models[1].model_id": "is required for a model not in the catalog",
        "models[2].context_window": "must be an integer; got string",
        "models[2].output_per_mtok": "must be at least 0; got -2.0",
        "models[3].sim.bogus": "unknown field",
        "models[3].sim.error_rate": "must be between 0 and 1; got 5.0",
    }


def test_other_sections_report_every_mistake_together(tmp_path: Path) -> None:
    found = errors(
        tmp_path,
        """
        [server]
        port = 70000
        grace_s = -1
        colour = 1
        [router]
        capacity = 0
        stall_ms = "slow"
        [providers.openai]
        rpm = 0
        colour = 1
        [budgets]
        global_daily_usd = -1
        weekly_usd = 1
        [budgets.providers.nowhere]
        daily_usd = -3
        [[keys]]
        key_env = "K"
        handle = ""
        daily_usd = -5
        colour = 1
        """,
        {**OPENAI, "K": "k1"},
    )
    assert set(found) == {
        "server.port",
        "server.grace_s",
        "server.colour",
        "router.capacity",
        "router.stall_ms",
        "providers.openai.rpm",
        "providers.openai.colour",
        "budgets.global_daily_usd",
        "budgets.weekly_usd",
        "budgets.providers.nowhere",
        "budgets.providers.nowhere.daily_usd",
        "keys[0].handle",
        "keys[0].daily_usd",
        "keys[0].colour",
    }


def test_what_load_config_returns_passes_validate_config(tmp_path: Path) -> None:
    env = {**OPENAI, "SWITCHMAN_KEY_TEAM_A": "team-a-SECRET-77"}
    assert validate_config(load(tmp_path, DESIGN_EXAMPLE, env)) is None


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("providers = 3\n", "providers"),
        ("models = { alias = 'x' }\n", "models"),
        ("[providers.openai]\nrpm = 0\n", "providers.openai.rpm"),
        ("[providers.openai]\nbase_url = 'api.openai.com'\n", "providers.openai.base_url"),
        ("[providers.openai]\nheaders = { X = 1 }\n", "providers.openai.headers.X"),
        ("[providers.openai]\nenabled = 'no'\n", "providers.openai.enabled"),
        ("[providers.openai]\nname = 'x'\n", "providers.openai.name"),
        ("[providers.openai]\ndisabled_reason = 'x'\n", "providers.openai.disabled_reason"),
        ("[providers.sim]\nkind = 'openai'\n", "providers.sim.kind"),
        ("[[models]]\nprovider = 'openai'\nmodel_id = 'x'\n", "models[0].alias"),
        ("[[models]]\nalias = 'auto'\nprovider = 'openai'\nmodel_id = 'x'\n", "models[0].alias"),
        ("[[models]]\nalias = 'openai/gpt-6-luna'\ncolor = 1\n", "models[0].color"),
        (
            "[[models]]\nalias = 'openai/gpt-6-luna'\ncontext_window = 0\n",
            "models[0].context_window",
        ),
        (
            "[[models]]\nalias = 'openai/gpt-6-luna'\noutput_per_mtok = -2\n",
            "models[0].output_per_mtok",
        ),
        (
            "[[models]]\nalias = 'openai/gpt-6-luna'\nsim = { error_rate = 0.1 }\n",
            "models[0].sim",
        ),
        (
            "[[models]]\nalias = 'sim/fast'\nsim = { refusal_rate = 1.5 }\n",
            "models[0].sim.refusal_rate",
        ),
        (
            "[[models]]\nalias = 'sim/fast'\nsim = { quality = { code = 2 } }\n",
            "models[0].sim.quality.code",
        ),
        (
            "[[models]]\nalias = 'x'\nprovider = 'openai'\nmodel_id = 'x'\n"
            "[[models]]\nalias = 'x'\nprovider = 'openai'\nmodel_id = 'y'\n",
            "models[1].alias",
        ),
        ("[routes.r]\nchain = []\n", "routes.r.chain"),
        ("[routes.r]\nvia = ['claude']\n", "routes.r.chain"),
        ("[routes.r]\nchain = 'claude'\n", "routes.r.chain"),
        ("[routes.r]\nchain = ['claude']\nextra = 1\n", "routes.r.extra"),
        ("[routes.'openai/gpt-6-luna']\nchain = ['claude']\n", "routes.openai/gpt-6-luna"),
        ("[routes.auto]\nchain = ['claude']\n", "routes.auto"),
        ("[routes.a]\nchain = ['b']\n[routes.b]\nchain = ['a']\n", "routes.b.chain[0]"),
        ("[budgets]\nglobal_daily_usd = 'lots'\n", "budgets.global_daily_usd"),
        ("[budgets]\nglobal_daily_usd = -1\n", "budgets.global_daily_usd"),
        ("[budgets]\nweekly_usd = 1\n", "budgets.weekly_usd"),
        ("[budgets.providers.nowhere]\ndaily_usd = 1\n", "budgets.providers.nowhere"),
        ("[budgets.callers.bob]\nyearly_usd = 1\n", "budgets.callers.bob.yearly_usd"),
        ("[[keys]]\nhandle = 'a'\n", "keys[0].key_env"),
        ("[[keys]]\nkey_env = 'K'\nhandle = 'a'\nsecret = 'x'\n", "keys[0].secret"),
        ("[[keys]]\nkey_env = 'K'\nhandle = 'a'\nmin_trust = 'max'\n", "keys[0].min_trust"),
        ("[[keys]]\nkey_env = 'K'\nhandle = 'a'\ndaily_usd = -5\n", "keys[0].daily_usd"),
        ("[[keys]]\nkey_env = 'K'\nhandle = 'a'\nrpm = 0\n", "keys[0].rpm"),
        ("[[keys]]\nkey_env = 'K'\nhandle = 'a'\nrpm = 2.5\n", "keys[0].rpm"),
        ("[[keys]]\nkey_env = 'K'\nhandle = 'a'\nmodels = ['gpt', 'nope']\n", "keys[0].models[1]"),
        (
            "[[keys]]\nkey_env = 'K'\nhandle = 'a'\n[[keys]]\nkey_env = 'K2'\nhandle = 'a'\n"
            "admin = true\n",
            "keys[1].handle",
        ),
        (
            "[[keys]]\nkey_env = 'K'\nhandle = 'a'\n[[keys]]\nkey_env = 'K'\nhandle = 'b'\n",
            "keys[1].key_env",
        ),
        ("[sim]\nseed = 'x'\n", "sim.seed"),
        ("[sim]\nspeed = 1\n", "sim.speed"),
        ("[server]\nport = 'http'\n", "server.port"),
        ("[router]\nstall_ms = 0\n", "router.stall_ms"),
    ],
)
def test_each_bad_field_is_named(tmp_path: Path, text: str, field: str) -> None:
    found = errors(tmp_path, text, {"K": "k1", "K2": "k2"})
    assert field in found, found


def test_invalid_toml_names_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "[server\nport = 1\n")
    with pytest.raises(ValidationError) as exc:
        load_config(path, env={})
    (err,) = exc.value.fields
    assert err.field == str(path) and "invalid TOML" in err.message


def test_missing_file_is_an_os_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        load_config(tmp_path / "nope.toml", env={})


def test_validation_error_is_the_public_one() -> None:
    import switchman

    with pytest.raises(switchman.ValidationError):
        config_from_dict({"nonsense": 1}, env={})


def test_default_config_is_load_config_none() -> None:
    assert default_config(env=OPENAI) == load_config(None, env=OPENAI)
    assert default_config(env={}) == config_from_dict({}, env={})


def test_config_from_dict_takes_parsed_data() -> None:
    data: dict[str, Any] = {"providers": {"openai": {"rpm": 7}}, "sim": {"seed": 1}}
    config = config_from_dict(data, env={})
    assert config.providers["openai"].rpm == 7
    assert config.providers["sim"].seed == 1


@pytest.mark.parametrize(
    ("mistake", "field"),
    [
        ("output_per_mtk = 1.0", "models[0].output_per_mtk"),
        ("context_window = 0", "models[0].context_window"),
        ('trust_tier = "gold"', "models[0].trust_tier"),
    ],
)
def test_one_mistake_in_a_model_is_one_error_not_one_per_reference(
    tmp_path: Path, mistake: str, field: str
) -> None:
    """The routes and keys naming a model left out for its own mistake are not reported as
    naming an unknown model: that would send the operator after mistakes that are not."""
    text = f"""
    [[models]]
    alias = "acme-fast"
    provider = "openai"
    model_id = "acme-1"
    {mistake}

    [routes.house]
    chain = ["acme-fast", "gpt"]

    [[keys]]
    key_env = "TEAM_KEY"
    handle = "team"
    models = ["house", "acme-fast"]
    """
    found = errors(tmp_path, text, {**OPENAI, "TEAM_KEY": "team-secret-0123456789"})
    assert list(found) == [field], found


def test_a_provider_with_a_bad_kind_is_one_error_not_one_per_model(tmp_path: Path) -> None:
    text = """
    [providers.acme]
    kind = "openia"
    base_url = "http://127.0.0.1:9/v1"

    [[models]]
    alias = "acme-fast"
    provider = "acme"
    model_id = "a"

    [routes.house]
    chain = ["acme-fast"]

    [budgets.providers.acme]
    daily_usd = 1.0
    """
    found = errors(tmp_path, text)
    assert list(found) == ["providers.acme.kind"], found
    # a name no part of the file defines is still unknown wherever it is named
    found = errors(tmp_path, '[routes.house]\nchain = ["no-such-model"]\n')
    assert found == {"routes.house.chain[0]": "unknown model or route 'no-such-model'"}


@pytest.mark.parametrize(
    ("kind", "url", "tail"),
    [
        ("anthropic", "https://proxy.example/anthropic/v1/messages", "/v1/messages"),
        ("anthropic", "https://api.anthropic.com/v1/", "/v1"),
        ("openai", "https://api.openai.com/v1/chat/completions", "/chat/completions"),
        ("gemini", "https://generativelanguage.googleapis.com/v1beta/models", "/models"),
        ("ollama", "http://localhost:11434/api/chat", "/api/chat"),
        ("ollama", "http://localhost:11434/v1", "/v1"),
        ("ollama", "http://localhost:11434/api/tags", "/api/tags"),
        (
            "gemini",
            "https://generativelanguage.googleapis.com/v1beta/models/gemini-3-flash",
            "/models/gemini-3-flash",
        ),
    ],
)
def test_a_base_url_ending_in_the_endpoint_switchman_adds_is_an_error(
    tmp_path: Path, kind: str, url: str, tail: str
) -> None:
    text = f"""
    [providers.edge]
    kind = "{kind}"
    base_url = "{url}"
    """
    found = errors(tmp_path, text)
    assert list(found) == ["providers.edge.base_url"], found
    assert found["providers.edge.base_url"].startswith(f"is the API root, without {tail!r}")


def test_the_catalogs_api_roots_and_a_proxys_prefix_are_fine(tmp_path: Path) -> None:
    text = """
    [providers.edge]
    kind = "anthropic"
    base_url = "https://gateway.example/anthropic"

    [providers.mirror]
    kind = "openai"
    base_url = "https://gateway.example/openai/v1"

    [providers.lan]
    kind = "ollama"
    base_url = "https://gateway.example/api/ollama"
    """
    config = load(tmp_path, text)
    assert config.providers["edge"].base_url == "https://gateway.example/anthropic"


def test_a_name_of_the_wrong_kind_is_still_a_mistake_beside_a_broken_one(tmp_path: Path) -> None:
    """A broken provider does not excuse a route naming it (a chain names models and
    routes); a broken model does not excuse a budget for a provider of its name."""
    text = """
    [providers.acme]
    kind = "opnai"
    base_url = "http://127.0.0.1:9/v1"

    [routes.main]
    chain = ["acme"]
    """
    found = errors(tmp_path, text)
    assert set(found) == {"providers.acme.kind", "routes.main.chain[0]"}, found
    text = """
    [[models]]
    alias = "acme"
    provider = "openai"
    model_id = "a"
    context_window = 0

    [budgets.providers.acme]
    daily_usd = 1.0
    """
    found = errors(tmp_path, text, OPENAI)
    assert set(found) == {"models[0].context_window", "budgets.providers.acme"}, found


def test_an_alias_or_route_name_no_call_could_name_is_refused(tmp_path: Path) -> None:
    """A call names at most 256 characters: a longer alias or route name loaded, and every
    call naming it was refused."""
    long = "m" * 257
    path = tmp_path / "switchman.toml"
    path.write_text(
        f'[[models]]\nalias = "{long}"\nprovider = "sim"\nmodel_id = "x"\n\n'
        f'[routes."{"r" * 257}"]\nchain = ["sim/fast"]\n'
    )
    with pytest.raises(ValidationError) as info:
        load_config(path)
    said = str(info.value)
    assert "alias: must be at most 256 characters" in said
    assert "name: must be at most 256 characters" in said


def test_weights_are_bounded(tmp_path: Path) -> None:
    """A weight of 1e308 made every score infinite (a tie, and `Infinity` in a result's
    JSON): weights are 0 to 1,000."""
    path = tmp_path / "switchman.toml"
    path.write_text("[router.weights]\ntrust = 1e308\ncost = -1\n", "utf-8")
    with pytest.raises(ValidationError) as exc:
        load_config(path, env={})
    said = {f.field: f.message for f in exc.value.fields}
    assert set(said) == {"router.weights.trust", "router.weights.cost"}, said
    assert "1000" in said["router.weights.trust"]


def test_a_provider_without_its_base_url_is_told_it_is_required(tmp_path: Path) -> None:
    """A new provider without a base_url read ``must be an http(s) URL; got ''``; a catalog
    provider given another kind was told its catalog base_url was wrong, a key the file
    never wrote."""
    said = errors(tmp_path, '[providers.vllm]\nkind = "openai"\n')
    assert said["providers.vllm.base_url"].startswith("is required: the provider's API root")
    said = errors(tmp_path, '[providers.claude_b]\nkind = "anthropic"\n')
    assert said["providers.claude_b.base_url"].endswith("(such as https://api.anthropic.com)")
    said = errors(tmp_path, '[providers.openai]\nkind = "anthropic"\n')
    assert said["providers.openai.base_url"] == (
        "is required when kind is not the catalog's ('openai'): its base_url is of that wire format"
    )
    moved = '[providers.openai]\nkind = "anthropic"\nbase_url = "http://127.0.0.1:9000"\n'
    assert load(tmp_path, moved).providers["openai"].kind == "anthropic"


def test_an_invalid_files_error_names_the_file(tmp_path: Path) -> None:
    """An application that loads its configuration is told which file is wrong (the CLI
    said so; ``str()`` of the error did not)."""
    with pytest.raises(ValidationError) as exc:
        load(tmp_path, "[router]\ncapacity = 0\n")
    path = str(tmp_path / "switchman.toml")
    assert (
        str(exc.value)
        == f"invalid configuration {path}: router.capacity: must be at least 1; got 0"
    )
    assert exc.value.source == path and exc.value.fields[0].field == "router.capacity"


def test_a_models_mistakes_across_its_fields_are_named_by_its_place_in_the_file(
    tmp_path: Path,
) -> None:
    """The checks across a model's fields named it by alias (``models.m.1.input_per_mtok``),
    where every other mistake reads ``models[1]...`` as the file has it."""
    path = write(
        tmp_path,
        """
        [[models]]
        alias = "fine"
        provider = "openai"
        model_id = "a"
        context_window = 1000

        [[models]]
        alias = "m.1"
        provider = "openai"
        model_id = "b"
        context_window = 1000
        input_per_mtok = 2e6
        request_fee_usd = 0.1
        max_request_fee_usd = 0.01
        """,
    )
    with pytest.raises(ValidationError) as raised:
        load_config(path, env={})
    fields = [e.field for e in raised.value.fields]
    assert fields == ["models[1].input_per_mtok", "models[1].max_request_fee_usd"], fields


def test_a_mistake_is_named_by_the_entry_that_made_it_whatever_the_aliases(
    tmp_path: Path,
) -> None:
    """An alias that is another's with a field after it, and a repeated alias: the
    mistake is the entry's that made it (the first of a repeated alias, which is kept)."""
    entry = (
        '[[models]]\nalias = "{alias}"\nprovider = "openai"\nmodel_id = "x"\n'
        "context_window = 1000\n{more}\n"
    )
    bad = "request_fee_usd = 0.1\nmax_request_fee_usd = 0.01"
    for second, field in (("m.max_request_fee_usd", "models[0]"), ("m", "models[0]")):
        path = write(
            tmp_path,
            entry.format(alias="m", more=bad) + entry.format(alias=second, more=""),
        )
        with pytest.raises(ValidationError) as raised:
            load_config(path, env={})
        fields = {e.field for e in raised.value.fields}
        assert f"{field}.max_request_fee_usd" in fields, (second, fields)
        assert "models[1].max_request_fee_usd" not in fields and "models[1]" not in fields


@pytest.mark.parametrize(
    ("data", "path"),
    [
        (
            {"models": [{"alias": "nl\nmodel", "provider": "sim", "model_id": "m"}]},
            "models[0].alias",
        ),
        ({"models": [{"alias": "tab\tm", "provider": "sim", "model_id": "m"}]}, "models[0].alias"),
        ({"models": [{"alias": "\x00m", "provider": "sim", "model_id": "m"}]}, "models[0].alias"),
        (
            {"models": [{"alias": "m", "provider": "sim", "model_id": "m\u202e"}]},
            "models[0].model_id",
        ),
        ({"providers": {"a\rb": {"kind": "sim"}}}, "providers.a\rb.name"),
        ({"routes": {"r\u2066": {"chain": ["openai/gpt-6-sol"]}}}, "routes.r\u2066.name"),
        ({"keys": [{"handle": "te\u2028am", "key_env": "K"}]}, "keys[0].handle"),
        ({"budgets": {"callers": {"te\tam": {"daily_usd": 1}}}}, "budgets.callers.te\tam"),
    ],
    ids=[
        "line break",
        "tab",
        "nul",
        "bidi override",
        "carriage return",
        "bidi isolate",
        "line separator",
        "a budget's handle",
    ],
)
def test_a_name_with_a_control_or_format_character_is_refused_naming_it(
    data: dict[str, Any], path: str
) -> None:
    """A line break in an alias made every answer naming it a 500 (its ``x-switchman-model``
    header), a tab split the learned records' keys (two more rows at each start), a bidi
    control makes a log line read otherwise: names are printable."""
    with pytest.raises(ValidationError) as caught:
        config_from_dict(data, env={"K": "k" * 32})
    found = {e.field: e.message for e in caught.value.fields}
    assert found[path].startswith("must hold no control or format character; got U+"), found
    assert str(caught.value).isprintable()  # (its message, a log line, shows it escaped)


def test_a_model_alias_that_hides_a_built_in_route_is_warned_of(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The README's own example named a model ``gpt-fast``, and the route of that name
    was gone without a word."""
    text = """
        [[models]]
        alias = "gpt-fast"
        provider = "openai"
        model_id = "gpt-6-luna"
        """
    with caplog.at_level(logging.WARNING):
        config = load(tmp_path, text, {"OPENAI_API_KEY": "sk-test-0001"})
    assert "gpt-fast" in config.models and "gpt-fast" not in config.routes
    (said,) = [r.getMessage() for r in caplog.records if "route" in r.getMessage()]
    assert said.startswith(
        "models[0]: alias 'gpt-fast' is a built-in route's name too: the model takes it, and"
        " the route (openai/gpt-6-luna, "
    ), said
    assert said.endswith("give the model another alias to keep the route")


def test_a_wrong_kind_is_named_though_base_url_is_missing_too(tmp_path: Path) -> None:
    """Only ``base_url: is required ...`` was said; the kind, once a base_url was added."""
    text = """
        [providers.openai]
        kind = "bogus"
        [providers.acme]
        kind = "bogus"
        """
    with pytest.raises(ValidationError) as info:
        load(tmp_path, text, {})
    said = {f.field: f.message for f in info.value.fields}
    kinds = "must be one of openai, anthropic, gemini, ollama, sim; got 'bogus'"
    assert said == {"providers.openai.kind": kinds, "providers.acme.kind": kinds}


#: a model the file brings on OpenAI, whose wire decides nothing of its own
HOUSE_OPENAI_MODEL = """
[[models]]
alias = "oa"
provider = "openai"
model_id = "house-model-3"
context_window = 100000
input_per_mtok = 1.0
output_per_mtok = 5.0
"""


def test_a_model_brought_on_the_anthropic_wire_continues_a_cut_answer_by_prefill(
    tmp_path: Path,
) -> None:
    """The Messages API continues a trailing assistant turn: a model the file brings on a
    provider of kind ``anthropic`` takes prefill unless it says not (it got the user-turn
    continuation, less faithful, though the catalog's own Anthropic models take it)."""
    config = load(
        tmp_path,
        """
        [providers.proxy]
        kind = "anthropic"
        base_url = "https://llm.example.com"
        api_key_env = "PROXY_KEY"

        [[models]]
        alias = "an"
        provider = "proxy"
        model_id = "house-model"
        context_window = 100000
        input_per_mtok = 1.0
        output_per_mtok = 5.0

        [[models]]
        alias = "an-no"
        provider = "proxy"
        model_id = "house-model-2"
        context_window = 100000
        input_per_mtok = 1.0
        output_per_mtok = 5.0
        supports_prefill = false

        """
        + HOUSE_OPENAI_MODEL,
        env={"PROXY_KEY": "proxy-secret-000000001", **OPENAI},
    )
    assert config.models["an"].supports_prefill is True
    assert config.models["an-no"].supports_prefill is False
    assert config.models["oa"].supports_prefill is False


def test_a_model_brought_on_deepseeks_wire_continues_a_cut_answer_by_prefill(
    tmp_path: Path,
) -> None:
    """DeepSeek continues a trailing assistant turn by its beta's prefix completion (the
    adapter sends it there): a model the file brings on its wire takes prefill, as the
    catalog's DeepSeek models do; Mistral's, whose answer may say the prefix again, not."""
    config = load(
        tmp_path,
        """
        [providers.ds2]
        kind = "openai"
        base_url = "https://api.deepseek.com"
        api_key_env = "DS2_KEY"

        [[models]]
        alias = "ds"
        provider = "ds2"
        model_id = "deepseek-house"
        context_window = 100000
        input_per_mtok = 1.0
        output_per_mtok = 5.0

        [[models]]
        alias = "mi"
        provider = "mistral"
        model_id = "mistral-house"
        context_window = 100000
        input_per_mtok = 1.0
        output_per_mtok = 5.0
        """,
        env={"DS2_KEY": "ds2-secret-0000000001", "MISTRAL_API_KEY": "mistral-secret-000001"},
    )
    assert config.models["ds"].supports_prefill is True
    assert config.models["mi"].supports_prefill is False
    assert all(m.supports_prefill for m in config.models.values() if m.provider == "anthropic")


def test_a_model_brought_on_perplexitys_agent_api_takes_no_stop_sequences(
    tmp_path: Path,
) -> None:
    """Perplexity's Responses wire has no ``stop``: a model the file brings there defaulted
    to taking stop sequences, so a call with ``stop`` was served without them."""
    config = load(
        tmp_path,
        """
        [[models]]
        alias = "pplx/house"
        provider = "perplexity"
        model_id = "sonar-house"
        context_window = 100000
        input_per_mtok = 1.0
        output_per_mtok = 5.0

        """
        + HOUSE_OPENAI_MODEL,
        env={"PERPLEXITY_API_KEY": "pplx-secret-000000001", **OPENAI},
    )
    assert config.models["pplx/house"].supports_stop is False
    assert config.models["oa"].supports_stop is True
    assert not any(m.supports_stop for m in config.models.values() if m.provider == "perplexity")
