"""The sans-I/O shape every wire format implements.

An adapter turns a ``ProviderRequest`` into an ``HttpRequest`` and turns bytes
back into ``Completion`` or a sequence of ``StreamEvent`` values, raising the
``ProviderError`` branch that fits. It never touches the network: the one
async step lives in ``switchman.adapters._http``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final, Protocol

import attrs

from switchman._call import Message
from switchman._result import Usage

#: the user turn put before a conversation that opens with the assistant's (a chat's
#: greeting), for the wire formats whose first turn must be the user's (Anthropic answers
#: 400 "first message must use the user role"; Gemini's turns are ``user`` first too)
OPENING_TURN: Final = "(the conversation begins)"


def alternating(messages: tuple[Message, ...]) -> tuple[str, list[dict[str, Any]]]:
    """``messages`` for a wire that takes the system prompt apart and wants user and
    assistant turns to alternate (Anthropic, Perplexity): the system turns joined by a
    blank line, and the other turns with two of one role in a row said as one, joined so."""
    system = "\n\n".join(m.content for m in messages if m.role == "system")
    turns: list[dict[str, Any]] = []
    for m in messages:
        if m.role == "system":
            continue
        if turns and turns[-1]["role"] == m.role:
            turns[-1]["content"] += "\n\n" + m.content
        else:
            turns.append({"role": m.role, "content": m.content})
    return system, turns


@attrs.frozen(kw_only=True)
class ProviderRequest:
    """What one attempt asks of one model, already resolved to the provider's model id.

    ``messages`` may contain ``system`` turns; an adapter puts them where its
    wire format wants them. A trailing ``assistant`` message is a prefill.
    """

    model_id: str
    messages: tuple[Message, ...]
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    seed: int | None = None
    stop: tuple[str, ...] = ()
    stream: bool = True
    #: the model's context window (input and output tokens), when known: a wire format
    #: that sizes the context per request (Ollama's ``num_ctx``) stays within it
    context_window: int | None = None


@attrs.frozen(kw_only=True)
class HttpRequest:
    method: str
    url: str
    headers: Mapping[str, str]
    json: Any = None


@attrs.frozen(kw_only=True)
class Completion:
    text: str
    finish_reason: str | None
    usage: Usage
    model_id: str | None = None
    #: what the provider says the request cost, fees included, when it says (Perplexity's
    #: ``usage.cost.total_cost``, xAI's ``usage.cost_in_usd_ticks``)
    cost_usd: float | None = None
    #: of ``usage.input_tokens``, those billed at the model's cached-input price: DeepSeek's
    #: ``prompt_cache_hit_tokens``, its ``usage.cached_input_tokens`` (others report cache
    #: hits in their usage too, billed at the input price)
    cached_input_tokens: int = 0
    #: how many of the model's per-request fees the request ran up, when the provider says
    #: and not what it cost (Perplexity's ``usage.tool_calls_details.web_search.invocation``)
    fees: int | None = None
    #: the URLs of the sources the answer cites (Perplexity's search results), in order
    citations: tuple[str, ...] = ()


@attrs.frozen(kw_only=True)
class ResponseStarted:
    """The status line and headers arrived (fed to the rate budget)."""

    status: int
    headers: Mapping[str, str]


@attrs.frozen(kw_only=True)
class TextDelta:
    text: str


@attrs.frozen(kw_only=True)
class Malformed:
    """A stream event that could not be parsed and was skipped."""

    detail: str


@attrs.frozen(kw_only=True)
class StreamEnd:
    """The answer is complete: its finish reason, usage and the provider's model id."""

    finish_reason: str | None
    usage: Usage
    model_id: str | None = None
    #: what the provider says the request cost, fees included, when it says (Perplexity's
    #: ``usage.cost.total_cost``, xAI's ``usage.cost_in_usd_ticks``): the attempt's cost,
    #: rather than tokens at list price
    cost_usd: float | None = None
    #: of ``usage.input_tokens``, those billed at the model's cached-input price: DeepSeek's
    #: ``prompt_cache_hit_tokens``, its ``usage.cached_input_tokens`` (others report cache
    #: hits in their usage too, billed at the input price)
    cached_input_tokens: int = 0
    #: how many of the model's per-request fees the request ran up, when the provider says
    #: and not what it cost (Perplexity's ``usage.tool_calls_details.web_search.invocation``)
    fees: int | None = None
    #: the URLs of the sources the answer cites (Perplexity's search results), in order
    citations: tuple[str, ...] = ()


StreamEvent = ResponseStarted | TextDelta | Malformed | StreamEnd


class StreamParser(Protocol):
    @property
    def finished(self) -> bool:
        """The answer's finish reason arrived: its text is whole, and only its end marker
        (and usage) may still follow. A stream cut or stalled now is ended by ``end``."""
        ...

    def feed(self, data: bytes) -> list[StreamEvent]:
        """Parse the next bytes; raise a ``ProviderError`` for an error or refusal event."""
        ...

    def end(self) -> list[StreamEvent]:
        """The connection closed: finish a complete answer, or raise ``StreamBroken``."""
        ...


class Adapter(Protocol):
    """One wire format, configured for one provider (base URL, key, quirks)."""

    @property
    def provider(self) -> str:
        """The provider's name, set on every ``ProviderError`` the adapter raises."""
        ...

    def build_request(self, request: ProviderRequest) -> HttpRequest: ...

    def parse_response(self, body: bytes) -> Completion: ...

    def parse_error(self, status: int, headers: Mapping[str, str], body: bytes) -> Exception: ...

    def stream_parser(self) -> StreamParser: ...
