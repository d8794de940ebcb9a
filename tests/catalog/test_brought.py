"""Models a file brings on providers of its own (switchman/catalog/_brought.py), loaded
from a real file: the catalog's facts they take, a price of their own, the warning for the
facts they leave out."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from switchman.catalog import builtin_catalog
from tests.catalog.test_config import load

SECOND_ACCOUNT = """
[providers.openai_eu]
kind = "openai"
base_url = "https://eu.api.openai.com/v1"
api_key_env = "OPENAI_EU_KEY"

[[models]]
alias = "eu-gpt"
provider = "openai_eu"
model_id = "gpt-5.5"
"""


def test_a_second_accounts_model_takes_the_catalogs_facts_for_its_id(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A model a new provider serves under a catalog model's id has the catalog's prices,
    window, output and tier (it was free, with a 128,000-token window: no budget limited
    it and ``auto`` ranked it cheapest); what the table says still wins. An id two
    providers of the kind serve is the one the base_url reaches."""
    env = {"OPENAI_EU_KEY": "sk-eu-0123456789abcdef"}
    with caplog.at_level(logging.WARNING):
        config = load(tmp_path, SECOND_ACCOUNT + 'trust_tier = "untrusted"\n', env)
    mine, catalogs = config.models["eu-gpt"], builtin_catalog().models["openai/gpt-5.5"]
    assert mine.provider == "openai_eu" and mine.model_id == "gpt-5.5"
    assert (mine.input_per_mtok, mine.output_per_mtok) == (
        catalogs.input_per_mtok,
        catalogs.output_per_mtok,
    )
    assert mine.input_per_mtok > 0 and mine.context_window == catalogs.context_window
    assert mine.long_input_above == catalogs.long_input_above
    assert mine.trust_tier == "untrusted"
    assert "does not say" not in caplog.text
    groq_like = (
        '[providers.fast]\nkind = "openai"\nbase_url = "https://api.groq.com/openai/v1"\n'
        'api_key_env = "FAST_KEY"\n[[models]]\nalias = "oss"\nprovider = "fast"\n'
        'model_id = "openai/gpt-oss-120b"\n'
    )
    config = load(tmp_path, groq_like, {"FAST_KEY": "gsk-0123456789abcdef"})
    groq = builtin_catalog().models["groq/openai/gpt-oss-120b"]
    assert config.models["oss"].input_per_mtok == groq.input_per_mtok


def test_a_model_the_catalog_lacks_without_its_prices_or_window_is_warned_of(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Its prices where its provider has a key to bill with, its window anywhere; not for
    a provider the file turns off."""
    keyed = (
        '[providers.router]\nkind = "openai"\nbase_url = "https://openrouter.ai/api/v1"\n'
        'api_key_env = "ROUTER_KEY"\n'
        '[[models]]\nalias = "mine"\nprovider = "router"\nmodel_id = "my-model"\n'
        "input_per_mtok = 0.5\n"
    )
    env = {"ROUTER_KEY": "sk-or-0123456789abcdef"}
    with caplog.at_level(logging.WARNING):
        config = load(tmp_path, keyed, env)
    assert config.models["mine"].output_per_mtok == 0
    assert (
        "models[0] ('mine' on router) does not say its output_per_mtok, context_window: taken "
        "as $0 (free: no budget or max_cost_usd limits it) and a window of 128000 tokens"
    ) in caplog.text
    turned_off = keyed.replace('ROUTER_KEY"\n', 'ROUTER_KEY"\nenabled = false\n', 1)
    for quiet in (keyed + "output_per_mtok = 0\ncontext_window = 8192\n", turned_off):
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            load(tmp_path, quiet, env)
        assert "does not say" not in caplog.text, quiet
    keyless = (
        '[providers.vllm]\nkind = "openai"\nbase_url = "http://127.0.0.1:8000/v1"\n'
        '[[models]]\nalias = "local"\nprovider = "vllm"\nmodel_id = "m"\n'
    )
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        load(tmp_path, keyless)
    assert (
        "models[0] ('local' on vllm) does not say its context_window: taken as a window of "
        "128000 tokens; set it unless that is so"
    ) in caplog.text


def test_a_catalog_id_elsewhere_than_its_providers_api_takes_none_of_its_facts(
    tmp_path: Path,
) -> None:
    """A router of other providers' models (OpenRouter) or a server of the user's serving
    an id the catalog has: its prices, fees, window and tier are its own, not the catalog
    provider's (Perplexity's search fee and capability went to OpenRouter's models; a local
    gpt-oss-20b was billed Groq's prices)."""
    text = (
        '[providers.router]\nkind = "openai"\nbase_url = "https://openrouter.ai/api/v1"\n'
        '[providers.gpu]\nkind = "openai"\nbase_url = "http://127.0.0.1:8000/v1"\n'
        '[[models]]\nalias = "or-gpt"\nprovider = "router"\nmodel_id = "openai/gpt-5.4"\n'
        '[[models]]\nalias = "oss"\nprovider = "gpu"\nmodel_id = "openai/gpt-oss-20b"\n'
    )
    config = load(tmp_path, text)
    for alias in ("or-gpt", "oss"):
        m = config.models[alias]
        assert (m.input_per_mtok, m.request_fee_usd, m.capabilities) == (0.0, 0.0, ()), m
        assert m.trust_tier == "standard" and m.long_input_above is None


def test_a_price_of_the_files_own_drops_the_catalogs_tiers_it_does_not_restate(
    tmp_path: Path,
) -> None:
    """A second account's gpt-5.5 at $1 kept the catalog's $10 long-input tier, ten times
    the price the file gave; so did a catalog model given a price of its own."""
    env = {"OPENAI_EU_KEY": "sk-eu-0123456789abcdef"}
    mine = load(tmp_path, SECOND_ACCOUNT + "input_per_mtok = 1.0\n", env).models["eu-gpt"]
    assert mine.input_per_mtok == 1.0 and mine.long_input_above is None
    assert mine.cost(300_000, 0) == pytest.approx(0.3)
    again = '[[models]]\nalias = "openai/gpt-5.4"\noutput_per_mtok = 10.0\n'
    assert load(tmp_path, again).models["openai/gpt-5.4"].long_input_above is None
    kept = again + "long_input_above = 272000\nlong_input_per_mtok = 5.0\n"
    kept += "long_output_per_mtok = 22.5\n"
    assert load(tmp_path, kept).models["openai/gpt-5.4"].long_input_above == 272_000
