"""The provider actor: one per provider, owning everything about talking to it.

It owns the pooled httpx client (or the simulator), a circuit breaker per model,
the provider's rate-limit budget, its concurrency limit and the decayed
statistics per (model, intent). For each ``Attempt`` it decides admission from its
own state and answers ``Unavailable`` at once when it cannot serve, so the
dispatcher falls back instead of queueing blindly. Admitted attempts run as tasks
in the actor's nursery and stream their events to the attempt's reply channel.

Every state change goes through ``_ProviderState.handle``: inbox messages, and the
``AttemptDone`` an attempt task hands over synchronously when it ends (no
checkpoint in between, so no locks and no lost update even when the inbox is full).
After each change a frozen ``ProviderSnapshot`` is published on the board.

Crash and restart: the attempt tasks live in the actor's nursery, so a crash in
the actor cancels them; each closes its reply channel on the way out, which the
dispatcher reads as a failed attempt and falls back. The restarted actor picks up
breakers, rate budget and statistics from its last published snapshot.
"""

from __future__ import annotations

import logging
import random
import time
import traceback
from collections.abc import Awaitable, Callable, Mapping
from contextlib import AsyncExitStack
from types import MappingProxyType
from typing import Final

import attrs
import httpx
import trio

from switchman._call import valid_text
from switchman._channels import send_soon
from switchman._errors import (
    AttemptTimeout,
    AuthError,
    BadRequest,
    ModelNotFound,
    ProviderError,
    QuotaExhausted,
    RateLimited,
    attempt_outcome,
)
from switchman._result import TraceEvent, Usage, finish_is_normal, normal_finish
from switchman.actors._attempt_ends import (
    abnormal_end,
    breaker_outcome,
    failure_label,
    garbled,
    no_text,
    tell_failed,
)
from switchman.actors._board import ModelHold, ProviderSnapshot, StatusBoard
from switchman.actors._hub import TraceHub, publish_after_the_call
from switchman.actors._messages import (
    SLOW_AFTER_MS,
    SLOW_FACTOR,
    Attempt,
    AttemptDone,
    AttemptFailed,
    CallersTimeout,
    CancelAttempt,
    Feedback,
    ProviderMessage,
    Unavailable,
)
from switchman.adapters._base import (
    Adapter,
    Malformed,
    ResponseStarted,
    StreamEnd,
    StreamEvent,
    TextDelta,
)
from switchman.adapters._http import make_client, send_attempt
from switchman.adapters._registry import make_adapter
from switchman.adapters._sse import scrub
from switchman.catalog._credentials import provider_secrets
from switchman.catalog._spec import ModelSpec, ProviderSpec
from switchman.policy import _learning
from switchman.policy._breaker import (
    CLOSED_BREAKER,
    Breaker,
    BreakerConfig,
    breaker_admit,
    breaker_record,
    breaker_retry_at,
)
from switchman.policy._intensity import crash_hold
from switchman.policy._learning import (
    LearningConfig,
    ModelStats,
    observe,
    observe_feedback,
    outage_forgotten,
)
from switchman.policy._ratelimit import (
    RateBudget,
    clamp_hold,
    new_budget,
    own_limits,
    rate_admit,
    rate_observe,
    rate_settle,
)
from switchman.policy._silence import Waiting, model_silence

log = logging.getLogger("switchman.provider")

#: how long a provider that rejected our key is kept out of routing
MISCONFIGURED_HOLD_S = 300.0
#: how long past an attempt's deadline its provider ends it, if the dispatcher has not
#: (the dispatcher's own timer is the one that normally fires, at the deadline itself)
BACKSTOP_S = 0.5
#: how long a model the provider says it does not serve (404) stays out of routing
MODEL_NOT_FOUND_HOLD_S = 300.0
#: when to ask again about a model whose half-open probe is in flight
PROBE_POLL_S = 0.25
#: when a call turned away for every attempt slot being taken asks again at the latest
#: (it is woken sooner, as an attempt on the provider ends)
BUSY_POLL_S = 1.0
#: the outcomes of an attempt that never heard from its model
_UNHEARD: Final = frozenset({"timeout", "cancelled"})
_NO_MODEL_RATES: Mapping[str, RateBudget] = MappingProxyType({})
_NO_HOLDS: Mapping[str, ModelHold] = MappingProxyType({})
_NOTHING_SENT: Final = (0, 0.0, 0.0)
#: ``switchman.sim.run_sim_attempt``'s shape: what a ``kind = "sim"`` provider plays
SimPlayer = Callable[..., Awaitable[None]]


class _ProviderState:
    """The actor's state. Only its own actor task and its attempt tasks touch it."""

    def __init__(
        self,
        spec: ProviderSpec,
        models: tuple[ModelSpec, ...],
        board: StatusBoard,
        hub: TraceHub,
        breaker_cfg: BreakerConfig,
        learning_cfg: LearningConfig,
        initial_stats: Mapping[tuple[str, str], ModelStats],
    ) -> None:
        self.spec = spec
        self.own_limits = own_limits(spec.name, spec.rpm, spec.tpm)  # (named when empty)
        self.models = models
        #: the aliases of each upstream model: two aliases of one model (a catalog entry
        #: and a [[models]] alias for it) share its breaker, its learning, its 429 hold
        #: and its 404
        by_id: dict[str, list[str]] = {}
        for m in models:
            by_id.setdefault(m.model_id, []).append(m.alias)
        self.same_model: dict[str, tuple[str, ...]] = {
            alias: tuple(aliases) for aliases in by_id.values() for alias in aliases
        }
        self.by_alias: dict[str, ModelSpec] = {m.alias: m for m in models}
        self.board = board
        self.hub = hub
        self.breaker_cfg = breaker_cfg
        self.learning_cfg = learning_cfg
        now = trio.current_time()
        previous = board.get(spec.name)
        if previous is not None:  # a restart: carry health and learning over
            # (a probe out then was lost with the attempts: the next call may probe)
            self.breakers: dict[str, Breaker] = {
                alias: attrs.evolve(b, probe_in_flight=False, probe_started_at=None)
                if b.probe_in_flight
                else b
                for alias, b in previous.breakers.items()
            }
            self.rate: RateBudget = previous.rate
            self.stats: dict[tuple[str, str], ModelStats] = dict(previous.stats)
            self.model_rates: dict[str, RateBudget] = dict(previous.model_rates)
            self.holds: dict[str, ModelHold] = dict(previous.model_holds)
            # (counted when it crashed: a restart of every provider is not theirs)
            self.restarts = previous.restarts + (previous.crashed is not None)
        else:
            self.breakers = {m.alias: Breaker() for m in models}
            self.rate = new_budget(spec.rpm, spec.tpm, now)
            self.stats = dict(initial_stats)  # learned in an earlier run
            self.model_rates = {}
            self.holds = {}
            self.restarts = 0
        self.in_flight = 0
        #: when this provider first started (outages of simulated models count from here)
        self.started_at = previous.started_at if previous is not None else now
        # (a hold outlives a restart: a restart does not make a rejected key good)
        self.misconfigured: str | None = previous.misconfigured if previous else None
        self.misconfigured_until = previous.misconfigured_until if previous else 0.0
        self.crash_streak = previous.crash_streak if previous else 0
        self.crash_hold_until = previous.crash_hold_until if previous else 0.0
        if previous is not None and previous.crashed is not None:  # (its own crash)
            self.crash_streak, self.crash_hold_until = crash_hold(
                self.crash_streak,
                now,
                answered=previous.answered,
                served_s=now - previous.serving_since,
            )
            if self.crash_hold_until > now:
                self.misconfigured = (
                    f"its actor crashed {self.crash_streak} times in a row"
                    f" (the last: {previous.crashed})"
                )
                self.misconfigured_until = self.crash_hold_until
                log.warning(
                    "provider %s held out for %.0f s: %s",
                    spec.name,
                    self.crash_hold_until - now,
                    self.misconfigured,
                )
        #: attempts it answered since it began serving (a crash after enough is alone)
        self.answered = 0
        self.serving_since = max(now, self.crash_hold_until)
        self.scopes: dict[int, trio.CancelScope] = {}
        #: the actor's nursery, for the timers that announce a cool-down's end
        self.nursery: trio.Nursery | None = None
        #: per alias, the cool-down end already announced as half-open (not told twice)
        self.announced: dict[str, float] = {}
        #: the scopes of those timers
        self.timers: set[trio.CancelScope] = set()
        #: attempt id -> the time limit the dispatcher cancelled it for
        self.cancel_reasons: dict[int, ProviderError] = {}
        #: every credential the provider is configured with (its API key, its credential
        #: headers' values; ``provider_secrets``): kept out of every message (never published)
        self.secret: tuple[str, ...] = ()
        #: attempts in flight with no text yet, and when each upstream model last spoke
        #: (gave text, or answered at all): what tells a hung model (``policy._silence``)
        self.waiting: dict[int, Waiting] = {}
        self.heard: dict[str, float] = {}
        #: upstream models told hung in the log (again only after they speak)
        self.told_silent: set[str] = set()
        #: per upstream model (its first alias), requests, tokens and input tokens sent in
        #: all; per attempt in flight, those counts when it was sent (``_sent_since``)
        self.sent: dict[str, tuple[int, float, float]] = {}
        self.sent_at: dict[int, tuple[int, float, float]] = {}
        self.counting = spec.kind != "sim"
        self.waiting_view = MappingProxyType(self.waiting)
        self.heard_view = MappingProxyType(self.heard)
        self.publish()

    def publish(self) -> None:
        self.board.publish(
            self.spec.name,
            ProviderSnapshot(
                spec=self.spec,
                models=self.models,
                breakers=dict(self.breakers),
                rate=self.rate,
                stats=dict(self.stats),
                in_flight=self.in_flight,
                misconfigured=self.misconfigured,
                misconfigured_until=self.misconfigured_until,
                restarts=self.restarts,
                started_at=self.started_at,
                model_rates=dict(self.model_rates) if self.model_rates else _NO_MODEL_RATES,
                model_holds=dict(self.holds) if self.holds else _NO_HOLDS,
                learning=self.learning_cfg,
                waiting=self.waiting_view,  # (live views: status tells a silent model)
                heard=self.heard_view,
                crash_streak=self.crash_streak,
                crash_hold_until=self.crash_hold_until,
                answered=self.answered,
                serving_since=self.serving_since,
            ),
        )

    def admit(self, msg: Attempt, now: float) -> Unavailable | None:
        """Take the slot, the probe and the rate tokens for ``msg``, or say why not."""
        alias = msg.model.alias
        if self.misconfigured is not None and now < self.misconfigured_until:
            left = self.misconfigured_until - now
            return Unavailable(
                reason=f"provider held out: {self.misconfigured} (for {left:.0f}s more)"
            )
        if self.holds and (hold := self.holds.get(alias)) is not None and now < hold.until:
            return Unavailable(reason=hold.reason, retry_at=hold.until)
        if self.in_flight >= self.spec.max_concurrency:
            # (a call with nowhere else to go asks again as soon as one of the dispatcher's
            # attempts on it ends, or at ``retry_at`` at the latest)
            return Unavailable(
                reason=f"at concurrency limit {self.spec.max_concurrency}",
                retry_at=now + BUSY_POLL_S,
                busy=True,
            )
        if msg.alternatives and self.waiting:
            model_id = msg.model.model_id
            problem = model_silence(alias, model_id, self.waiting, self.heard, self.stats, now)
            if problem is not None:
                if model_id not in self.told_silent:  # (once, until it speaks again)
                    self.told_silent.add(model_id)
                    log.warning("provider %s, model %s: %s", self.spec.name, model_id, problem)
                return Unavailable(reason=problem)
        breaker = self.breakers.get(alias, CLOSED_BREAKER)
        admitted, new_breaker = breaker_admit(breaker, self.breaker_cfg, now)
        if not admitted:
            retry_at = breaker_retry_at(breaker)
            if retry_at is None and breaker.probe_in_flight:  # its outcome is due any moment
                retry_at = now + PROBE_POLL_S
            if retry_at is None or breaker.probe_in_flight:
                reason = f"breaker {breaker.state}: its probe is out"
            else:
                reason = f"breaker {breaker.state} for {retry_at - now:.1f}s more"
            if breaker.opened_by:
                reason = f"{reason} ({breaker.opened_by})"
            return Unavailable(reason=reason, retry_at=retry_at)
        room = msg.request.max_tokens or 0
        tokens = msg.input_tokens + room
        model_rate = self.model_rates.get(alias)
        if model_rate is not None:  # what the provider said about this model
            retry_at, model_rate = rate_admit(model_rate, now, tokens=tokens, output_tokens=room)
            if retry_at is not None:
                return Unavailable(
                    reason=f"rate limited for {retry_at - now:.1f}s", retry_at=retry_at
                )
        retry_at, new_rate = rate_admit(self.rate, now, tokens=tokens)
        if retry_at is not None:
            return Unavailable(
                reason=f"rate budget empty for {retry_at - now:.1f}s{self.own_limits}",
                retry_at=retry_at,
            )
        if model_rate is not None:
            self.model_rates[alias] = model_rate
        if new_breaker is not breaker:  # (a closed breaker admits without a change)
            self._set_breaker(alias, breaker, new_breaker, now)
        self.rate = new_rate
        if self.counting:  # (the in-process simulator says nothing of its limits)
            upstream = self.same_model.get(alias, (alias,))[0]
            sent = self.sent.get(upstream, _NOTHING_SENT)
            sent = (sent[0] + 1, sent[1] + tokens, sent[2] + msg.input_tokens)
            self.sent[upstream] = self.sent_at[msg.id] = sent
        self.in_flight += 1
        self.publish()
        return None

    def handle(self, msg: ProviderMessage) -> None:
        now = trio.current_time()
        match msg:
            case AttemptDone():
                self._done(msg, now)
            case CancelAttempt(id=attempt_id, reason=reason):
                scope = self.scopes.get(attempt_id)
                if scope is not None:
                    if reason is not None:  # its time ran out: that is how it is counted
                        self.cancel_reasons[attempt_id] = reason
                    scope.cancel()
            case Feedback(alias=alias, intent=intent, score=score):
                for kind in (intent, "*"):
                    self._learned(
                        alias,
                        kind,
                        observe_feedback(
                            self.stats.get((alias, kind)), self.learning_cfg, now=now, score=score
                        ),
                    )
                self.publish()
            case Attempt():
                raise TypeError("attempts are admitted by the actor loop, not handled here")
            case _:
                raise TypeError(f"provider actor got an unexpected message: {msg!r}")

    def _sent_since(self, msg: AttemptDone) -> tuple[int, float, float]:
        """What was sent to ``msg``'s model after it: not in the counters its answer's
        headers say yet (a burst sent before the first answer came back went past them)."""
        if not self.sent_at:
            return _NOTHING_SENT
        at = self.sent_at.pop(msg.id, None)
        if at is None:
            return _NOTHING_SENT
        now = self.sent.get(self.same_model.get(msg.alias, (msg.alias,))[0], at)
        return (now[0] - at[0], now[1] - at[1], now[2] - at[2])

    def _done(self, msg: AttemptDone, now: float) -> None:
        self.in_flight -= 1
        sent_since = self._sent_since(msg)
        breaker = self.breakers.get(msg.alias, CLOSED_BREAKER)
        # (a stream broken by a rate limit after its text began is the rate limit's)
        error = msg.error.cause or msg.error if msg.error is not None else None
        outcome = breaker_outcome(msg.outcome, error)
        self._set_breaker(
            msg.alias,
            breaker,
            breaker_record(
                breaker,
                self.breaker_cfg,
                now,
                outcome,
                started_at=msg.started_at,
                cause=failure_label(error) if outcome == "failure" else "",
            ),
            now,
        )
        actual = msg.usage.input_tokens + msg.usage.output_tokens if msg.usage else 0
        model = self.by_alias.get(msg.alias)
        if model is not None:  # a garbage report must not empty the tpm budget for days
            actual = min(actual, model.context_window + model.max_output_tokens)
        self.rate = rate_settle(
            self.rate, now, estimated_tokens=msg.estimated_tokens, actual_tokens=actual
        )
        limited = isinstance(error, RateLimited)
        if msg.headers or limited:
            # the provider's counters (x-ratelimit-*) and a 429 hold back the model they
            # answered for, not its siblings: providers limit per model, and a healthy
            # fallback on the same provider must stay usable. Our own rpm/tpm stay per provider.
            retry_after = error.retry_after if isinstance(error, RateLimited) else None
            observed = rate_observe(
                self.model_rates.get(msg.alias) or new_budget(None, None, now),
                now,
                msg.headers or {},
                wall_now=time.time(),
                status=429 if limited else (msg.status or 200),
                retry_after=retry_after,
                sent_since=sent_since,
            )
            for alias in self.same_model.get(msg.alias, (msg.alias,)):
                self.model_rates[alias] = observed
        if isinstance(msg.error, QuotaExhausted) and msg.error.per_model:
            # the model's own quota (Gemini's per model per day): its siblings on the
            # provider have their own, and serve on
            # (a day's quota: its retry delay, if longer than the usual hold)
            wait = max(clamp_hold(msg.error.retry_after) or 0.0, MISCONFIGURED_HOLD_S)
            hold = ModelHold(reason=msg.error.message, until=now + wait)
            for alias in self.same_model.get(msg.alias, (msg.alias,)):
                self.holds[alias] = hold
        elif isinstance(msg.error, AuthError):
            # (a used-up quota's message says so itself)
            kind = "" if isinstance(msg.error, QuotaExhausted) else "auth error: "
            if self.misconfigured is None:
                log.warning(
                    "provider %s held out for %.0f s: %s%s",
                    self.spec.name,
                    MISCONFIGURED_HOLD_S,
                    kind,
                    msg.error.message,
                )
            self.misconfigured = f"{kind}{msg.error.message}"
            self.misconfigured_until = now + MISCONFIGURED_HOLD_S
        elif isinstance(msg.error, ModelNotFound):  # asking again will not change it soon
            hold = ModelHold(
                reason=f"not served by {self.spec.name}: {msg.error.message}",
                until=now + MODEL_NOT_FOUND_HOLD_S,
            )
            for alias in self.same_model.get(msg.alias, (msg.alias,)):
                self.holds[alias] = hold
        elif msg.outcome == "success":
            self.answered += 1
            self.misconfigured = None
            if self.holds:
                for alias in self.same_model.get(msg.alias, (msg.alias,)):
                    self.holds.pop(alias, None)
        latency_ms = (now - msg.started_at) * 1000.0
        ttft_ms = msg.ttft_s * 1000.0 if msg.ttft_s is not None else None
        learned_as = msg.outcome
        if isinstance(error, CallersTimeout) and not self._slow(msg, latency_ms):
            learned_as = "cancelled"  # the caller's hurry, not the model's slowness
        for intent in (msg.intent, "*"):
            if intent == "*" and learned_as in _learning.REFUSAL_OUTCOMES:
                break  # (what a model refuses is the intent's: not held against the others)
            learned = observe(
                self.stats.get((msg.alias, intent)),
                self.learning_cfg,
                now=now,
                outcome=learned_as,
                latency_ms=latency_ms if msg.outcome in ("success", "timeout") else None,
                ttft_ms=ttft_ms,
                fresh_look=msg.fresh_look,
            )
            self._learned(msg.alias, intent, learned)
        self.publish()

    def _slow(self, msg: AttemptDone, waited_ms: float) -> bool:
        """Whether an attempt a caller's own limit cut off after ``waited_ms`` without its
        first token had waited well past what the model is known to take to it
        (``CallersTimeout``). One cut once its text flowed was not slow: its answer was
        longer than the caller would wait for."""
        if msg.ttft_s is not None:
            return False
        known = self.stats.get((msg.alias, msg.intent)) or self.stats.get((msg.alias, "*"))
        usual = known.ttft_ms if known is not None else None
        return waited_ms >= max(SLOW_AFTER_MS, SLOW_FACTOR * usual if usual else 0.0)

    def _learned(self, alias: str, intent: str, stats: ModelStats) -> None:
        """What is now known of ``alias`` for ``intent``: of its siblings too, since they
        are one model upstream."""
        for sibling in self.same_model.get(alias, (alias,)):
            self.stats[(sibling, intent)] = stats

    def _set_breaker(self, alias: str, old: Breaker, new: Breaker, now: float) -> None:
        siblings = self.same_model.get(alias, (alias,))
        for sibling in siblings:
            self.breakers[sibling] = new
        if old.state == new.state:
            return
        if new.state == "closed":
            self._forget_outage(siblings)
        if new.state == "open" and self.nursery is not None:
            # status views read it half-open once the cool-down ends; say so then, not
            # only when the next call is let through as its probe
            self.nursery.start_soon(_announce_half_open, self, alias, new.open_until)
        if old.state == "open" and self.announced.get(alias) == old.open_until:
            return  # its half-open was told when the cool-down ended
        self._tell(siblings, old.state, new.state, new, now)

    def _forget_outage(self, siblings: tuple[str, ...]) -> None:
        """A breaker closed on its probe's success: what the model did while it failed
        is dropped (``outage_forgotten``)."""
        for key, stats in list(self.stats.items()):
            if key[0] in siblings:
                self.stats[key] = outage_forgotten(stats)

    def announce_half_open(self, alias: str, open_until: float) -> None:
        """The cool-down that ends at ``open_until`` is over and nothing was let through
        yet: tell subscribers the breaker is half-open (it is, as status reads it)."""
        breaker = self.breakers.get(alias)
        if breaker is None or breaker.state != "open" or breaker.open_until != open_until:
            return  # tripped again, or a probe already went (and that was told)
        siblings = self.same_model.get(alias, (alias,))
        for sibling in siblings:
            self.announced[sibling] = open_until
        self._tell(siblings, "open", "half_open", breaker, trio.current_time())

    def _tell(
        self, siblings: tuple[str, ...], old_state: str, new_state: str, new: Breaker, now: float
    ) -> None:
        events: list[TraceEvent] = []
        for name in siblings:
            log.info("breaker %s %s -> %s", name, old_state, new_state)
            if self.hub.active:
                events.append(
                    TraceEvent(
                        type="breaker.changed",
                        call_id="",
                        job_id=None,
                        ts=time.time(),
                        data={
                            "alias": name,
                            "provider": self.spec.name,
                            "from": old_state,
                            "to": new_state,
                            "retry_in_s": (
                                round(r - now, 3)
                                if new_state == "open" and (r := breaker_retry_at(new)) is not None
                                else None
                            ),
                            "opened_by": new.opened_by or None,
                        },
                    )
                )
        if not events:
            return
        if self.nursery is None:
            for event in events:
                self.hub.tell(event)
        else:  # after the call's own attempt.finished, which this outcome caused
            self.nursery.start_soon(publish_after_the_call, self.hub, events)


async def run_provider_actor(
    spec: ProviderSpec,
    models: tuple[ModelSpec, ...],
    inbox: trio.MemoryReceiveChannel[ProviderMessage],
    *,
    board: StatusBoard,
    hub: TraceHub,
    api_key: str | None = None,
    breaker_cfg: BreakerConfig | None = None,
    learning_cfg: LearningConfig | None = None,
    rng: random.Random | None = None,
    client: httpx.AsyncClient | None = None,
    initial_stats: Mapping[tuple[str, str], ModelStats] | None = None,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve attempts for ``spec`` until the inbox ends, then let running attempts finish.

    ``client`` (tests, benchmarks) replaces the pooled client the actor would open;
    the actor closes only a client it opened. Cancelled midway, running attempts are
    cancelled and their reply channels closed, which their callers read as failure.
    """
    state = _ProviderState(
        spec,
        models,
        board,
        hub,
        breaker_cfg or BreakerConfig(),
        learning_cfg or LearningConfig(),
        initial_stats or {},
    )
    state.secret = provider_secrets(spec, api_key)
    rng = rng or random.Random(spec.seed)  # (None: from the system's entropy)
    adapter: Adapter | None = None
    play_sim: SimPlayer | None = None
    async with AsyncExitStack() as stack:
        if spec.kind == "sim":
            from switchman.sim import run_sim_attempt  # (the sim package is loaded on use)

            play_sim = run_sim_attempt
        else:
            adapter = make_adapter(spec, api_key)
            if client is None:
                client = await stack.enter_async_context(make_client(spec))
        async with trio.open_nursery() as nursery:
            state.nursery = nursery
            task_status.started()
            async for msg in inbox:
                if isinstance(msg, Attempt):
                    try:
                        refusal = state.admit(msg, trio.current_time())
                    except BaseException:  # (its caller learns at once: no attempt runs)
                        msg.reply_to.close()
                        raise
                    if refusal is not None:
                        with msg.reply_to:
                            try:
                                msg.reply_to.send_nowait(refusal)
                            except (trio.BrokenResourceError, trio.WouldBlock):
                                pass
                        continue
                    # a backstop a moment past the attempt's deadline: the dispatcher
                    # cancels it first, saying whether the timeout counts against the model
                    scope = trio.CancelScope(deadline=msg.deadline + BACKSTOP_S)
                    state.scopes[msg.id] = scope
                    nursery.start_soon(
                        _run_attempt, state, msg, scope, adapter, client, rng, play_sim
                    )
                else:
                    state.handle(msg)
            for timer in list(state.timers):  # no more calls: no cool-down left to tell of
                timer.cancel()


@trio.lowlevel.enable_ki_protection  # (Ctrl-C: see switchman.supervisor._supervisor)
async def _run_attempt(
    state: _ProviderState,
    msg: Attempt,
    scope: trio.CancelScope,
    adapter: Adapter | None,
    client: httpx.AsyncClient | None,
    rng: random.Random,
    play_sim: SimPlayer | None,
) -> None:
    """One admitted attempt. Always ends by handing an ``AttemptDone`` to the state
    and closing the reply channel, whether it succeeded, failed or was cancelled."""
    started = trio.current_time()
    ttft: float | None = None
    usage: Usage | None = None
    status: int | None = None
    headers: Mapping[str, str] | None = None
    outcome = "cancelled"
    error: ProviderError | None = None
    worded = False  # text came that is more than white space
    reply = msg.reply_to
    model_id = msg.model.model_id
    state.waiting[msg.id] = (model_id, started, msg.ttft_s)

    async def emit(event: StreamEvent) -> None:
        nonlocal ttft, usage, status, headers, worded
        if isinstance(event, TextDelta):
            if not event.text.isascii() and (text := valid_text(event.text)) != event.text:
                event = TextDelta(text=text)  # (a lone surrogate: what no decoder would give)
            if not worded and not event.text.isspace():
                worded = True  # (checked until the first word: once an attempt, mostly)
            if ttft is None:
                now = trio.current_time()
                ttft = now - started
                state.waiting.pop(msg.id, None)  # it spoke: not hung
                state.heard[model_id] = now
                state.told_silent.discard(model_id)
        elif isinstance(event, StreamEnd):
            usage = event.usage
            said = event.model_id
            if said is not None and said != model_id:  # the upstream's own words: shown
                event = attrs.evolve(event, model_id=scrub(said, state.secret)[:200] or None)
            normal = finish_is_normal(event.finish_reason)
            # (an answer of no text but white space is no answer; a continuation may add
            # nothing: the answer was whole)
            if not normal or (not worded and not msg.continues):
                error = (
                    abnormal_end(state.spec.name, ttft is not None, event.finish_reason)
                    if not normal
                    else no_text(
                        state.spec.name,
                        normal_finish(event.finish_reason) or "stop",
                        msg.request.max_tokens,
                    )
                )
                # the provider bills this answer all the same: its usage goes with the error
                error.billed = (event.usage.input_tokens, event.usage.output_tokens)
                error.billed_cost_usd = event.cost_usd
                raise error
        elif isinstance(event, ResponseStarted):
            status, headers = event.status, event.headers
        elif isinstance(event, Malformed):
            # an event that could not be read may have carried text: the answer would have
            # a hole in it, so the attempt fails (the breaker counts it; another model, or
            # a continuation, answers)
            await send_soon(reply, event)
            raise garbled(state.spec.name, ttft is not None, scrub(event.detail, state.secret))
        await send_soon(reply, event)  # events that arrive together travel together

    try:
        with reply:
            try:
                with scope:
                    if play_sim is not None:
                        await play_sim(
                            msg.model, msg.request, rng, emit, started_at=state.started_at
                        )
                    else:
                        assert client is not None and adapter is not None
                        await send_attempt(
                            client,
                            adapter,
                            msg.request,
                            emit,
                            ttft_timeout_s=msg.ttft_s,
                            stall_timeout_s=msg.stall_s,
                        )
                    outcome = "success"
                if scope.cancelled_caught and outcome != "success":
                    reason = (
                        state.cancel_reasons.pop(msg.id, None) if state.cancel_reasons else None
                    )
                    if reason is not None:  # the caller's TTFT or stall limit: its reply
                        error, outcome = reason, attempt_outcome(reason)  # is already made
                    elif trio.current_time() >= msg.deadline + BACKSTOP_S:
                        error = AttemptTimeout("attempt deadline passed", provider=state.spec.name)
                        outcome = "timeout"
                        await tell_failed(reply, AttemptFailed(error=error))
            except ProviderError as exc:
                error = exc
                if exc.provider is None:
                    exc.provider = state.spec.name
                outcome = attempt_outcome(exc)
                await tell_failed(reply, AttemptFailed(error=exc))
            except (trio.BrokenResourceError, trio.ClosedResourceError, trio.WouldBlock):
                raise  # the caller stopped reading: handled below
            except Exception as exc:  # a bug on our side (e.g. a request we could not
                # encode): this attempt fails, the actor and its other attempts carry on
                # (its text may quote the request, the key included: scrubbed everywhere)
                said = scrub(f"{type(exc).__name__}: {exc}", state.secret)
                log.error("attempt on %s failed inside switchman: %s", msg.model.alias, said)
                log.debug(
                    "where the attempt on %s failed:\n%s",
                    msg.model.alias,
                    "".join(traceback.format_tb(exc.__traceback__)),
                )
                error = BadRequest(
                    f"switchman could not complete the attempt: {said}", provider=state.spec.name
                )
                outcome = attempt_outcome(error)
                await tell_failed(reply, AttemptFailed(error=error))
    except (trio.BrokenResourceError, trio.ClosedResourceError, trio.WouldBlock):
        outcome = "cancelled" if outcome != "success" else outcome
    finally:
        state.scopes.pop(msg.id, None)
        if state.cancel_reasons:
            state.cancel_reasons.pop(msg.id, None)
        if state.waiting.pop(msg.id, None) is not None and outcome not in _UNHEARD:
            state.heard[model_id] = trio.current_time()  # it answered (an error is an answer)
            state.told_silent.discard(model_id)
        state.handle(
            AttemptDone(
                id=msg.id,
                alias=msg.model.alias,
                intent=msg.intent,
                outcome=outcome,
                started_at=started,
                ttft_s=ttft,
                usage=usage,
                estimated_tokens=msg.input_tokens + (msg.request.max_tokens or 0),
                status=status,
                headers=headers,
                error=error,
                fresh_look=msg.fresh_look,
            )
        )


@trio.lowlevel.enable_ki_protection
async def _announce_half_open(state: _ProviderState, alias: str, open_until: float) -> None:
    """Wait out a breaker's cool-down, then tell that it is half-open (unless it changed).
    Cancelled when the actor stops taking attempts: a timer never holds up shutdown."""
    with trio.CancelScope() as scope:
        state.timers.add(scope)
        try:
            await trio.sleep_until(open_until)
            state.announce_half_open(alias, open_until)
        finally:
            state.timers.discard(scope)
