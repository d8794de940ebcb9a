"""Configuration mistakes told as errors naming the key, its value's trouble and what was
expected: never a traceback, never a mistake taken without a word."""

from __future__ import annotations

import logging
import os
import textwrap
from pathlib import Path

import attrs
import pytest

from switchman._errors import ValidationError
from switchman.catalog import Config, RouterConfig, load_config, validate_config

HUGE = 10**309  # no float holds it


def load(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> Config:
    path = tmp_path / "switchman.toml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return load_config(path, env={} if env is None else env)


def errors(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> dict[str, str]:
    with pytest.raises(ValidationError) as exc:
        load(tmp_path, text, env)
    return {f.field: f.message for f in exc.value.fields}


# -- integers past any bound ------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "field", "most"),
    [
        ("[router]\ncapacity = {n}\n", "router.capacity", "9223372036854775807"),
        ("[router]\nseed = -{n}\n", "router.seed", None),
        ("[server]\nport = {n}\n", "server.port", "65535"),
        ("[server]\njob_retention_count = {n}\n", "server.job_retention_count", None),
        ("[sim]\nseed = {n}\n", "sim.seed", None),
        ("[providers.openai]\nrpm = {n}\n", "providers.openai.rpm", None),
        ("[budgets.providers.sim]\ndaily_usd = {n}\n", "budgets.providers.sim.daily_usd", "1e+12"),
        ("[budgets.callers.a]\nhourly_usd = {n}\n", "budgets.callers.a.hourly_usd", "1e+12"),
        (
            '[[models]]\nalias = "x"\nprovider = "sim"\nmodel_id = "x"\ncontext_window = {n}\n',
            "models[0].context_window",
            None,
        ),
        ('[[keys]]\nkey_env = "K"\nhandle = "a"\nrpm = {n}\n', "keys[0].rpm", None),
    ],
)
def test_an_integer_too_large_for_any_field_is_named_not_a_traceback(
    tmp_path: Path, text: str, field: str, most: str | None
) -> None:
    found = errors(tmp_path, text.format(n=HUGE), env={"K": "k" * 32})
    assert field in found, found
    message = found[field]
    assert message.startswith(("must be at most", "must be at least")), message
    assert str(HUGE) not in message  # (not echoed: 310 digits)
    if most is not None:
        assert message == f"must be at most {most}"


def test_a_huge_integer_in_a_config_built_in_python_is_named() -> None:
    config = Config(router=RouterConfig(capacity=HUGE, seed=-HUGE))
    with pytest.raises(ValidationError) as exc:
        validate_config(config)
    found = {f.field: f.message for f in exc.value.fields}
    assert found["router.capacity"] == "must be at most 9223372036854775807"
    assert found["router.seed"] == "must be at least -9223372036854775807"
    fine = attrs.evolve(config, router=RouterConfig(capacity=2**63 - 1, seed=-(2**63 - 1)))
    validate_config(fine)


# -- gateway keys -----------------------------------------------------------------


def test_a_key_with_a_nan_limit_is_told_so_and_not_that_its_handle_is_taken(
    tmp_path: Path,
) -> None:
    found = errors(
        tmp_path,
        """
        [[keys]]
        key_env = "K"
        handle = "a"
        hourly_usd = nan
        """,
        env={"K": "k" * 32},
    )
    assert found == {"keys[0].hourly_usd": "must be finite"}


# -- caller budgets beside gateway keys -------------------------------------------------

_TEAM_A = """
[[keys]]
key_env = "K"
handle = "team-a"
[[keys]]
key_env = "UNSET"
handle = "batch"
"""


def test_a_caller_budget_naming_no_keys_handle_is_an_error_with_the_closest_handle(
    tmp_path: Path,
) -> None:
    found = errors(
        tmp_path,
        _TEAM_A + "[budgets.callers.team_a]\ndaily_usd = 1\n[budgets.callers.zz]\ndaily_usd = 1\n",
        env={"K": "k" * 32},
    )
    assert set(found) == {"budgets.callers.team_a", "budgets.callers.zz"}, found
    message = found["budgets.callers.team_a"]
    assert "'team_a'" in message and "never apply" in message
    assert message.endswith("(did you mean 'team-a'?)")
    assert "did you mean" not in found["budgets.callers.zz"]


def test_a_caller_budget_for_a_keys_handle_holds_and_without_keys_any_handle_does(
    tmp_path: Path,
) -> None:
    # (a key whose variable is unset is dropped, but its handle is still the file's)
    text = "[budgets.callers.team-a]\ndaily_usd = 1\n[budgets.callers.batch]\ndaily_usd = 2\n"
    config = load(tmp_path, _TEAM_A + text, env={"K": "k" * 32})
    assert set(config.budgets.callers) == {"team-a", "batch"}
    alone = load(tmp_path, "[budgets.callers.anyone]\ndaily_usd = 1\n")
    assert set(alone.budgets.callers) == {"anyone"}


# -- provider headers ---------------------------------------------------------------------


_NOT_A_NAME = (
    "the header's name is not an HTTP header name (letters, digits and !#$%&'*+-.^_`|~ only): "
)


@pytest.mark.parametrize(
    ("header", "field", "trouble"),
    [
        ('"X A" = "v"', "headers", f"{_NOT_A_NAME}it holds a space; the name is not shown"),
        ('"X:B" = "v"', "headers", f"{_NOT_A_NAME}it holds ':' (a header is"),
        ('"" = "v"', "headers", f"{_NOT_A_NAME}it is empty"),
        ('"X-B" = "line\\nbreak-SECRET"', "headers.X-B", "must be visible ASCII"),
        ('"X-B" = "cr\\rSECRET"', "headers.X-B", "must be visible ASCII"),
        ('"X-C" = "café-SECRET"', "headers.X-C", "must be visible ASCII"),
        ('"Authorization: Bearer SECRET" = 5', "headers", "the header's"),
    ],
)
def test_a_header_no_request_could_carry_is_an_error_never_showing_its_value(
    tmp_path: Path, header: str, field: str, trouble: str
) -> None:
    """A valid name is the error's path; one that is not is never shown (it may be a whole
    ``Authorization: Bearer KEY`` pasted as a name), the table's path named instead."""
    found = errors(tmp_path, f"[providers.openai]\nheaders = {{ {header} }}\n")
    assert found[f"providers.openai.{field}"].startswith(trouble), found
    assert "SECRET" not in " ".join(found.values()) + " ".join(found)


def test_a_header_of_visible_ascii_spaces_and_tabs_is_fine(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        '[providers.openai]\nheaders = { "OpenAI-Project" = "proj_1", "X-T" = "a b\\tc!~" }\n',
    )
    assert config.providers["openai"].headers["X-T"] == "a b\tc!~"


# -- what a gateway key allows --------------------------------------------------------------


def _key(models: str, *, admin: bool = False) -> str:
    return (
        f'[[keys]]\nkey_env = "K"\nhandle = "a"\nmodels = {models}\nadmin = {str(admin).lower()}\n'
    )


def test_a_key_pattern_allowing_no_model_is_warned_of_with_the_closest(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="switchman.catalog"):
        config = load(tmp_path, _key('["opanai/*", "[abc"]'), env={"K": "k" * 32})
    assert config.keys[0].models == ("opanai/*", "[abc")  # (loaded: Ollama's come later)
    said = [r.getMessage() for r in caplog.records]
    assert any(
        m.startswith("keys[0].models[0]: 'opanai/*' allows no model") and "'openai/*'" in m
        for m in said
    ), said
    assert any(m.startswith("keys[0].models[1]: '[abc' allows no model") for m in said), said


def test_a_warning_never_offers_the_pattern_itself(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """An Ollama provider whose models are found when the router starts: ``gpu/*`` allows
    none yet (warned of), and the closest name to it is itself (it said "did you mean
    'gpu/*'?")."""
    gpu = '[providers.gpu]\nkind = "ollama"\nbase_url = "http://127.0.0.1:11434"\n'
    with caplog.at_level(logging.WARNING, logger="switchman.catalog"):
        load(tmp_path, gpu + _key('["gpu/*"]'), env={"K": "k" * 32})
    said = [r.getMessage() for r in caplog.records if "allows no model" in r.getMessage()]
    assert said and "did you mean 'gpu/*'" not in said[0], said


def test_a_key_pattern_allowing_a_model_is_not_warned_of(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="switchman.catalog"):
        load(tmp_path, _key('["openai/*", "sim/*", "claude", "openai"]'), env={"K": "k" * 32})
    assert not [r for r in caplog.records if "allows no model" in r.getMessage()]


def test_a_key_allowed_no_model_at_all_is_an_error_unless_it_is_an_admin_key(
    tmp_path: Path,
) -> None:
    found = errors(tmp_path, _key("[]"), env={"K": "k" * 32})
    assert found == {
        "keys[0].models": 'must name at least one model, route or provider ("*" for all): '
        "with none the key may call nothing (an admin key may have none: it sees all)"
    }
    watcher = load(tmp_path, _key("[]", admin=True), env={"K": "k" * 32})
    assert watcher.keys[0].models == ()


# -- options of one kind on another --------------------------------------------------------


def test_a_seed_on_a_provider_not_of_kind_sim_is_an_error(tmp_path: Path) -> None:
    found = errors(tmp_path, "[providers.openai]\nseed = 3\n")
    assert found == {
        "providers.openai.seed": 'is for kind = "sim" only: a real provider draws its own'
    }
    assert load(tmp_path, "[providers.sim]\nseed = 3\n").providers["sim"].seed == 3


def test_a_model_said_to_take_a_seed_on_the_anthropic_wire_is_an_error(tmp_path: Path) -> None:
    text = """
    [providers.myanth]
    kind = "anthropic"
    base_url = "http://127.0.0.1:1"
    [[models]]
    alias = "myanth/c"
    provider = "myanth"
    model_id = "c"
    context_window = 100000
    input_per_mtok = 1.0
    output_per_mtok = 1.0
    supports_seed = {seed}
    """
    found = errors(tmp_path, text.format(seed="true"))
    assert set(found) == {"models[0].supports_seed"}, found
    assert "unseeded" in found["models[0].supports_seed"]
    config = load(tmp_path, text.format(seed="false"))
    with pytest.raises(ValidationError) as exc:  # (one built in Python, the same)
        model = attrs.evolve(config.models["myanth/c"], supports_seed=True)
        validate_config(attrs.evolve(config, models={**config.models, "myanth/c": model}))
    assert [f.field for f in exc.value.fields] == ["models.myanth/c.supports_seed"]


def test_the_catalogs_models_on_a_provider_turned_anthropic_take_no_seed(tmp_path: Path) -> None:
    config = load(
        tmp_path, '[providers.openai]\nkind = "anthropic"\nbase_url = "http://127.0.0.1:1"\n'
    )
    on_it = [m for m in config.models.values() if m.provider == "openai"]
    assert on_it and not any(m.supports_seed for m in on_it)


# -- did you mean -------------------------------------------------------------------------


def test_every_unknown_field_names_the_closest_known_one(tmp_path: Path) -> None:
    found = errors(
        tmp_path,
        """
        servr = 1
        [server]
        prot = 9000
        [router]
        capacty = 3
        [router.weights]
        costs = 2
        [sim]
        sed = 3
        [providers.openai]
        api_key_enw = "X"
        [[models]]
        alias = "m"
        provider = "sim"
        model_id = "m"
        input_per_mtoks = 1
        sim = { latency_m = 3 }
        [budgets]
        global_dayly_usd = 3
        [budgets.callers.a]
        daily = 1
        [routes.r]
        chian = ["m"]
        [[keys]]
        key_env = "K"
        handle = "a"
        modles = ["*"]
        """,
        env={"K": "k" * 32},
    )
    meant = {
        "servr": "server",
        "server.prot": "port",
        "router.capacty": "capacity",
        "router.weights.costs": "cost",
        "sim.sed": "seed",
        "providers.openai.api_key_enw": "api_key_env",
        "models[0].input_per_mtoks": "input_per_mtok",
        "models[0].sim.latency_m": "latency_ms",
        "budgets.global_dayly_usd": "global_daily_usd",
        "budgets.callers.a.daily": "daily_usd",
        "routes.r.chian": "chain",
        "keys[0].modles": "models",
    }
    for field, name in meant.items():
        assert found.get(field) == f"unknown field (did you mean {name!r}?)", (field, found)


def test_an_unknown_field_like_no_known_one_is_only_unknown(tmp_path: Path) -> None:
    found = errors(
        tmp_path, '[server]\nzzzz = 1\n[[keys]]\nkey_env = "K"\nhandle = "a"\nsecrt = 1\n'
    )
    assert found["server.zzzz"] == "unknown field"
    assert found["keys[0].secrt"] == "unknown field"  # (never told to write a secret)


def test_a_file_starting_with_a_utf8_byte_order_mark_is_read(tmp_path: Path) -> None:
    path = tmp_path / "switchman.toml"
    path.write_bytes(b"\xef\xbb\xbf[router]\ncapacity = 5\n")
    assert load_config(path, env={}).router.capacity == 5


# -- the store's file ------------------------------------------------------------------------


def test_the_stores_path_has_its_tilde_expanded_and_may_not_be_empty(tmp_path: Path) -> None:
    config = load(tmp_path, '[server]\ndb = "~/sw.db"\n')
    assert config.server.db == os.path.join(os.path.expanduser("~"), "sw.db")
    assert load(tmp_path, '[server]\ndb = "rel/sw.db"\n').server.db == "rel/sw.db"
    found = errors(tmp_path, '[server]\ndb = ""\n')
    assert set(found) == {"server.db"} and found["server.db"].startswith("must not be empty")


# -- base_url ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "trouble"),
    [
        ("https:///v1", "has no host"),
        ("https://:8000/v1", "has no host"),
        ("https://api.openai.com:99999/v1", "has a port that is not a number from 1 to 65535"),
        ("https://api.openai.com:0/v1", "has a port that is not a number from 1 to 65535"),
        ("https://api.openai.com:x/v1", "has a port that is not a number from 1 to 65535"),
    ],
)
def test_a_base_url_no_call_could_reach_is_an_error_naming_it(
    tmp_path: Path, url: str, trouble: str
) -> None:
    found = errors(tmp_path, f'[providers.openai]\nbase_url = "{url}"\n')
    assert found["providers.openai.base_url"].startswith(trouble), found


def test_a_base_url_with_a_host_and_a_port_is_fine(tmp_path: Path) -> None:
    config = load(tmp_path, '[providers.openai]\nbase_url = "http://[::1]:8000/v1"\n')
    assert config.providers["openai"].base_url == "http://[::1]:8000/v1"


def test_a_cache_price_on_a_wire_that_does_not_bill_by_it_is_warned_of(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Only DeepSeek's wire reports the prompt tokens it bills at its cache-hit price: set
    on another, the price was ignored without a word (billed at the input price)."""
    models = "".join(
        f'[[models]]\nalias = "{alias}"\nprovider = "{provider}"\nmodel_id = "{model_id}"\n'
        "cached_input_per_mtok = 0.01\n"
        for alias, provider, model_id in (
            ("oa", "openai", "gpt-5.5"),
            ("ds", "deepseek", "deepseek-flash"),
        )
    )
    env = {"OPENAI_API_KEY": "sk-" + "o" * 32, "DEEPSEEK_API_KEY": "sk-" + "d" * 32}
    with caplog.at_level(logging.WARNING, logger="switchman.catalog"):
        load(tmp_path, models, env=env)
    said = [r.getMessage() for r in caplog.records if "cached_input_per_mtok" in r.getMessage()]
    assert len(said) == 1 and said[0].startswith("models[0].cached_input_per_mtok: openai's"), said


def test_two_mistakes_in_one_providers_table_are_both_reported(tmp_path: Path) -> None:
    """(A limit out of range hid a base URL that is an endpoint's, to be met on the next
    start.)"""
    found = errors(
        tmp_path,
        '[providers.openai]\nrpm = 0\nbase_url = "https://api.openai.com/v1/chat/completions"\n',
    )
    assert set(found) == {"providers.openai.rpm", "providers.openai.base_url"}, found


@pytest.mark.parametrize("name", ["default_soft_ms", "default_ttft_ms"])
def test_a_default_deadline_past_the_whole_calls_is_named(tmp_path: Path, name: str) -> None:
    """A call's own soft_ms/ttft_ms above its hard_ms is refused; the defaults were taken.
    One left as it was gives way to a shorter default_hard_ms without a word."""
    found = errors(tmp_path, f"[router]\ndefault_hard_ms = 5000\n{name} = 9000\n")
    assert found == {f"router.{name}": "must not exceed default_hard_ms (5000)"}
    found = errors(tmp_path, f"[router]\n{name} = 200000\n")
    assert found == {f"router.{name}": "must not exceed default_hard_ms (120000)"}
    assert load(tmp_path, f"[router]\ndefault_hard_ms = 9000\n{name} = 9000\n")
    assert load(tmp_path, "[router]\ndefault_hard_ms = 1000\n")
    # written out at its default value, it is set all the same
    default = attrs.fields_dict(RouterConfig)[name].default
    found = errors(tmp_path, f"[router]\ndefault_hard_ms = 1000\n{name} = {default}\n")
    assert found == {f"router.{name}": "must not exceed default_hard_ms (1000)"}


def test_a_key_naming_a_route_that_is_a_providers_name_is_told_what_it_grants(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """``models = ["gemini"]`` reads as the provider, but grants the route of that name,
    whose chain goes on to other providers' models: said at load, with the pattern that
    means the provider alone."""
    text = '[[keys]]\nkey_env = "K"\nhandle = "a"\nmodels = ["gemini", "openai"]\n'
    with caplog.at_level(logging.WARNING):
        load(tmp_path, text, env={"K": "k" * 32})
    told = [r.getMessage() for r in caplog.records if "keys[0].models" in r.getMessage()]
    assert len(told) == 1, told  # (openai is a provider's name and no route's)
    assert told[0].startswith("keys[0].models[0]: 'gemini' is the route of that name")
    assert "'gemini/*' allows the provider's models only" in told[0]
