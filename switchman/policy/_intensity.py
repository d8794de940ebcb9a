"""Restart intensity of a supervisor: at most ``max_restarts`` restarts in any ``period_s``;
and how long a provider whose actor keeps crashing is held out (``crash_hold``).

Erlang/OTP's rule: a supervisor that would restart its children more than
``max_restarts`` times within ``period_s`` seconds gives up and escalates to its
parent instead. With the defaults (5 in 30 s) the sixth restart inside the window
is refused; restarts spread out over time are always allowed.

Nothing here blocks, so nothing here can be cancelled midway: the supervisor owns
an ``Intensity`` and replaces it with what :func:`record_restart` returns, passing
its monotonic clock (``trio.current_time()``) as ``now``.
"""

from __future__ import annotations

from typing import Final

import attrs


@attrs.frozen(kw_only=True)
class Intensity:
    """How many restarts are allowed per period, and the recent ones (monotonic times).

    ``restarts``: times of the restarts still inside the window, oldest first; at most
    ``max_restarts + 1`` are kept, which is all a decision needs.
    ``max_restarts = 0`` refuses every restart.
    """

    max_restarts: int = attrs.field(default=5, validator=attrs.validators.ge(0))
    period_s: float = attrs.field(default=30.0, validator=attrs.validators.gt(0.0))
    restarts: tuple[float, ...] = ()


def record_restart(state: Intensity, now: float) -> tuple[bool, Intensity]:
    """Count a restart at ``now``; return whether it is allowed and the new state.

    A restart exactly ``period_s`` before ``now`` has left the window. The refused
    restart is recorded too, so a supervisor that keeps asking stays refused until
    the window has emptied.
    """
    recent = (*(t for t in state.restarts if now - t < state.period_s), now)
    recent = recent[-(state.max_restarts + 1) :]
    allowed = len(recent) <= state.max_restarts
    return allowed, attrs.evolve(state, restarts=recent)


#: a provider whose actor crashed twice in a row is held out this long, doubling with each
#: crash in a row after, up to ``CRASH_HOLD_MAX_S``; a crash counts in the row unless the
#: actor before it had recovered: answered ``RECOVERED_ANSWERS`` attempts and served
#: ``RECOVERED_S`` since its start or its hold (a crash every few minutes, answers in
#: between, is met by restarts alone, as the supervisors' intensities allow)
CRASH_HOLD_S: Final = 10.0
CRASH_HOLD_MAX_S: Final = 300.0
RECOVERED_ANSWERS: Final = 5
RECOVERED_S: Final = 10.0


def crash_hold(streak: int, now: float, *, answered: int, served_s: float) -> tuple[int, float]:
    """A provider's actor crashed at ``now``, after ``streak`` crashes in a row, having
    ``answered`` attempts in the ``served_s`` seconds it served: the crashes in a row now,
    and when the provider's hold ends (``now`` for a crash alone: a restart is its remedy).
    A crash soon after another holds the provider out, longer with each: a provider whose
    answers meet a bug again and again has its calls go to other models meanwhile, and its
    crashes never come fast enough to stop the router (its supervisors' intensities)."""
    recovered = answered >= RECOVERED_ANSWERS and served_s >= RECOVERED_S
    streak = 1 if recovered or streak == 0 else streak + 1
    hold = 0.0 if streak == 1 else min(CRASH_HOLD_S * 2 ** (streak - 2), CRASH_HOLD_MAX_S)
    return streak, now + hold
