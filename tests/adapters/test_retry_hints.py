"""Retry hints an adapter reads (``retry-after``, ``retry-after-ms``, Gemini's
``retryDelay``, "try again in ..."): any text gives no error and no wait that is not
finite or is past ``MAX_HOLD_S``; the headers are read as the rate budget reads them."""

from __future__ import annotations

import json
import math
import time
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from switchman._errors import RateLimited, UpstreamError
from switchman.adapters import GeminiAdapter, make_adapter
from switchman.adapters._sse import map_error, parse_duration, retry_after_from_headers
from switchman.catalog import ProviderSpec
from switchman.policy._ratelimit import (
    DEFAULT_BLOCK_S,
    MAX_HOLD_S,
    new_budget,
    parse_retry_after,
    rate_blocked_until,
    rate_observe,
)
from tests.policy.test_ratelimit_times import OVERFLOWING_DATE, header_text

RATE_LIMITED = json.dumps(
    {"error": {"message": "Rate limit reached", "type": "requests", "code": "rate_limit_exceeded"}}
).encode()


def _gemini_429(retry_delay: str) -> bytes:
    return json.dumps(
        {
            "error": {
                "code": 429,
                "message": "Resource has been exhausted (e.g. check quota).",
                "status": "RESOURCE_EXHAUSTED",
                "details": [
                    {
                        "@type": "type.googleapis.com/google.rpc.RetryInfo",
                        "retryDelay": retry_delay,
                    }
                ],
            }
        }
    ).encode()


def _gemini() -> GeminiAdapter:
    a = make_adapter(ProviderSpec(name="gemini", kind="gemini"), "AIzaSyTESTKEY0123456789abcdef")
    assert isinstance(a, GeminiAdapter)
    return a


def _held_after(error: Any, headers: dict[str, str]) -> float:
    """How long the model is held after the provider actor observes ``error``."""
    b = rate_observe(
        new_budget(None, None, 0.0),
        0.0,
        headers,
        wall_now=time.time(),
        status=429,
        retry_after=error.retry_after,
    )
    return rate_blocked_until(b, 0.0)


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [
        ({"retry-after": "12"}, 12.0),
        ({"retry-after-ms": "1500", "retry-after": "9"}, 1.5),
        ({"retry-after": OVERFLOWING_DATE}, None),
        ({"retry-after": "inf"}, None),
        ({"retry-after": "Infinity"}, None),
        ({"retry-after": "nan"}, None),
        ({"retry-after-ms": "inf"}, None),
        ({"retry-after-ms": "nan"}, None),
        ({"retry-after": "1e400"}, MAX_HOLD_S),
        ({"retry-after": "9" * 400}, MAX_HOLD_S),
        ({"retry-after": "1e9"}, MAX_HOLD_S),
        ({"retry-after-ms": "1e12"}, MAX_HOLD_S),
    ],
)
def test_a_429_reads_its_headers_as_the_rate_budget_does(
    headers: dict[str, str], seconds: float | None
) -> None:
    """Before: the 20-digit year raised OverflowError out of the provider actor, and
    ``float()`` made ``inf`` (a model held for ever) and ``nan`` of the rest."""
    assert retry_after_from_headers(headers) == seconds
    assert parse_retry_after(headers, wall_now=time.time()) == seconds
    error = map_error("openai", 429, headers, RATE_LIMITED, secret=None)
    assert isinstance(error, RateLimited) and error.retry_after == seconds
    assert _held_after(error, headers) == (DEFAULT_BLOCK_S if seconds is None else seconds)


def test_a_503_retry_after_is_read_the_same_way() -> None:
    busy = map_error("openai", 503, {"retry-after": "inf"}, b"{}", secret=None)
    assert isinstance(busy, UpstreamError) and busy.retry_after is None
    long = map_error("openai", 503, {"retry-after": OVERFLOWING_DATE}, b"{}", secret=None)
    assert isinstance(long, UpstreamError) and long.retry_after is None


@pytest.mark.parametrize(
    ("delay", "seconds"),
    [
        ("47s", 47.0),
        ("0.5s", 0.5),
        ("3600s", MAX_HOLD_S),
        ("99999999999s", MAX_HOLD_S),
        ("9" * 400 + "s", MAX_HOLD_S),
        ("-5s", None),
        ("PT30S", None),
    ],
)
def test_gemini_retry_delay_is_held_to_the_cap(delay: str, seconds: float | None) -> None:
    error = _gemini().parse_error(429, {}, _gemini_429(delay))
    assert isinstance(error, RateLimited) and error.retry_after == seconds
    assert _held_after(error, {}) == (DEFAULT_BLOCK_S if seconds is None else seconds)


def test_a_wait_of_the_cap_says_so_in_the_error() -> None:
    """What the trace shows of the attempt: the provider asked for longer than it gets."""
    capped = _gemini().parse_error(429, {}, _gemini_429("99999999999s"))
    assert "3600 s at most" in capped.message
    plain = _gemini().parse_error(429, {}, _gemini_429("47s"))
    assert "at most" not in plain.message
    header = map_error("openai", 429, {"retry-after": "1e9"}, RATE_LIMITED, secret=None)
    assert "3600 s at most" in header.message


def test_try_again_in_words_is_held_to_the_cap() -> None:
    body = json.dumps({"error": {"message": "Please try again in 99999999999h."}}).encode()
    error = map_error("openai", 429, {}, body, secret=None)
    assert isinstance(error, RateLimited) and error.retry_after == MAX_HOLD_S


@given(text=header_text)
def test_parse_duration_is_finite_and_capped(text: str) -> None:
    secs = parse_duration(text)
    assert secs is None or 0.0 <= secs <= MAX_HOLD_S


@given(
    headers=st.dictionaries(
        st.sampled_from(["retry-after", "Retry-After", "retry-after-ms"]), header_text, max_size=2
    ),
    delay=header_text,
    status=st.sampled_from([429, 503, 529]),
)
def test_any_hint_gives_a_finite_wait_within_the_cap(
    headers: dict[str, str], delay: str, status: int
) -> None:
    wait = retry_after_from_headers(headers)
    assert wait is None or 0.0 <= wait <= MAX_HOLD_S
    bodies = [
        _gemini_429(delay),
        json.dumps({"error": {"message": f"Please try again in {delay}."}}).encode(),
    ]
    for body in bodies:
        error = map_error("gemini", status, headers, body, secret=None)
        assert isinstance(error, RateLimited | UpstreamError)
        after = error.retry_after
        assert after is None or (math.isfinite(after) and 0.0 <= after <= MAX_HOLD_S)
