"""How long a call waits before it tries a model, and when it gives up waiting (pure: the
dispatcher's decisions between taking a slot and its first attempt)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from switchman._result import Exclusion
from switchman.actors._attempts import SHORT_WAIT_S
from switchman.catalog._spec import ModelSpec

#: a call that waited for a slot is not tried when its time left is under this share of
#: its fastest model's learned latency (``too_late``)
LATE_FRACTION = 0.5


def paused_reason(excluded: Sequence[Exclusion], back_at: Mapping[str, float]) -> str:
    """What a wait for the soonest of the paused models was for: its exclusion (of the
    call's own excluded models: ``back_at`` has every paused model of the providers the
    call reaches, models it never asked for, or may not use, among them)."""
    paused = [(back_at[e.alias], e.alias, e.reason) for e in excluded if e.alias in back_at]
    _, alias, reason = min(paused)
    return f"{alias}: {reason}"


def too_late(
    intent: str,
    candidates: Sequence[ModelSpec],
    stats: Mapping[tuple[str, str], Any],
    *,
    now: float,
    started: float,
    deadline: float,
) -> str | None:
    """Why a call that waited for a slot gives it up at once: the time its deadline left
    it is under ``LATE_FRACTION`` of what the fastest of its models is learned to take
    (under overload, calls of short deadlines took their slots to time out in them: 88 of
    116, a third of the goodput). None when some model's time is not known."""
    fastest: tuple[float, str] | None = None
    for m in candidates:
        st = stats.get((m.alias, intent)) or stats.get((m.alias, "*"))
        if st is None or st.latency_ms is None:
            return None
        fastest = min(fastest or (st.latency_ms, m.alias), (st.latency_ms, m.alias))
    left_s = deadline - now
    if fastest is None or left_s * 1000.0 >= fastest[0] * LATE_FRACTION:
        return None
    return (
        f"no answer within {deadline - started:g}s: it waited for a free slot until"
        f" {max(left_s, 0.0):.2f}s were left, too little for {fastest[1]}, its fastest"
        f" model (about {fastest[0] / 1000.0:.2f}s): not tried"
    )


def short_wait(
    excluded: Any, back_at: Mapping[str, float], now: float, deadline: float
) -> float | None:
    """Seconds until the soonest excluded model that is only paused (rate budget, breaker)
    is back (``back_at``, exact: not the rounded figure its reason shows), when that is
    short and inside the call's deadline; None otherwise."""
    waits = [back_at[e.alias] - now for e in excluded if e.alias in back_at]
    if not waits:
        return None
    wait = max(min(waits), 0.0) + 0.001
    return wait if wait <= SHORT_WAIT_S and now + wait < deadline else None
