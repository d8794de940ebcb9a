"""``fair_tokens``: what a capped call's prompt, and text a provider did not count, are
taken to cost. Fair to prose, high enough for data tokenizers cut finer."""

from __future__ import annotations

import base64
import math
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from switchman.policy._estimate import fair_tokens

PROSE = "The quick brown fox jumps over the lazy dog. " * 20


def test_prose_counts_four_characters_a_token() -> None:
    assert fair_tokens(PROSE) == math.ceil(len(PROSE) / 4)


def test_data_counts_a_token_a_piece() -> None:
    """Counts from OpenAI's tokenizers (cl100k, o200k; the higher) for these shapes: digits
    a token per three, hex about one per 1.8 characters, base64 one per 1.4."""
    rng = random.Random(3)
    digits = "".join(rng.choice("0123456789") for _ in range(3000))
    assert fair_tokens(digits) == 1000
    hex_text = rng.randbytes(1500).hex()  # 3,000 characters
    assert fair_tokens(hex_text) >= 0.9 * 3000 / 1.8
    blob = base64.b64encode(rng.randbytes(3000)).decode()  # 4,000 characters
    assert fair_tokens(blob) >= 0.75 * 4000 / 1.4
    numbers = ", ".join(str(rng.randint(0, 10**6)) for _ in range(500))
    assert fair_tokens(numbers) >= len(numbers) / 3


def test_other_scripts_count_their_bytes_and_their_ascii_its_pieces() -> None:
    assert fair_tokens("中" * 10) == 30
    # "ab", "cdef", "gh": three words the emoji split (three pieces), and 12 bytes
    assert fair_tokens("ab😀cdef😀gh😀") == 3 + 12
    assert fair_tokens("café au lait") == 3 + 2


@given(st.text(max_size=200))
def test_never_above_a_token_a_byte_nor_below_four_characters_a_token(text: str) -> None:
    """(a token a byte is the bound budgets reserve: ``max_input_tokens``)"""
    count = fair_tokens(text)
    data = text.encode("utf-8", "surrogatepass")
    assert math.ceil(len(text.encode("ascii", "ignore")) / 4) <= count <= len(data)


def test_a_long_text_is_counted_on_samples_close_to_its_whole_count(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Above ``_SAMPLED_ABOVE`` characters the pieces are counted on evenly spaced slices
    (counting a whole 1 MB text held the event loop 35-190 ms): within a few percent of
    the whole count, for text of one kind and of two, and scaled by its ASCII (prose in the
    slices and CJK between them had its ASCII counted at a token a character)."""
    from switchman.policy import _estimate

    rng = random.Random(8)
    blob = base64.b64encode(rng.randbytes(300_000)).decode()
    step = 1_000_000 // _estimate._SAMPLES
    slice_size = _estimate._SAMPLED_ABOVE // _estimate._SAMPLES
    cjk_between = "".join(
        (PROSE * 30)[:slice_size] + "中" * (step - slice_size) for _ in range(_estimate._SAMPLES)
    )
    texts = (blob, PROSE * 2_000, (PROSE * 200 + blob[:100_000]) * 2, cjk_between)
    sampled = [_estimate._fair(t) for t in texts]
    monkeypatch.setattr(_estimate, "_SAMPLED_ABOVE", 10**12)
    for text, got in zip(texts, sampled, strict=True):
        assert len(text) > 32_768
        whole = _estimate._fair(text)
        assert abs(got[0] - whole[0]) <= 0.05 * whole[0], (got, whole)
        assert abs(got[1] - whole[1]) <= 0.05 * whole[1], (got, whole)  # (its ASCII)
