"""Choose the adapter for a provider: wire format by ``kind``, quirks by ``name``, or by
the provider its ``base_url`` reaches."""

from __future__ import annotations

from typing import Final
from urllib.parse import urlsplit

from switchman.adapters._anthropic import DEFAULT_BASE_URL as ANTHROPIC_BASE_URL
from switchman.adapters._anthropic import AnthropicAdapter
from switchman.adapters._base import Adapter
from switchman.adapters._flavors import FLAVORS, PERPLEXITY_BASE_URL, ChatFlavor
from switchman.adapters._gemini import DEFAULT_BASE_URL as GEMINI_BASE_URL
from switchman.adapters._gemini import GeminiAdapter
from switchman.adapters._ollama import DEFAULT_BASE_URL as OLLAMA_BASE_URL
from switchman.adapters._ollama import OllamaAdapter
from switchman.adapters._openai import OpenAIChatAdapter, OpenAIResponsesAdapter
from switchman.catalog._brought import api_domain
from switchman.catalog._spec import ProviderSpec


def _like(provider: ProviderSpec) -> str | None:
    """Whose API a provider of kind ``openai`` speaks: its name's, when that is a known
    provider's, else the one its ``base_url`` reaches (None: plain Chat Completions)."""
    name = provider.name
    return name if name in FLAVORS or name == "perplexity" else _reached(provider.base_url)


def takes_stop(provider: ProviderSpec) -> bool:
    """Whether ``provider``'s wire takes stop sequences: not Perplexity's Agent API (the
    Responses format has no ``stop``), whose models a file brings default to
    ``supports_stop = false``, as the catalog's are."""
    return not (provider.kind == "openai" and _like(provider) == "perplexity")


def takes_prefill(provider: ProviderSpec) -> bool:
    """Whether ``provider``'s wire continues a trailing assistant turn (a prefill):
    Anthropic's, and DeepSeek's by its beta's prefix completion."""
    if provider.kind == "anthropic":
        return True
    return provider.kind == "openai" and chat_flavor(provider).beta_prefix


def chat_flavor(provider: ProviderSpec) -> ChatFlavor:
    """The quirks of the Chat Completions API ``provider`` speaks (``_like``)."""
    return FLAVORS.get(_like(provider) or provider.name, ChatFlavor())


def make_adapter(provider: ProviderSpec, api_key: str | None) -> Adapter:
    """The adapter for ``provider``, holding ``api_key`` (never shown in its repr).

    ``provider.base_url`` replaces the wire format's default; ``provider.headers``
    are added to every request. Kind ``openai`` takes per-provider quirks by name
    (openai, xai, mistral, groq, together, deepseek; perplexity speaks the
    Responses format of its Agent API), or, under another name, those of the provider
    whose API its ``base_url`` reaches (a second OpenAI account's ``openai_eu``); any other
    gets plain Chat Completions and must give a ``base_url``. Kind ``sim`` has no wire
    format: ``ValueError``.
    """
    name, headers = provider.name, dict(provider.headers)
    match provider.kind:
        case "openai" if _like(provider) == "perplexity":
            return OpenAIResponsesAdapter(
                provider=name,
                base_url=provider.base_url or PERPLEXITY_BASE_URL,
                api_key=api_key,
                extra_headers=headers,
            )
        case "openai":
            flavor = chat_flavor(provider)
            base_url = provider.base_url or flavor.base_url
            if not base_url:
                raise ValueError(f"provider {name!r} of kind 'openai' needs a base_url")
            return OpenAIChatAdapter(
                provider=name,
                base_url=base_url,
                api_key=api_key,
                flavor=flavor,
                extra_headers=headers,
            )
        case "anthropic":
            return AnthropicAdapter(
                provider=name,
                base_url=provider.base_url or ANTHROPIC_BASE_URL,
                api_key=api_key,
                extra_headers=headers,
            )
        case "gemini":
            return GeminiAdapter(
                provider=name,
                base_url=provider.base_url or GEMINI_BASE_URL,
                api_key=api_key,
                extra_headers=headers,
            )
        case "ollama":
            return OllamaAdapter(
                provider=name,
                base_url=provider.base_url or OLLAMA_BASE_URL,
                api_key=api_key,
                extra_headers=headers,
            )
        case _:
            raise ValueError(
                f"provider {name!r} has kind {provider.kind!r}, which has no HTTP wire format"
            )


#: the provider whose quirks a base_url's domain calls for
_BY_DOMAIN: dict[str, str] = {
    api_domain(url): name
    for name, url in (
        *((n, f.base_url) for n, f in FLAVORS.items()),
        ("perplexity", PERPLEXITY_BASE_URL),
    )
}


#: hosts under which a provider's own API is served by another's cloud (Azure OpenAI)
_BY_HOST_SUFFIX: Final = ((".openai.azure.com", "openai"),)


def _reached(base_url: str | None) -> str | None:
    """The catalog provider whose API ``base_url`` reaches (by its domain, or Azure
    OpenAI's hosts), else None."""
    if not base_url:
        return None
    host = (urlsplit(base_url).hostname or "").rstrip(".").lower()
    for suffix, name in _BY_HOST_SUFFIX:
        if host.endswith(suffix):
            return name
    return _BY_DOMAIN.get(api_domain(base_url))
