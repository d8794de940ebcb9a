"""Circuit breaker per model: a pure state machine over monotonic ``now``.

::

    closed ──(failure rate over window, or N consecutive failures)──> open
    open ──(now >= open_until; admits exactly one probe)──> half_open
    half_open ──(probe succeeds)──> closed      window cleared, cool-down remembered
    half_open ──(probe fails)──> open           cool-down x cooldown_factor, capped
    half_open ──(probe neutral)──> half_open    probe slot freed; the next admit probes

A trip soon after the breaker closed (within ``window_s``) is a re-trip too: the cool-down
grows from the last one, never shorter (a model flapping, one probe answered between
outages, was probed again every base cool-down for ever). A trip later than that, or
after the model answered ``min_calls`` calls and stayed in service as long as its last
cool-down (30 s at most), starts from the base cool-down: the model had recovered, and a
new outage must not hold it out for the long cool-down its last one grew (160 s, after
it answered 100 calls in its last 10 s of 47 s in service). A model down 5 s and up 3 s
still backs off (3 s in service is under its cool-down, however many calls it answered).

Only ``"failure"`` outcomes count against a model. ``"neutral"`` outcomes (a
refusal, a 4xx caused by the request, a context-length error, a rate limit)
never trip the breaker; in half-open they free the probe slot.

Nothing here blocks, so nothing here can be cancelled midway: the provider actor
owns a ``Breaker`` per model and replaces it with what these functions return.
"""

from __future__ import annotations

import bisect
from typing import Final, Literal

import attrs

BreakerStateName = Literal["closed", "open", "half_open"]
BreakerOutcome = Literal["success", "failure", "neutral"]


@attrs.frozen(kw_only=True)
class BreakerConfig:
    """When to open, how long to stay open.

    ``probe_timeout_s``: a probe that never reports back (a lost message) stops
    blocking further probes after this long.
    ``max_window_entries``: the rolling window keeps at most this many outcomes.
    """

    window_s: float = 60.0
    min_calls: int = 5
    failure_rate: float = 0.5
    consecutive_failures: int = 5
    cooldown_s: float = 5.0
    cooldown_factor: float = 2.0
    max_cooldown_s: float = 300.0
    probe_timeout_s: float = 120.0
    max_window_entries: int = 256


@attrs.frozen(kw_only=True)
class Breaker:
    """The state of one model's breaker; the default is closed with an empty window.

    ``window``: ``(time, ok)`` of counted outcomes, oldest first.
    ``open_until``: meaningful only while open or half-open.
    ``cooldown_s``: the cool-down of the latest trip (0 before any trip).
    ``opened_at``: when the latest trip happened; outcomes of calls started
    earlier are stale once the breaker is open or half-open.
    ``trips``: how many times this breaker has opened in all (for status).
    ``closed_at``: when its probe last closed it (a trip soon after is a re-trip).
    ``opened_by``: while open or half-open, what tripped it (``"5 failures in a row, the
    last HTTP 503"``), from the ``cause`` given to :func:`breaker_record`.
    """

    state: BreakerStateName = "closed"
    window: tuple[tuple[float, bool], ...] = ()
    consecutive_failures: int = 0
    open_until: float = 0.0
    opened_at: float | None = None
    cooldown_s: float = 0.0
    trips: int = 0
    probe_in_flight: bool = False
    probe_started_at: float | None = None
    closed_at: float | None = None
    opened_by: str = ""

    @property
    def failures_in_window(self) -> int:
        return [ok for _, ok in self.window].count(False)


#: a closed breaker with an empty window: frozen, so one value serves every default
CLOSED_BREAKER: Final = Breaker()


def breaker_admit(b: Breaker, cfg: BreakerConfig, now: float) -> tuple[bool, Breaker]:
    """Whether a call may go to this model now, and the breaker after admitting it.

    Closed admits. Open refuses until ``open_until``; at or after it the breaker
    turns half-open and admits exactly one probe. Half-open refuses while its
    probe is in flight (unless the probe is older than ``cfg.probe_timeout_s``).
    """
    if b.state == "closed":
        return True, b
    if b.state == "open":
        if now < b.open_until:
            return False, b
        return True, attrs.evolve(b, state="half_open", probe_in_flight=True, probe_started_at=now)
    # half_open
    if b.probe_in_flight and not _probe_lost(b, cfg, now):
        return False, b
    return True, attrs.evolve(b, probe_in_flight=True, probe_started_at=now)


def breaker_record(
    b: Breaker,
    cfg: BreakerConfig,
    now: float,
    outcome: BreakerOutcome,
    *,
    started_at: float | None = None,
    cause: str = "",
) -> Breaker:
    """The breaker after a call to this model ended with ``outcome``.

    ``cause``: what the failure was, in a few words (``"HTTP 503"``, ``"a timeout"``):
    the open breaker says so in ``opened_by``.

    ``started_at`` (optional) is when that call was admitted; when given, the
    outcome of a call admitted before the latest trip is ignored while the
    breaker is open or half-open (it says nothing about the model's recovery).
    Outcomes arriving while open change nothing: the probe decides.
    """
    if b.state == "open":
        return b
    if b.state == "half_open":
        if started_at is not None and b.opened_at is not None and started_at < b.opened_at:
            return b
        match outcome:
            case "success":  # (its cool-down kept: a trip soon after grows it)
                return Breaker(trips=b.trips, cooldown_s=b.cooldown_s, closed_at=now)
            case "failure":
                return _trip(
                    b,
                    cfg,
                    now,
                    grow=True,
                    why=f"its probe failed: {cause}" if cause else "its probe failed",
                )
            case "neutral":
                return attrs.evolve(b, probe_in_flight=False, probe_started_at=None)
    # closed
    if outcome == "neutral":
        return b
    ok = outcome == "success"
    window = _pruned((*b.window, (now, ok)), cfg, now)
    consecutive = 0 if ok else b.consecutive_failures + 1
    b = Breaker(  # built directly (the hot path): attrs.evolve introspects the class
        state=b.state,
        window=window,
        consecutive_failures=consecutive,
        open_until=b.open_until,
        opened_at=b.opened_at,
        cooldown_s=b.cooldown_s,
        trips=b.trips,
        probe_in_flight=b.probe_in_flight,
        probe_started_at=b.probe_started_at,
        closed_at=b.closed_at,
    )
    if not ok and (why := _trip_reason(b, cfg)):
        return _trip(b, cfg, now, grow=_flapping(b, cfg, now), why=_last(why, cause))
    return b


def breaker_retry_at(b: Breaker) -> float | None:
    """When an open breaker will admit its probe; ``None`` unless open."""
    return b.open_until if b.state == "open" else None


def _trip_reason(b: Breaker, cfg: BreakerConfig) -> str:
    """Why the breaker trips now, or "" when it does not."""
    if b.consecutive_failures >= cfg.consecutive_failures:
        n = b.consecutive_failures
        return f"{n} failures in a row" if n > 1 else "a failure"
    calls = len(b.window)
    if calls >= cfg.min_calls and (failed := b.failures_in_window) / calls >= cfg.failure_rate:
        return f"{failed} of its last {calls} calls failed"
    return ""


def _last(why: str, cause: str) -> str:
    if not cause:
        return why
    return f"a failure: {cause}" if why == "a failure" else f"{why}, the last {cause}"


def _flapping(b: Breaker, cfg: BreakerConfig, now: float) -> bool:
    """Whether a trip now comes soon after the breaker closed (a re-trip): within
    ``window_s``, unless the model has since answered ``min_calls`` calls and stayed in
    service at least as long as its last cool-down (half of ``window_s`` at most). The
    window holds the outcomes since the close (cleared then, kept ``window_s``)."""
    if b.closed_at is None:
        return False
    served = now - b.closed_at
    if served >= cfg.window_s:
        return False
    answered = len(b.window) - b.failures_in_window
    return answered < max(cfg.min_calls, 1) or served < min(b.cooldown_s, cfg.window_s / 2)


def _trip(b: Breaker, cfg: BreakerConfig, now: float, *, grow: bool, why: str) -> Breaker:
    base = min(cfg.cooldown_s, cfg.max_cooldown_s)
    if grow and b.cooldown_s > 0:
        cooldown = min(b.cooldown_s * cfg.cooldown_factor, cfg.max_cooldown_s)
    else:
        cooldown = base
    open_until = now + cooldown
    if b.state != "closed":
        open_until = max(open_until, b.open_until)
    return attrs.evolve(
        b,
        state="open",
        open_until=open_until,
        opened_at=now,
        cooldown_s=cooldown,
        trips=b.trips + 1,
        probe_in_flight=False,
        probe_started_at=None,
        opened_by=why,
    )


def _pruned(
    window: tuple[tuple[float, bool], ...], cfg: BreakerConfig, now: float
) -> tuple[tuple[float, bool], ...]:
    if cfg.max_window_entries <= 0:
        return ()
    # entries are appended in time order: the expired ones are a prefix
    start = bisect.bisect_left(window, (now - cfg.window_s, False))
    start = max(start, len(window) - cfg.max_window_entries)
    return window[start:] if start else window


def _probe_lost(b: Breaker, cfg: BreakerConfig, now: float) -> bool:
    return b.probe_started_at is not None and now >= b.probe_started_at + cfg.probe_timeout_s
