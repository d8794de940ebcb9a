from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from switchman._errors import (
    AttemptTimeout,
    AuthError,
    BadReply,
    BadRequest,
    ContentRejected,
    ContextExceeded,
    ProviderError,
    RateLimited,
    Refused,
    StreamBroken,
    TransientError,
    UpstreamError,
)
from switchman.policy._retry import (
    MIN_429_WAIT_S,
    MIN_RETRY_GAP_S,
    RATE_JITTER,
    RetryDecision,
    backoff_delay,
    decide_after_failure,
)


def _decide(
    error: ProviderError,
    *,
    attempts: int = 1,
    now: float = 100.0,
    deadline: float = 130.0,
    seed: int = 0,
    **kw: float | bool,
) -> RetryDecision:
    return decide_after_failure(
        error,
        attempts_on_model=attempts,
        now=now,
        deadline=deadline,
        rng=random.Random(seed),
        **kw,  # type: ignore[arg-type]
    )


# -- backoff -----------------------------------------------------------------


@given(st.integers(min_value=1, max_value=10_000), st.integers())
def test_backoff_within_exponential_ceiling(n: int, seed: int) -> None:
    d = backoff_delay(n, random.Random(seed), base_s=0.25, cap_s=2.0)
    assert 0.0 <= d <= min(2.0, 0.25 * 2 ** min(n - 1, 64))


def test_backoff_is_seeded_and_jittered() -> None:
    a = [backoff_delay(3, random.Random(7)) for _ in range(3)]
    assert a[0] == a[1] == a[2]
    spread = {backoff_delay(3, random.Random(s)) for s in range(50)}
    assert len(spread) > 40
    assert max(spread) > 0.8  # ceiling for the 3rd retry is 1.0


def test_backoff_grows_then_caps() -> None:
    rng = random.Random(1)
    means = [sum(backoff_delay(n, rng) for _ in range(2000)) / 2000 for n in (1, 2, 3, 4, 8)]
    # full jitter: mean is half the ceiling (0.25, 0.5, 1, 2, 2) / 2
    assert means == pytest.approx([0.125, 0.25, 0.5, 1.0, 1.0], rel=0.1)


@pytest.mark.parametrize("n", [0, -1])
def test_backoff_rejects_bad_retry_number(n: int) -> None:
    with pytest.raises(ValueError):
        backoff_delay(n, random.Random(0))


# -- content rejection ------------------------------------------------------


def test_content_rejected_stops_with_provider_reason() -> None:
    d = _decide(ContentRejected("violates usage policy", provider="openai", status=400))
    assert d.action == "stop"
    assert "violates usage policy" in d.reason


def test_content_rejected_switches_when_route_opts_in() -> None:
    d = _decide(ContentRejected("violates usage policy"), content_fallback=True)
    assert d.action == "switch"


# -- always switch -------------------------------------------------------------


@pytest.mark.parametrize(
    "error",
    [
        Refused("I can't help with that"),
        Refused("filtered", content_filtered=True),
        ContextExceeded("prompt is too long", status=400),
        AuthError("invalid api key", status=401),
        BadRequest("unknown parameter", status=400),
        AttemptTimeout("no first token in 10 s"),
        StreamBroken("stream cut after 120 tokens"),
        BadReply("malformed JSON"),
        ProviderError("something else"),
    ],
    ids=lambda e: type(e).__name__,
)
@pytest.mark.parametrize("attempts", [1, 2])
def test_never_retried_on_same_model(error: ProviderError, attempts: int) -> None:
    d = _decide(error, attempts=attempts, deadline=1e9)
    assert d.action == "switch"
    assert d.delay_s == 0.0
    assert d.reason


def _broken_by(cause: ProviderError | None) -> StreamBroken:
    broken = StreamBroken("stream failed after output began")
    broken.cause = cause
    return broken


@pytest.mark.parametrize(
    "cause",
    [UpstreamError("Overloaded", status=529), RateLimited("slow down", retry_after=1.0)],
    ids=["overloaded", "rate limited"],
)
def test_a_broken_stream_with_nothing_else_left_is_decided_as_its_cause(
    cause: ProviderError,
) -> None:
    broken = _broken_by(cause)
    alone = _decide(broken, nothing_else=True)
    assert alone.action == "retry" and alone.delay_s >= 0.25
    assert alone.reason.startswith("stream broken by ")
    # another model left: it continues the answer at once
    assert _decide(broken).action == "switch"
    # once only, and never past the deadline
    assert _decide(broken, nothing_else=True, attempts=2).action == "switch"
    assert _decide(broken, nothing_else=True, deadline=100.1).action == "switch"


@pytest.mark.parametrize(
    "cause",
    [
        None,  # cut or stalled: no word from the provider
        UpstreamError("down", status=503, should_retry=False),
        RateLimited("slow down", retry_after=60.0),
        BadRequest("bad", status=400),
    ],
    ids=["no cause", "should not retry", "long retry-after", "bad request"],
)
def test_a_broken_stream_is_not_retried_when_its_cause_would_not_be(
    cause: ProviderError | None,
) -> None:
    assert _decide(_broken_by(cause), nothing_else=True).action == "switch"


# -- rate limits --------------------------------------------------------------


def test_short_retry_after_is_honoured() -> None:
    """Retried after what it said, and a little more at random (up to a fifth of it: the
    calls a 429 turned away together do not all come back at its reset)."""
    d = _decide(RateLimited("slow down", retry_after=1.5))
    assert d.action == "retry" and 1.5 <= d.delay_s <= 1.5 * (1 + RATE_JITTER)
    assert f"{d.delay_s:.2f}" in d.reason
    delays = {_decide(RateLimited("429", retry_after=1.5), seed=i).delay_s for i in range(20)}
    assert len(delays) == 20


@pytest.mark.parametrize(
    ("retry_after", "attempts", "now", "deadline", "max_wait", "action"),
    [
        (None, 1, 0.0, 100.0, 5.0, "switch"),  # no retry time known
        (5.0, 1, 0.0, 100.0, 5.0, "retry"),  # exactly max_wait
        (5.01, 1, 0.0, 100.0, 5.0, "switch"),  # longer than max_wait
        (8.0, 1, 0.0, 100.0, 10.0, "retry"),  # caller allows longer waits
        (2.0, 1, 0.0, 2.0, 5.0, "switch"),  # would end exactly at the deadline
        (2.0, 1, 0.0, 2.001, 5.0, "retry"),  # ends just before it (no other model)
        (1.0, 2, 0.0, 100.0, 5.0, "switch"),  # second attempt already made
        (0.0, 1, 0.0, 100.0, 5.0, "retry"),
    ],
)
def test_rate_limit_branches(
    retry_after: float | None,
    attempts: int,
    now: float,
    deadline: float,
    max_wait: float,
    action: str,
) -> None:
    d = _decide(
        RateLimited("429", retry_after=retry_after),
        attempts=attempts,
        now=now,
        deadline=deadline,
        max_wait_s=max_wait,
        nothing_else=True,
    )
    assert d.action == action
    if action == "retry":
        assert retry_after is not None
        least = max(retry_after, MIN_429_WAIT_S)
        assert least <= d.delay_s <= least * (1 + RATE_JITTER) and now + d.delay_s < deadline


def test_a_retry_after_of_zero_or_less_still_waits_a_moment() -> None:
    """A model answering every call 429 with ``retry-after: 0`` was asked again at once
    (939 requests inside 1.5 s across calls): a retry waits ``MIN_429_WAIT_S`` at least."""
    for said in (0.0, -3.0):
        d = _decide(RateLimited("429", retry_after=said))
        assert d.action == "retry"
        assert MIN_429_WAIT_S <= d.delay_s <= MIN_429_WAIT_S * (1 + RATE_JITTER)


# -- transient / upstream --------------------------------------------------------


@pytest.mark.parametrize(
    "error", [UpstreamError("503", status=503), TransientError("connection reset")]
)
def test_transient_retries_once_with_min_gap(error: ProviderError) -> None:
    d = _decide(error, attempts=1)
    assert d.action == "retry"
    assert MIN_RETRY_GAP_S <= d.delay_s <= 2.0
    d2 = _decide(error, attempts=2)
    assert d2.action == "switch"


@given(seed=st.integers(), attempts=st.integers(min_value=0, max_value=5))
def test_transient_never_closer_than_gap_nor_more_than_two(seed: int, attempts: int) -> None:
    d = _decide(UpstreamError("502", status=502), attempts=attempts, seed=seed, deadline=1e9)
    if attempts >= 2:
        assert d.action == "switch"
    else:
        assert d.action == "retry"
        assert MIN_RETRY_GAP_S <= d.delay_s <= 2.0


def test_first_transient_retry_waits_the_floor_and_a_jitter_by_default() -> None:
    """The floor, and a jitter of at most 0.25 s above it: calls failing together come
    back apart (every one had waited exactly the floor)."""
    delays = {_decide(UpstreamError("500", status=500), seed=s).delay_s for s in range(40)}
    assert len(delays) == 40
    assert all(MIN_RETRY_GAP_S <= d <= MIN_RETRY_GAP_S + 0.25 for d in delays)


def test_transient_backoff_uses_the_rng() -> None:
    delays = [
        _decide(UpstreamError("500", status=500), seed=s, backoff_base_s=2.0, backoff_cap_s=4.0)
        for s in range(40)
    ]
    assert len({d.delay_s for d in delays}) > 20  # jitter above the floor on most seeds
    assert all(MIN_RETRY_GAP_S <= d.delay_s <= MIN_RETRY_GAP_S + 2.0 for d in delays)


@pytest.mark.parametrize(
    ("deadline", "action"),
    [
        (100.0 + MIN_RETRY_GAP_S, "switch"),
        (100.0 + 0.5, "switch"),
        (100.0 + MIN_RETRY_GAP_S + 0.25 + 0.001, "retry"),
    ],
)
def test_transient_deadline_edges(deadline: float, action: str) -> None:
    # base 0.25, first retry: the 0.75 floor and a jitter of at most 0.25; no other model
    d = _decide(TransientError("reset"), now=100.0, deadline=deadline, nothing_else=True)
    assert d.action == action
    if action == "retry":
        assert 100.0 + d.delay_s < deadline


@pytest.mark.parametrize(
    ("error", "left", "action"),
    [
        (RateLimited("429", retry_after=1.0), 1.2, "switch"),
        (RateLimited("429", retry_after=1.0), 3.0, "retry"),
        (UpstreamError("503", status=503, retry_after=3.0), 3.2, "switch"),
        (UpstreamError("503", status=503), 1.0, "switch"),
        (UpstreamError("503", status=503), 2.5, "retry"),
    ],
)
def test_a_retry_leaves_the_other_models_half_the_time_left(
    error: ProviderError, left: float, action: str
) -> None:
    """With another model left, a retry whose wait would pass half the call's time left
    is a switch: retried, and failing again, the model had left its fallback a few
    milliseconds, and the call timed out with a healthy model waiting (5 of 5 calls
    with a 429 saying 1 s and ``hard_ms`` 1200). Alone, the model is still retried."""
    d = _decide(error, now=100.0, deadline=100.0 + left)
    assert d.action == action, d
    if action == "switch":
        assert "too little" in d.reason
        alone = _decide(error, now=100.0, deadline=100.0 + left, nothing_else=True)
        assert alone.action == "retry"


def test_upstream_reason_names_status() -> None:
    d = _decide(UpstreamError("overloaded", status=529))
    assert "529" in d.reason


def test_an_overloaded_provider_is_waited_for_as_it_asks_or_left_when_it_says_so() -> None:
    asked = UpstreamError("overloaded", status=529, retry_after=2.0)
    d = _decide(asked)
    assert (d.action, d.delay_s) == ("retry", 2.0)
    assert _decide(asked, attempts=2).action == "switch"  # still at most twice
    soon = UpstreamError("overloaded", status=503, retry_after=0.1)
    assert MIN_RETRY_GAP_S <= _decide(soon).delay_s <= 1.0  # never closer than the floor
    far = UpstreamError("overloaded", status=503, retry_after=30.0)
    d = _decide(far)
    assert d.action == "switch" and "30 s" in d.reason
    assert _decide(asked, now=129.0).action == "switch"  # past the deadline
    told = UpstreamError("overloaded", status=529, should_retry=False)
    d = _decide(told)
    assert d.action == "switch" and "not to retry" in d.reason
