"""An attempt cut short after its output began, the provider not saying what it billed, is
billed at an upper bound: its input as its reservation bounds it (a token per byte and the
framing), its output at ASCII characters / 4 plus a token per byte of other text."""

from __future__ import annotations

import pytest

from switchman import Call, Params
from switchman._result import Usage
from switchman.catalog import ModelSpec
from switchman.policy._billing import cut_usage, partial_output_tokens
from switchman.policy._estimate import CONTINUE_PROMPT, max_input_tokens

MODEL = ModelSpec(
    alias="m",
    provider="p",
    model_id="m",
    input_per_mtok=1.0,
    output_per_mtok=2.0,
    context_window=200_000,
    max_output_tokens=8_000,
)
SMILE = "\U0001f642"  # four bytes of UTF-8


def test_plain_text_is_billed_four_characters_a_token_as_before() -> None:
    assert partial_output_tokens(["abcd" * 10], 100) == 10
    assert partial_output_tokens(["ab", "cde"], 100) == 2  # pieces count as one text
    assert partial_output_tokens(["x"], 100) == 1


def test_emoji_are_billed_a_token_per_byte() -> None:
    # 20 emoji: 80 bytes, 80 tokens at most (four characters a token said 5)
    assert partial_output_tokens([SMILE * 20], 1000) == 80
    # CJK: three bytes a character
    assert partial_output_tokens(["漢字" * 10], 1000) == 60
    # Cyrillic: two
    assert partial_output_tokens(["привет"], 1000) == 12


def test_mixed_text_adds_the_two_counts() -> None:
    # 8 ASCII characters (2 tokens), but 3 words the emoji split apart (3 pieces: more),
    # and 3 emoji (12 bytes)
    assert partial_output_tokens([f"ab{SMILE}cd", f"ef{SMILE}gh{SMILE}"], 1000) == 3 + 12
    # 9 ASCII characters round up: 3 tokens, and one two-byte character
    assert partial_output_tokens(["abcdefghi", "é"], 1000) == 3 + 2


def test_the_output_is_at_least_one_token_and_at_most_max_tokens() -> None:
    assert partial_output_tokens([""], 100) == 1
    assert partial_output_tokens([], 100) == 1
    assert partial_output_tokens(["abcd" * 1000], 100) == 100
    assert partial_output_tokens([SMILE * 1000], 100) == 100


def test_a_lone_surrogate_from_an_upstream_counts_and_does_not_raise() -> None:
    # json.loads turns an escaped lone surrogate into one: three bytes when passed through
    assert partial_output_tokens(["ab\ud800"], 100) == 1 + 3


def test_a_cut_attempts_input_is_fair_to_plain_text_and_bytes_for_the_rest() -> None:
    prompt = "EMOJI " + SMILE * 20_000  # 80,006 UTF-8 bytes
    call = Call(prompt=prompt, model="m", params=Params(max_tokens=1000))
    usage = cut_usage(MODEL, call, "", [SMILE * 10], 1000)
    # the emoji's bytes, "EMOJI " at four characters a token, a message's framing and the
    # request's; never above the reservation's bound (a token per byte of it all)
    assert usage.input_tokens == 80_000 + 2 + 4 + 16
    assert usage.input_tokens <= max_input_tokens(call) == 80_006 + 4 + 16
    english = Call(prompt="plain English prompt " * 100, model="m")  # 2,100 characters
    assert cut_usage(MODEL, english, "", ["ok"], 10).input_tokens == 525 + 4 + 16
    assert usage.output_tokens == 40
    # the old bill, four characters a token, said 5,006 input tokens and 10 output
    assert MODEL.cost(usage.input_tokens, usage.output_tokens) > 15 * MODEL.cost(5_006, 10)


def test_a_continuations_cut_bill_counts_the_text_it_sent_again() -> None:
    call = Call(prompt="hello", model="m")
    so_far = SMILE * 100
    usage = cut_usage(MODEL, call, so_far, ["abcd"], 1000)
    assert usage.input_tokens <= max_input_tokens(call, so_far)
    assert usage.input_tokens == 2 + 400 + -(-len(CONTINUE_PROMPT) // 4) + 4 * 3 + 16
    assert usage == Usage(input_tokens=usage.input_tokens, output_tokens=1)


def test_a_cut_attempts_input_is_at_most_the_models_context_window() -> None:
    # a request past the window is refused and outputs nothing: one that output was within
    small = ModelSpec(
        alias="s",
        provider="p",
        model_id="s",
        input_per_mtok=1.0,
        output_per_mtok=2.0,
        context_window=32_000,
        max_output_tokens=4_000,
    )
    call = Call(prompt=SMILE * 20_000, model="s")
    assert max_input_tokens(call) > 32_000
    assert cut_usage(small, call, "", ["abc"], 1000).input_tokens == 32_000


@pytest.mark.parametrize("text", ["plain English text. " * 50, SMILE * 300, "漢字 mixed " * 40])
def test_the_output_bound_is_never_below_four_characters_a_token(text: str) -> None:
    # the old rule's figure is a floor: only text of several bytes a character is raised
    old = -(-len(text) // 4)
    assert partial_output_tokens([text], 10**6) >= old
    assert partial_output_tokens([text], 10**6) <= len(text.encode())
