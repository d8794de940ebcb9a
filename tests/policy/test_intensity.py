from __future__ import annotations

import hypothesis.strategies as st
import pytest
from hypothesis import given

from switchman.policy._intensity import Intensity, record_restart


def _run(state: Intensity, times: list[float]) -> tuple[list[bool], Intensity]:
    verdicts = []
    for now in times:
        ok, state = record_restart(state, now)
        verdicts.append(ok)
    return verdicts, state


def test_sixth_restart_within_period_is_refused() -> None:
    verdicts, _ = _run(Intensity(), [0.0, 1.0, 2.0, 3.0, 4.0, 5.0])
    assert verdicts == [True] * 5 + [False]


def test_restarts_spread_over_time_are_allowed() -> None:
    # one every 7 s: never more than 5 inside any 30 s window
    verdicts, state = _run(Intensity(), [7.0 * i for i in range(50)])
    assert all(verdicts)
    assert len(state.restarts) <= 5


def test_old_restarts_leave_the_window() -> None:
    verdicts, _ = _run(Intensity(), [0.0, 1.0, 2.0, 3.0, 4.0, 30.0, 31.0])
    # at 30.0 the restart at 0.0 is exactly one period old and has left the window
    assert verdicts == [True] * 7


def test_refused_restart_is_recorded_so_a_storm_stays_refused() -> None:
    verdicts, state = _run(Intensity(max_restarts=2, period_s=10.0), [0.0, 1.0, 2.0, 3.0])
    assert verdicts == [True, True, False, False]
    # once the window has emptied, restarts are allowed again
    ok, _ = record_restart(state, 13.5)
    assert ok


def test_zero_max_restarts_refuses_every_restart() -> None:
    ok, _ = record_restart(Intensity(max_restarts=0), 100.0)
    assert not ok


@pytest.mark.parametrize(("kwargs"), [{"max_restarts": -1}, {"period_s": 0.0}, {"period_s": -5.0}])
def test_invalid_config_is_rejected(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        Intensity(**kwargs)  # type: ignore[arg-type]


@given(
    max_restarts=st.integers(min_value=0, max_value=8),
    period_s=st.floats(min_value=0.5, max_value=100.0),
    gaps=st.lists(st.floats(min_value=0.0, max_value=50.0), max_size=40),
)
def test_matches_sliding_window_definition(
    max_restarts: int, period_s: float, gaps: list[float]
) -> None:
    state = Intensity(max_restarts=max_restarts, period_s=period_s)
    now = 0.0
    history: list[float] = []
    for gap in gaps:
        now += gap
        history.append(now)
        ok, state = record_restart(state, now)
        in_window = [t for t in history if now - t < period_s]
        assert ok == (len(in_window) <= max_restarts)
        assert len(state.restarts) <= max_restarts + 1


def test_a_crash_alone_is_not_held_and_crashes_in_a_row_are_held_longer_each() -> None:
    from switchman.policy._intensity import CRASH_HOLD_MAX_S, crash_hold

    quick = {"answered": 0, "served_s": 1.0}
    streak, until = crash_hold(0, now=100.0, **quick)
    assert (streak, until) == (1, 100.0)  # a restart is the remedy for one crash
    streak, until = crash_hold(streak, now=101.0, **quick)
    assert (streak, until) == (2, 111.0)
    streak, until = crash_hold(streak, now=112.0, **quick)
    assert (streak, until) == (3, 132.0)
    for _ in range(10):
        streak, until = crash_hold(streak, now=until, **quick)
    assert crash_hold(streak, now=until, **quick) == (streak + 1, until + CRASH_HOLD_MAX_S)


def test_a_crash_after_the_provider_recovered_is_alone_again() -> None:
    """A crash now and then, answers between: restarts alone, never a hold (a provider
    crashing every 25 s of service, answering in between, was held out most of the time)."""
    from switchman.policy._intensity import RECOVERED_ANSWERS, RECOVERED_S, crash_hold

    assert crash_hold(6, now=50.0, answered=RECOVERED_ANSWERS, served_s=RECOVERED_S) == (1, 50.0)
    # answered, but within seconds: crashing fast still; or long, but answering nothing
    assert crash_hold(2, now=50.0, answered=100, served_s=RECOVERED_S - 1)[0] == 3
    assert crash_hold(2, now=50.0, answered=RECOVERED_ANSWERS - 1, served_s=600.0)[0] == 3
