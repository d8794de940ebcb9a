"""Rate-limit budget per provider: token buckets corrected by the provider's headers.

Three things can hold a request back, all in monotonic seconds (``now``):

* our own buckets from the configured ``rpm`` / ``tpm``: capacity ``rpm``
  requests and ``tpm`` tokens, refilling continuously at ``rpm/60`` and
  ``tpm/60`` per second;
* the provider's own last word on what remains (``x-ratelimit-remaining-*``,
  ``anthropic-ratelimit-*-remaining``), less what was sent since the request it
  answered (those are not in its count yet); a window that says nothing remains holds
  requests back. Where it says its limit too, its counter is followed as a bucket that
  refills at the rate its reset implies (the providers' reset is when it is full again:
  OpenAI's "9998 of 10000, 12ms" is 10,000 a minute), past that reset, until it says
  more (once it reset, everything went out at once: 6.4 times a provider's stated limit,
  every window); without a limit, until that reset;
* ``blocked_until``: a 429 said stop (``retry-after``, or a short default).

Reset and retry times arrive as durations (``"1s"``, ``"6m0s"``, ``"20ms"``,
``"2.5"``), RFC 3339 timestamps (Anthropic) or HTTP dates; wall-clock forms are
turned into ``now``-relative times from the response's ``date`` where it has one (the
server's clock, which they are on), else ``wall_now`` (Unix seconds). Whatever their
text says, reading them never raises, and no hold is longer than ``MAX_HOLD_S`` (a
time past it, a number too large for a float, a date in the year 9999: the model is
asked again after ``MAX_HOLD_S``); ``inf`` and ``nan`` are not read as times at all.
A window the provider says is used up without saying when it resets holds the model
for that window's length when its header names it (Mistral's ``-minute``: 60 s), the
most its counter can take to come back however the provider counts.

The provider actor owns one ``RateBudget`` and replaces it with what these
functions return; nothing here blocks or can be cancelled midway.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import functools
import math
import re
from collections.abc import Mapping
from typing import Final, TypeAlias

import attrs

#: How long a 429 without any retry time blocks the provider.
DEFAULT_BLOCK_S = 1.0
#: The longest one thing a provider says holds a model back: a 429's retry time, or the
#: reset of a window it says is used up. A provider that says "a day" is asked again
#: hourly, and a skew of our clock against its wall-clock resets (Anthropic's RFC 3339
#: times, HTTP dates) holds a model an hour at most.
MAX_HOLD_S: Final = 3600.0
#: Admission tolerance for float rounding of continuous refill, in requests or tokens
#: (absolute: a bucket in debt by a million tokens refills with errors near 1e-9).
_EPS = 1e-6
#: A bare number this large in a reset header is a Unix timestamp, not seconds.
_EPOCH_THRESHOLD = 1e9

#: a provider's counter: (remaining header, reset header or None, the window's length in
#: seconds when the header names it, else None, limit header or None), lower-case
_Family: TypeAlias = tuple[str, str | None, float | None, str | None]
_MINUTE: Final = 60.0
_MONTH: Final = 31 * 86400.0  # (held to MAX_HOLD_S)
#: the least a 429 holds a model back, whatever its retry time says (``retry-after: 0``
#: from a model answering every call 429 had it asked 939 times in 1.5 s)
MIN_429_HOLD_S: Final = 0.25

_REQUEST_HEADERS: tuple[_Family, ...] = (
    # OpenAI, Groq, xAI
    (
        "x-ratelimit-remaining-requests",
        "x-ratelimit-reset-requests",
        None,
        "x-ratelimit-limit-requests",
    ),
    (
        "anthropic-ratelimit-requests-remaining",
        "anthropic-ratelimit-requests-reset",
        None,
        "anthropic-ratelimit-requests-limit",
    ),
    ("x-ratelimit-remaining-req-minute", None, _MINUTE, "x-ratelimit-limit-req-minute"),  # Mistral
    ("x-ratelimit-remaining", "x-ratelimit-reset", None, "x-ratelimit-limit"),  # Together
)
#: windows that count a request's input and output room together
_TOKEN_HEADERS: tuple[_Family, ...] = (
    ("x-ratelimit-remaining-tokens", "x-ratelimit-reset-tokens", None, "x-ratelimit-limit-tokens"),
    (
        "x-ratelimit-remaining-tokens-minute",
        None,
        _MINUTE,
        "x-ratelimit-limit-tokens-minute",
    ),  # Mistral
    ("x-ratelimit-remaining-tokens-month", None, _MONTH, "x-ratelimit-limit-tokens-month"),
    ("x-tokenlimit-remaining", None, None, "x-tokenlimit-limit"),  # Together
)
#: Anthropic counts input and output tokens apart; its plain ``tokens`` family is the
#: most restrictive of the two, so it is read only when the two are not given
_INPUT_HEADERS: tuple[_Family, ...] = (
    (
        "anthropic-ratelimit-input-tokens-remaining",
        "anthropic-ratelimit-input-tokens-reset",
        None,
        "anthropic-ratelimit-input-tokens-limit",
    ),
)
_OUTPUT_HEADERS: tuple[_Family, ...] = (
    (
        "anthropic-ratelimit-output-tokens-remaining",
        "anthropic-ratelimit-output-tokens-reset",
        None,
        "anthropic-ratelimit-output-tokens-limit",
    ),
)
_ANY_TOKEN_HEADERS: tuple[_Family, ...] = (
    (
        "anthropic-ratelimit-tokens-remaining",
        "anthropic-ratelimit-tokens-reset",
        None,
        "anthropic-ratelimit-tokens-limit",
    ),
)

_DURATION_PART = re.compile(r"([0-9]+(?:\.[0-9]*)?|\.[0-9]+)(ms|us|µs|ns|h|m|s)")
#: a plain decimal number of seconds (no ``inf``, ``nan``, ``_`` or non-ASCII digits)
_DECIMAL = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_UNIT_S = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}


@attrs.frozen(kw_only=True)
class ProviderWindow:
    """What the provider last said about one resource: ``remaining`` (less what was sent
    since) until ``reset_at``. With its ``limit`` known, a bucket refilling at ``rate``
    per second from ``as_of`` (the time ``remaining`` was counted): it does not end at
    its reset, and ``remaining`` is brought up to date (``_refill``) as time passes."""

    remaining: float
    reset_at: float
    limit: float | None = None
    rate: float | None = None
    as_of: float = 0.0

    def short_of(self, need: float) -> bool:
        """Whether ``need`` cannot be taken now: what remains is below it (a bucket need
        only be full for more than it holds, and goes into debt)."""
        if self.rate is not None and self.limit is not None:
            need = min(need, self.limit)
        return self.remaining < _EPS or self.remaining < need

    def free_at(self, need: float, now: float) -> float:
        """When ``need`` will be there (``reset_at`` for a window without a rate): at
        most ``MAX_HOLD_S`` from ``now``."""
        if self.rate is None:
            return self.reset_at
        short = min(need, self.limit or need) - self.remaining
        return now + min(max(short, 0.0) / self.rate, MAX_HOLD_S)


@attrs.frozen(kw_only=True)
class RateBudget:
    """Rate-limit state of one provider; build it with :func:`new_budget`.

    ``requests`` / ``tokens``: current bucket levels (meaningful when ``rpm`` /
    ``tpm`` is set). ``updated_at``: when the buckets were last refilled.
    ``provider_requests`` / ``provider_tokens``: the provider's own counters (tokens:
    input and output room together). ``provider_input`` / ``provider_output``: counters
    of input and of output tokens apart (Anthropic): a request needs its input to fit
    the first; the second holds requests back only once it is used up (a model's answer
    is rarely the whole of its ``max_tokens``).
    """

    rpm: int | None = None
    tpm: int | None = None
    requests: float = 0.0
    tokens: float = 0.0
    updated_at: float = 0.0
    blocked_until: float = -math.inf
    provider_requests: ProviderWindow | None = None
    provider_tokens: ProviderWindow | None = None
    provider_input: ProviderWindow | None = None
    provider_output: ProviderWindow | None = None


def new_budget(rpm: int | None, tpm: int | None, now: float) -> RateBudget:
    """A budget with full buckets; ``None`` means no configured limit."""
    for name, value in (("rpm", rpm), ("tpm", tpm)):
        if value is not None and value <= 0:
            raise ValueError(f"{name} must be positive or None, got {value}")
    return RateBudget(
        rpm=rpm, tpm=tpm, requests=float(rpm or 0), tokens=float(tpm or 0), updated_at=now
    )


def rate_admit(
    b: RateBudget, now: float, *, tokens: int, output_tokens: int = 0
) -> tuple[float | None, RateBudget]:
    """Take one request and ``tokens`` tokens (of which ``output_tokens`` are the output
    room) if every limit allows it.

    Returns ``(None, budget after)`` when admitted, or ``(retry_at, b)`` when not:
    ``retry_at`` is the earliest ``now`` at which every limit that refused would
    allow it. A request larger than the whole ``tpm`` only needs a full bucket
    (the bucket then goes into debt), so it is delayed, never refused forever.
    """
    if tokens < 0:
        raise ValueError(f"tokens must be >= 0, got {tokens}")
    cur = _refill(b, now)
    waits: list[float] = []
    if cur.blocked_until > now:
        waits.append(cur.blocked_until)
    pr, pt = cur.provider_requests, cur.provider_tokens
    if pr is not None and pr.remaining < 1:
        waits.append(pr.free_at(1.0, now))
    if pt is not None and pt.short_of(tokens):  # (as rate_blocked_until: < _EPS)
        waits.append(pt.free_at(float(tokens), now))
    pi, po = cur.provider_input, cur.provider_output
    input_tokens = tokens - output_tokens
    if pi is not None and pi.short_of(input_tokens):
        waits.append(pi.free_at(float(input_tokens), now))
    if po is not None and po.remaining < _EPS:
        waits.append(po.free_at(1.0, now))
    if cur.rpm is not None and cur.requests < 1 - _EPS:
        waits.append(now + (1 - cur.requests) * 60.0 / cur.rpm)
    if cur.tpm is not None:
        need = min(tokens, cur.tpm)
        if cur.tokens < need - _EPS:
            waits.append(now + (need - cur.tokens) * 60.0 / cur.tpm)
    if waits:
        return max(waits), b
    if cur.rpm is None and cur.tpm is None and pr is None and pt is None and pi is None:
        return None, cur  # nothing is counted (an output window alone takes nothing)
    return None, RateBudget(
        rpm=cur.rpm,
        tpm=cur.tpm,
        requests=cur.requests - 1 if cur.rpm is not None else cur.requests,
        tokens=cur.tokens - tokens if cur.tpm is not None else cur.tokens,
        updated_at=cur.updated_at,
        blocked_until=cur.blocked_until,
        provider_requests=_take(pr, 1),
        provider_tokens=_take(pt, tokens),
        provider_input=_take(pi, input_tokens),
        provider_output=po,
    )


def rate_settle(
    b: RateBudget, now: float, *, estimated_tokens: int, actual_tokens: int
) -> RateBudget:
    """Correct the token bucket once a call's real usage is known.

    Gives back ``estimated - actual`` (or takes the excess), down to a debt of one
    minute's tokens at most: a usage report past any request's (a garbage count, or
    several at once) holds the provider back a minute at most, not for hours. The
    provider's own counters are left alone: its next response headers already count the
    call, and a real shortage shows there (and in its 429s).
    """
    cur = _refill(b, now)
    if cur.tpm is None:
        return cur
    level = min(float(cur.tpm), cur.tokens + estimated_tokens - actual_tokens)
    return attrs.evolve(cur, tokens=max(level, -float(cur.tpm)))


def rate_observe(
    b: RateBudget,
    now: float,
    headers: Mapping[str, str],
    *,
    wall_now: float,
    status: int,
    retry_after: float | None = None,
    default_block_s: float = DEFAULT_BLOCK_S,
    sent_since: tuple[int, float, float] = (0, 0.0, 0.0),
) -> RateBudget:
    """Correct the budget from a response's headers (keys in any case).

    ``sent_since``: the requests, tokens and input tokens sent to the model since the
    request this answers (its counters do not count them yet: they come off them).

    Remaining-request / remaining-token headers replace the provider's counters
    until their reset (a remaining without a reset header is trusted for
    ``default_block_s``, or when it says nothing remains, for its window's length if
    the header names one); one that says 0 holds requests back until that reset.
    A 429 blocks the provider until its ``retry-after-ms`` / ``retry-after``, or
    ``retry_after`` (seconds, e.g. Gemini's ``retryDelay`` read from the body; NaN is
    taken as not given), or for ``default_block_s``. A block is never shortened, and
    no hold made here is longer than ``MAX_HOLD_S``, whatever the headers say (their
    text never makes this raise).
    """
    h = _lower(headers)
    wall_now = _server_now(h, wall_now)
    cur = _refill(b, now)
    window = functools.partial(_window, h, now=now, wall_now=wall_now, default_s=default_block_s)
    requests, tokens, input_tokens = sent_since
    reqs = window(_REQUEST_HEADERS, sent=requests, before=cur.provider_requests)
    toks = window(_TOKEN_HEADERS, sent=tokens, before=cur.provider_tokens)
    inputs = window(_INPUT_HEADERS, sent=input_tokens, before=cur.provider_input)
    outputs = window(_OUTPUT_HEADERS, sent=0.0, before=cur.provider_output)
    if inputs is None and outputs is None:  # the tighter of the two, counted as input
        inputs = window(_ANY_TOKEN_HEADERS, sent=input_tokens, before=cur.provider_input)
    if reqs is not None:
        cur = attrs.evolve(cur, provider_requests=reqs)
    if toks is not None:
        cur = attrs.evolve(cur, provider_tokens=toks)
    if inputs is not None:
        cur = attrs.evolve(cur, provider_input=inputs)
    if outputs is not None:
        cur = attrs.evolve(cur, provider_output=outputs)
    if status == 429:
        wait = _retry_wait(h, wall_now)  # (``wall_now`` is the server's clock by now)
        if wait is None:
            wait = clamp_hold(retry_after)
        if wait is None:
            wait = clamp_hold(default_block_s) or 0.0
        wait = max(wait, MIN_429_HOLD_S)
        cur = attrs.evolve(cur, blocked_until=max(cur.blocked_until, now + wait))
    return cur


def parse_retry_after(headers: Mapping[str, str], *, wall_now: float) -> float | None:
    """Seconds to wait from ``retry-after-ms`` or ``retry-after`` (seconds or an HTTP
    date), the one reading of them (the adapters' ``retry_after_from_headers`` is this).

    Between 0 (a date past) and ``MAX_HOLD_S`` (anything longer, a number too large for
    a float included); ``None`` when neither is present or readable (``inf``, ``nan``,
    words, a date no calendar has). Any text: this never raises.
    """
    h = _lower(headers)
    return _retry_wait(h, _server_now(h, wall_now))


def _retry_wait(h: Mapping[str, str], server_now: float) -> float | None:
    """``parse_retry_after`` of lower-cased headers, a date counted from ``server_now``."""
    raw_ms = h.get("retry-after-ms")
    ms = _decimal(raw_ms) if raw_ms is not None else None
    if ms is not None:
        return clamp_hold(ms / 1000.0)
    raw = h.get("retry-after")
    if raw is None:
        return None
    secs = _decimal(raw)
    if secs is None:
        secs = _http_date(raw, wall_now=server_now)
    return clamp_hold(secs)


#: how far a response's ``date`` may be from our clock before the two are weighed
DATE_TRUSTED_S: Final = 86_400.0


def _server_now(h: Mapping[str, str], wall_now: float) -> float:
    """The time a response was sent by the clock of the server that sent it (its
    ``date`` header), where it says: the clock its retry and reset times are on, so ours
    being off (an hour behind held a model an hour, ahead not at all) does not matter;
    else ``wall_now``. When the two are more than ``DATE_TRUSTED_S`` apart, one clock is
    broken, and a time the response carries (a retry date, a reset's timestamp) says
    which: the clock it is near (a ``date`` of 1970 beside a retry date on the true clock
    is the proxy's broken stamp; a server's clock days off stamps both). A ``date`` set
    to the whole second reads up to a second early, which errs toward holding longer."""
    raw = h.get("date")
    if raw is None:
        return wall_now
    said = _said_time(h)
    if said is None:  # (only durations to read: the date is not parsed, on every answer)
        return wall_now
    sent = _http_date(raw, wall_now=0.0)
    if sent is None or not math.isfinite(sent):
        return wall_now
    if abs(sent - wall_now) <= DATE_TRUSTED_S or abs(said - sent) <= abs(said - wall_now):
        return sent
    return wall_now


def _said_time(h: Mapping[str, str]) -> float | None:
    """A point in time a response's headers name (Unix seconds): its retry date, else a
    reset given as a timestamp; None when they give only durations."""
    raw = h.get("retry-after")
    if raw is not None and _decimal(raw) is None:
        when = _http_date(raw, wall_now=0.0)
        if when is not None and math.isfinite(when):
            return when
    for name, value in h.items():
        if not name.endswith("-reset"):
            continue
        plain = _decimal(value.strip())
        if plain is not None:  # (seconds from now, or Unix seconds past the threshold)
            if _EPOCH_THRESHOLD < plain < math.inf:
                return plain
        elif go_duration(value.strip()) is None:
            when = _iso_time(value.strip(), wall_now=0.0)
            if when is not None and math.isfinite(when):
                return when
    return None


def clamp_hold(seconds: float | None) -> float | None:
    """``seconds`` as a hold: at least 0 (a time past) and at most ``MAX_HOLD_S`` (a longer
    one, ``inf`` included); ``None`` for ``None`` or NaN (no time said)."""
    if seconds is None or math.isnan(seconds):
        return None
    return min(max(seconds, 0.0), MAX_HOLD_S)


def rate_blocked_until(b: RateBudget, now: float) -> float:
    """When a request could be admitted at all (``<= now`` when it could be now); read
    for every model on every call, and the ``blocked_for_s`` of :func:`rate_headroom`."""
    until = b.blocked_until
    for window, need in (
        (b.provider_requests, 1.0),
        (b.provider_tokens, _EPS),
        (b.provider_input, _EPS),
        (b.provider_output, _EPS),
    ):
        if window is None:
            continue
        if window.rate is not None:
            window = _level(window, now)
        elif now >= window.reset_at:
            continue
        if window.remaining < need and (free := window.free_at(need, now)) > until:
            until = free
    if b.rpm is not None:
        requests = _refill(b, now).requests
        if requests < 1 - _EPS:
            until = max(until, now + (1 - requests) * 60.0 / b.rpm)
    return until


def rate_headroom(b: RateBudget, now: float) -> dict[str, float | None]:
    """``{"requests", "tokens", "blocked_for_s"}`` for status displays.

    ``requests`` / ``tokens``: what may be taken now, the lower of our bucket and
    the provider's counter, ``None`` when neither is known. ``blocked_for_s``:
    how long until a request could be admitted at all (0 when not blocked).
    """
    cur = _refill(b, now)
    requests = _lowest(cur.requests if cur.rpm is not None else None, cur.provider_requests)
    tokens = _lowest(
        cur.tokens if cur.tpm is not None else None, cur.provider_tokens, cur.provider_input
    )
    blocked_for = max(0.0, rate_blocked_until(cur, now) - now)
    return {"requests": requests, "tokens": tokens, "blocked_for_s": blocked_for}


def parse_duration(text: str) -> float | None:
    """Seconds in a Go-style duration (``"6m0s"``, ``"20ms"``, ``"2m59.56s"``) or a bare
    decimal number; ``inf`` when its number is too large for a float (what holds for it
    is held to ``MAX_HOLD_S`` by ``clamp_hold``); ``None`` when it is neither."""
    text = text.strip()
    secs = _decimal(text)
    return secs if secs is not None else go_duration(text)


def go_duration(text: str) -> float | None:
    """Seconds in a Go-style duration (a number with its unit, ``"47s"``, ``"6m0s"``,
    ``"240ms"``), ``inf`` when too large for a float; ``None`` if ``text`` is not one."""
    if not text or _DURATION_PART.sub("", text):
        return None
    return sum(float(n) * _UNIT_S[unit] for n, unit in _DURATION_PART.findall(text))


def _parse_reset(text: str, *, wall_now: float) -> float | None:
    """Seconds until a reset given as a duration, a Unix time or an RFC 3339 timestamp,
    between 0 and ``MAX_HOLD_S``; ``None`` when unreadable."""
    return clamp_hold(_reset_seconds(text, wall_now=wall_now))


def _reset_seconds(text: str, *, wall_now: float) -> float | None:
    """Seconds until a reset as the provider said it (negative when past, ``inf`` when too
    large for a float); ``None`` when unreadable."""
    text = text.strip()
    plain = _decimal(text)
    if plain is not None:
        return plain - wall_now if plain > _EPOCH_THRESHOLD else plain
    secs = go_duration(text)
    if secs is None:
        secs = _iso_time(text, wall_now=wall_now)
    return secs


def _http_date(text: str, *, wall_now: float) -> float | None:
    """Seconds from ``wall_now`` to an HTTP date (negative when past); ``None`` when it is
    none a calendar holds (a year of 20 digits overflows the parser, an offset of days)."""
    try:
        when = email.utils.parsedate_to_datetime(text)
        if when.tzinfo is None:
            when = when.replace(tzinfo=dt.UTC)
        return when.timestamp() - wall_now
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def _iso_time(text: str, *, wall_now: float) -> float | None:
    """Seconds from ``wall_now`` to an RFC 3339 time (negative when past); ``None`` when
    ``text`` is not one."""
    try:
        when = dt.datetime.fromisoformat(text)
        if when.tzinfo is None:
            when = when.replace(tzinfo=dt.UTC)
        return when.timestamp() - wall_now
    except (TypeError, ValueError, OverflowError):
        return None


def _window(
    h: Mapping[str, str],
    families: tuple[_Family, ...],
    *,
    now: float,
    wall_now: float,
    default_s: float,
    sent: float,
    before: ProviderWindow | None,
) -> ProviderWindow | None:
    """The tightest counter among the header families present (ties: the later reset),
    less ``sent`` (what went out since the request it answers).

    A counter without a readable reset is trusted for ``default_s``; one that says less
    than one is left holds for its window's length instead, when its name gives one (the
    most the provider's counter can take to come back, whether its window is a fixed
    minute or a sliding one: asked sooner, it answers 429s for the rest of it). With its
    limit and its reset said, it refills at the rate they imply (what is missing of the
    limit, over the time to its reset as said, before any hold's cap: a day's counter
    refills at a day's pace), or at the rate ``before`` had for that limit (a full counter
    says no rate). A window named by its length alone (Mistral's minute and month) is a
    calendar quota, not a bucket: used up, it holds for its length."""
    best: ProviderWindow | None = None
    for remaining_name, reset_name, length, limit_name in families:
        said = _number(h.get(remaining_name))
        if said is None:
            continue
        said = max(0.0, said)
        raw_reset = h.get(reset_name) if reset_name is not None else None
        told = _reset_seconds(raw_reset, wall_now=wall_now) if raw_reset is not None else None
        reset_s = clamp_hold(told)
        limit = _number(h.get(limit_name)) if limit_name is not None else None
        rate: float | None = None
        if limit is not None and limit >= 1.0 and said <= limit and length is None:
            if told is not None and 0.0 < told < math.inf and said < limit:
                rate = (limit - said) / told
            elif before is not None and before.limit == limit:
                rate = before.rate
        if reset_s is None:
            used_up = length is not None and said < 1.0
            reset_s = clamp_hold(length if used_up else default_s) or 0.0
        window = ProviderWindow(
            remaining=max(0.0, said - sent),
            reset_at=now + reset_s,
            limit=limit if rate is not None else None,
            rate=rate,
            as_of=now,
        )
        if best is None or (window.remaining, -window.reset_at) < (best.remaining, -best.reset_at):
            best = window
    return best


def _refill(b: RateBudget, now: float) -> RateBudget:
    if b.rpm is None and b.tpm is None and b.provider_requests is None:
        if b.provider_tokens is None and b.provider_input is None and b.provider_output is None:
            return b  # nothing that refills or expires: the hot path of an unlimited provider
    elapsed = max(0.0, now - b.updated_at)
    requests, tokens = b.requests, b.tokens
    if b.rpm is not None:
        requests = min(float(b.rpm), requests + elapsed * b.rpm / 60.0)
    if b.tpm is not None:
        tokens = min(float(b.tpm), tokens + elapsed * b.tpm / 60.0)
    pr = _refilled(b.provider_requests, now)
    pt = _refilled(b.provider_tokens, now)
    pi = _refilled(b.provider_input, now)
    po = _refilled(b.provider_output, now)
    return RateBudget(  # built directly: attrs.evolve introspects the class on every call
        rpm=b.rpm,
        tpm=b.tpm,
        requests=requests,
        tokens=tokens,
        updated_at=max(b.updated_at, now),
        blocked_until=b.blocked_until,
        provider_requests=pr,
        provider_tokens=pt,
        provider_input=pi,
        provider_output=po,
    )


def _refilled(window: ProviderWindow | None, now: float) -> ProviderWindow | None:
    """``window`` as of ``now``: a bucket (its rate known) refilled, never ended; else
    ended (None) once its reset came."""
    if window is None:
        return None
    if window.rate is not None:
        return _level(window, now)
    return None if now >= window.reset_at else window


def _level(window: ProviderWindow, now: float) -> ProviderWindow:
    """A bucket ``window`` refilled to ``now``."""
    elapsed = now - window.as_of
    if elapsed <= 0.0 or window.rate is None:
        return window
    full = window.limit if window.limit is not None else math.inf
    level = min(full, window.remaining + elapsed * window.rate)
    return ProviderWindow(
        remaining=level,
        reset_at=window.reset_at,
        limit=window.limit,
        rate=window.rate,
        as_of=now,
    )


def _take(window: ProviderWindow | None, amount: float) -> ProviderWindow | None:
    if window is None:
        return None
    return attrs.evolve(window, remaining=max(0.0, window.remaining - amount))


def _lowest(own: float | None, *windows: ProviderWindow | None) -> float | None:
    values = [w.remaining for w in windows if w is not None]
    if own is not None:
        values.append(own)
    return max(0.0, min(values)) if values else None


def _lower(headers: Mapping[str, str]) -> dict[str, str]:
    return {k.lower(): v.strip() for k, v in headers.items()}


def _decimal(text: str) -> float | None:
    """A plain decimal number (digits, a point, an exponent), ``inf`` when too large for a
    float (a wait that long is held to ``MAX_HOLD_S``); ``None`` for anything else."""
    text = text.strip()
    return float(text) if _DECIMAL.fullmatch(text) else None


def _number(text: str | None) -> float | None:
    """A finite number (a counter); ``None`` when ``text`` is none."""
    if text is None:
        return None
    try:
        value = float(text.strip())
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def own_limits(name: str, rpm: int | None, tpm: int | None) -> str:
    """`` (switchman's own rpm 50, tpm 30000 for anthropic: [providers.anthropic])``: which
    limit a call met, so an empty budget of the router's is not taken for the provider's
    (``""`` when the provider has none)."""
    said = [f"{word} {value}" for word, value in (("rpm", rpm), ("tpm", tpm)) if value]
    if not said:
        return ""
    return f" (switchman's own {', '.join(said)} for {name}: [providers.{name}])"
