"""``fair_cap``: the per-owner cap water-filling gives, checked against its definition."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from switchman.store._retention import fair_cap


@pytest.mark.parametrize(
    ("counts", "bound", "cap"),
    [
        ([260, 1], 50, 49),  # one flood, one job: the flood is cut to make room
        ([30, 30, 1], 50, 24),
        ([10, 10], 20, None),  # they fit: nothing to prune
        ([], 0, None),
        ([5, 5, 5], 0, 0),
        ([3, 100], 10, 7),
        ([4, 4, 100], 10, 3),
        ([1, 1], -3, 0),
    ],
)
def test_examples(counts: list[int], bound: int, cap: int | None) -> None:
    assert fair_cap(counts, bound) == cap


@given(st.lists(st.integers(0, 300), max_size=12), st.integers(0, 1000))
def test_the_largest_cap_that_fits(counts: list[int], bound: int) -> None:
    cap = fair_cap(counts, bound)
    if cap is None:
        assert sum(counts) <= bound
        return
    assert sum(counts) > bound
    assert sum(min(n, cap) for n in counts) <= bound
    assert sum(min(n, cap + 1) for n in counts) > bound
    # an owner holding no more than the cap keeps everything
    assert cap < max(counts)


def test_a_negative_count_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="negative"):
        fair_cap([3, -1], 5)
