"""make_adapter: wire format by kind, quirks by name; the package re-exports."""

from __future__ import annotations

import pytest

import switchman.adapters as adapters
from switchman._call import Message
from switchman.adapters import (
    AnthropicAdapter,
    GeminiAdapter,
    OllamaAdapter,
    OpenAIChatAdapter,
    OpenAIResponsesAdapter,
    ProviderRequest,
    make_adapter,
)
from switchman.catalog import ProviderSpec
from switchman.catalog._spec import Kind

REQUEST = ProviderRequest(model_id="m", messages=(Message(role="user", content="hi"),))


@pytest.mark.parametrize(
    ("name", "kind", "cls", "url"),
    [
        ("openai", "openai", OpenAIChatAdapter, "https://api.openai.com/v1/chat/completions"),
        ("xai", "openai", OpenAIChatAdapter, "https://api.x.ai/v1/chat/completions"),
        ("mistral", "openai", OpenAIChatAdapter, "https://api.mistral.ai/v1/chat/completions"),
        ("groq", "openai", OpenAIChatAdapter, "https://api.groq.com/openai/v1/chat/completions"),
        ("together", "openai", OpenAIChatAdapter, "https://api.together.xyz/v1/chat/completions"),
        ("deepseek", "openai", OpenAIChatAdapter, "https://api.deepseek.com/chat/completions"),
        ("perplexity", "openai", OpenAIResponsesAdapter, "https://api.perplexity.ai/v1/responses"),
        ("anthropic", "anthropic", AnthropicAdapter, "https://api.anthropic.com/v1/messages"),
        (
            "gemini",
            "gemini",
            GeminiAdapter,
            "https://generativelanguage.googleapis.com/v1beta/models/m:streamGenerateContent?alt=sse",
        ),
        ("ollama", "ollama", OllamaAdapter, "http://localhost:11434/api/chat"),
    ],
)
def test_default_adapter_per_provider(name: str, kind: Kind, cls: type, url: str) -> None:
    adapter = make_adapter(ProviderSpec(name=name, kind=kind), "key-123")
    assert type(adapter) is cls
    assert adapter.provider == name
    assert adapter.build_request(REQUEST).url == url


def test_custom_openai_compatible_provider_needs_a_base_url() -> None:
    with pytest.raises(ValueError, match="base_url"):
        make_adapter(ProviderSpec(name="vllm", kind="openai"), None)
    adapter = make_adapter(
        ProviderSpec(name="vllm", kind="openai", base_url="http://127.0.0.1:8000/v1"), None
    )
    built = adapter.build_request(REQUEST)
    assert built.url == "http://127.0.0.1:8000/v1/chat/completions"
    assert built.json["messages"] == [{"role": "user", "content": "hi"}]
    assert adapter.provider == "vllm"


def test_a_renamed_provider_of_a_native_kind_keeps_its_name() -> None:
    spec = ProviderSpec(name="claude-eu", kind="anthropic", base_url="http://127.0.0.1:1")
    adapter = make_adapter(spec, "k")
    assert isinstance(adapter, AnthropicAdapter) and adapter.provider == "claude-eu"


def test_sim_has_no_wire_format() -> None:
    with pytest.raises(ValueError, match="sim"):
        make_adapter(ProviderSpec(name="sim", kind="sim"), None)


def test_package_exports_are_sorted_and_complete() -> None:
    assert adapters.__all__ == sorted(adapters.__all__)
    public = {n for n in vars(adapters) if not n.startswith("_")}
    modules = {n for n in public if type(getattr(adapters, n)).__name__ == "module"}
    assert set(adapters.__all__) == public - modules


@pytest.mark.parametrize(
    ("base_url", "field", "cls"),
    [
        ("https://eu.api.openai.com/v1", "max_completion_tokens", OpenAIChatAdapter),
        ("https://myres.openai.azure.com/openai/v1", "max_completion_tokens", OpenAIChatAdapter),
        ("https://api.mistral.ai/v1", "random_seed", OpenAIChatAdapter),
        ("https://api.perplexity.ai", None, OpenAIResponsesAdapter),
        ("http://127.0.0.1:8000/v1", "max_tokens", OpenAIChatAdapter),
    ],
)
def test_a_second_account_takes_the_quirks_of_the_provider_its_base_url_reaches(
    base_url: str, field: str | None, cls: type
) -> None:
    """``[providers.openai_eu] kind = "openai"`` at OpenAI's API is sent what OpenAI takes
    (``max_completion_tokens``: its reasoning models refuse ``max_tokens``), a second
    Mistral account its ``random_seed``; a server of the user's, plain Chat Completions."""
    adapter = make_adapter(ProviderSpec(name="second", kind="openai", base_url=base_url), "k-1")
    assert type(adapter) is cls and adapter.provider == "second"
    request = ProviderRequest(
        model_id="m", messages=(Message(role="user", content="hi"),), max_tokens=5, seed=3
    )
    if field is not None:
        assert field in adapter.build_request(request).json
