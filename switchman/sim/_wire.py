"""What the fake provider server says, byte for byte, in each wire format (sans-I/O).

A ``Wire`` parses a request body into a ``ProviderRequest`` and renders the
pieces of a reply: an error reply, a whole (non-streaming) body, and the
events of a stream (head, text chunks, a malformed event, finish, terminator,
refusal, mid-stream error). The server's executor decides *when* each piece
goes out, following the ``Plan``; the wires only decide *what* it looks like.
"""

from __future__ import annotations

import abc
import datetime
import json
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar, Final

import attrs

from switchman._call import Message
from switchman.adapters._base import ProviderRequest
from switchman.sim._plan import Failure, Plan

#: fixed timestamps keep bodies deterministic (2025-11-25T16:00:00Z)
CREATED: Final = 1764086400
CREATED_AT: Final = "2025-11-25T16:00:00.000000Z"
#: placeholder string for ``filler``; JSON escapes it, so it cannot clash with real text
SLOT: Final = "\x00"
_SLOT_JSON: Final = b'"\\u0000"'

Headers = tuple[tuple[str, str], ...]


class BadBody(ValueError):
    """The request body does not describe a chat request in this wire format."""


class Rejected(Exception):
    """The provider refuses this request with ``reply`` (a parameter it does not take...)."""

    def __init__(self, reply: Reply) -> None:
        super().__init__(reply.status)
        self.reply = reply


@attrs.frozen(kw_only=True)
class Parsed:
    """A request read off the wire: the model name as sent, and what it asks."""

    model: str
    request: ProviderRequest
    include_usage: bool = False
    #: Gemini's streamGenerateContent without alt=sse answers one JSON array
    array: bool = False
    #: the model thinks before answering and bills reasoning tokens (a reasoning family,
    #: DeepSeek's default thinking mode)
    thinking: bool = False


@attrs.frozen(kw_only=True)
class Exchange:
    """One reply being written: the plan, the request it answers and the reply's id."""

    plan: Plan
    parsed: Parsed
    id: str
    #: wall-clock time the request arrived (Unix seconds), for timestamps in headers
    wall: float = 0.0
    #: the API key as sent ("" when none), for the masked echo of a rejected key
    key: str = ""

    @property
    def model(self) -> str:
        return self.parsed.model


@attrs.frozen(kw_only=True)
class Reply:
    """A whole HTTP reply."""

    status: int
    headers: Headers = ()
    body: bytes = b""
    content_type: str = "application/json"


def with_header(reply: Reply, name: str, value: str) -> Reply:
    """``reply`` with header ``name`` (lower-case) added, unless it has one already."""
    if any(key == name for key, _ in reply.headers):
        return reply
    return attrs.evolve(reply, headers=(*reply.headers, (name, value)))


def dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


def json_reply(status: int, obj: Any, headers: Headers = ()) -> Reply:
    return Reply(status=status, headers=headers, body=dumps(obj))


def filler(obj: Any, frame: Callable[[bytes], bytes]) -> Callable[[str], bytes]:
    """A fast renderer of ``frame(dumps(obj))`` with every ``SLOT`` string in ``obj`` set to
    one text.

    ``obj`` is encoded once; each call only encodes the text.
    """
    parts = frame(dumps(obj)).split(_SLOT_JSON)

    def fill(text: str) -> bytes:
        return json.dumps(text, ensure_ascii=False).encode().join(parts)

    return fill


def sse(obj: Any) -> bytes:
    return b"data: " + dumps(obj) + b"\n\n"


def named(event: str, obj: Any) -> bytes:
    return b"event: " + event.encode() + b"\ndata: " + dumps(obj) + b"\n\n"


def retry_headers(failure: Failure) -> Headers:
    if failure.retry_after is None:
        return ()
    return (("retry-after", f"{failure.retry_after:g}"),)


def rfc3339(unix: float, *, up: bool = True) -> str:
    """A whole-second UTC timestamp such as ``2026-11-25T17:05:12Z``, rounded up (never
    earlier than ``unix``) or, with ``up=False``, down (never later)."""
    whole = math.ceil(unix) if up else math.floor(unix)
    moment = datetime.datetime.fromtimestamp(whole, tz=datetime.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def bearer(headers: Mapping[str, str]) -> str | None:
    """The token of an ``Authorization: Bearer`` header; ``None`` when there is none."""
    scheme, _, token = headers.get("authorization", "").strip().partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


def masked_key(key: str, *, keep_start: int, keep_end: int, stars: str = "****") -> str:
    """A key as providers echo it in a bad-key message: its ends kept, the middle starred."""
    if len(key) <= keep_start + keep_end + 4:
        return stars
    return key[:keep_start] + stars + (key[-keep_end:] if keep_end else "")


def reasoning_tokens(ex: Exchange) -> int:
    """Reasoning tokens a thinking model bills for the plan's answer: none unless the
    request thinks (``Parsed.thinking``), else two per answer token and five, within the
    request's output limit together with the answer.

    Providers count reasoning and answer against one limit: OpenAI's
    ``max_completion_tokens``, Gemini's ``maxOutputTokens``, xAI's and DeepSeek's
    ``max_tokens``, wherever their usage reports the reasoning."""
    if not ex.parsed.thinking:
        return 0
    answer = ex.plan.usage.output_tokens
    wanted = 2 * answer + 5
    limit = ex.parsed.request.max_tokens
    return wanted if limit is None else min(wanted, max(limit - answer, 0))


def thinking_text(plan: Plan) -> str:
    """The visible chain of thought of a thinking model (DeepSeek ``reasoning_content``)."""
    return f"The user asks something; I answer in {plan.usage.output_tokens} words."


def answer_text(plan: Plan) -> str:
    """The text a reply carries: the refusal's words for a refusal, else the delivered chunks."""
    if plan.ending == "refusal":
        return plan.refusal
    return "".join(plan.delivered)


def delivered_tokens(plan: Plan) -> int:
    """Output tokens of the text that went out (``answer_text``): what an answer that broke
    off after it began (``ending == "error"``) bills, not the whole planned answer."""
    return len(answer_text(plan).split())


# -- reading request bodies ----------------------------------------------------------------

_ROLES: Final[Mapping[str, str]] = {
    "system": "system",
    "developer": "system",
    "user": "user",
    "assistant": "assistant",
    "model": "assistant",
}


def require_object(body: Any) -> Mapping[str, Any]:
    if not isinstance(body, dict):
        raise BadBody("the request body must be a JSON object")
    return body


def require_str(body: Mapping[str, Any], key: str) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not value:
        raise BadBody(f"{key}: a non-empty string is required")
    return value


def positive_int(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    return None


def text_of(content: Any) -> str:
    """Text of a message content: a string, or a list of text parts / blocks."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [
            p["text"] for p in content if isinstance(p, dict) and isinstance(p.get("text"), str)
        ]
        return "".join(parts)
    return ""


def chat_messages(items: Any, *, role_key: str = "role", content: str = "content") -> list[Message]:
    """Messages from a list of ``{role, content}`` objects; roles outside chat turns are skipped."""
    if not isinstance(items, list):
        raise BadBody("messages: a list is required")
    out: list[Message] = []
    for item in items:
        if not isinstance(item, dict):
            raise BadBody("messages: every item must be an object")
        role = _ROLES.get(str(item.get(role_key, "user")))
        if role is not None:
            out.append(Message(role=role, content=text_of(item.get(content))))  # type: ignore[arg-type]
    return out


def provider_request(
    model: str,
    messages: Sequence[Message],
    *,
    max_tokens: int | None,
    stream: bool,
    system: str = "",
    stop: Any = None,
) -> ProviderRequest:
    """What the fake answers: the chat, its output limit and its stop sequences (a string
    or a list of them, as the wires send them; the answer ends before the first found)."""
    turns = tuple(messages)
    if system:
        turns = (Message(role="system", content=system), *turns)
    return ProviderRequest(
        model_id=model, messages=turns, max_tokens=max_tokens, stream=stream, stop=stops(stop)
    )


def stops(value: Any) -> tuple[str, ...]:
    """Stop sequences as a wire gives them: one string, or a list of strings."""
    if isinstance(value, str):
        return (value,) if value else ()
    if isinstance(value, list):
        return tuple(s for s in value if isinstance(s, str) and s)
    return ()


class Wire(abc.ABC):
    """One wire format. Instances hold no state; one per format is enough."""

    name: ClassVar[str]
    stream_type: ClassVar[str] = "text/event-stream"

    @abc.abstractmethod
    def parse(self, body: Any, *, path_model: str | None, stream: bool) -> Parsed:
        """Read a request body; ``BadBody`` when it is not a chat request, ``Rejected``
        when the provider refuses what it asks."""

    def api_key(self, headers: Mapping[str, str], query: Mapping[str, str]) -> str | None:
        """The API key the request carries where this provider looks for it (``None``: none).

        ``headers`` have lower-case names; ``query`` holds the URL's query parameters.
        """
        return bearer(headers)

    def refuse_headers(self, headers: Mapping[str, str], query: Mapping[str, str]) -> Reply | None:
        """The provider's reply to a request missing a header it requires (its key...)."""
        if self.api_key(headers, query) is None:
            return self.no_key()
        return None

    @abc.abstractmethod
    def no_key(self) -> Reply:
        """The provider's reply to a request without a (valid) API key."""

    def replan(self, plan: Plan, request: ProviderRequest) -> Plan:
        """What this provider really does with ``plan`` (some never fail the way it says)."""
        return plan

    def ok_headers(self, ex: Exchange) -> Headers:
        """Extra headers of a successful reply (rate-limit headroom and the like)."""
        return ()

    def stamped(self, reply: Reply, rid: str) -> Reply:
        """``reply`` carrying the request id ``rid`` (``Exchange.id``) wherever this provider
        sends one on every reply (a header, the error body); most send none."""
        return reply

    def preamble(self, ex: Exchange) -> bytes:
        """Stream bytes sent with the 200's headers, before the time to first token."""
        return b""

    @abc.abstractmethod
    def bad_request(self, message: str) -> Reply:
        """The reply to a body that is no valid request: a 400 in this format's error shape
        (Mistral's is a 422)."""

    @abc.abstractmethod
    def not_found(self, message: str) -> Reply:
        """A 404 in this format's error shape."""

    @abc.abstractmethod
    def error(self, failure: Failure, ex: Exchange) -> Reply:
        """The reply to a failure plan (``reset`` and ``silent`` never get here)."""

    @abc.abstractmethod
    def whole(self, ex: Exchange) -> Reply:
        """The non-streaming 200 reply: the answer, or the refusal."""

    def head(self, ex: Exchange) -> bytes:
        """Stream events before the first text chunk."""
        return b""

    @abc.abstractmethod
    def chunker(self, ex: Exchange) -> Callable[[str], bytes]:
        """A renderer of one text-chunk event."""

    @abc.abstractmethod
    def malformed(self, ex: Exchange) -> bytes:
        """One complete stream event whose payload does not parse."""

    @abc.abstractmethod
    def finish(self, ex: Exchange) -> bytes:
        """Events carrying the finish reason and usage, before the terminator."""

    def terminator(self, ex: Exchange) -> bytes:
        """The format's end-of-stream marker (none for Gemini: the stream ends at EOF)."""
        return b""

    @abc.abstractmethod
    def refusal(self, ex: Exchange) -> bytes:
        """The events of a refused answer after ``head``, up to the terminator."""

    @abc.abstractmethod
    def mid_error(self, ex: Exchange) -> bytes:
        """An error event after the stream began."""
