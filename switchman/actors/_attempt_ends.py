"""How an attempt ended, when it did not end with its answer: the errors for an attempt
cut off by a limit, for an answer that ended abnormally or carried an unreadable event, for
an upstream that would not stop, for a provider actor that went away; the repeat a
continuation drops; whether a timeout counts against the model; an ended attempt's event
data; a wait for a paused model kept as one record. Pure: values in, an error, text or data
out; but for the text a reply channel still held when its attempt ended (``texts_waiting``,
``ClosingCounted``), taken from the channel without a checkpoint."""

from __future__ import annotations

import logging
from typing import Any, Final

import attrs
import trio

from switchman._call import Call, Message, Timeouts
from switchman._errors import (
    NO_ANSWER,
    AttemptTimeout,
    BadReply,
    ContentRejected,
    NoAnswerText,
    ProviderError,
    RateLimited,
    Refused,
    StreamBroken,
    TransientError,
    UpstreamError,
)
from switchman._result import AttemptRecord, ErrorInfo
from switchman.actors._callrun import CallRun
from switchman.actors._env import DispatchEnv
from switchman.actors._messages import AttemptFailed, AttemptReply, Unavailable
from switchman.adapters._base import TextDelta
from switchman.adapters._registry import chat_flavor
from switchman.catalog._spec import Config, ModelSpec, RouterConfig
from switchman.policy._breaker import CLOSED_BREAKER, BreakerOutcome, breaker_retry_at
from switchman.policy._eligibility import output_tokens
from switchman.policy._estimate import CONTINUE_PROMPT, most_cost
from switchman.policy._known import hide_known_cut
from switchman.policy._redaction import redact

#: how far back in the text sent a continuation's repeat of it may begin: a model asked to
#: go on often restates the sentence it was cut in, or the last few, before it goes on
REPEAT_TAIL: Final = 400
#: the shortest repeat of the text's end that is dropped (a shorter overlap is as likely
#: the continuation's own words); a repeat of the whole text is dropped at any length
MIN_REPEAT: Final = 20


def _may_yet_repeat(tail: str, got: str) -> bool:
    """Whether ``got`` begins an end of ``tail`` of ``MIN_REPEAT`` or more characters
    that it does not yet reach: more text may make it a repeat."""
    at = tail.find(got)
    while at != -1 and len(tail) - at >= MIN_REPEAT:
        if len(tail) - at > len(got):
            return True
        at = tail.find(got, at + 1)
    return False


def strip_repeat(sent: str, pending: str, *, final: bool = False) -> tuple[str, str, bool]:
    """Drop a continuation's repeat of ``sent`` (the text the caller already has): the whole
    of it, or its end from within its last ``REPEAT_TAIL`` characters (``MIN_REPEAT`` or
    more), at the start of ``pending``, what the continuation has given so far. The text is
    compared without the whitespace it ends with (a model restating "...here\n" may go on
    "...here and more").

    Returns (text to forward now, text still held, still checking?). Text is held while
    more of it could still make it a repeat; at the continuation's end (``final``) what is
    held is forwarded, but for a start of the whole text, a restart that stopped.
    """
    want = sent.strip()
    got = pending.lstrip()
    if got.startswith(want):
        return got[len(want) :], "", False
    tail = want[-REPEAT_TAIL:]
    if want.startswith(got) or (not final and _may_yet_repeat(tail, got)):
        return ("", "", False) if final else ("", pending, True)
    for k in range(min(len(tail), len(got)), MIN_REPEAT - 1, -1):
        if got.startswith(tail[-k:]):
            return got[k:], "", False
    return pending, "", False


@attrs.define
class Seam:
    """Where a continuation of a broken stream joins the text the caller already has.

    It drops a repeat of that text (a model asked in a user turn to go on often restates
    it first: ``strip_repeat``), and the whitespace the text ended with should the
    continuation begin with it again: a prefill is sent without it (Anthropic rejects it),
    and a model sent ``a way of`` goes on with `` solving``, which would read ``of  solving``
    after the ``of `` the caller has (only whitespace the same as the text's end is
    dropped: after ``\n``, a continuation's ``    return x`` keeps its indentation).
    """

    #: the answer so far as the model was sent it, the router's secrets hidden (what it
    #: repeats), without the whitespace it begins and ends with
    sent: str
    #: whether a repeat is still looked for (a model that takes no prefill)
    checking: bool
    #: the whitespace the text ended with, not yet met again at the continuation's start
    spaces: str
    pending: str = ""
    #: how much of the text, from its start, what is held has restated so far (checked a
    #: piece at a time, as a long restatement comes); -1 once it parted from it
    restated: int = 0

    def take(self, piece: str) -> str:
        """What of ``piece``, the continuation's next text, goes to the caller now."""
        if self.checking:
            self.pending += piece
            if self._restating(piece):
                return ""
            piece, self.pending, self.checking = strip_repeat(self.sent, self.pending)
        return self._unspaced(piece)

    def close(self) -> str:
        """At the continuation's end: what it held goes out, or is dropped as a repeat."""
        held, self.pending, self.checking = self.pending, "", False
        return self._unspaced(strip_repeat(self.sent, held, final=True)[0] if held else "")

    def _restating(self, piece: str) -> bool:
        """Whether what is held still restates the text from its start, short of its end."""
        if self.restated < 0:
            return False
        said = piece.lstrip() if self.restated == 0 else piece
        if self.sent.startswith(said, self.restated) and self.restated + len(said) < len(self.sent):
            self.restated += len(said)
            return True
        self.restated = -1
        return False

    def _unspaced(self, piece: str) -> str:
        if self.spaces and piece:
            same = 0
            while same < min(len(piece), len(self.spaces)) and piece[same] == self.spaces[same]:
                same += 1
            piece = piece[same:]
            self.spaces = self.spaces[same:] if not piece else ""
        return piece


def unusable(message: str, provider: str, output_began: bool) -> ProviderError:
    """An answer that cannot be taken as it is: a stream cut short once text went out
    (continued elsewhere), else a bad reply (another model answers)."""
    if output_began:
        return StreamBroken(message, provider=provider, status=200)
    return BadReply(message, provider=provider, status=200)


def abnormal_end(provider: str, output_began: bool, reason: str | None) -> ProviderError:
    """An answer that ended for a reason other than done or a token limit, or for none:
    it may be incomplete, so it is never a success."""
    message = (
        f"the answer ended abnormally (finish reason {reason!r}): it may be incomplete"
        if reason
        else "the answer ended without a finish reason: it may be incomplete"
    )
    return unusable(message, provider, output_began)


def no_text(provider: str, finish: str, max_tokens: int | None) -> ProviderError:
    """An answer that ended with no text but white space (``finish`` its normal finish
    reason): at its token limit, a reasoning model that spent the whole of ``max_tokens``
    thinking; at a stop, one that reasoned aloud and was cut there, or said nothing. An
    empty answer is no answer."""
    if finish == "length":
        limit = f"max_tokens {max_tokens}" if max_tokens is not None else "its token limit"
        message = (
            f"{NO_ANSWER}it reached {limit} before any text (the model spent it on "
            "reasoning); a larger max_tokens leaves it room"
        )
    else:
        message = (
            f"{NO_ANSWER}it ended (finish reason {finish!r}) with no text (a model that "
            "reasons aloud may have been cut inside its reasoning by a stop sequence)"
        )
    return NoAnswerText(message, provider=provider, status=200)


def garbled(provider: str, output_began: bool, detail: str) -> ProviderError:
    """A stream event that could not be read: its text, if it had any, is lost."""
    return unusable(
        f"the stream carried an event switchman could not read ({detail}): text may be missing",
        provider,
        output_began,
    )


def runaway(model: ModelSpec, text: list[str], out_tokens: int, received: int) -> ProviderError:
    """An upstream sending far more text than ``out_tokens`` can be: garbage, or a loop;
    kept, it would fill memory and the job store."""
    return unusable(
        f"the answer grew past what max_tokens {out_tokens} allows ({received:,} characters "
        "and counting): the upstream is not answering the request",
        model.provider,
        bool(text),
    )


def stopped(model: ModelSpec, text: list[str]) -> ProviderError:
    message = "provider actor stopped during the attempt"
    if text:
        return StreamBroken(message, provider=model.provider)
    return ProviderError(message, provider=model.provider)


def timed_out(
    model: ModelSpec,
    text: list[str],
    now: float,
    attempt_deadline: float,
    ttft_s: float,
    stall_s: float,
) -> ProviderError:
    if now >= attempt_deadline:
        return AttemptTimeout("attempt deadline passed", provider=model.provider)
    if text:
        return StreamBroken(
            f"stream stalled: no data for {stall_s:.3g}s after output began",
            provider=model.provider,
        )
    return AttemptTimeout(f"no first token within {ttft_s:.3g}s", provider=model.provider)


def tighter(callers_ms: int | None, default_ms: int) -> bool:
    """Whether a caller set this limit below the router's default for it."""
    return callers_ms is not None and callers_ms < default_ms


def callers_own_limit(
    t: Timeouts,
    rcfg: RouterConfig,
    now: float,
    attempt_deadline: float,
    call_deadline: float,
    text: list[str],
    ttft_s: float,
) -> bool:
    """Whether the time limit that just cut an attempt off is tighter than the router's
    default for it, because the caller set it so (or its deadline left the attempt only a
    share of its time). Such a timeout says more about the caller's hurry than about the
    model, so it is not held against the model's breaker, which every caller shares, and
    counts in its statistics only when no text had come and the model had waited well past
    its known time to first token (``CallersTimeout``). A stall (no data for ``stall_ms``
    once text began) always counts."""
    if now >= attempt_deadline:  # the attempt's deadline: the call's, or the soft one
        if attempt_deadline >= call_deadline:
            return tighter(t.hard_ms, rcfg.default_hard_ms)
        return tighter(t.soft_ms, rcfg.default_soft_ms)
    if text:
        return False
    return ttft_s * 1000.0 < rcfg.default_ttft_ms


def record_data(record: AttemptRecord) -> dict[str, Any]:
    """An ended attempt as its ``attempt.finished`` event tells it."""
    return {
        "n": record.n,
        "alias": record.alias,
        "provider": record.provider,
        "outcome": record.outcome,
        "status_code": record.status_code,
        "error": record.error,
        "ttft_ms": round(record.ttft_ms, 3) if record.ttft_ms is not None else None,
        "latency_ms": round((record.ended_at - record.started_at) * 1000.0, 3),
        "cost_usd": record.cost_usd,
    }


def merge_waiting(attempts: list[AttemptRecord], errors: list[ErrorInfo]) -> bool:
    """Asking again and again for a paused model is one wait, not an attempt per ask (no
    request was sent for any): the trace keeps one refusal, under the first ask's number,
    from the first ask to the latest, with the latest's reason (its error the last of
    ``errors``). The asks after the first each carry the next number in their events (the
    number the model's attempt gets when it is let in), so a live reader sees attempt n
    refused, then n + 1 refused again and again until it runs. True if it merged."""
    if (
        len(attempts) >= 2
        and attempts[-1].outcome == attempts[-2].outcome == "unavailable"
        and attempts[-1].alias == attempts[-2].alias
    ):
        first, latest = attempts[-2], attempts[-1]
        attempts[-2:] = [attrs.evolve(latest, n=first.n, started_at=first.started_at)]
        if len(errors) >= 2:
            del errors[-2]
        return True
    return False


def texts_waiting(replies: trio.MemoryReceiveChannel[Any]) -> list[str]:
    """The text of the replies still waiting in an attempt's channel (taken, without a
    checkpoint): the provider sent it, and bills it, though the call never read it."""
    texts: list[str] = []
    while True:
        try:
            reply = replies.receive_nowait()
        except (trio.WouldBlock, trio.EndOfChannel, trio.ClosedResourceError):
            return texts
        if isinstance(reply, TextDelta):
            texts.append(reply.text)


class ClosingCounted:
    """Closes an attempt's reply channel at the end of the exchange (as ``with channel:``
    does), first taking the text still waiting in it when the exchange ends by an
    exception (the caller left, the call's deadline): ``texts``, billed with the rest."""

    __slots__ = ("replies", "texts")

    def __init__(self, replies: trio.MemoryReceiveChannel[Any]) -> None:
        self.replies = replies
        self.texts: list[str] = []

    def __enter__(self) -> ClosingCounted:
        return self

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        if kind is not None:
            self.texts = texts_waiting(self.replies)
        self.replies.close()


def breaker_outcome(outcome: str, error: ProviderError | None) -> BreakerOutcome:
    """How an attempt that ended with ``outcome`` counts for its model's breaker."""
    if outcome == "success":
        return "success"
    if error is not None and error.trips_breaker:
        return "failure"
    return "neutral"


def failure_label(error: ProviderError | None) -> str:
    """A failure in a few words, for why a breaker opened: its kind and HTTP status, never
    the provider's message (a status view shows it to every team that may use the model,
    and a message can quote the call that met it)."""
    match error:
        case None:
            return ""
        case AttemptTimeout():
            return "a timeout"
        case StreamBroken():
            return "a stream broken midway"
        case TransientError():
            return "a connection failure"
        case BadReply():
            return "a reply not in the provider's format"
    return f"HTTP {error.status}" if error.status else "an error"


def error_info(exc: ProviderError) -> ErrorInfo:
    return ErrorInfo(
        code=exc.code,
        message=exc.message,
        provider=exc.provider,
        status=exc.status,
        retry_after_s=exc.retry_after if isinstance(exc, RateLimited) else None,
    )


def content_fallback(config: Config, call: Call) -> bool:
    """Whether ``call`` names a route that falls back on a content-policy rejection."""
    route = config.routes.get(call.model)
    return route is not None and route.fallback_on_content_rejection


def over_reserved(alias: str, cost_usd: float, reserved_usd: float) -> None:
    """Log a bill past what the request allowed: prices or limits in the catalog are wrong
    for the model, and a budget could go over by the difference."""
    logging.getLogger("switchman.attempts").warning(
        "%s billed $%.6f, more than the $%.6f reserved for its prompt and "
        "max_tokens: check its prices and output limit",
        alias,
        cost_usd,
        reserved_usd,
    )


def turned_away(
    env: DispatchEnv, run: CallRun, model: ModelSpec, why: Unavailable, record: AttemptRecord
) -> None:
    """``model``'s provider turned the attempt away (``why``): ``record`` (its outcome
    ``unavailable``) is the trace's, the error says when it may be back (a rate budget's
    refill: a caller told nothing retried at random, or not at all)."""
    run.back_at, run.busy = why.retry_at, why.busy
    record = attrs.evolve(record, error=why.reason)
    run.attempts.append(record)
    back = why.retry_at
    run.errors.append(
        ErrorInfo(
            code="no_eligible_model",
            message=f"{model.alias}: {why.reason}",
            provider=model.provider,
            retry_after_s=None if back is None else round(max(back - trio.current_time(), 0.0), 3),
        )
    )
    if env.hub.active:
        run.event(env, "attempt.finished", **record_data(record))


def held_back(env: DispatchEnv, model: ModelSpec, when: float) -> float:
    """When ``model``'s breaker, as its provider last published it, lets it be tried
    again, if that is past ``when``; else 0."""
    snapshot = env.board.get(model.provider)
    if snapshot is None:
        return 0.0
    retry_at = breaker_retry_at(snapshot.breakers.get(model.alias, CLOSED_BREAKER))
    return retry_at if retry_at is not None and retry_at > when else 0.0


def answer_cost(run: CallRun, model: ModelSpec) -> float:
    """What an answer from ``model`` can cost the call: its prompt, as estimated, and its
    output room."""
    return most_cost(model, run.input_tokens, output_tokens(run.call, model, run.input_tokens))


def messages_for(
    run: CallRun, model: ModelSpec, secrets: tuple[str, ...]
) -> tuple[tuple[Message, ...], Seam | None]:
    """The messages an attempt on ``model`` sends, and for a continuation of a broken stream
    its ``Seam``. A continuation is sent the text so far as the assistant's (one turn with
    the caller's own prefill, a last assistant turn, which the answer goes on from), and,
    for a model that takes no prefill, a turn asking it to continue; the router's own
    ``secrets`` hidden in it (one the break cut too): a model that echoed its provider's
    key would hand it to the next provider."""
    messages = run.call.chat()
    if not run.sent_raw:
        return messages, None
    text = hide_known_cut(run.sent_raw, secrets)
    if messages[-1].role == "assistant":
        messages, text = messages[:-1], messages[-1].content + text
    sent = text.rstrip()  # (compared without the whitespace it begins with too)
    seam = Seam(sent=sent.lstrip(), checking=not model.supports_prefill, spaces=text[len(sent) :])
    if model.supports_prefill:  # sent without the whitespace it ends with (see ``Seam``)
        return ((*messages, Message(role="assistant", content=sent)) if sent else messages), seam
    prefill = Message(role="assistant", content=text)
    return (*messages, prefill, Message(role="user", content=CONTINUE_PROMPT)), seam


def reasoning_unseen(model: ModelSpec, config: Config) -> bool:
    """Whether ``model`` may reason before its text without streaming the reasoning,
    billed as output all the same: a reasoning model (capability ``reason``) of the
    OpenAI-compatible wires (OpenAI's, xAI's, Mistral's thinking chunks, Perplexity's) and
    Gemini's; not Anthropic's, which switchman sends no ``thinking``, nor DeepSeek's, sent
    ``thinking: disabled``, nor Ollama's, whose thinking comes as text."""
    provider = config.providers.get(model.provider)
    if provider is None or "reason" not in model.capabilities:
        return False
    if provider.kind == "gemini":
        return True
    return provider.kind == "openai" and not chat_flavor(provider).disable_thinking


def answering(status: int | None) -> bool:
    """Whether the provider answered the attempt's request (a 2xx): its model ran."""
    return status is not None and 200 <= status < 300


def may_have_run(error: ProviderError) -> bool:
    """Whether the model may have run before ``error`` ended its answer: not when the
    provider turned it away (a rate limit, an overload, unavailable: it did not run), nor
    for a refusal (one without usage is released), nor for a prompt blocked before the
    model saw it (Gemini's ``promptFeedback.blockReason``: its usage is the prompt's)."""
    if isinstance(error, Refused | RateLimited | ContentRejected):
        return False
    return not (isinstance(error, UpstreamError) and error.status in (503, 529))


#: how long an attempt's failure waits for room behind the events it sent before it
END_SEND_S: Final = 1.0


async def tell_failed(reply: trio.MemorySendChannel[AttemptReply], failed: AttemptFailed) -> None:
    """An attempt's last word, its failure, sent even when the events before it fill the
    channel (its reader is draining them): shielded, for ``END_SEND_S`` at most. It was
    sent without waiting, and a full channel lost it: the attempt read as cut by a
    stopped actor, a refusal was continued on another model, a 529 not retried, its
    bill estimated. A reader that takes nothing that long has stopped reading
    (``trio.WouldBlock``, as before)."""
    try:
        reply.send_nowait(failed)
        return
    except trio.WouldBlock:
        pass
    with trio.move_on_after(END_SEND_S, shield=True):
        await reply.send(failed)
        return
    raise trio.WouldBlock


def refusal_redacted(error: ProviderError, run: CallRun, env: DispatchEnv) -> None:
    """A refusal's message is the model's own words, as an answer is: redacted as an
    answer is before it reaches the result, the trace, the store or a ``/v1`` error (a
    prompt-injected model put personal data there, unredacted)."""
    if isinstance(error, Refused) and run.redact:
        hidden = redact(error.message, env.secrets).text
        if hidden != error.message:
            error.message = hidden
            error.args = (hidden,)
