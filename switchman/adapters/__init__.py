"""Wire formats: pure request building and response/stream parsing per provider format."""

from switchman.adapters._anthropic import AnthropicAdapter
from switchman.adapters._base import (
    Adapter,
    Completion,
    HttpRequest,
    Malformed,
    ProviderRequest,
    ResponseStarted,
    StreamEnd,
    StreamEvent,
    StreamParser,
    TextDelta,
)
from switchman.adapters._flavors import ChatFlavor
from switchman.adapters._gemini import GeminiAdapter
from switchman.adapters._http import make_client, send_attempt
from switchman.adapters._ollama import OllamaAdapter, discover_ollama_models
from switchman.adapters._openai import OpenAIChatAdapter, OpenAIResponsesAdapter
from switchman.adapters._registry import make_adapter

__all__ = [
    "Adapter",
    "AnthropicAdapter",
    "ChatFlavor",
    "Completion",
    "GeminiAdapter",
    "HttpRequest",
    "Malformed",
    "OllamaAdapter",
    "OpenAIChatAdapter",
    "OpenAIResponsesAdapter",
    "ProviderRequest",
    "ResponseStarted",
    "StreamEnd",
    "StreamEvent",
    "StreamParser",
    "TextDelta",
    "discover_ollama_models",
    "make_adapter",
    "make_client",
    "send_attempt",
]
