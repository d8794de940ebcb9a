"""Retry and reset times from hostile or absurd headers: never a crash, never a hold past
``MAX_HOLD_S``, never a number that is not finite (the time audit's table, form by form)."""

from __future__ import annotations

import datetime as dt
import email.utils
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from switchman.policy._ratelimit import (
    DEFAULT_BLOCK_S,
    MAX_HOLD_S,
    MIN_429_HOLD_S,
    clamp_hold,
    new_budget,
    parse_duration,
    parse_retry_after,
    rate_admit,
    rate_blocked_until,
    rate_headroom,
    rate_observe,
)

WALL = dt.datetime(2026, 11, 25, 17, 5, 0, tzinfo=dt.UTC).timestamp()
#: the HTTP date whose 20-digit year made ``parsedate_to_datetime`` raise OverflowError
OVERFLOWING_DATE = "Mon, 01 Jan 99999999999999999999 00:00:00 GMT"


def _http_date(seconds_from_wall: float) -> str:
    return email.utils.formatdate(WALL + seconds_from_wall, usegmt=True)


def _iso(seconds_from_wall: float) -> str:
    when = dt.datetime.fromtimestamp(WALL + seconds_from_wall, tz=dt.UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def _held_for(
    headers: dict[str, str], *, status: int = 200, retry_after: float | None = None
) -> float:
    """How long a fresh model is held back after a response with ``headers``."""
    b = rate_observe(
        new_budget(None, None, 100.0),
        100.0,
        headers,
        wall_now=WALL,
        status=status,
        retry_after=retry_after,
    )
    return max(0.0, rate_blocked_until(b, 100.0) - 100.0)


# -- retry-after -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        # valid forms read as before
        ("1", 1.0),
        ("1.5", 1.5),
        ("  12  ", 12.0),
        ("-5", 0.0),
        (_http_date(30), 30.0),
        (_http_date(-3600), 0.0),
        ("Mon, 01 Jan 0000 00:00:00 GMT", 0.0),  # (two-digit year 2000: long past)
        # longer than the cap, or a number too large for a float: the cap
        ("1e9", MAX_HOLD_S),
        ("1" + "0" * 30, MAX_HOLD_S),
        ("9" * 400, MAX_HOLD_S),
        ("1e400", MAX_HOLD_S),
        (_http_date(86_400), MAX_HOLD_S),
        # not a time: not read
        ("inf", None),
        ("Infinity", None),
        ("-inf", None),
        ("nan", None),
        ("garbage", None),
        ("", None),
        ("Mon, 99 Foo 2026 25:61:61 GMT", None),
        (OVERFLOWING_DATE, None),
        ("Mon, 01 Jan 10000 00:00:00 GMT", None),
        ("Mon, 01 Jan 2026 00:00:00 +9999", None),
        ("Mon, 01 Jan 2026 00:00:00 +99999999999999999999", None),
    ],
)
def test_retry_after_forms(value: str, seconds: float | None) -> None:
    got = parse_retry_after({"retry-after": value}, wall_now=WALL)
    if seconds is None:
        assert got is None
    else:
        assert got == pytest.approx(seconds, abs=1e-6)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("1500", 1.5),
        ("-3", 0.0),
        ("1e12", MAX_HOLD_S),
        ("9" * 400, MAX_HOLD_S),
        ("inf", None),
        ("nan", None),
        ("x", None),
    ],
)
def test_retry_after_ms_forms(value: str, seconds: float | None) -> None:
    assert parse_retry_after({"retry-after-ms": value}, wall_now=WALL) == seconds


def test_a_429_with_an_overflowing_date_holds_the_default() -> None:
    """It raised OverflowError out of the provider actor, on every such 429."""
    assert _held_for({"retry-after": OVERFLOWING_DATE}, status=429) == DEFAULT_BLOCK_S


@pytest.mark.parametrize(
    ("headers", "held"),
    [
        ({"retry-after": "1e9"}, MAX_HOLD_S),
        ({"retry-after": "9" * 400}, MAX_HOLD_S),
        ({"retry-after-ms": "1e12"}, MAX_HOLD_S),
        ({"retry-after": "inf"}, DEFAULT_BLOCK_S),
        ({"retry-after": "nan"}, DEFAULT_BLOCK_S),
    ],
)
def test_a_429_holds_at_most_the_cap(headers: dict[str, str], held: float) -> None:
    assert _held_for(headers, status=429) == pytest.approx(held)


@pytest.mark.parametrize(
    ("retry_after", "held"),
    [
        (math.inf, MAX_HOLD_S),  # what the adapter's float() made of "inf" and "1e400"
        (1e12, MAX_HOLD_S),
        (math.nan, DEFAULT_BLOCK_S),  # ... and of "nan": no time said
        (-math.inf, MIN_429_HOLD_S),  # (a 429 holds a moment at least)
        (47.0, 47.0),
    ],
)
def test_a_retry_after_passed_in_is_held_to_the_cap(retry_after: float, held: float) -> None:
    assert _held_for({}, status=429, retry_after=retry_after) == pytest.approx(held)


def test_a_capped_block_lets_the_model_be_asked_again_after_the_cap() -> None:
    b = rate_observe(
        new_budget(None, None, 0.0), 0.0, {"retry-after": "86400"}, wall_now=WALL, status=429
    )
    assert rate_admit(b, MAX_HOLD_S - 1.0, tokens=0)[0] == pytest.approx(MAX_HOLD_S)
    assert rate_admit(b, MAX_HOLD_S, tokens=0)[0] is None


# -- resets of a used-up window ------------------------------------------------------


@pytest.mark.parametrize(
    ("reset", "held"),
    [
        ("1s", 1.0),
        ("6m0s", 360.0),
        ("14m24s", 864.0),
        ("2m59.56s", 179.56),
        ("1h2m3.5s", MAX_HOLD_S),
        ("1e9", MAX_HOLD_S),
        ("2000000000", MAX_HOLD_S),  # a Unix time years ahead
        ("99999999999h", MAX_HOLD_S),
        ("9" * 400 + "s", MAX_HOLD_S),
        ("1d", DEFAULT_BLOCK_S),  # not a duration: the default trust
    ],
)
def test_openai_reset_durations_are_capped(reset: str, held: float) -> None:
    headers = {"x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": reset}
    assert _held_for(headers) == pytest.approx(held)


@pytest.mark.parametrize(
    ("reset", "held"),
    [
        (_iso(12), 12.0),
        (_iso(-60), 0.0),
        (_iso(10**8), MAX_HOLD_S),
        ("9999-12-31T23:59:59Z", MAX_HOLD_S),
        ("0001-01-01T00:00:00+23:59", 0.0),
        ("2026-13-45T99:00:00Z", DEFAULT_BLOCK_S),
    ],
)
def test_anthropic_rfc3339_resets_are_capped(reset: str, held: float) -> None:
    headers = {
        "anthropic-ratelimit-requests-remaining": "0",
        "anthropic-ratelimit-requests-reset": reset,
    }
    assert _held_for(headers) == pytest.approx(held)


@pytest.mark.parametrize(
    ("reset", "held"),
    [("60", 60.0), (str(int(WALL) + 30), 30.0), ("1e9", MAX_HOLD_S), ("999999999", MAX_HOLD_S)],
)
def test_together_resets_are_capped(reset: str, held: float) -> None:
    headers = {"x-ratelimit-remaining": "0", "x-ratelimit-reset": reset}
    assert _held_for(headers) == pytest.approx(held)


# -- Mistral: windows named by their length, no reset header ----------------------------


@pytest.mark.parametrize(
    ("headers", "held"),
    [
        ({"x-ratelimit-remaining-req-minute": "0"}, 60.0),
        ({"x-ratelimit-remaining-tokens-minute": "0"}, 60.0),
        ({"x-ratelimit-remaining-tokens-month": "0"}, MAX_HOLD_S),
        (
            {
                "x-ratelimit-remaining-tokens-minute": "498112",
                "x-ratelimit-remaining-tokens-month": "0",
            },
            MAX_HOLD_S,
        ),
        ({"x-ratelimit-remaining-req-minute": "3"}, 0.0),  # not used up: not held
    ],
)
def test_mistral_used_up_windows_hold_their_length(headers: dict[str, str], held: float) -> None:
    assert _held_for(headers) == pytest.approx(held)
    assert _held_for(headers, status=429) == pytest.approx(max(held, DEFAULT_BLOCK_S))


def test_mistral_counters_not_used_up_are_trusted_briefly() -> None:
    """A counter with room left is trusted for the default only (each answer brings a new
    one), so our own count of it running out does not hold the model a minute."""
    b = rate_observe(
        new_budget(None, None, 0.0),
        0.0,
        {"x-ratelimit-remaining-req-minute": "1"},
        wall_now=WALL,
        status=200,
    )
    retry_at, taken = rate_admit(b, 0.0, tokens=0)
    assert retry_at is None
    assert rate_admit(taken, 0.5, tokens=0)[0] == pytest.approx(DEFAULT_BLOCK_S)


def test_mistral_month_counter_is_read() -> None:
    b = rate_observe(
        new_budget(None, None, 0.0),
        0.0,
        {"x-ratelimit-remaining-tokens-month": "1000"},
        wall_now=WALL,
        status=200,
    )
    assert rate_headroom(b, 0.0)["tokens"] == 1000.0
    assert rate_admit(b, 0.0, tokens=2000)[0] is not None


# -- any text at all ---------------------------------------------------------------------

_NAMES = (
    "retry-after",
    "Retry-After",
    "retry-after-ms",
    "x-ratelimit-remaining-requests",
    "x-ratelimit-reset-requests",
    "x-ratelimit-remaining-tokens",
    "x-ratelimit-reset-tokens",
    "anthropic-ratelimit-requests-remaining",
    "anthropic-ratelimit-requests-reset",
    "anthropic-ratelimit-tokens-remaining",
    "anthropic-ratelimit-tokens-reset",
    "anthropic-ratelimit-input-tokens-remaining",
    "anthropic-ratelimit-input-tokens-reset",
    "anthropic-ratelimit-output-tokens-remaining",
    "anthropic-ratelimit-output-tokens-reset",
    "x-ratelimit-remaining-req-minute",
    "x-ratelimit-remaining-tokens-minute",
    "x-ratelimit-remaining-tokens-month",
    "x-ratelimit-remaining",
    "x-ratelimit-reset",
    "x-tokenlimit-remaining",
)
_DAYS = ("Mon", "Tue", "Sun")
_MONTHS = ("Jan", "Feb", "Nov", "Dec", "Foo")

#: header text: anything, and the shapes of numbers, durations and dates at any size
header_text = st.one_of(
    st.text(max_size=40),
    st.from_regex(r"\A[+-]?[0-9]{0,420}(\.[0-9]{0,5})?([eE][+-]?[0-9]{1,4})?\Z"),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(-(10**30), 10**420).map(str),
    st.sampled_from(["inf", "-inf", "Infinity", "nan", "NaN", "1e400", "-1e400", "1_000"]),
    st.lists(
        st.tuples(st.integers(0, 10**25), st.sampled_from(["h", "m", "s", "ms", "us", "ns"])),
        min_size=1,
        max_size=4,
    ).map(lambda parts: "".join(f"{n}{u}" for n, u in parts)),
    st.builds(
        "{}, {:02d} {} {} {:02d}:{:02d}:{:02d} {}".format,
        st.sampled_from(_DAYS),
        st.integers(0, 99),
        st.sampled_from(_MONTHS),
        st.integers(0, 10**25),
        st.integers(0, 99),
        st.integers(0, 99),
        st.integers(0, 99),
        st.one_of(st.sampled_from(["GMT", "UTC", "EST", "-0000", ""]), st.integers().map(str)),
    ),
    st.builds(
        "{:04d}-{:02d}-{:02d}T{:02d}:{:02d}:{:02d}{}".format,
        st.integers(0, 9999),
        st.integers(0, 13),
        st.integers(0, 32),
        st.integers(0, 25),
        st.integers(0, 61),
        st.integers(0, 61),
        st.sampled_from(["Z", "", "+00:00", "+23:59", "-23:59", "+99:99", ".123456789Z"]),
    ),
)


@given(
    headers=st.dictionaries(st.sampled_from(_NAMES), header_text, max_size=6),
    status=st.sampled_from([200, 429, 503]),
    retry_after=st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True)),
    now=st.floats(0, 1e7),
    wall_now=st.one_of(st.just(WALL), st.floats(0, 4e9)),
)
def test_any_headers_give_a_finite_hold_within_the_cap(
    headers: dict[str, str],
    status: int,
    retry_after: float | None,
    now: float,
    wall_now: float,
) -> None:
    wait = parse_retry_after(headers, wall_now=wall_now)
    assert wait is None or 0.0 <= wait <= MAX_HOLD_S
    b = rate_observe(
        new_budget(None, None, now),
        now,
        headers,
        wall_now=wall_now,
        status=status,
        retry_after=retry_after,
    )
    held = rate_blocked_until(b, now) - now
    assert math.isfinite(held) or held == -math.inf  # (-inf: nothing ever held it)
    assert held <= MAX_HOLD_S + 1e-6
    room = rate_headroom(b, now)
    assert all(v is None or math.isfinite(v) for v in room.values()), room
    assert room["blocked_for_s"] is not None and room["blocked_for_s"] <= MAX_HOLD_S + 1e-6
    if status == 429:
        assert held >= 0.0


@given(text=header_text)
def test_parse_duration_never_raises(text: str) -> None:
    secs = parse_duration(text)
    assert secs is None or not math.isnan(secs)
    held = clamp_hold(secs)
    assert held is None or 0.0 <= held <= MAX_HOLD_S


# -- times on the server's clock, ours off ----------------------------------------------


@pytest.mark.parametrize("ours_off_by", [-86_400.0, -3600.0, 0.0, 3600.0])
def test_a_retry_date_counts_from_the_responses_own_date(ours_off_by: float) -> None:
    """Retry-After as a date, reset times as dates: on the provider's clock, which its
    ``date`` header tells. Ours an hour behind held the model the whole cap (an hour), a
    day behind too, an hour ahead not at all (asked again at once)."""
    server = {"date": _http_date(0)}
    assert parse_retry_after(
        {**server, "retry-after": _http_date(30)}, wall_now=WALL + ours_off_by
    ) == pytest.approx(30.0)
    b = rate_observe(
        new_budget(None, None, 100.0),
        100.0,
        {
            **server,
            "retry-after": _http_date(30),
            "anthropic-ratelimit-requests-remaining": "0",
            "anthropic-ratelimit-requests-reset": _iso(45),
        },
        wall_now=WALL + ours_off_by,
        status=429,
    )
    assert b.blocked_until - 100.0 == pytest.approx(30.0)
    assert rate_blocked_until(b, 100.0) - 100.0 == pytest.approx(45.0)


@pytest.mark.parametrize("date", ["", "yesterday", OVERFLOWING_DATE])
def test_an_unreadable_date_leaves_our_clock(date: str) -> None:
    headers = {"date": date, "retry-after": _http_date(30)}
    assert parse_retry_after(headers, wall_now=WALL) == pytest.approx(30.0)


DAYS = 86_400.0


@pytest.mark.parametrize(
    ("server_off_by", "ours_off_by", "retry_on_servers_clock"),
    [
        (-40 * 365 * DAYS, 0.0, False),  # a proxy's `date` of 1970, the retry on true time
        (75 * 365 * DAYS, 0.0, False),  # one of 2100
        (-2 * DAYS, 0.0, True),  # a server's clock two days behind stamps both
        (2 * DAYS, 0.0, True),
        (-40 * 365 * DAYS, 0.0, True),  # one at 1970 stamps both
        (0.0, -2 * DAYS, True),  # ours two days off (a VM resumed)
        (0.0, 2 * DAYS, True),
    ],
)
def test_clocks_days_apart_are_weighed_by_the_time_the_response_names(
    server_off_by: float, ours_off_by: float, retry_on_servers_clock: bool
) -> None:
    """A ``date`` days from our clock: one of the two clocks is broken, and the retry
    date says which (the clock it is near). Whichever it is, the hold is what the server
    meant: 30 s. The first rule (a far ``date`` ignored) held a model the whole cap, or not
    at all, when a server's clock was days off, or ours was."""
    retry_at = server_off_by + 30 if retry_on_servers_clock else 30
    headers = {"date": _http_date(server_off_by), "retry-after": _http_date(retry_at)}
    assert parse_retry_after(headers, wall_now=WALL + ours_off_by) == pytest.approx(30.0)
    resets = {
        "date": _http_date(server_off_by),
        "anthropic-ratelimit-requests-remaining": "0",
        "anthropic-ratelimit-requests-reset": _iso(
            server_off_by + 45 if retry_on_servers_clock else 45
        ),
    }
    b = rate_observe(
        new_budget(None, None, 100.0), 100.0, resets, wall_now=WALL + ours_off_by, status=200
    )
    assert rate_blocked_until(b, 100.0) - 100.0 == pytest.approx(45.0)
