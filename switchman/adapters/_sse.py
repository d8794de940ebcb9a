"""Shared wire helpers: SSE and NDJSON framing, tolerant JSON access, error mapping.

Everything here is pure (no I/O, no clock except the ``Retry-After`` HTTP-date
form). The framing decoders are incremental: feed them bytes as they arrive,
in chunks of any size, and ``close()`` them when the connection ends.

Error mapping is shared because the providers disagree mostly in body shape,
not in meaning: ``error_fields`` pulls a message and the codes out of any of
the shapes in providers.md, and ``map_error`` turns status + codes + message
into the one ``ProviderError`` branch that fits, with the API key scrubbed.
"""

from __future__ import annotations

import codecs
import json
import math
import re
import time
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Final, TypeAlias, TypeVar

import attrs

from switchman._call import valid_text
from switchman._errors import (
    AuthError,
    BadReply,
    BadRequest,
    ContentRejected,
    ContextExceeded,
    ModelNotFound,
    ProviderError,
    QuotaExhausted,
    RateLimited,
    Refused,
    StreamBroken,
    UpstreamError,
)
from switchman._result import Usage
from switchman.catalog._credentials import CREDENTIAL_MIN
from switchman.policy._ratelimit import MAX_HOLD_S, clamp_hold, go_duration, parse_retry_after

if TYPE_CHECKING:
    from switchman.adapters._base import StreamEvent

T = TypeVar("T")


def collect(
    handle: Callable[[list[T], list[StreamEvent]], None], items: list[T]
) -> list[StreamEvent]:
    """The stream events a parser's ``handle`` makes of ``items`` (SSE events, lines).

    A ``ProviderError`` it raises (a provider's error event) carries the events made
    before it from the same read (``events_before``): the text that came with the error
    still goes out, and is billed, however the network split the bytes."""
    events: list[StreamEvent] = []
    try:
        handle(items, events)
    except ProviderError as exc:
        exc.events_before = tuple(events)
        raise
    return events


# --------------------------------------------------------------------------- framing

_LINE_BREAK: Final = re.compile(r"\r\n|\r|\n")
#: the longest line a stream may send: one event far past any answer is a broken upstream
#: (an answer's text is bounded by its max_tokens, checked as it arrives)
MAX_LINE_CHARS: Final = 16 * 1024 * 1024


class LineDecoder:
    """Bytes in, complete text lines out (``\\n``, ``\\r\\n`` or ``\\r`` ends a line)."""

    def __init__(self) -> None:
        # a byte-order mark at the very start is not text (the SSE standard ignores it)
        self._utf8 = codecs.getincrementaldecoder("utf-8-sig")(errors="replace")
        self._buffer = ""

    def feed(self, data: bytes) -> list[str]:
        self._buffer += self._utf8.decode(data)
        if len(self._buffer) > MAX_LINE_CHARS:
            self._too_long()
        # A trailing "\r" may be the first half of "\r\n": keep it for the next chunk.
        if "\r" not in self._buffer:  # the usual case: plain "\n" line ends, no regex
            parts = self._buffer.split("\n")
            self._buffer = parts.pop()
            return parts
        hold = self._buffer.endswith("\r")
        text = self._buffer[:-1] if hold else self._buffer
        parts = _LINE_BREAK.split(text)
        self._buffer = parts.pop() + ("\r" if hold else "")
        return parts

    def _too_long(self) -> None:
        """Raise ``StreamBroken`` if the unfinished line is past ``MAX_LINE_CHARS``."""
        end = max(self._buffer.rfind("\n"), self._buffer.rfind("\r"))
        if len(self._buffer) - end - 1 > MAX_LINE_CHARS:
            raise StreamBroken(
                f"a line of the stream passed {MAX_LINE_CHARS:,} characters without ending",
                status=200,
            )

    def close(self) -> list[str]:
        """The rest, as lines; a last line without its line break counts as a line."""
        rest = self._buffer + self._utf8.decode(b"", final=True)
        self._buffer = ""
        lines = _LINE_BREAK.split(rest)
        if lines and lines[-1] == "":
            lines.pop()
        return lines


@attrs.frozen(kw_only=True)
class SseEvent:
    """One dispatched server-sent event.

    ``data`` is None when the event had no ``data:`` line; ``raw`` holds lines
    that are not SSE syntax at all (Gemini can send a bare JSON error mid-stream).
    """

    event: str | None = None
    data: str | None = None
    raw: str | None = None


_FIELD: Final = re.compile(r"^(data|event|id|retry)(?::|$)")


class SseDecoder:
    """Incremental ``text/event-stream`` decoder: comments (``: keep-alive``) are dropped."""

    def __init__(self) -> None:
        self._lines = LineDecoder()
        self._event: str | None = None
        self._data: list[str] = []
        self._raw: list[str] = []

    def feed(self, data: bytes) -> list[SseEvent]:
        return self._take(self._lines.feed(data))

    def close(self) -> list[SseEvent]:
        """Flush: an event cut off before its blank line is still dispatched."""
        events = self._take(self._lines.close())
        pending = self._dispatch()
        return [*events, pending] if pending is not None else events

    def _take(self, lines: Iterable[str]) -> list[SseEvent]:
        events: list[SseEvent] = []
        for line in lines:
            if line == "":
                event = self._dispatch()
                if event is not None:
                    events.append(event)
            elif line.startswith("data:"):  # nearly every line: no regex for it
                self._data.append(line[6:] if line.startswith("data: ") else line[5:])
            elif line.startswith(":"):
                continue
            elif _FIELD.match(line):
                name, _, value = line.partition(":")
                value = value.removeprefix(" ")
                if name == "data":
                    self._data.append(value)
                elif name == "event":
                    self._event = value
            else:
                self._raw.append(line)
        return events

    def _dispatch(self) -> SseEvent | None:
        if not self._data and not self._raw:
            self._event = None
            return None
        event = SseEvent(
            event=self._event,
            data="\n".join(self._data) if self._data else None,
            raw="\n".join(self._raw) if self._raw else None,
        )
        self._event, self._data, self._raw = None, [], []
        return event


# --------------------------------------------------------------------------- JSON access


def not_json(data: str) -> str:
    """What a stream event that is not JSON is said to be: its size, not its text (model
    output, unredacted: the detail goes into errors, traces and the store)."""
    return f"not JSON ({len(data):,} characters)"


def load_json(body: bytes | str) -> Any:
    """Parse a JSON body, tolerating leading blank keep-alive lines; ``ValueError`` if bad."""
    text = body.decode("utf-8", errors="replace") if isinstance(body, bytes) else body
    return json.loads(text)  # json.loads itself skips surrounding whitespace


#: the ``type`` an event's JSON opens with, as far as it came (Anthropic's and the Responses
#: format's events name their kind first)
_LEADING_TYPE: Final = re.compile(r'\s*\{\s*"type"\s*:\s*"([^"]*)')


def after_the_end(rest: list[SseEvent], text_mark: str, *, typed: bool = False) -> list[SseEvent]:
    """The events a connection's end flushed once the answer's finish reason came, less
    those cut short that cannot have held text: an event that shows ``text_mark`` (its kind
    of text event: in its ``event:`` name or leading ``type`` when ``typed``, else anywhere
    in it) or reads as JSON is kept, to be handled (or fail) as it would have; the rest (a
    cut usage chunk or end marker, ``[DONE]`` included) is no loss. An event cut before it
    showed what it was is taken as no loss: after a finish reason, text is not expected."""
    kept: list[SseEvent] = []
    for event in rest:
        body = event.data if event.data is not None else (event.raw or "")
        if typed:
            leading = _LEADING_TYPE.match(body)
            shown = f"{event.event or ''} {leading.group(1) if leading else ''}"
        else:
            shown = body
        if text_mark in shown:
            kept.append(event)
            continue
        try:
            readable = isinstance(load_json(body), dict)
        except ValueError:
            readable = False
        if readable:
            kept.append(event)
    return kept


def obj(value: Any) -> dict[str, Any]:
    """``value`` if it is a JSON object, else an empty one."""
    return value if isinstance(value, dict) else {}


def first(value: Any) -> dict[str, Any]:
    """The first element of a JSON array when it is an object, else an empty object."""
    return obj(value[0]) if isinstance(value, list) and value else {}


def string(value: Any) -> str | None:
    return value if isinstance(value, str) else None


#: more tokens than any request to any model: a figure past it is garbage, kept at this
#: (billing holds it to the model's most, with a warning) so no arithmetic overflows
MAX_COUNT: Final = 10**12


def count(value: Any) -> int:
    """A token count: a non-negative int (at most ``MAX_COUNT``), or 0 (not a number, or
    not a finite one)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return 0
    if isinstance(value, float) and not math.isfinite(value):
        return 0
    return min(max(int(value), 0), MAX_COUNT)


def usage_of(data: Any, input_key: str, output_key: str) -> Usage:
    data = obj(data)
    return Usage(input_tokens=count(data.get(input_key)), output_tokens=count(data.get(output_key)))


def detailed_usage(input_tokens: int, output_tokens: int, cached: Any, reasoning: Any) -> Usage:
    """Usage with the provider's ``cached`` input and ``reasoning`` output counts (raw
    values: what is no count is 0), each held to the total it is part of (a report past it
    says no more than all of it was)."""
    return Usage(
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        cached_input_tokens=min(count(cached), input_tokens),
        reasoning_tokens=min(count(reasoning), output_tokens),
    )


def snippet(body: bytes | str, limit: int = 200) -> str:
    """A short, single-line, tag-free excerpt of a body for error messages."""
    text = body.decode("utf-8", errors="replace") if isinstance(body, bytes) else body
    text = re.sub(r"<[^>]*>", " ", text)
    text = " ".join(text.split())
    return text[:limit] + ("..." if len(text) > limit else "")


# --------------------------------------------------------------------------- secrets

_KEYLIKE: Final = re.compile(
    r"""
      \b(?:sk|pk|rk)-[A-Za-z0-9_\-]{6,}         # OpenAI / Anthropic / Together style
    | \bxai-[A-Za-z0-9_\-]{6,}                  # xAI
    | \bgsk_[A-Za-z0-9]{6,}                     # Groq
    | \bAIza[0-9A-Za-z_\-]{10,}                 # Google
    | (?i:bearer)\s+[A-Za-z0-9._~+/\-]{6,}=*    # an echoed Authorization header
    | [^\s"',;:()]*\*{3,}[^\s"',;:().]*         # a masked key: sk-proj-****abcd, xa***yz
    """,
    re.VERBOSE,
)
_LONG_TOKEN: Final = re.compile(r"[A-Za-z0-9_\-]{32,}")
REDACTED: Final = "[REDACTED]"


#: what ``scrub`` is told to remove by value: a provider's API key, or every credential it
#: is configured with (``catalog.provider_secrets``: the key and its credential headers'
#: values, longest first), or None
Secret: TypeAlias = str | tuple[str, ...] | None


def scrub(text: str, secret: Secret = None) -> str:
    """Remove ``secret`` (one value, or each of several in their order: put the longest
    first; none shorter than ``CREDENTIAL_MIN``: a local server's placeholder key,
    ``EMPTY``, is a word errors use) and anything that looks like an API key or
    token from ``text``; a lone surrogate in it (an upstream's JSON escape) becomes
    U+FFFD, so the text can be sent on and stored."""
    text = valid_text(text)
    if secret:
        for value in (secret,) if isinstance(secret, str) else secret:
            if len(value) >= CREDENTIAL_MIN:
                text = text.replace(value, REDACTED)
    text = _KEYLIKE.sub(REDACTED, text)

    def _long(match: re.Match[str]) -> str:
        token = match.group(0)
        has_digit = any(c.isdigit() for c in token)
        has_alpha = any(c.isalpha() for c in token)
        return REDACTED if has_digit and has_alpha else token

    return _LONG_TOKEN.sub(_long, text)


# --------------------------------------------------------------------------- retry hints

_TRY_AGAIN: Final = re.compile(
    r"try again in\s+((?:[0-9]+(?:\.[0-9]+)?(?:ms|s|m|h))+)", re.IGNORECASE
)


def parse_duration(text: str) -> float | None:
    """Seconds in ``"47s"``, ``"1.5s"``, ``"240ms"``, ``"6m0s"`` (a body's retry hint:
    Gemini's ``retryDelay``, "try again in ..."), held to ``MAX_HOLD_S`` (a number too
    large for a float included); None if not a duration (the rate budget's reading)."""
    return clamp_hold(go_duration(text.strip()))


def retry_after_from_headers(headers: Mapping[str, str]) -> float | None:
    """``retry-after-ms`` or ``retry-after`` (seconds or an HTTP date), in seconds from
    now: the rate budget's own reading (``parse_retry_after``), so between 0 and
    ``MAX_HOLD_S``, ``None`` when absent or unreadable; any text, it never raises."""
    return parse_retry_after(headers, wall_now=time.time())


# --------------------------------------------------------------------------- error mapping

_AUTH_CODES: Final = frozenset(
    {
        "invalid_api_key",
        "authentication_error",
        "api_key_invalid",
        "unauthenticated",
        "permission_error",
        "permission_denied",
        "invalid_authentication",
        "unauthorized",
    }
)
_AUTH_TEXT: Final = re.compile(
    r"(incorrect|invalid|bad|missing|expired|revoked|wrong)\s+(x-)?api[\s_-]?key"
    r"|api[\s_-]?key\b[^.\n]{0,80}?\b(not\s+valid|invalid|expired|revoked)"
    r"|authentication\s+fail|\bunauthori[sz]ed\b",
    re.IGNORECASE,
)
_CONTEXT_CODES: Final = frozenset(
    {"context_length_exceeded", "context_window_exceeded", "model_context_window_exceeded"}
)
_CONTEXT_TEXT: Final = re.compile(
    r"context[\s_-]?(length|window)|maximum context|(prompt|input) (is )?too long"
    r"|input token count|too many (input |prompt )?tokens|reduce the length of the messages"
    r"|exceeds the maximum number of tokens|maximum (prompt|input) length"
    r"|tokens \+ `?max_new_tokens`? must be",
    re.IGNORECASE,
)
_CONTENT_CODES: Final = frozenset(
    {
        "content_policy_violation",
        "content_filter",
        "content_policy",
        "moderation_blocked",
        "safety_violation",
        "prompt_blocked",
    }
)
_CONTENT_TEXT: Final = re.compile(
    r"content[\s_-]?(management |filtering |filter )?polic|safety system"
    r"|blocked by (the |our |a )?(content|safety|moderation)|flagged by (our )?moderation"
    r"|violates? (our|the) (usage|content) polic",
    re.IGNORECASE,
)
_OVERLOAD_CODES: Final = frozenset({"overloaded_error", "overloaded", "capacity_exceeded"})
#: billing, not rate: retrying cannot help until someone pays or raises the limit
_QUOTA_CODES: Final = frozenset(
    {"insufficient_quota", "billing_error", "enforced_spend_limit_reached"}
)
#: the same, said only in words: xAI's 429 "has either used all available credits or
#: reached its monthly spending limit" and 403 "doesn't have any credits or licenses yet"
#: (its flat ``{code, error}`` body has no billing code), Anthropic's "credit balance is
#: too low". A plain 429 keeps meaning a rate limit.
_QUOTA_TEXT: Final = re.compile(
    r"used all available credits|reached (its|your|the) monthly spending limit"
    r"|(doesn't|does not|don't|do not) have any credits|credit balance is too low",
    re.IGNORECASE,
)
#: the model is not served there (each provider's 404 says so in its own words;
#: Perplexity answers an unknown model with 400 ``invalid_model``)
_NOT_FOUND_CODES: Final = frozenset(
    {"model_not_found", "not_found_error", "not_found", "invalid_model"}
)
#: canonical HTTP status of an error that arrives inside a 200 stream, by its type
_STREAM_STATUS: Final = {
    "rate_limit_error": 429,
    "rate_limit_exceeded": 429,
    "resource_exhausted": 429,
    "overloaded_error": 529,
    "unavailable": 503,
    "authentication_error": 401,
    "permission_error": 403,
    "invalid_request_error": 400,
    "not_found_error": 404,
    "model_not_found": 404,
    "invalid_model": 400,
    "insufficient_quota": 429,
    "billing_error": 402,
    "timeout_error": 504,
}


@attrs.frozen(kw_only=True)
class ErrorFields:
    """What an error body says, whatever its shape."""

    message: str
    codes: tuple[str, ...] = ()
    retry_after: float | None = None
    status: int | None = None  # an integer ``code`` inside the body, when there is one


def _day_quota(codes: tuple[str, ...]) -> bool:
    """A quota per day ran out (Gemini's QuotaFailure ``quotaId``, e.g.
    ``GenerateRequestsPerDayPerProjectPerModel-FreeTier``): not back in minutes, so it is
    a used-up quota, not a rate limit (a per-minute quota stays a rate limit)."""
    return any("PerDay" in code for code in codes)


def error_fields(payload: Any) -> ErrorFields:
    """Message, codes and retry delay from any provider's error body.

    Shapes: ``{"error": {"message", "type", "code", "status", "details"}}`` (OpenAI
    family, Anthropic, Gemini, Perplexity), ``{"code": str, "error": str}`` (xAI),
    ``{"error": str}`` (Ollama), ``{"message", "type", "code"}`` / ``{"detail": ...}``
    (Mistral), ``[{"error": {...}}]`` (Gemini's OpenAI-compatible surface).
    """
    if isinstance(payload, list):
        payload = first(payload)
    payload = obj(payload)
    inner = payload.get("error", payload)
    codes: list[str] = []
    retry_after: float | None = None
    status: int | None = None
    if isinstance(inner, str):
        message = inner
        inner = payload
    else:
        inner = obj(inner)
        message = _message_text(inner.get("message", inner.get("detail", "")))
    for key in ("type", "code", "status"):
        value = inner.get(key)
        if isinstance(value, str) and value:
            codes.append(value)
        elif isinstance(value, int) and not isinstance(value, bool):
            status = value
    for detail in inner.get("details", ()) if isinstance(inner.get("details"), list) else ():
        detail = obj(detail)
        if isinstance(detail.get("reason"), str):
            codes.append(detail["reason"])
        for violation in (
            detail.get("violations", ()) if isinstance(detail.get("violations"), list) else ()
        ):
            quota = obj(violation).get("quotaId")  # Gemini's QuotaFailure: which quota ran out
            if isinstance(quota, str) and quota:
                codes.append(quota)
        delay = string(detail.get("retryDelay"))
        if delay is not None:
            retry_after = parse_duration(delay)
    nested = obj(inner.get("details"))  # Anthropic: error.details.error_code
    if isinstance(nested.get("error_code"), str):
        codes.append(nested["error_code"])
    return ErrorFields(message=message, codes=tuple(codes), retry_after=retry_after, status=status)


def _message_text(value: Any) -> str:
    """An error message as text: a string; a FastAPI ``detail`` list (Mistral's 422) as
    ``"body.messages: Field required"``; an object holding a ``message`` or ``detail``
    (Mistral's ``{"object": "error", "message": {"detail": [...]}}``)."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        for key in ("message", "detail", "msg"):
            if key in value:
                return _message_text(value[key])
        return json.dumps(value)
    if isinstance(value, list):
        parts: list[str] = []
        for item in value:
            item_obj = obj(item)
            if isinstance(item_obj.get("msg"), str):
                loc = item_obj.get("loc")
                where = ".".join(str(p) for p in loc) if isinstance(loc, list) else ""
                parts.append(f"{where}: {item_obj['msg']}" if where else item_obj["msg"])
            else:
                parts.append(_message_text(item))
        return "; ".join(p for p in parts if p)
    return "" if value is None else json.dumps(value)


def should_retry_header(headers: Mapping[str, str]) -> bool | None:
    """The ``x-should-retry`` header (Anthropic, OpenAI): True, False, or None if absent."""
    raw = next((v for k, v in headers.items() if k.lower() == "x-should-retry"), None)
    value = raw.strip().lower() if raw is not None else ""
    return True if value == "true" else False if value == "false" else None


def map_error(
    provider: str,
    status: int,
    headers: Mapping[str, str],
    body: bytes,
    *,
    secret: Secret,
) -> ProviderError:
    """The ``ProviderError`` for a non-2xx answer; never contains the API key."""
    try:
        fields = error_fields(load_json(body)) if body.strip() else ErrorFields(message="")
    except ValueError:
        fields = ErrorFields(message=snippet(body))
    return classify(provider, status, headers, fields, secret=secret)


def classify(
    provider: str,
    status: int,
    headers: Mapping[str, str],
    fields: ErrorFields,
    *,
    secret: Secret,
) -> ProviderError:
    """Status + codes + message -> the branch of the error tree that fits."""
    codes = {c.lower() for c in fields.codes}
    text = fields.message
    message = scrub(text, secret)[:500] or f"HTTP {status}"
    if fields.codes:
        message = f"{message} [{', '.join(scrub(c, secret) for c in fields.codes[:3])}]"
    if status == 402 or (
        400 <= status < 500
        and (codes & _QUOTA_CODES or _QUOTA_TEXT.search(text) or _day_quota(fields.codes))
    ):
        per_model = any("PerModel" in code for code in fields.codes)
        return QuotaExhausted(
            message,
            provider=provider,
            status=status,
            per_model=per_model,
            retry_after=fields.retry_after if per_model else None,
        )
    if status == 429:
        retry_after = retry_after_from_headers(headers)
        if retry_after is None:
            retry_after = fields.retry_after
        if retry_after is None and (hint := _TRY_AGAIN.search(text)) is not None:
            retry_after = parse_duration(hint.group(1))
        if retry_after is not None and retry_after >= MAX_HOLD_S:
            message = (
                f"{message} (asked to wait {MAX_HOLD_S:g} s or more: switchman holds the "
                f"model {MAX_HOLD_S:g} s at most, then asks again)"
            )
        return RateLimited(message, retry_after=retry_after, provider=provider, status=status)
    if status >= 500 or status == 409 or codes & _OVERLOAD_CODES:
        # 409 conflict: transient, OpenAI's SDK retries it. The provider's own retry
        # hints (503/529 ``retry-after``, ``x-should-retry``) travel with the error.
        retry_after = retry_after_from_headers(headers)
        return UpstreamError(
            message,
            provider=provider,
            status=status,
            retry_after=retry_after if retry_after is not None else fields.retry_after,
            should_retry=should_retry_header(headers),
        )
    if 400 <= status < 500:
        if status in (401, 403) or codes & _AUTH_CODES or _AUTH_TEXT.search(text):
            return AuthError(message, provider=provider, status=status)
        if status == 404 or codes & _NOT_FOUND_CODES:
            return ModelNotFound(message, provider=provider, status=status)
        if status == 413 or codes & _CONTEXT_CODES or _CONTEXT_TEXT.search(text):
            return ContextExceeded(message, provider=provider, status=status)
        if codes & _CONTENT_CODES or _CONTENT_TEXT.search(text):
            return ContentRejected(message, provider=provider, status=status)
        return BadRequest(message, provider=provider, status=status)
    if 300 <= status < 400:
        # switchman follows no redirect: a key must not travel to wherever it points
        where = scrub(headers.get("location", ""), secret)[:200] or "no location given"
        return BadReply(
            f"redirected (HTTP {status}) to {where}: switchman follows no redirects, so the "
            "provider's base_url needs to name where it moved",
            provider=provider,
            status=status,
        )
    return BadReply(f"unexpected HTTP status {status}: {message}", provider=provider, status=status)


def stream_error(
    provider: str, payload: Any, *, secret: Secret, output_began: bool
) -> ProviderError:
    """An error that arrived inside a 200 answer (SSE ``error`` event, ``{"error": ...}`` line).

    Before any text it maps like an HTTP error of the status its type implies
    (``overloaded_error`` -> 529); after text was emitted it is ``StreamBroken``,
    naming the cause, because the caller already holds part of the answer; a content
    policy's stop then is a ``Refused`` (its output filtered).
    """
    fields = error_fields(payload)
    status = fields.status
    if status is None:
        status = next(
            (_STREAM_STATUS[c.lower()] for c in fields.codes if c.lower() in _STREAM_STATUS),
            None,
        )
    if status is None:  # words alone (Ollama's ``{"error": "..."}``): what they say
        status = _status_from_words(fields.message)
    error = classify(provider, status, {}, fields, secret=secret)
    if output_began and isinstance(error, ContentRejected):
        # the provider's content policy stopped the answer it had begun: its output was
        # filtered, a refusal (not a broken stream another model would finish)
        filtered = Refused(error.message, provider=provider, status=status, content_filtered=True)
        filtered.billed, filtered.billed_cost_usd = error.billed, error.billed_cost_usd
        return filtered
    if output_began and not isinstance(error, Refused):
        broken = StreamBroken(
            f"stream failed after output began: {error.message}", provider=provider, status=status
        )
        broken.cause = error
        return broken
    return error


#: an error's words that say it is a rate limit, when no status or code does
_RATE_TEXT: Final = re.compile(r"too many requests|rate[\s_-]?limit", re.IGNORECASE)


def _status_from_words(message: str) -> int:
    """The HTTP status an error event with no status or code stands for, by its words: a
    rate limit 429, a prompt too long for the context 400, anything else 500."""
    if _RATE_TEXT.search(message):
        return 429
    if _CONTEXT_TEXT.search(message):
        return 400
    return 500


def broken(provider: str, output_began: bool, detail: str) -> StreamBroken:
    """The connection ended before the answer was complete."""
    state = "after output began" if output_began else "before any output"
    return StreamBroken(f"stream ended {state}, {detail}", provider=provider, status=200)


def bad_reply(provider: str, detail: str, status: int = 200) -> BadReply:
    return BadReply(detail, provider=provider, status=status)
