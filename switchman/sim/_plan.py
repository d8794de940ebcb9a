"""Plans: what one simulated attempt will do, decided up front and purely.

A ``Plan`` is either a failure before any output (``failure`` set) or an
answer: a time to first token, the answer's chunks with the delay before each,
and an ending (complete, refusal, cut, stall, or an error event after the
answer began). Two deciders fill it in:

- ``plan_from_profile`` draws from a ``SimProfile``'s rates with an injected
  ``random.Random`` (the in-process simulator, ``kind = "sim"``);
- ``plan_from_name`` reads a behaviour from the model name (the fake provider
  server), keeping per-name memory in a ``BehaviourState``.

The answer text depends only on (model, prompt, max_tokens), so tests can
compute it with ``expected_answer``. Nothing here imports trio or does I/O.
"""

from __future__ import annotations

import functools
import math
import random
import zlib
from typing import Final, Literal

import attrs

from switchman._result import Usage
from switchman.adapters._base import ProviderRequest
from switchman.catalog._spec import ModelSpec, SimProfile
from switchman.policy._estimate import CONTINUE_PROMPT

FailureKind = Literal[
    "rate_limited",
    "server_error",
    "unavailable",
    "overloaded",
    "reset",
    "silent",
    "context_length",
    "content_policy",
    "not_found",
    "bad_key",
    "quota_exhausted",
    "spend_limit",
]
Ending = Literal["complete", "refusal", "cut", "stall", "error"]

#: words an answer has when the request sets no lower max_tokens
MAX_ANSWER_WORDS: Final = 60
#: words per streamed chunk
WORDS_PER_CHUNK: Final = 4
REFUSAL_TEXT: Final = "I'm sorry, but I can't help with that request."
DEFAULT_SLOW_TTFT_S: Final = 1.5

_POOL: Final = (
    "The short answer depends on a few details worth spelling out.",
    "First, consider the most common case and what it implies.",
    "Second, the edge cases matter more than they first appear to.",
    "A small worked example usually makes the idea much clearer.",
    "Keep in mind the trade-off between speed and accuracy here.",
    "Most practitioners settle on a simple rule and refine it later.",
    "The underlying reason is easier to see from a concrete case.",
    "In practice the difference is small but worth measuring.",
    "Documentation for the topic tends to agree on these points.",
    "When in doubt, test the assumption against real data.",
    "That covers the essentials without going into every corner.",
    "Further reading can fill in the historical background.",
    "This is a simulated answer, so treat it as placeholder text.",
)


@attrs.frozen(kw_only=True)
class Failure:
    """An attempt that fails before any output.

    ``status`` is the HTTP status a server sends (``None`` for ``reset`` and
    ``silent``, which never answer); ``retry_after`` is the hint in seconds a
    rate limit carries, when it carries one.
    """

    kind: FailureKind
    status: int | None
    message: str
    retry_after: float | None = None


@attrs.frozen(kw_only=True)
class Plan:
    """What one attempt will do.

    With ``failure`` set, the attempt fails after ``ttft_s`` seconds and the
    answer fields are unused. Otherwise chunk ``i`` goes out
    ``ttft_s + sum(delays[: i + 1])`` seconds after the request, then the
    ``ending``: ``complete`` (with the wire's terminator unless
    ``terminator`` is false), ``refusal`` (``refusal`` text, no answer
    chunks), or after ``break_after`` chunks ``cut`` (connection closed),
    ``stall`` (nothing more, connection kept open) or ``error`` (an error
    event after the answer began). ``malformed_at = k`` injects one
    unparseable event just before chunk ``k``.
    """

    behaviour: str
    model: str
    failure: Failure | None = None
    ttft_s: float = 0.0
    chunks: tuple[str, ...] = ()
    delays: tuple[float, ...] = ()
    ending: Ending = "complete"
    break_after: int = 0
    malformed_at: int | None = None
    terminator: bool = True
    refusal: str = ""
    finish_reason: str = "stop"
    #: the request's stop sequence the answer ended at (not included), when it ended at one
    stop_sequence: str | None = None
    usage: Usage = attrs.field(factory=Usage)

    @property
    def text(self) -> str:
        """The whole answer this plan would deliver if nothing broke."""
        return "".join(self.chunks)

    @property
    def delivered(self) -> tuple[str, ...]:
        """The chunks that actually go out before the ending."""
        if self.ending in ("cut", "stall", "error"):
            return self.chunks[: self.break_after]
        return self.chunks


@attrs.frozen
class _Answer:
    text: str
    chunks: tuple[str, ...]
    words: int
    finish_reason: str
    zero_delays: tuple[float, ...]
    stop_sequence: str | None = None


def _chunked(words: list[str]) -> tuple[str, ...]:
    out = []
    for i in range(0, len(words), WORDS_PER_CHUNK):
        piece = " ".join(words[i : i + WORDS_PER_CHUNK])
        out.append(piece if i == 0 else " " + piece)
    return tuple(out)


@functools.lru_cache(maxsize=4096)
def _compose(model: str, topic: str, prompt_crc: int, max_tokens: int | None) -> _Answer:
    seed = zlib.crc32(model.encode(), prompt_crc)
    # whole sentences until at least ``target`` words, so a finished answer ends with its
    # sentence (one cut mid-sentence would look truncated); the pool's sentences are at
    # most 12 words, so the answer stays within MAX_ANSWER_WORDS
    target = MAX_ANSWER_WORDS // 2 + seed % (MAX_ANSWER_WORDS // 2 - 11)
    if (long := _numbers(behaviour_name(model), "long")) is not None and len(long) in (1, 2):
        target = max(1, int(long[0]))  # the fake server's long-N: N words, or a few more
    words = f"Simulated answer from {model} about: {topic or '(nothing)'}...".split()
    i = 0
    while len(words) < target:
        words.extend(_POOL[(seed + 7 * i) % len(_POOL)].split())
        i += 1
    natural = len(words)
    limit = natural if max_tokens is None else max(1, min(natural, max_tokens))
    words = words[:limit]
    chunks = _chunked(words)
    return _Answer(
        text=" ".join(words),
        chunks=chunks,
        words=len(words),
        finish_reason="length" if limit < natural else "stop",
        zero_delays=(0.0,) * len(chunks),
    )


def _answer(model: str, prompt: str, max_tokens: int | None) -> _Answer:
    topic = " ".join(prompt.split(None, 8)[:8])
    return _compose(model, topic, zlib.crc32(prompt.encode()), max_tokens)


def expected_answer(model: str, prompt: str, max_tokens: int | None) -> str:
    """The full answer a simulated ``model`` gives to ``prompt`` (the last user message).

    It starts "Simulated answer from <model> about: <first words of the
    prompt>..." and is padded from a fixed sentence pool to 30..60 words
    (chosen from a checksum of model and prompt; at least N words, whole sentences,
    for the fake server's ``long-N``), cut to ``max_tokens`` words when that is
    lower (the finish reason is then ``length``).
    """
    return _answer(model, prompt, max_tokens).text


def _last_user(request: ProviderRequest) -> str:
    for message in reversed(request.messages):
        if message.role == "user":
            return message.content
    return ""


def _input_tokens(request: ProviderRequest) -> int:
    chars = sum(len(m.content) for m in request.messages)
    return max(1, (chars + 3) // 4)


#: how many of its last words the simulator ends another model's cut text with, when that
#: text is longer than its own whole answer
CLOSING_WORDS: Final = 6


def _prefilled(answer: _Answer, request: ProviderRequest) -> _Answer:
    """Continue after a trailing assistant message: the rest of the answer when it is a
    prefix of it; else (another model's text, cut) the answer's words after as many as
    that text has, after a space, as a model carries on the text it is given (it had
    answered afresh, glued to the text: "...the trade-off betweenSimulated answer...")."""
    last = request.messages[-1] if request.messages else None
    if last is None or last.role != "assistant" or not last.content:
        return answer
    if answer.text == last.content:
        return answer
    if answer.text.startswith(last.content):
        rest = answer.text[len(last.content) :]
    else:
        words = answer.text.split()
        # (a cut longer than the whole answer: its last words, to end it, not all of it)
        after = words[len(last.content.split()) :] or words[-CLOSING_WORDS:]
        rest = ("" if last.content[-1].isspace() else " ") + " ".join(after)
    lead = rest[: len(rest) - len(rest.lstrip())]
    words = rest.split()
    chunks = list(_chunked(words))
    chunks[0] = lead + chunks[0]
    return attrs.evolve(
        answer,
        text=rest,
        chunks=tuple(chunks),
        words=len(words),
        zero_delays=(0.0,) * len(chunks),
    )


#: how many of the cut text's last words a ``restates`` model, asked in a user turn to go
#: on with it, says again before it does (as models often do)
RESTATED_WORDS: Final = 6
#: the time between a ``restates`` model's chunks (seconds)
RESTATE_GAP_S: Final = 0.01


def _restating(answer: _Answer, cut: str) -> _Answer:
    said = cut.split()[-RESTATED_WORDS:]
    chunks = [" ".join(said[i : i + 2]) + " " for i in range(0, len(said), 2)]
    if not cut[-1].isspace():  # (its last word as cut, the rest of it after)
        chunks[-1] = chunks[-1][:-1]
    return attrs.evolve(
        answer,
        text="".join(chunks) + answer.text,
        chunks=(*chunks, *answer.chunks),
        words=answer.words + len(said),
        zero_delays=(0.0,) * len(chunks) + answer.zero_delays,
    )


def _answer_for(model: str, request: ProviderRequest) -> _Answer:
    messages = request.messages
    cut = ""
    if (
        len(messages) >= 2
        and messages[-1].role == "user"
        and messages[-1].content == CONTINUE_PROMPT
        and messages[-2].role == "assistant"
    ):
        # a model without prefill asked to continue its cut answer: it goes on from where
        # the text stops, as asked (it answered the request afresh, glued to the cut text)
        request = attrs.evolve(request, messages=messages[:-1])
        cut = messages[-2].content if behaviour_name(model) == "restates" else ""
    answer = _answer(model, _last_user(request), request.max_tokens)
    if request.messages and request.messages[-1].role == "assistant":
        answer = _prefilled(answer, request)
    if cut.strip():
        answer = _restating(answer, cut)
    if request.stop:
        answer = _stopped(answer, request.stop)
    return answer


def _stopped(answer: _Answer, stop: tuple[str, ...] | list[str]) -> _Answer:
    """The answer up to the first of the ``stop`` sequences to appear in it (not included),
    as a provider stops: finish reason ``stop``, whether or not it was cut at ``max_tokens``,
    and which sequence it was.

    A model stops as soon as its text ends with a stop sequence, so the one that matched is
    the one that is complete first (the earliest end; of two ending together, the longer).
    """
    found = [(i + len(s), i, s) for s in stop if s and (i := answer.text.find(s)) >= 0]
    if not found:
        return answer
    _, end, matched = min(found)
    chunks: list[str] = []
    taken = 0
    for chunk in answer.chunks:
        if taken + len(chunk) >= end:
            if end > taken:
                chunks.append(chunk[: end - taken])
            break
        chunks.append(chunk)
        taken += len(chunk)
    text = answer.text[:end]
    return _Answer(
        text=text,
        chunks=tuple(chunks),
        words=len(text.split()),
        finish_reason="stop",
        zero_delays=(0.0,) * len(chunks),
        stop_sequence=matched,
    )


def answer_plan(behaviour: str, model: str, request: ProviderRequest) -> Plan:
    """A healthy answer to ``request`` from ``model``, labelled ``behaviour``."""
    return _answer_plan(behaviour, model, request)


def _answer_plan(behaviour: str, model: str, request: ProviderRequest) -> Plan:
    answer = _answer_for(model, request)
    return Plan(
        behaviour=behaviour,
        model=model,
        chunks=answer.chunks,
        delays=answer.zero_delays,
        finish_reason=answer.finish_reason,
        stop_sequence=answer.stop_sequence,
        usage=Usage(input_tokens=_input_tokens(request), output_tokens=answer.words),
    )


def _failure_plan(
    behaviour: str,
    model: str,
    failure: Failure,
    request: ProviderRequest,
    *,
    after_s: float = 0.0,
) -> Plan:
    usage = Usage(input_tokens=_input_tokens(request))
    return Plan(behaviour=behaviour, model=model, failure=failure, ttft_s=after_s, usage=usage)


_REFUSAL_WORDS: Final = len(REFUSAL_TEXT.split())


def _refusal(plan: Plan) -> Plan:
    words = _REFUSAL_WORDS
    return attrs.evolve(
        plan,
        ending="refusal",
        chunks=(),
        delays=(),
        refusal=REFUSAL_TEXT,
        finish_reason="refusal",
        stop_sequence=None,
        usage=attrs.evolve(plan.usage, output_tokens=words),
    )


def _middle(plan: Plan) -> int:
    return max(1, len(plan.chunks) // 2) if len(plan.chunks) > 1 else 0


RATE_LIMITED: Final = "rate limit reached for requests; please try again later"
_FAILURES: Final[dict[str, Failure]] = {
    "rate-limited": Failure(kind="rate_limited", status=429, message=RATE_LIMITED, retry_after=1.0),
    "rate-limited-no-retry-after": Failure(kind="rate_limited", status=429, message=RATE_LIMITED),
    "down": Failure(kind="unavailable", status=503, message="the service is unavailable"),
    "overloaded": Failure(kind="overloaded", status=529, message="Overloaded"),
    "reset": Failure(kind="reset", status=None, message="connection reset before headers"),
    "silent": Failure(kind="silent", status=None, message="accepted and never answered"),
    "context-length": Failure(
        kind="context_length", status=400, message="the prompt exceeds the context window"
    ),
    "content-policy": Failure(
        kind="content_policy", status=400, message="the request was rejected by a content policy"
    ),
    "not-found": Failure(kind="not_found", status=404, message="the model is not served here"),
    "bad-key": Failure(kind="bad_key", status=401, message="the API key was rejected"),
    "quota-exhausted": Failure(
        kind="quota_exhausted", status=429, message="the account's credits or quota are used up"
    ),
    "spend-limit": Failure(
        kind="spend_limit", status=429, message="the account's spending limit is reached"
    ),
}
_SERVER_ERROR: Final = Failure(kind="server_error", status=500, message="internal server error")


# -- the in-process simulator -------------------------------------------------------------


def _profile_failure(rng: random.Random, profile: SimProfile, u: float) -> Failure | None:
    if u < profile.rate_limit_rate:
        retry_after = round(rng.uniform(0.5, 2.0), 1) if rng.random() < 0.75 else None
        return Failure(
            kind="rate_limited", status=429, message=RATE_LIMITED, retry_after=retry_after
        )
    if u < profile.rate_limit_rate + profile.error_rate:
        return rng.choice(_PROFILE_ERRORS)
    return None


_PROFILE_ERRORS: Final = (
    _SERVER_ERROR,
    _FAILURES["down"],
    _FAILURES["overloaded"],
    _FAILURES["reset"],
)


OUTAGE_MESSAGE: Final = "the service is unavailable (scheduled outage)"
_OUTAGE: Final = Failure(kind="unavailable", status=503, message=OUTAGE_MESSAGE)


def in_outage(profile: SimProfile, elapsed_s: float) -> bool:
    """Whether ``profile``'s outage schedule has the model down ``elapsed_s`` seconds
    after its provider started.

    Down in ``[after, after + for)``, and with ``every`` set, in each
    ``[after + k * every, after + k * every + for)`` for k = 1, 2, ... No
    schedule (``outage_after_s`` unset) or a non-positive ``outage_for_s`` is
    never down; an ``every`` not above ``for`` stays down from ``after`` on.
    """
    after = profile.outage_after_s
    if after is None or profile.outage_for_s <= 0 or elapsed_s < after:
        return False
    since = elapsed_s - after
    every = profile.outage_every_s
    if every is not None and every > 0:
        if every <= profile.outage_for_s:
            return True
        since %= every
    return since < profile.outage_for_s


def plan_from_profile(
    profile: SimProfile,
    request: ProviderRequest,
    rng: random.Random,
    *,
    model_alias: str,
    context_window: int | None = None,
    elapsed_s: float | None = None,
) -> Plan:
    """Draw one attempt's plan from ``profile``; the same seeded ``rng`` gives the same plan.

    One uniform draw picks the outcome so each rate is its own probability:
    rate limit (retry-after 0.5..2 s on three draws in four), upstream error
    (500, 503, 529 or a reset), refusal, stall (after a random chunk, possibly
    before the first), cut (after at least one chunk), else a complete answer.
    Times: ``ttft_ms`` to the first chunk, then the rest of the answer over
    ``max(latency_ms - ttft_ms, words / tokens_per_s)``, all scaled by one
    jitter factor in 0.8..1.2; zero times draw no jitter and give zero delays.
    A prompt whose estimated tokens exceed ``context_window`` fails with
    ``context_length``. ``elapsed_s`` (seconds since the simulated provider
    started) inside a scheduled outage (``in_outage``) gives a 503
    ``unavailable`` failure after ``ttft_ms``, drawing nothing from ``rng``.
    """
    answer = _answer_for(model_alias, request)
    input_tokens = _input_tokens(request)
    if context_window is not None and input_tokens > context_window:
        message = f"prompt is too long: {input_tokens} tokens > {context_window} maximum"
        too_long = Failure(kind="context_length", status=400, message=message)
        return _failure_plan("context-length", model_alias, too_long, request)
    if elapsed_s is not None and in_outage(profile, elapsed_s):
        after_s = profile.ttft_ms / 1000.0
        return _failure_plan("outage", model_alias, _OUTAGE, request, after_s=after_s)
    u = rng.random()
    n = len(answer.chunks)
    ttft_s = profile.ttft_ms / 1000.0
    delays = answer.zero_delays
    if profile.latency_ms > 0 or ttft_s > 0 or profile.tokens_per_s > 0:
        jitter = rng.uniform(0.8, 1.2)
        ttft_s *= jitter
        stream_s = max(profile.latency_ms / 1000.0 * jitter - ttft_s, 0.0)
        if profile.tokens_per_s > 0:
            stream_s = max(stream_s, answer.words / profile.tokens_per_s * jitter)
        if n > 1 and stream_s > 0:
            delays = (0.0,) + (stream_s / (n - 1),) * (n - 1)
        elif n == 1:
            ttft_s += stream_s

    failure = _profile_failure(rng, profile, u)
    if failure is not None:
        if failure.kind == "rate_limited":
            return _failure_plan("rate-limited", model_alias, failure, request)
        return _failure_plan("error", model_alias, failure, request, after_s=ttft_s)
    u -= profile.rate_limit_rate + profile.error_rate
    usage = Usage(input_tokens=input_tokens, output_tokens=answer.words)
    behaviour, k = "healthy", 0
    ending: Ending = "complete"
    if u < profile.refusal_rate:
        refusal_usage = Usage(input_tokens=input_tokens, output_tokens=_REFUSAL_WORDS)
        return Plan(
            behaviour="refusal",
            model=model_alias,
            ttft_s=ttft_s,
            ending="refusal",
            refusal=REFUSAL_TEXT,
            finish_reason="refusal",
            usage=refusal_usage,
        )
    u -= profile.refusal_rate
    if u < profile.stall_rate:
        behaviour, ending, k = "stall", "stall", rng.randrange(n) if n else 0
    elif u - profile.stall_rate < profile.cut_rate:
        behaviour, ending, k = "cut", "cut", rng.randrange(1, n) if n > 1 else 0
    return Plan(
        behaviour=behaviour,
        model=model_alias,
        ttft_s=ttft_s,
        chunks=answer.chunks,
        delays=delays,
        ending=ending,
        break_after=k,
        finish_reason=answer.finish_reason,
        stop_sequence=answer.stop_sequence,
        usage=usage,
    )


# -- the fake server's named behaviours ------------------------------------------------------


#: the fake server's behaviour names (numbered ones shown with example numbers)
BEHAVIOURS: Final = (
    "healthy",
    "slow-ttft",
    "slow-ttft-2500",
    "rate-limited",
    "rate-limited-no-retry-after",
    "error-once",
    "down",
    "overloaded",
    "reset",
    "silent",
    "cut",
    "stall",
    "malformed",
    "no-terminator",
    "error-after-200",
    "context-length",
    "content-policy",
    "not-found",
    "bad-key",
    "quota-exhausted",
    "spend-limit",
    "refusal",
    "flapping-5",
    "flapping-2-3",
    "healthy-latency-50",
    "long-2000",
    "long-600-5",
    "thinks-aloud",
    "cached",
    "restates",
)

#: what ``thinks-aloud`` writes before its answer, in the answer's text (as Groq's "raw"
#: reasoning format does), its tags split across chunks
THINKING: Final = ("<thi", "nk>\nThe user asks ", "for a short answer.\n</th", "ink>\n\n")


class BehaviourState:
    """Per-model-name memory for the stateful behaviours (``error-once``, ``flapping-*``).

    Owned by one fake server; mutated only by ``plan_from_name``.
    """

    def __init__(self) -> None:
        self._first_seen: dict[str, float] = {}
        self._failed_once: set[str] = set()

    def first_seen(self, model: str, now: float) -> float:
        """When ``model`` was first asked for (recording ``now`` the first time)."""
        return self._first_seen.setdefault(model, now)

    def fail_once(self, model: str) -> bool:
        """True the first time it is asked for ``model``, false ever after."""
        if model in self._failed_once:
            return False
        self._failed_once.add(model)
        return True

    def clear(self) -> None:
        self._first_seen.clear()
        self._failed_once.clear()


def behaviour_name(model: str) -> str:
    """The behaviour part of a model name: after the last ``/``, before a ``:tag``."""
    return model.rsplit("/", 1)[-1].split(":", 1)[0]


def _numbers(name: str, prefix: str) -> tuple[float, ...] | None:
    """The dash-separated numbers after ``prefix`` (``()`` for none), ``None`` if not numbers."""
    if name == prefix:
        return ()
    if not name.startswith(prefix + "-"):
        return None
    try:
        values = tuple(float(part) for part in name[len(prefix) + 1 :].split("-"))
    except ValueError:
        return None
    if not all(math.isfinite(v) and v >= 0 for v in values):
        return None
    return values


def plan_from_name(
    model: str, request: ProviderRequest, *, now: float, state: BehaviourState
) -> Plan:
    """The plan the fake server follows for a request naming ``model``.

    Names (after the last ``/``, before a ``:tag``): healthy, slow-ttft[-MS],
    rate-limited, rate-limited-no-retry-after, error-once, down, overloaded,
    reset, silent, cut, stall, malformed, no-terminator, error-after-200,
    context-length, content-policy, not-found (the provider's answer to an unknown model),
    bad-key (the provider rejects the key), quota-exhausted (credits, balance or quota
    used up), spend-limit (a monthly spending cap reached), refusal, flapping-S (503 for S
    seconds from the first request for this name, then healthy), flapping-D-U (503 for
    D s, healthy for U s, repeating), healthy-latency-MS, long-N (a healthy answer of
    at least N words, in chunks of four), long-N-MS (the same, MS ms between chunks),
    thinks-aloud (a healthy answer after a ``<think>`` block in its text, ``THINKING``),
    cached (a healthy answer whose usage reports half its prompt, rounded up, read from
    the provider's cache, where the wire reports cache hits), restates (healthy; asked in a
    user turn to continue a cut answer, it first says that text's last six words again).
    Anything else is healthy. Each
    wire plays a failure the way its provider does (see the ``_wire_*`` modules).
    """
    name = behaviour_name(model)
    if name in _FAILURES:
        return _failure_plan(name, model, _FAILURES[name], request)
    if name == "error-once":
        if state.fail_once(model):
            return _failure_plan(name, model, _SERVER_ERROR, request)
        return _answer_plan(name, model, request)
    plan = _answer_plan("healthy", model, request)
    if name == "cut":
        return attrs.evolve(plan, behaviour=name, ending="cut", break_after=_middle(plan))
    if name == "stall":
        return attrs.evolve(plan, behaviour=name, ending="stall", break_after=_middle(plan))
    if name == "error-after-200":
        return attrs.evolve(plan, behaviour=name, ending="error", break_after=0)
    if name == "malformed":
        return attrs.evolve(plan, behaviour=name, malformed_at=_middle(plan))
    if name == "no-terminator":
        return attrs.evolve(plan, behaviour=name, terminator=False)
    if name == "restates":  # at a token's pace, so a repeat comes in pieces, as it does
        return attrs.evolve(plan, behaviour=name, delays=(RESTATE_GAP_S,) * len(plan.chunks))
    if name == "refusal":
        return attrs.evolve(_refusal(plan), behaviour=name)
    if name == "thinks-aloud":
        return attrs.evolve(
            plan,
            behaviour=name,
            chunks=THINKING + plan.chunks,
            delays=(0.0,) * len(THINKING) + plan.delays,
            usage=attrs.evolve(
                plan.usage, output_tokens=plan.usage.output_tokens + len("".join(THINKING).split())
            ),
        )
    if name == "cached":
        hits = (plan.usage.input_tokens + 1) // 2
        return attrs.evolve(
            plan, behaviour=name, usage=attrs.evolve(plan.usage, cached_input_tokens=hits)
        )
    if (ms := _numbers(name, "slow-ttft")) is not None and len(ms) <= 1:
        ttft = ms[0] / 1000.0 if ms else DEFAULT_SLOW_TTFT_S
        return attrs.evolve(plan, behaviour="slow-ttft", ttft_s=ttft)
    if (long := _numbers(name, "long")) is not None and len(long) == 2:
        return attrs.evolve(plan, behaviour="long", delays=(long[1] / 1000.0,) * len(plan.delays))
    if (ms := _numbers(name, "healthy-latency")) is not None and len(ms) == 1:
        return attrs.evolve(plan, behaviour="healthy-latency", ttft_s=ms[0] / 1000.0)
    if (secs := _numbers(name, "flapping")) is not None and 1 <= len(secs) <= 2:
        elapsed = now - state.first_seen(model, now)
        down = secs[0]
        if len(secs) == 2 and secs[0] + secs[1] > 0:
            elapsed %= secs[0] + secs[1]
        if elapsed < down:
            return _failure_plan("flapping", model, _FAILURES["down"], request)
        return attrs.evolve(plan, behaviour="flapping")
    return plan


#: how far a simulated user's score strays from a model's answer quality (standard deviation)
RATING_SPREAD: Final = 0.1


def answer_quality(model: ModelSpec, intent: str) -> float:
    """How good ``model``'s simulated answers are for ``intent``, 0..1: its profile's
    ``quality`` for that intent, else its ``default_quality`` (0.7 without a profile)."""
    profile = model.sim or SimProfile()
    return profile.quality.get(intent, profile.default_quality)


def rate_answer(model: ModelSpec, intent: str, rng: random.Random) -> float:
    """The score a simulated user gives an answer of ``model`` for ``intent`` (what it
    would send as feedback): ``answer_quality`` with some noise, clipped to 0..1; the
    same seeded ``rng`` gives the same scores. This is what lets learning from feedback
    be seen on the simulator: the models' per-intent quality is only ever known to the
    router through such scores."""
    score = rng.gauss(answer_quality(model, intent), RATING_SPREAD)
    return 0.0 if score < 0.0 else 1.0 if score > 1.0 else score
