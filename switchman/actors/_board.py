"""Published provider health: immutable snapshots on a board with one writer per provider.

Each provider actor replaces its own ``ProviderSnapshot`` after every change; the
dispatcher and the gateway only read. A snapshot is a frozen value built from the
actor's frozen policy states, so a reader never sees a half-updated state (trio
runs one task at a time, and the replacement is a single assignment).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

import attrs

from switchman.catalog._spec import ModelSpec, ProviderSpec
from switchman.policy._breaker import Breaker
from switchman.policy._budget import Period, window_key
from switchman.policy._learning import LearningConfig, ModelStats, decayed
from switchman.policy._ratelimit import RateBudget, new_budget, rate_headroom
from switchman.policy._silence import Waiting, model_silence


@attrs.frozen(kw_only=True)
class ModelHold:
    """A model the provider actor keeps out of service until ``until`` (trio time)."""

    reason: str
    until: float


@attrs.frozen(kw_only=True)
class ProviderSnapshot:
    spec: ProviderSpec
    models: tuple[ModelSpec, ...]
    breakers: Mapping[str, Breaker]
    rate: RateBudget
    stats: Mapping[tuple[str, str], ModelStats]
    in_flight: int = 0
    misconfigured: str | None = None  # e.g. an auth error seen from the provider
    misconfigured_until: float = 0.0  # trio time the provider is held out until
    restarts: int = 0
    started_at: float = 0.0
    #: alias -> what the provider said about that model (x-ratelimit-* counters, 429s)
    model_rates: Mapping[str, RateBudget] = attrs.field(factory=dict)
    #: alias -> why the provider said it does not serve that model, and until when
    model_holds: Mapping[str, ModelHold] = attrs.field(factory=dict)
    #: how the provider's statistics fade (status shows them faded to now)
    learning: LearningConfig = attrs.field(factory=LearningConfig)
    #: the provider's attempts waiting for a first token, and when each upstream model
    #: last spoke (live views): whether a model is turned away as silent (``silence``)
    waiting: Mapping[int, Waiting] = attrs.field(factory=dict)
    heard: Mapping[str, float] = attrs.field(factory=dict)
    #: its actor's crash (its exception's type), told by its supervisor as the actor ended:
    #: the actor started after it holds the provider out (``_ProviderState``); None else
    crashed: str | None = None
    #: the crashes in a row (``policy.crash_hold``), when the hold of the last one ends
    #: (trio time), and what the actor answered since it started serving, and when
    crash_streak: int = 0
    crash_hold_until: float = 0.0
    answered: int = 0
    serving_since: float = 0.0

    def misconfigured_at(self, now: float) -> str | None:
        """Why the whole provider is held out at ``now`` (None once the hold has passed:
        the next attempt finds out whether it still holds)."""
        return self.misconfigured if now < self.misconfigured_until else None

    def held_at(self, alias: str, now: float) -> ModelHold | None:
        hold = self.model_holds.get(alias) if self.model_holds else None
        return hold if hold is not None and now < hold.until else None


def _said(exc: BaseException) -> str:
    """The type of ``exc``, of each exception a group (a nursery's) holds: not its message,
    which a bug's may take from an upstream's answer (the log has it)."""
    if isinstance(exc, BaseExceptionGroup):
        return ", ".join(dict.fromkeys(_said(e) for e in exc.exceptions))
    return type(exc).__name__


@attrs.frozen(kw_only=True)
class ModelStatus:
    """One model's live state: ``breaker`` (``closed``, ``open``, ``half_open``) and, open,
    ``retry_at`` on trio's clock (``trio.current_time()``, not wall time) when it admits a
    probe; ``stats`` per intent (``n``, the faded weight of what was learned;
    ``success_rate``, ``refusal_rate``, ``latency_ms``, ``ttft_ms``, ``feedback``,
    ``heard_s_ago``); what the provider's rate limits and holds say of it."""

    alias: str
    model_id: str
    breaker: str
    retry_at: float | None
    stats: Mapping[str, Mapping[str, float | None]]
    #: seconds the provider's word (a 429, counters at 0) still holds this model back
    rate_limited_for_s: float = 0.0
    #: what the provider's own counters for this model say is left (``requests``,
    #: ``tokens``; None when it never said), from its x-ratelimit-* headers
    provider_remaining: Mapping[str, float | None] = attrs.field(factory=dict)
    #: why the model is held out of service for now (e.g. the provider said it does not
    #: serve it), None when it is not
    held_out: str | None = None
    held_for_s: float = 0.0
    #: while the breaker is not closed, what opened it (``"5 failures in a row, the last
    #: HTTP 503"``)
    breaker_opened_by: str | None = None


@attrs.frozen(kw_only=True)
class ProviderStatus:
    """One provider's live state: ``disabled_reason`` (no key, a key the provider rejected,
    None when it serves), attempts ``in_flight`` against its ``max_concurrency``, its
    rate-limit ``rate_headroom`` (``requests``, ``tokens``, ``blocked_for_s``) and its
    models."""

    name: str
    kind: str
    disabled_reason: str | None
    in_flight: int
    max_concurrency: int
    rate_headroom: Mapping[str, float | None]
    models: tuple[ModelStatus, ...]
    #: times its actor crashed (a bug) and its supervisor restarted it
    restarts: int = 0
    #: how long the provider stays held out (a key it rejected, its actor crashing), 0.0
    #: when it is not held or is disabled for good (no key, ``enabled = false``)
    held_for_s: float = 0.0


@attrs.frozen(kw_only=True)
class RouterStatus:
    """``Router.status()``: every provider's state, seconds since the router started,
    whether it runs on the simulator, the calls in flight and, of those, the calls
    waiting for one of the router's ``capacity`` slots."""

    providers: tuple[ProviderStatus, ...]
    uptime_s: float
    simulated: bool
    in_flight_calls: int
    waiting_calls: int = 0
    #: the periods (hour, day, month) whose global budget refused the last attempt it was
    #: asked to hold, in the current window (one asking more than its whole limit aside):
    #: calls that could cost more than it has left are refused until that window ends
    global_budget_refusing: tuple[str, ...] = ()


def refusing_now(refusing: Mapping[Period, str], wall_now: float) -> tuple[Period, ...]:
    """The periods of ``StatusBoard.global_refusing`` whose window is the current one."""
    return tuple(p for p, window in refusing.items() if window == window_key(p, wall_now))


class StatusBoard:
    """Latest snapshot per provider name. Written only by that provider's actor (and by
    its supervisor, once the actor has crashed: ``crashed``); the number of calls in
    flight, written only by the dispatcher."""

    def __init__(self) -> None:
        self._snapshots: dict[str, ProviderSnapshot] = {}
        self.calls_in_flight = 0
        self.calls_waiting = 0  # (of those, waiting for a slot: written by its ``Slots``)
        #: the job ids of the calls waiting for a slot (``Router.queued_jobs``)
        self.queued_jobs: set[str] = set()
        #: ... and of those that took one after waiting and run still: the wall time they did
        self.started_jobs: dict[str, float] = {}
        #: period -> the window in which the global budget refused the last attempt it
        #: was asked to hold (written by the call tasks: set on a refusal, cleared when it
        #: holds one again)
        self.global_refusing: dict[Period, str] = {}

    def publish(self, name: str, snapshot: ProviderSnapshot) -> None:
        self._snapshots[name] = snapshot

    def crashed(self, name: str, exc: BaseException) -> None:
        """Provider ``name``'s actor crashed with ``exc`` (its supervisor's ``on_crash``)."""
        snapshot = self._snapshots.get(name)
        if snapshot is not None:
            self._snapshots[name] = attrs.evolve(snapshot, crashed=_said(exc))

    def get(self, name: str) -> ProviderSnapshot | None:
        return self._snapshots.get(name)

    def snapshots(self) -> Mapping[str, ProviderSnapshot]:
        """A read-only view (no copy: it is read on every call); iterate it without awaiting."""
        return MappingProxyType(self._snapshots)


def model_status(snap: ProviderSnapshot, model: ModelSpec, now: float) -> ModelStatus:
    breaker = snap.breakers.get(model.alias, Breaker())
    state = breaker.state
    if state == "open" and breaker.open_until <= now:
        state = "half_open"
    stats: dict[str, dict[str, float | None]] = {}
    for (alias, intent), learned in snap.stats.items():
        if alias == model.alias:
            # faded to now as scoring fades them (failures sooner than the rest)
            st = decayed(learned, snap.learning, now)
            total = st.successes + st.failures + st.refusals
            stats[intent] = {
                # the weight of what was learned (each attempt adds 1; older ones count
                # for less): not a count of calls
                "n": round(st.n, 3),
                "success_rate": round(st.successes / total, 4) if total else None,
                "refusal_rate": round(st.refusals / total, 4) if total else None,
                "latency_ms": st.latency_ms,
                "ttft_ms": st.ttft_ms,
                "feedback": round(st.feedback_sum / st.feedback_n, 4) if st.feedback_n else None,
                # (how long the model has not been heard from: a ranking looks at it again
                # after a while, ``freshness``)
                "heard_s_ago": round(max(now - learned.updated_at, 0.0), 1),
            }
    held_for, remaining = _held(snap.model_rates.get(model.alias), now)
    hold = snap.held_at(model.alias, now)
    held_out = hold.reason if hold is not None else None
    if held_out is None and snap.waiting:  # (turned away while it stays silent)
        held_out = model_silence(
            model.alias, model.model_id, snap.waiting, snap.heard, snap.stats, now
        )
    return ModelStatus(
        alias=model.alias,
        model_id=model.model_id,
        breaker=state,
        retry_at=breaker.open_until if state == "open" else None,
        stats=stats,
        rate_limited_for_s=round(held_for, 3),
        provider_remaining=remaining,
        held_out=held_out,
        held_for_s=round(hold.until - now, 3) if hold is not None else 0.0,
        breaker_opened_by=(breaker.opened_by or None) if state != "closed" else None,
    )


def _held(rate: RateBudget | None, now: float) -> tuple[float, dict[str, float | None]]:
    """How long the provider's word still holds a model back, and what its counters say
    is left (requests, tokens)."""
    if rate is None:
        return 0.0, {"requests": None, "tokens": None}
    room = rate_headroom(rate, now)
    return room["blocked_for_s"] or 0.0, {"requests": room["requests"], "tokens": room["tokens"]}


def provider_status(snap: ProviderSnapshot, now: float) -> ProviderStatus:
    return ProviderStatus(
        name=snap.spec.name,
        kind=snap.spec.kind,
        disabled_reason=snap.spec.disabled_reason or snap.misconfigured_at(now),
        in_flight=snap.in_flight,
        max_concurrency=snap.spec.max_concurrency,
        rate_headroom=rate_headroom(snap.rate, now),
        models=tuple(model_status(snap, m, now) for m in snap.models),
        restarts=snap.restarts,
        held_for_s=max(snap.misconfigured_until - now, 0.0) if snap.misconfigured else 0.0,
    )


def disabled_snapshot(
    spec: ProviderSpec, models: tuple[ModelSpec, ...], now: float
) -> ProviderSnapshot:
    """What a provider with no actor (disabled) shows: its models, their breakers closed."""
    return ProviderSnapshot(
        spec=spec,
        models=models,
        breakers={m.alias: Breaker() for m in models},
        rate=new_budget(None, None, now),
        stats={},
    )
