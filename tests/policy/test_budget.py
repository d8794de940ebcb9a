from __future__ import annotations

import datetime as dt
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from switchman.policy._budget import (
    PERIODS,
    Ledger,
    Limit,
    Period,
    held_by_owner,
    held_in_snapshot,
    ledger_from_snapshot,
    ledger_snapshot,
    prune,
    record,
    release,
    remaining_usd,
    reserve,
    reserved_usd,
    settle,
    settle_stored,
    spent_usd,
    to_nanos,
    window_key,
)


def _ts(text: str) -> float:
    return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC).timestamp()


T0 = _ts("2026-11-25T17:30:00")
DAY = Limit(scope="global", period="day", limit_usd=1.0)


@pytest.mark.parametrize(
    ("period", "when", "key"),
    [
        ("hour", "2026-11-25T17:30:00", "hour:2026-11-25T17"),
        ("day", "2026-11-25T17:30:00", "day:2026-11-25"),
        ("month", "2026-11-25T17:30:00", "month:2026-11"),
        ("hour", "2026-11-25T23:59:59.999", "hour:2026-11-25T23"),
        ("hour", "2026-11-26T00:00:00", "hour:2026-11-26T00"),
        ("day", "2026-12-31T23:59:59", "day:2026-12-31"),
        ("month", "2027-01-01T00:00:00", "month:2027-01"),
    ],
)
def test_window_key_is_utc(period: Period, when: str, key: str) -> None:
    assert window_key(period, _ts(when)) == key


def test_reserve_settle_release_roundtrip() -> None:
    led, refused = reserve(
        Ledger(), [DAY], scopes=["global"], amount_usd=0.4, reservation_id="a", wall_now=T0
    )
    assert refused is None
    assert remaining_usd(led, DAY, wall_now=T0) == pytest.approx(0.6)
    assert spent_usd(led, "global", "day", wall_now=T0) == 0.0
    assert reserved_usd(led, "global", "day", wall_now=T0) == pytest.approx(0.4)
    led = settle(led, "a", actual_usd=0.1)
    assert spent_usd(led, "global", "day", wall_now=T0) == pytest.approx(0.1)
    assert remaining_usd(led, DAY, wall_now=T0) == pytest.approx(0.9)
    assert led.reservations == {}


def test_reserve_refuses_with_the_failing_limit_and_keeps_ledger() -> None:
    caller = Limit(scope="caller:team-a", period="hour", limit_usd=0.5)
    limits = [DAY, caller]
    led, refused = reserve(
        Ledger(),
        limits,
        scopes=["global", "caller:team-a"],
        amount_usd=0.3,
        reservation_id="a",
        wall_now=T0,
    )
    assert refused is None
    before = led
    led, refused = reserve(
        led,
        limits,
        scopes=["global", "caller:team-a"],
        amount_usd=0.3,
        reservation_id="b",
        wall_now=T0,
    )
    assert refused == caller
    assert led is before
    # another caller is not limited by team-a's limit
    led, refused = reserve(
        led, limits, scopes=["global", "caller:b"], amount_usd=0.3, reservation_id="c", wall_now=T0
    )
    assert refused is None
    led, refused = reserve(
        led, limits, scopes=["global"], amount_usd=0.5, reservation_id="d", wall_now=T0
    )
    assert refused == DAY


def test_exact_fit_is_allowed_without_float_drift() -> None:
    led = Ledger()
    for i in range(10):
        led, refused = reserve(
            led, [DAY], scopes=["global"], amount_usd=0.1, reservation_id=str(i), wall_now=T0
        )
        assert refused is None
    assert remaining_usd(led, DAY, wall_now=T0) == 0.0
    led, refused = reserve(
        led, [DAY], scopes=["global"], amount_usd=0.000001, reservation_id="x", wall_now=T0
    )
    assert refused == DAY


def test_limits_of_other_scopes_do_not_apply() -> None:
    zero = Limit(scope="provider:openai", period="day", limit_usd=0.0)
    _, refused = reserve(
        Ledger(),
        [zero],
        scopes=["global", "provider:anthropic"],
        amount_usd=5.0,
        reservation_id="a",
        wall_now=T0,
    )
    assert refused is None


def test_release_costs_nothing_and_twice_is_harmless() -> None:
    led, _ = reserve(
        Ledger(), [DAY], scopes=["global"], amount_usd=0.9, reservation_id="a", wall_now=T0
    )
    led = release(led, "a")
    assert remaining_usd(led, DAY, wall_now=T0) == 1.0
    assert release(led, "a") == led
    assert settle(led, "a", actual_usd=0.5) == led
    assert spent_usd(led, "global", "day", wall_now=T0) == 0.0


def test_settle_twice_is_harmless() -> None:
    led, _ = reserve(
        Ledger(), [DAY], scopes=["global"], amount_usd=0.5, reservation_id="a", wall_now=T0
    )
    led = settle(led, "a", actual_usd=0.2)
    assert settle(led, "a", actual_usd=0.2) == led
    assert release(led, "a") == led
    assert spent_usd(led, "global", "day", wall_now=T0) == pytest.approx(0.2)


def test_settle_may_exceed_the_reservation() -> None:
    led, _ = reserve(
        Ledger(), [DAY], scopes=["global"], amount_usd=0.5, reservation_id="a", wall_now=T0
    )
    led = settle(led, "a", actual_usd=1.5)
    assert spent_usd(led, "global", "day", wall_now=T0) == pytest.approx(1.5)
    assert remaining_usd(led, DAY, wall_now=T0) == 0.0
    _, refused = reserve(
        led, [DAY], scopes=["global"], amount_usd=0.0, reservation_id="b", wall_now=T0
    )
    assert refused == DAY


def test_spend_recorded_per_scope_and_period_without_limits() -> None:
    led, _ = reserve(
        Ledger(),
        [],
        scopes=["global", "provider:openai", "caller:a"],
        amount_usd=0.25,
        reservation_id="a",
        wall_now=T0,
    )
    led = settle(led, "a", actual_usd=0.2)
    for scope in ("global", "provider:openai", "caller:a"):
        for period in PERIODS:
            assert spent_usd(led, scope, period, wall_now=T0) == pytest.approx(0.2)
    assert spent_usd(led, "provider:anthropic", "day", wall_now=T0) == 0.0


def test_hour_rollover_frees_hourly_but_not_daily() -> None:
    hourly = Limit(scope="global", period="hour", limit_usd=1.0)
    daily = Limit(scope="global", period="day", limit_usd=1.5)
    t = _ts("2026-11-25T17:59:59")
    led, _ = reserve(
        Ledger(), [hourly, daily], scopes=["global"], amount_usd=1.0, reservation_id="a", wall_now=t
    )
    led = settle(led, "a", actual_usd=1.0)
    _, refused = reserve(
        led, [hourly, daily], scopes=["global"], amount_usd=0.1, reservation_id="b", wall_now=t
    )
    assert refused == hourly
    t2 = _ts("2026-11-25T18:00:00")
    assert remaining_usd(led, hourly, wall_now=t2) == 1.0
    _, refused = reserve(
        led, [hourly, daily], scopes=["global"], amount_usd=0.6, reservation_id="b", wall_now=t2
    )
    assert refused == daily
    _, refused = reserve(
        led, [hourly, daily], scopes=["global"], amount_usd=0.5, reservation_id="b", wall_now=t2
    )
    assert refused is None


def test_day_rollover_at_utc_midnight() -> None:
    before = _ts("2026-11-25T23:59:59")
    after = _ts("2026-11-26T00:00:00")
    led, _ = reserve(
        Ledger(), [DAY], scopes=["global"], amount_usd=1.0, reservation_id="a", wall_now=before
    )
    # still reserved: nothing left before midnight, everything after
    assert remaining_usd(led, DAY, wall_now=before) == 0.0
    assert remaining_usd(led, DAY, wall_now=after) == 1.0
    # settled after midnight: charged to the day it was reserved in
    led = settle(led, "a", actual_usd=0.7)
    assert spent_usd(led, "global", "day", wall_now=before) == pytest.approx(0.7)
    assert spent_usd(led, "global", "day", wall_now=after) == 0.0
    month = Limit(scope="global", period="month", limit_usd=1.0)
    assert remaining_usd(led, month, wall_now=after) == pytest.approx(0.3)


def test_prune_drops_old_windows_only() -> None:
    t = _ts("2026-11-25T17:10:00")
    led, _ = reserve(Ledger(), [], scopes=["global"], amount_usd=1, reservation_id="a", wall_now=t)
    led = settle(led, "a", actual_usd=0.5)
    assert prune(led, wall_now=t) is led
    later = prune(led, wall_now=_ts("2026-11-25T18:00:00"))
    assert set(later.spent) == {("global", "day:2026-11-25"), ("global", "month:2026-11")}
    next_month = prune(led, wall_now=_ts("2026-12-01T00:00:00"))
    assert next_month.spent == {}
    # a window in the future (clock stepped back) is kept
    assert prune(led, wall_now=_ts("2026-11-25T16:00:00")) is led


def test_prune_keeps_open_reservations() -> None:
    led, _ = reserve(
        Ledger(), [DAY], scopes=["global"], amount_usd=0.5, reservation_id="a", wall_now=T0
    )
    pruned = prune(led, wall_now=T0 + 86400 * 40)
    assert pruned.reservations == led.reservations


def test_bad_inputs() -> None:
    with pytest.raises(ValueError):
        reserve(Ledger(), [], scopes=["global"], amount_usd=-1, reservation_id="a", wall_now=T0)
    led, _ = reserve(Ledger(), [], scopes=["global"], amount_usd=1, reservation_id="a", wall_now=T0)
    with pytest.raises(ValueError):
        reserve(led, [], scopes=["global"], amount_usd=1, reservation_id="a", wall_now=T0)
    with pytest.raises(ValueError):
        settle(led, "a", actual_usd=-0.1)


def test_snapshot_roundtrip() -> None:
    led, _ = reserve(
        Ledger(), [], scopes=["global", "caller:a"], amount_usd=1, reservation_id="a", wall_now=T0
    )
    led = settle(led, "a", actual_usd=0.123456)
    snap = ledger_snapshot(led)
    assert snap["nano_usd"]["global"]["day:2026-11-25"] == 123_456_000
    back = ledger_from_snapshot(snap)
    assert back.spent == led.spent
    assert back.reservations == {}
    # a snapshot written before nano-dollars was in micro-dollars: read as what it meant
    older = ledger_from_snapshot({"global": {"day:2026-11-25": 123456}})
    assert spent_usd(older, "global", "day", wall_now=T0) == pytest.approx(0.123456)
    with pytest.raises(ValueError):
        ledger_from_snapshot({"global": {"day:2026-11-25": "lots"}})
    with pytest.raises(ValueError):
        ledger_from_snapshot({"global": 3})
    with pytest.raises(ValueError):
        ledger_from_snapshot({"nano_usd": 3})


def test_spend_below_a_micro_dollar_is_kept() -> None:
    # a few tokens of a cheap model cost a fraction of a micro-dollar: a million of them
    # are real money, and count against a budget
    led = Ledger()
    for _ in range(1000):
        led = record(led, ["global"], actual_usd=3.2e-7, wall_now=T0)
    assert spent_usd(led, "global", "day", wall_now=T0) == pytest.approx(3.2e-4)


# -- Hypothesis: no interleaving overspends ------------------------------------

_SCOPES = ("global", "provider:p", "caller:a", "caller:b")
_LIMITS = (
    Limit(scope="global", period="day", limit_usd=2.0),
    Limit(scope="global", period="hour", limit_usd=0.9),
    Limit(scope="provider:p", period="month", limit_usd=1.5),
    Limit(scope="caller:a", period="hour", limit_usd=0.3),
    Limit(scope="caller:b", period="day", limit_usd=0.7),
)
_ops = st.lists(
    st.one_of(
        st.tuples(
            st.just("reserve"),
            st.lists(st.sampled_from(_SCOPES), min_size=1, max_size=4),
            st.integers(min_value=0, max_value=600_000),  # micro-dollars
        ),
        st.tuples(st.just("settle"), st.integers(0, 30), st.floats(0.0, 1.0)),
        st.tuples(st.just("release"), st.integers(0, 30)),
        st.tuples(st.just("tick"), st.integers(0, 4 * 3600)),
    ),
    max_size=60,
)


@settings(max_examples=300, deadline=None)
@given(_ops)
def test_no_interleaving_exceeds_a_limit(ops: list[tuple[object, ...]]) -> None:
    led = Ledger()
    now = _ts("2026-11-25T22:30:00")  # crosses hour and day boundaries as it ticks
    next_id = 0
    for op in ops:
        match op:
            case ("reserve", scopes, micros):
                led, _ = reserve(
                    led,
                    _LIMITS,
                    scopes=scopes,  # type: ignore[arg-type]
                    amount_usd=micros / 1e6,  # type: ignore[operator]
                    reservation_id=str(next_id),
                    wall_now=now,
                )
                next_id += 1
            case ("settle", idx, fraction):
                r = led.reservations.get(str(idx))
                actual = (r.amount_nanos * fraction) / 1e9 if r else 0.1  # type: ignore[operator]
                led = settle(led, str(idx), actual_usd=actual)
            case ("release", idx):
                led = release(led, str(idx))
            case ("tick", seconds):
                now += seconds  # type: ignore[operator]
        for limit in _LIMITS:
            used = spent_usd(led, limit.scope, limit.period, wall_now=now) + reserved_usd(
                led, limit.scope, limit.period, wall_now=now
            )
            assert to_nanos(used) <= to_nanos(limit.limit_usd), limit
            assert remaining_usd(led, limit, wall_now=now) >= 0.0


def test_window_end_is_the_next_windows_start() -> None:
    import datetime as dt

    from switchman.policy._budget import window_end

    t = dt.datetime(2026, 12, 31, 23, 59, 59, tzinfo=dt.UTC).timestamp()
    assert window_end("hour", t) == dt.datetime(2027, 1, 1, tzinfo=dt.UTC)
    assert window_end("day", t) == dt.datetime(2027, 1, 1, tzinfo=dt.UTC)
    assert window_end("month", t) == dt.datetime(2027, 1, 1, tzinfo=dt.UTC)
    t = dt.datetime(2026, 2, 14, 8, 0, 0, tzinfo=dt.UTC).timestamp()
    assert window_end("hour", t) == dt.datetime(2026, 2, 14, 9, tzinfo=dt.UTC)
    assert window_end("day", t) == dt.datetime(2026, 2, 15, tzinfo=dt.UTC)
    assert window_end("month", t) == dt.datetime(2026, 3, 1, tzinfo=dt.UTC)


def test_a_refusal_without_figures_names_the_budget_and_its_reset() -> None:
    import datetime as dt

    from switchman.policy._budget import Limit, Refusal, refusal_message

    refused = Refusal(
        limit=Limit(scope="global", period="day", limit_usd=50.0),
        available_usd=0.25,
        held_usd=3.5,
    )
    t = dt.datetime(2026, 11, 26, 10, 30, tzinfo=dt.UTC).timestamp()
    shown = refusal_message(refused, cost="the $1.000000 x could cost", figures=True, wall_now=t)
    assert shown == (
        "global day budget of $50 has $0.250000 left ($3.500000 more is held for calls in "
        "flight): it cannot cover the $1.000000 x could cost"
    )
    hidden = refusal_message(refused, cost="the $1.000000 x could cost", figures=False, wall_now=t)
    assert hidden == (
        "the global day budget cannot cover the $1.000000 x could cost; "
        "it resets at 2026-11-27 00:00 UTC"
    )


def test_a_hold_in_a_snapshot_is_spent_after_a_restart() -> None:
    # an attempt in flight when the process stopped: its bill is never learned, so all of
    # what it held counts, in the windows it held it in (a later window owes nothing)
    led, _ = reserve(
        Ledger(), [], scopes=["global", "caller:a"], amount_usd=2, reservation_id="a", wall_now=T0
    )
    led, _ = reserve(led, [], scopes=["global"], amount_usd=1, reservation_id="b", wall_now=T0)
    led = settle(led, "b", actual_usd=0.25)
    snap = ledger_snapshot(led)
    assert snap["held"] == [
        {
            "id": "a",
            "nanos": 2_000_000_000,
            "windows": [list(w) for w in led.reservations["a"].windows],
        }
    ]
    assert held_in_snapshot(snap) == (1, 2.0)
    back = ledger_from_snapshot(json.loads(json.dumps(snap)))
    assert back.reservations == {}
    assert spent_usd(back, "global", "day", wall_now=T0) == pytest.approx(2.25)
    assert spent_usd(back, "caller:a", "month", wall_now=T0) == pytest.approx(2.0)
    assert spent_usd(back, "global", "day", wall_now=T0 + 86_400) == 0.0
    # no hold: no "held" at all, as snapshots written before it were
    assert "held" not in ledger_snapshot(settle(led, "a", actual_usd=0.0))
    assert held_in_snapshot({"nano_usd": {}}) == (0, 0.0)
    for bad in (
        {"nano_usd": {}, "held": {}},
        {"nano_usd": {}, "held": [{"nanos": "2"}]},
        {"nano_usd": {}, "held": [{"nanos": 2, "windows": [["global"]]}]},
        {"nano_usd": {}, "held": [{"nanos": True, "windows": []}]},
    ):
        with pytest.raises(ValueError):
            ledger_from_snapshot(bad)


def test_holds_are_summed_by_the_job_each_was_for() -> None:
    led = Ledger()
    for rid, owner, usd in (
        ("c1:1", "job_1", 1.0),
        ("c1:2", "job_1", 0.5),
        ("c2:1", "job_2", 0.25),
        ("c3:1", "", 2.0),  # an embedded call's: no job to bill
    ):
        led, _ = reserve(
            led, [], scopes=["global"], amount_usd=usd, reservation_id=rid, wall_now=T0, owner=owner
        )
    owed = held_by_owner(json.loads(json.dumps(ledger_snapshot(led))))
    assert {job: h.usd for job, h in owed.items()} == {"job_1": 1.5, "job_2": 0.25}
    assert owed["job_1"].providers == ()  # (held in the global scope alone)
    assert held_by_owner({"nano_usd": {}}) == {}
    assert held_by_owner({"held": [{"nanos": 5}, "junk", {"job": 3, "nanos": 1}]}) == {}


def test_holds_whose_attempts_were_billed_in_stored_results_are_settled_to_those_bills() -> None:
    led = Ledger()
    held = (("c1:1", "job_1", 1, 1.0), ("c1:2", "job_1", 2, 0.5), ("c2:1", "job_2", 1, 0.25))
    for rid, owner, n, usd in held:
        led, _ = reserve(
            led,
            [],
            scopes=["global", "caller:a"],
            amount_usd=usd,
            reservation_id=rid,
            wall_now=T0,
            owner=owner,
            attempt=n,
        )
    led = record(led, ["global"], actual_usd=0.125, wall_now=T0)
    snap = json.loads(json.dumps(ledger_snapshot(led)))
    assert [(h["job"], h["attempt"]) for h in snap["held"]] == [
        ("job_1", 1),
        ("job_1", 2),
        ("job_2", 1),
    ]
    # job_1's result was stored: attempt 1 billed 0.01, attempt 2 nothing (it failed)
    fixed = settle_stored(snap, {("job_1", 1): 0.01, ("job_1", 2): 0.0, ("job_9", 1): 5.0})
    after = ledger_from_snapshot(fixed)
    assert spent_usd(after, "global", "day", wall_now=T0) == pytest.approx(0.125 + 0.01 + 0.25)
    assert spent_usd(after, "caller:a", "month", wall_now=T0) == pytest.approx(0.01 + 0.25)
    assert {j: h.usd for j, h in held_by_owner(fixed).items()} == {"job_2": 0.25}
    assert held_in_snapshot(fixed) == (1, 0.25)
    assert settle_stored(snap, {}) == snap  # nothing known: every hold stays spent
    # holds of an older shape (no attempt) or a bad one are left as they are
    old = {"nano_usd": {}, "held": [{"nanos": 5, "windows": [["global", "d"]], "job": "job_1"}]}
    assert settle_stored(old, {("job_1", 1): 0.0}) == old
    odd = {"nano_usd": {}, "held": [{"nanos": 5, "windows": ["global"], "job": "j", "attempt": 1}]}
    assert settle_stored(odd, {("j", 1): 0.0}) == odd


def test_a_small_limit_reads_as_configured_not_in_an_exponent() -> None:
    import datetime as dt

    from switchman.policy._budget import Limit, Refusal, refusal_message

    t = dt.datetime(2026, 11, 26, 10, 30, tzinfo=dt.UTC).timestamp()
    for limit, shown in ((0.00001, "$0.00001"), (0.5, "$0.5"), (1250.0, "$1250")):
        refused = Refusal(
            limit=Limit(scope="global", period="day", limit_usd=limit),
            available_usd=0.0,
            held_usd=0,
        )
        said = refusal_message(refused, cost="the $1.000000 x could cost", figures=True, wall_now=t)
        assert said.startswith(f"global day budget of {shown} has $0.000000 left"), said


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(["reserve", "settle", "release"]), st.integers(0, 7)),
        max_size=40,
    )
)
def test_what_is_held_in_each_window_is_the_sum_of_the_open_reservations(
    steps: list[tuple[str, int]],
) -> None:
    """The per-window holds are kept as reservations open and close (a reservation read
    every hold for each window it checked: 200 holds in flight, 30 µs a reservation)."""
    scopes = (["global"], ["global", "caller:a"], ["global", "provider:p"])
    led = Ledger()
    for n, (step, i) in enumerate(steps):
        rid = f"r{i}"
        if step == "reserve" and rid not in led.reservations:
            led, _ = reserve(
                led,
                [],
                scopes=scopes[i % 3],
                amount_usd=0.01 * (i + 1),
                reservation_id=rid,
                wall_now=T0 + n,
            )
        elif step == "settle":
            led = settle(led, rid, actual_usd=0.005)
        elif step == "release":
            led = release(led, rid)
        summed: dict[tuple[str, str], int] = {}
        for r in led.reservations.values():
            for window in r.windows:
                summed[window] = summed.get(window, 0) + r.amount_nanos
        assert dict(led.held) == summed
