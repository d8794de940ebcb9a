"""A model the file brings on a provider of its own: the catalog's facts it takes (those of
the same model at the same provider's API), a price of its own replacing the catalog's
tiers, and a warning for the facts it leaves out."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Final
from urllib.parse import urlsplit

import attrs

from switchman.catalog._catalog import Catalog
from switchman.catalog._credentials import credential_header
from switchman.catalog._spec import ModelSpec, ProviderSpec

log = logging.getLogger(__name__)


def api_domain(url: str | None) -> str:
    """The last two labels of ``url``'s host (``openai.com``), lower case; "" for none."""
    host = (urlsplit(url).hostname or "") if url else ""
    return ".".join(host.rstrip(".").lower().split(".")[-2:])


#: the catalog's prices beside a model's base prices, which a price of the file's replaces
_PRICE_TIERS: Final = (
    "long_input_above",
    "long_input_per_mtok",
    "long_output_per_mtok",
    "cached_input_per_mtok",
)


def priced_by(table: Mapping[str, Any], base: ModelSpec | None) -> ModelSpec | None:
    """``base`` without its long-input and cached prices when ``table`` sets a price of
    its own and not them: a second account's ``gpt-5.5`` at $1 kept the catalog's $10
    long-input tier, ten times the price the file gave."""
    if base is None or not {"input_per_mtok", "output_per_mtok"} & table.keys():
        return base
    cleared: dict[str, Any] = {k: None for k in _PRICE_TIERS if k not in table}
    return attrs.evolve(base, **cleared)


#: what a model the catalog does not have should state, on a provider that bills
_BILLED_FACTS: Final = ("input_per_mtok", "output_per_mtok", "context_window")


def warn_unsaid(path: str, table: Mapping[str, Any], provider: ProviderSpec) -> None:
    """Warn of the facts a model the catalog does not have leaves out, on a provider in
    use that bills (not the simulator nor Ollama; its prices only where the provider has
    a key to bill): a price left out is $0, a model no budget or cost cap limits and that
    ``auto`` ranks cheapest; a window left out is 128,000 tokens."""
    if provider.kind in ("sim", "ollama") or provider.disabled_reason is not None:
        return
    keyed = bool(provider.api_key_env) or any(credential_header(name) for name in provider.headers)
    unsaid = [k for k in _BILLED_FACTS if k not in table and (keyed or k == "context_window")]
    if not unsaid:
        return
    taken = []
    if any(k.endswith("per_mtok") for k in unsaid):
        taken.append("$0 (free: no budget or max_cost_usd limits it)")
    if "context_window" in unsaid:
        taken.append("a window of 128000 tokens")
    log.warning(
        "%s (%r on %s) does not say its %s: taken as %s; set %s unless that is so",
        path,
        table.get("alias"),
        provider.name,
        ", ".join(unsaid),
        " and ".join(taken),
        "it" if len(unsaid) == 1 else "them",
    )


def warn_unbilled(path: str, table: Mapping[str, Any], provider: ProviderSpec) -> None:
    """Warn of a ``cached_input_per_mtok`` the file sets on a wire that does not bill by
    it: only DeepSeek's reports the prompt tokens it bills at its cache-hit price; other
    providers' cache hits are billed at the input price (never below the provider's)."""
    from switchman.adapters._registry import chat_flavor  # (the adapters import the catalog)

    if "cached_input_per_mtok" not in table or provider.kind == "sim":
        return
    if provider.kind == "openai" and chat_flavor(provider).cache_hit_tokens:
        return
    log.warning(
        "%s.cached_input_per_mtok: %s's wire does not bill by it (only DeepSeek's reports "
        "its cache hits that way): prompt tokens read from cache are billed at the input price",
        path,
        provider.name,
    )


def wire_defaults(spec: ModelSpec, table: Mapping[str, Any], provider: ProviderSpec) -> ModelSpec:
    """A model the file brings, with what its provider's wire decides where the file does
    not say: Anthropic's and DeepSeek's wires continue a trailing assistant turn (a cut
    stream goes on by prefill); Perplexity's Agent API takes no stop sequences (a call with
    them would be served without)."""
    from switchman.adapters._registry import (  # (the adapters import the catalog)
        takes_prefill,
        takes_stop,
    )

    if "supports_prefill" not in table and takes_prefill(provider):
        spec = attrs.evolve(spec, supports_prefill=True)
    if "supports_stop" not in table and spec.supports_stop and not takes_stop(provider):
        spec = attrs.evolve(spec, supports_stop=False)
    return spec


def catalog_facts(
    catalog: Catalog, table: Mapping[str, Any], providers: Mapping[str, ProviderSpec]
) -> ModelSpec | None:
    """The catalog's facts (prices, window, output, tier, capabilities) for a model a
    new provider serves under a catalog model's id at the API of the catalog provider
    that has it (its ``base_url``'s domain): a second OpenAI account's ``gpt-5.5`` is
    the catalog's; the same id on a proxy, a router of other providers' models or a
    server of the user's is not (their prices and fees are their own). Its alias and
    provider the table's."""
    provider = providers.get(str(table.get("provider")))
    if provider is None or provider.kind in ("sim", "ollama"):
        return None
    reached = api_domain(provider.base_url)
    same = [
        m
        for m in catalog.models.values()
        if m.model_id == table.get("model_id")
        and (home := catalog.providers.get(m.provider)) is not None
        and home.kind == provider.kind
        and api_domain(home.base_url) == reached
    ]
    if len(same) != 1:
        return None
    return attrs.evolve(same[0], alias=str(table.get("alias")), provider=provider.name)
