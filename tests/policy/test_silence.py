"""The hung-model rule: pure, on trio's clock, every edge of time."""

from __future__ import annotations

import pytest

from switchman.policy._silence import SILENT_FACTOR, SILENT_MIN_S, silence

T0 = 100.0


def test_nothing_waiting_on_the_model_is_no_silence() -> None:
    assert silence([], "m", heard_at=None, learned_ttft_ms=None, now=T0 + 60) is None
    other = [("other", T0, 10.0)]
    assert silence(other, "m", heard_at=None, learned_ttft_ms=None, now=T0 + 60) is None


@pytest.mark.parametrize(("waited", "suspect"), [(4.999, False), (5.0, True), (9.0, True)])
def test_without_learning_half_the_attempts_own_limit(waited: float, suspect: bool) -> None:
    waiting = [("m", T0, 10.0)]
    said = silence(waiting, "m", heard_at=None, learned_ttft_ms=None, now=T0 + waited)
    assert (said is not None) is suspect
    if said is not None:
        assert said.startswith(f"silent: an attempt sent {waited:.1f} s ago has had no answer")


def test_learned_first_tokens_make_it_sooner_but_never_under_the_floor() -> None:
    waiting = [("m", T0, 15.0)]
    # learned at 1 s: suspect after 4 s (SILENT_FACTOR), not 7.5 s
    at = T0 + SILENT_FACTOR * 1.0
    assert silence(waiting, "m", heard_at=None, learned_ttft_ms=1000.0, now=at - 0.001) is None
    assert silence(waiting, "m", heard_at=None, learned_ttft_ms=1000.0, now=at) is not None
    # learned at 50 ms: the floor, not 0.2 s
    fast = T0 + SILENT_MIN_S
    assert silence(waiting, "m", heard_at=None, learned_ttft_ms=50.0, now=fast - 0.001) is None
    assert silence(waiting, "m", heard_at=None, learned_ttft_ms=50.0, now=fast) is not None
    # learned slow (a thinking model): never later than half the attempt's limit
    assert silence(waiting, "m", heard_at=None, learned_ttft_ms=9000.0, now=T0 + 7.5)


def test_the_oldest_waiting_attempt_counts() -> None:
    waiting = [("m", T0 + 4, 10.0), ("m", T0, 10.0), ("m", T0 + 5, 10.0)]
    assert silence(waiting, "m", heard_at=None, learned_ttft_ms=None, now=T0 + 5) is not None


def test_the_model_speaking_since_the_oldest_attempt_began_clears_it() -> None:
    waiting = [("m", T0, 10.0)]
    at = T0 + 9
    assert silence(waiting, "m", heard_at=T0, learned_ttft_ms=None, now=at) is None
    assert silence(waiting, "m", heard_at=T0 + 3, learned_ttft_ms=None, now=at) is None
    assert silence(waiting, "m", heard_at=T0 - 0.001, learned_ttft_ms=None, now=at) is not None
