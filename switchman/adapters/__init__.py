"""Wire formats: pure request building and response/stream parsing per provider format."""

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

__all__ = [
    "Adapter",
    "Completion",
    "HttpRequest",
    "Malformed",
    "ProviderRequest",
    "ResponseStarted",
    "StreamEnd",
    "StreamEvent",
    "StreamParser",
    "TextDelta",
]
