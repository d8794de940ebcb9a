"""One call's working state (``CallRun``), owned by its task in the dispatcher, and
what a successful attempt hands back (``Success``)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any, Literal

import attrs
import trio

from switchman._call import Call
from switchman._result import (
    AttemptRecord,
    Delta,
    ErrorInfo,
    Exclusion,
    Result,
    TraceEvent,
    Usage,
    Wait,
)
from switchman.actors._env import DispatchEnv
from switchman.catalog._spec import ModelSpec
from switchman.policy._budget import Refusal
from switchman.policy._known import KnownValues
from switchman.policy._redaction import StreamRedactor


@attrs.define
class CallRun:
    """The working state of one call, owned by its task."""

    call: Call
    call_id: str
    job_id: str | None
    stream: bool
    reply_to: trio.MemorySendChannel[Delta | Result]
    input_tokens: int
    deadline: float
    started: float
    redact: bool = True
    attempts: list[AttemptRecord] = attrs.field(factory=list)
    errors: list[ErrorInfo] = attrs.field(factory=list)
    reserved_usd: float = 0.0
    settled_usd: float = 0.0
    #: the call's wall time less trio's (see ``wall``), once read
    wall_offset: float | None = None
    #: billed and not held against a budget (see ``track``): with ``settled_usd``, what
    #: the call's attempts have cost so far
    tracked_usd: float = 0.0
    #: fallbacks passed over as what they could cost would take the call past its cap
    over_cap: int = 0
    #: why the call stopped falling back with models left (its failures' bills), else None
    stopped: str | None = None
    #: the attempt last handed to a provider's actor (its number; 0: none yet)
    handed: int = 0
    #: budget holds asked for so far: each its own id, though a model paused is asked
    #: again under one attempt number (a late release must not end the next one's hold)
    holds: int = 0
    budget_scopes: tuple[str, ...] = ()
    #: raw text already handed to the caller's stream (through the redactor), in pieces
    #: (``+=`` on an attribute copied it whole each time: 3 s for 20,000 pieces)
    raw_pieces: list[str] = attrs.field(factory=list)
    #: the model the ranking put first to hear from it again (``freshness``), until tried
    fresh_look: str | None = None
    sent_redacted: list[str] = attrs.field(factory=list)
    #: trio time the caller's stream got its first text (whichever attempt sent it)
    first_text_at: float | None = None
    redactor: StreamRedactor | KnownValues | None = None
    break_error: ErrorInfo | None = None
    #: the call's own cancel scope: cancelled when the caller stops reading its stream
    scope: trio.CancelScope | None = None
    #: where spend no budget covers goes as each attempt is billed (the dispatcher's
    #: ``track``: to the ledger within a batch time, so a kill mid-call loses no earlier
    #: attempt's bill); None: nowhere
    spend: Callable[[tuple[str, ...], float, float], None] | None = None
    #: when the provider said the model it just turned away can serve again, and whether
    #: it did so for having every attempt slot taken
    back_at: float | None = None
    busy: bool = False
    #: the last attempt was refused by a budget whose room calls in flight hold: that
    #: refusal, and what the attempt could cost
    room_later: tuple[Refusal, float] | None = None
    #: what the next attempt follows, for its ``attempt.started`` event: None (the first),
    #: "retry: <why>" (the same model again, after a backoff) or "fallback[: <why>]"
    after: str | None = None
    #: what the attempt cancelled midway (the caller left, a deadline, a shutdown) was
    #: billed for the output it had begun, USD: settled as it unwinds
    cut_usd: float = 0.0
    #: how the attempts are ordered (``Trace.order``)
    order: Literal["score", "named"] = "score"
    #: ``Trace.waits`` and ``Trace.skipped`` (None until the first)
    waits: list[Wait] | None = None
    skipped: list[Exclusion] | None = None

    def take_fresh_look(self, alias: str) -> bool:
        """Whether an attempt on ``alias`` is the ranking's fresh look at it (once)."""
        if self.fresh_look != alias:
            return False
        self.fresh_look = None
        return True

    @property
    def sent_raw(self) -> str:
        pieces = self.raw_pieces  # (joined once, when read)
        if len(pieces) > 1:
            pieces[:] = ["".join(pieces)]
        return pieces[0] if pieces else ""

    def wall(self, env: DispatchEnv) -> float:
        """Wall time for this call's trace: the router's wall clock as the call first read
        it, then moving with trio's, so its times keep their order and agree with its
        durations even when the wall clock is stepped meanwhile (a later call follows it)."""
        now = trio.current_time()
        if self.wall_offset is None:
            self.wall_offset = env.wall() - now
        return self.wall_offset + now

    def wall_at(self, env: DispatchEnv, when: float) -> float:
        """The wall time, on this call's clock (see ``wall``), of trio time ``when``."""
        if self.wall_offset is None:
            self.wall_offset = env.wall() - trio.current_time()
        return self.wall_offset + when

    def waited(self, since: float, reason: str) -> None:
        """Note the wait from ``since`` (trio time) until now, before the next attempt."""
        ms = (trio.current_time() - since) * 1000.0
        if self.waits is None:
            self.waits = []
        self.waits.append(Wait(after_attempt=len(self.attempts), ms=ms, reason=reason))

    @contextlib.contextmanager
    def waiting(self, reason: str) -> Iterator[None]:
        """Note the wait inside the block, however it ends (a deadline, a cancellation)."""
        since = trio.current_time()
        try:
            yield
        finally:
            self.waited(since, reason)

    def skip(self, alias: str, reason: str) -> None:
        """Note a candidate not tried (again) once attempts began, and why."""
        if self.skipped is None:
            self.skipped = []
        self.skipped.append(Exclusion(alias=alias, reason=reason))

    def track(self, scopes: tuple[str, ...], usd: float, at: float) -> None:
        """Spend no budget holds, in the periods of ``at`` (wall time its attempt began, as
        a reservation's spend counts in the periods it was made in)."""
        self.tracked_usd += usd
        if self.spend is not None:
            self.spend(scopes, usd, at)

    def event(self, env: DispatchEnv, type_: Any, **data: Any) -> None:
        if env.hub.active:  # (a bug in tracing is logged: the call it traces goes on)
            env.hub.tell(
                TraceEvent(
                    type=type_,
                    call_id=self.call_id,
                    job_id=self.job_id,
                    ts=self.wall(env),
                    data=data,
                    handle=self.call.caller.handle,
                )
            )


@attrs.frozen(kw_only=True)
class Success:
    model: ModelSpec
    text: str
    usage: Usage
    cost_usd: float
    ttft_ms: float | None
    provider_model_id: str | None
    finish_reason: str | None = None
    #: trio time its first token came (its attempt may have begun long after the call)
    first_token_at: float | None = None
    #: the bill was already logged as beyond what was asked (one warning per answer)
    told: bool = False
    #: the URLs of the sources the answer cites (Perplexity's search results)
    citations: tuple[str, ...] = ()
