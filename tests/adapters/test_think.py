"""``ThinkBlock``: a reasoning block at the start of an answer's text is taken out, however
the text is cut into chunks; any other text passes as it is."""

from __future__ import annotations

import itertools

from hypothesis import given
from hypothesis import strategies as st

from switchman.adapters._think import ThinkBlock, without_think

ANSWER = "Paris is the capital of France."


def fed(text: str, cuts: list[int]) -> str:
    """``text`` fed in the pieces ``cuts`` makes of it, then ended."""
    block = ThinkBlock()
    points = sorted({0, len(text), *(c % (len(text) + 1) for c in cuts)})
    out = [block.feed(text[a:b]) for a, b in itertools.pairwise(points)]
    return "".join(out) + block.end()


@given(st.lists(st.integers(min_value=0, max_value=400), max_size=30))
def test_a_leading_block_is_taken_out_whatever_the_chunks(cuts: list[int]) -> None:
    text = "\n <think>\nThe user asks; <b>maybe</b> </thin\n</think>\n\n" + ANSWER
    assert fed(text, cuts) == ANSWER


@given(
    st.sampled_from(
        [
            ANSWER,
            "<b>bold</b> answer",
            "<",
            "<th",
            "  <thin",  # (white space and what might have been the tag: the answer's own)
            "An answer that mentions <think> later.",
            "\n\nIndented answer",
            "",
        ]
    ),
    st.lists(st.integers(min_value=0, max_value=60), max_size=10),
)
def test_any_other_text_passes_as_it_is(text: str, cuts: list[int]) -> None:
    assert fed(text, cuts) == text


def test_a_block_never_closed_leaves_no_answer_and_text_after_the_end_passes() -> None:
    block = ThinkBlock()
    assert block.feed("<think>still thinking when the tokens ran out") == ""
    assert block.end() == ""
    assert block.feed("late text") == "late text"


def test_a_whole_answer() -> None:
    assert without_think("<think>hm</think>" + ANSWER) == ANSWER
    assert without_think(ANSWER) == ANSWER
