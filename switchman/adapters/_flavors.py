"""What each OpenAI-compatible provider does differently from OpenAI's own Chat
Completions (``ChatFlavor``), by provider name."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

import attrs


@attrs.frozen(kw_only=True)
class ChatFlavor:
    """What one OpenAI-compatible provider does differently from OpenAI's own API."""

    base_url: str = ""
    #: OpenAI's current models take ``developer`` where others take ``system``
    system_role: str = "system"
    #: OpenAI and Groq want ``max_completion_tokens`` (reasoning models reject ``max_tokens``)
    max_tokens_field: str = "max_tokens"
    #: Mistral calls it ``random_seed``; DeepSeek documents no seed at all
    seed_field: str | None = "seed"
    #: ask for the usage chunk with ``stream_options``; Mistral rejects it, Groq and
    #: Together send usage anyway (Groq in ``x_groq.usage``)
    stream_usage_option: bool = True
    #: Mistral continues a trailing assistant message only when it says ``prefix: true``
    assistant_prefix: bool = False
    #: Mistral's answer to a ``prefix`` turn begins with that turn's text again: dropped
    echoes_prefix: bool = False
    #: Mistral refuses a system turn after another role's ("Unexpected role 'system'
    #: after role 'assistant'"): every system turn goes first, as one
    system_first: bool = False
    #: DeepSeek refuses a trailing assistant turn but in its prefix completion, a beta:
    #: such a turn is sent ``prefix: true``, to ``{base}/beta/chat/completions``
    beta_prefix: bool = False
    #: xAI's ``completion_tokens`` leaves out the reasoning tokens it bills as output
    #: (``total_tokens`` = prompt + completion + reasoning); elsewhere (OpenAI, Groq,
    #: DeepSeek) ``completion_tokens`` already includes them
    completion_excludes_reasoning: bool = False
    #: DeepSeek's V4 models think unless told not to, and while thinking they ignore
    #: temperature / top_p and want ``reasoning_content`` back on every earlier assistant
    #: turn (which a continuation's prefill cannot give): send ``thinking: disabled``
    disable_thinking: bool = False
    #: xAI reports what it billed, ``usage.cost_in_usd_ticks`` (1e-10 USD a tick, cached
    #: input discounts and search sources included): that is the attempt's cost
    cost_in_ticks: bool = False
    #: DeepSeek reports ``usage.prompt_cache_hit_tokens``, the prompt tokens it bills at
    #: its cache-hit price (the model's ``cached_input_per_mtok``)
    cache_hit_tokens: bool = False


FLAVORS: Final[Mapping[str, ChatFlavor]] = {
    "openai": ChatFlavor(
        base_url="https://api.openai.com/v1",
        system_role="developer",
        max_tokens_field="max_completion_tokens",
    ),
    "xai": ChatFlavor(
        base_url="https://api.x.ai/v1", completion_excludes_reasoning=True, cost_in_ticks=True
    ),
    "mistral": ChatFlavor(
        base_url="https://api.mistral.ai/v1",
        seed_field="random_seed",
        stream_usage_option=False,
        assistant_prefix=True,
        echoes_prefix=True,
        system_first=True,
    ),
    "groq": ChatFlavor(
        base_url="https://api.groq.com/openai/v1",
        max_tokens_field="max_completion_tokens",
        stream_usage_option=False,
    ),
    "together": ChatFlavor(base_url="https://api.together.xyz/v1", stream_usage_option=False),
    "deepseek": ChatFlavor(
        base_url="https://api.deepseek.com",
        seed_field=None,
        disable_thinking=True,
        cache_hit_tokens=True,
        beta_prefix=True,
    ),
}
PERPLEXITY_BASE_URL: Final = "https://api.perplexity.ai"
