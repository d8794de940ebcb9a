from __future__ import annotations

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from switchman.policy._breaker import (
    Breaker,
    BreakerConfig,
    BreakerOutcome,
    breaker_admit,
    breaker_record,
    breaker_retry_at,
)

CFG = BreakerConfig()


def _feed(
    b: Breaker,
    outcomes: list[BreakerOutcome],
    *,
    start: float = 0.0,
    step: float = 0.1,
    cfg: BreakerConfig = CFG,
) -> Breaker:
    t = start
    for outcome in outcomes:
        ok, b = breaker_admit(b, cfg, t)
        assert ok
        b = breaker_record(b, cfg, t, outcome)
        t += step
    return b


def _tripped(now: float = 0.0) -> Breaker:
    """A breaker that tripped at ``now``, so open until ``now + 5``."""
    b = Breaker()
    for _ in range(CFG.consecutive_failures):
        b = breaker_record(b, CFG, now, "failure")
    assert b.state == "open"
    assert b.open_until == now + CFG.cooldown_s
    return b


def test_default_is_closed_and_admits() -> None:
    ok, b = breaker_admit(Breaker(), CFG, 123.0)
    assert ok
    assert b.state == "closed"
    assert breaker_retry_at(b) is None


def test_consecutive_failures_open_it() -> None:
    b = _feed(Breaker(), ["failure"] * 4)
    assert b.state == "closed"
    b = breaker_record(b, CFG, 1.0, "failure")
    assert b.state == "open"
    assert b.open_until == pytest.approx(1.0 + CFG.cooldown_s)
    assert breaker_retry_at(b) == b.open_until
    assert b.trips == 1


def test_success_resets_consecutive_count() -> None:
    cfg = BreakerConfig(min_calls=100)  # rate rule out of the way
    b = Breaker()
    for i, outcome in enumerate(["failure"] * 4 + ["success"] + ["failure"] * 4):
        b = breaker_record(b, cfg, i * 0.1, outcome)  # type: ignore[arg-type]
    assert b.state == "closed"
    assert b.consecutive_failures == 4


def test_failure_rate_opens_once_min_calls_reached() -> None:
    cfg = BreakerConfig(min_calls=6, failure_rate=0.5, consecutive_failures=100)
    b = Breaker()
    seq: list[BreakerOutcome] = ["failure", "success", "failure", "success", "failure"]
    for i, outcome in enumerate(seq):
        b = breaker_record(b, cfg, i, outcome)
    # 3 failures of 5 calls = 60 % but below min_calls
    assert b.state == "closed"
    b = breaker_record(b, cfg, 5, "failure")  # 4 of 6
    assert b.state == "open"


@pytest.mark.parametrize(
    ("failures", "successes", "opens"),
    [(2, 3, False), (3, 2, True), (3, 7, False), (5, 5, True)],
)
def test_failure_rate_threshold(failures: int, successes: int, opens: bool) -> None:
    cfg = BreakerConfig(min_calls=5, failure_rate=0.5, consecutive_failures=100)
    b = Breaker()
    t = 0.0
    for _ in range(successes):
        b = breaker_record(b, cfg, t, "success")
        t += 1
    for _ in range(failures):
        b = breaker_record(b, cfg, t, "failure")
        t += 1
    assert (b.state == "open") is opens


def test_exact_failure_rate_trips_despite_float_rounding() -> None:
    cfg = BreakerConfig(min_calls=5, failure_rate=0.6, consecutive_failures=100)
    b = Breaker()
    for i, outcome in enumerate(["success", "success", "failure", "failure", "failure"]):
        b = breaker_record(b, cfg, i, outcome)  # type: ignore[arg-type]
    assert b.state == "open"


def test_window_expiry_forgets_old_failures() -> None:
    cfg = BreakerConfig(window_s=60.0, min_calls=5, failure_rate=0.5, consecutive_failures=100)
    b = Breaker()
    for i in range(4):
        b = breaker_record(b, cfg, float(i), "failure")
    b = breaker_record(b, cfg, 10.0, "success")
    # 61 s after the failures they have left the window
    b = breaker_record(b, cfg, 64.0, "failure")
    assert b.state == "closed"
    assert len(b.window) == 2
    assert b.failures_in_window == 1


def test_window_entry_exactly_window_s_old_still_counts() -> None:
    cfg = BreakerConfig(window_s=10.0, min_calls=2, failure_rate=1.0, consecutive_failures=100)
    b = breaker_record(Breaker(), cfg, 0.0, "failure")
    b = breaker_record(b, cfg, 10.0, "failure")
    assert b.state == "open"


def test_window_is_bounded() -> None:
    cfg = BreakerConfig(max_window_entries=16)
    b = Breaker()
    for i in range(100):
        b = breaker_record(b, cfg, i * 0.001, "success")
    assert len(b.window) == 16
    assert b.window[-1][0] == pytest.approx(0.099)


@given(st.lists(st.sampled_from(["neutral", "success"]), max_size=200))
def test_neutral_outcomes_never_trip(outcomes: list[BreakerOutcome]) -> None:
    b = Breaker()
    for i, outcome in enumerate(outcomes):
        b = breaker_record(b, CFG, i * 0.01, outcome)
        assert b.state == "closed"


def test_neutral_is_not_counted() -> None:
    seq: list[BreakerOutcome] = ["failure"] * 4
    b = _feed(Breaker(), seq + ["neutral"] * 10)
    assert b.consecutive_failures == 4
    assert len(b.window) == 4
    b = breaker_record(b, CFG, 5.0, "failure")
    assert b.state == "open"


def test_open_refuses_until_exactly_open_until() -> None:
    b = _tripped(0.0)
    until = b.open_until
    ok, after = breaker_admit(b, CFG, until - 1e-6)
    assert not ok
    assert after == b
    ok, after = breaker_admit(b, CFG, until)
    assert ok
    assert after.state == "half_open"
    assert after.probe_in_flight
    assert breaker_retry_at(after) is None


def test_half_open_admits_exactly_one_probe() -> None:
    b = _tripped(0.0)
    admitted = 0
    for k in range(10):
        ok, b = breaker_admit(b, CFG, 5.0 + k)
        admitted += ok
    assert admitted == 1
    assert b.state == "half_open"


def test_probe_success_closes_and_resets() -> None:
    b = _tripped(0.0)
    _, b = breaker_admit(b, CFG, 5.0)
    closed = breaker_record(b, CFG, 5.5, "success")
    assert closed.state == "closed"
    assert closed.window == ()
    assert closed.consecutive_failures == 0
    assert closed.trips == 1
    # a trip soon after is a re-trip: its cool-down grows from the last one
    b = _feed(closed, ["failure"] * 5, start=10.0)
    assert b.state == "open"
    assert b.open_until - b.opened_at == pytest.approx(CFG.cooldown_s * 2)  # type: ignore[operator]
    # a trip more than a minute after (it recovered: a new outage, a blip) starts from
    # the base again, however long the last cool-down grew
    long = attrs.evolve(closed, cooldown_s=300.0)
    b = _feed(long, ["failure"] * 5, start=5.5 + CFG.window_s + 1.0)
    assert b.open_until - b.opened_at == pytest.approx(CFG.cooldown_s)  # type: ignore[operator]
    b = _feed(closed, ["failure"] * 5, start=600.0)
    assert b.state == "open"
    assert b.open_until - b.opened_at == pytest.approx(CFG.cooldown_s)  # type: ignore[operator]


def test_a_model_that_answered_calls_since_its_close_trips_afresh() -> None:
    """A trip within a minute of the close is a re-trip only while the model has not
    answered ``min_calls`` calls since and stayed in service as long as its last
    cool-down (30 s at most): one that served well for 47 s and then hung was held out
    for 160 s, the cool-down its last outage grew, though back after 40."""
    b = _tripped(0.0)
    _, b = breaker_admit(b, CFG, 5.0)
    closed = attrs.evolve(breaker_record(b, CFG, 5.5, "success"), cooldown_s=80.0)
    served = _feed(closed, ["success"] * CFG.min_calls, start=6.0)
    b = _feed(served, ["failure"] * CFG.consecutive_failures, start=47.0)
    assert b.state == "open"
    assert b.open_until - b.opened_at == pytest.approx(CFG.cooldown_s)  # type: ignore[operator]
    # those answers in a service shorter than that: a re-trip, its cool-down growing
    b = _feed(served, ["failure"] * CFG.consecutive_failures, start=20.0)
    assert b.open_until - b.opened_at == pytest.approx(160.0)  # type: ignore[operator]
    # one answer fewer, and it is a re-trip still: the cool-down goes on growing
    b = _feed(closed, ["success"] * (CFG.min_calls - 1), start=6.0)
    t = 47.0
    while b.state == "closed":
        b = breaker_record(b, CFG, t, "failure")
        t += 0.1
    assert b.open_until - b.opened_at == pytest.approx(160.0)  # type: ignore[operator]


def test_a_model_down_5_s_and_up_3_s_backs_off_however_many_calls_it_answers() -> None:
    """Up 3 s between outages, answering 12 calls each time: each trip is a re-trip, its
    cool-down growing (with the answers alone counted, it was probed every 5 s for ever)."""
    b = _tripped(0.0)
    cooldowns = []
    for _ in range(4):
        now = b.open_until
        _, b = breaker_admit(b, CFG, now)
        b = breaker_record(b, CFG, now, "success")  # the probe: closed
        b = _feed(b, ["success"] * 12, start=now + 0.1, step=0.25)  # 3 s in service
        b = _feed(b, ["failure"] * CFG.consecutive_failures, start=now + 3.2)
        cooldowns.append(b.open_until - b.opened_at)  # type: ignore[operator]
    assert cooldowns == pytest.approx([10.0, 20.0, 40.0, 80.0])


def test_a_flapping_model_s_cool_down_is_never_shortened() -> None:
    """Outages with one answered probe between them: each trip's cool-down is at least the
    last one's, up to the cap (one good probe brought it back to 5 s, and the model was
    probed every 5 s for ever)."""
    cfg = BreakerConfig(cooldown_s=5.0, cooldown_factor=2.0, max_cooldown_s=60.0)
    b = _feed(Breaker(), ["failure"] * cfg.consecutive_failures, start=0.0, cfg=cfg)
    cooldowns = []
    for cycle in range(8):
        cooldowns.append(b.open_until - b.opened_at)  # type: ignore[operator]
        now = b.open_until
        ok, b = breaker_admit(b, cfg, now)
        assert ok and b.state == "half_open"
        probe = "success" if cycle % 2 == 0 else "failure"  # answered, then not, ...
        b = breaker_record(b, cfg, now + 0.1, probe)
        if b.state == "closed":  # flaps again at once
            b = _feed(b, ["failure"] * cfg.consecutive_failures, start=now + 1.0, cfg=cfg)
        assert b.state == "open"
    assert cooldowns == sorted(cooldowns), cooldowns
    assert cooldowns[-1] == 60.0


def test_cooldown_grows_on_repeated_trips_and_caps() -> None:
    cfg = BreakerConfig(cooldown_s=5.0, cooldown_factor=2.0, max_cooldown_s=60.0)
    b = Breaker()
    for i in range(cfg.consecutive_failures):
        b = breaker_record(b, cfg, 0.0 + i * 0.01, "failure")
    cooldowns = [b.open_until - b.opened_at]  # type: ignore[operator]
    for _ in range(6):
        now = b.open_until
        ok, b = breaker_admit(b, cfg, now)
        assert ok
        b = breaker_record(b, cfg, now + 0.2, "failure")
        assert b.state == "open"
        cooldowns.append(b.open_until - (now + 0.2))
    assert cooldowns == pytest.approx([5, 10, 20, 40, 60, 60, 60])


def test_base_cooldown_is_capped_too() -> None:
    cfg = BreakerConfig(cooldown_s=500.0, max_cooldown_s=300.0, consecutive_failures=1)
    b = breaker_record(Breaker(), cfg, 0.0, "failure")
    assert b.open_until == pytest.approx(300.0)


def test_neutral_probe_frees_the_slot() -> None:
    b = _tripped(0.0)
    _, b = breaker_admit(b, CFG, 5.0)
    ok, _ = breaker_admit(b, CFG, 5.1)
    assert not ok
    b = breaker_record(b, CFG, 5.2, "neutral")
    assert b.state == "half_open"
    assert not b.probe_in_flight
    ok, b = breaker_admit(b, CFG, 5.3)
    assert ok
    assert b.probe_in_flight
    ok, _ = breaker_admit(b, CFG, 5.4)
    assert not ok


def test_lost_probe_stops_blocking_after_probe_timeout() -> None:
    cfg = BreakerConfig(probe_timeout_s=30.0)
    b = _tripped(0.0)
    _, b = breaker_admit(b, cfg, 5.0)
    ok, _ = breaker_admit(b, cfg, 34.9)
    assert not ok
    ok, b = breaker_admit(b, cfg, 35.0)
    assert ok
    assert b.probe_started_at == 35.0


def test_outcomes_while_open_change_nothing() -> None:
    b = _tripped(0.0)
    outcomes: tuple[BreakerOutcome, ...] = ("failure", "success", "neutral")
    for outcome in outcomes:
        assert breaker_record(b, CFG, 1.0, outcome) == b


def test_stale_outcome_in_half_open_is_ignored() -> None:
    b = _tripped(10.0)
    _, b = breaker_admit(b, CFG, b.open_until)
    # a call admitted before the trip reports late: not the probe
    assert breaker_record(b, CFG, 16.0, "success", started_at=9.0) == b
    assert breaker_record(b, CFG, 16.0, "failure", started_at=9.0) == b
    # the probe's own outcome counts
    closed = breaker_record(b, CFG, 16.0, "success", started_at=b.probe_started_at)
    assert closed.state == "closed"


def test_retrip_never_shortens_open_until() -> None:
    cfg = BreakerConfig(cooldown_s=5.0)
    b = _tripped(0.0)
    _, b = breaker_admit(b, cfg, b.open_until)
    # a longer open_until carried over (e.g. restored from another instance) is kept
    b = attrs.evolve(b, open_until=1000.0)
    b = breaker_record(b, cfg, 6.0, "failure")
    assert b.state == "open"
    assert b.open_until == 1000.0


def test_an_open_breaker_says_what_opened_it_until_it_closes() -> None:
    """``opened_by``: the trip's rule and the kind of its last failure (the cause the
    caller gives), kept while open and half-open, gone once a probe closes it."""
    b = Breaker()
    for i in range(CFG.consecutive_failures):
        assert b.opened_by == ""
        b = breaker_record(b, CFG, float(i), "failure", cause="HTTP 503")
    assert (b.state, b.opened_by) == ("open", "5 failures in a row, the last HTTP 503")
    ok, b = breaker_admit(b, CFG, b.open_until)
    assert ok and b.state == "half_open" and b.opened_by.startswith("5 failures")
    b = breaker_record(b, CFG, b.open_until, "failure", cause="a timeout")
    assert (b.state, b.opened_by) == ("open", "its probe failed: a timeout")
    ok, b = breaker_admit(b, CFG, b.open_until)
    b = breaker_record(b, CFG, b.open_until, "success")
    assert (b.state, b.opened_by) == ("closed", "")


def test_a_failure_rate_trip_says_how_many_failed() -> None:
    cfg = BreakerConfig(min_calls=4, failure_rate=0.5, consecutive_failures=99)
    b = Breaker()
    for t, outcome in enumerate(["success", "failure", "success", "failure"]):
        b = breaker_record(b, cfg, float(t), outcome)  # type: ignore[arg-type]
    assert (b.state, b.opened_by) == ("open", "2 of its last 4 calls failed")
    one = breaker_record(Breaker(), BreakerConfig(consecutive_failures=1), 0.0, "failure")
    assert one.opened_by == "a failure"
