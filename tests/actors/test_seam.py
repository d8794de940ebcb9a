"""Where a continuation of a broken stream joins the text the caller already has: a repeat
of that text dropped however it comes chunked, and the whitespace a prefill was sent
without not doubled."""

from __future__ import annotations

from switchman._call import Call, Message
from switchman.actors._attempt_ends import MIN_REPEAT, Seam, messages_for, strip_repeat
from switchman.catalog._spec import ModelSpec
from switchman.policy._estimate import CONTINUE_PROMPT
from tests._simfleet import call_run

SENT = (
    "Recursion is a way of solving a problem by having a function call itself on a "
    "smaller piece of the same problem until it reaches a base case that it can answer"
)
ON = " directly, and then combining the answers."


def joined(sent: str, pieces: list[str], *, prefill: bool = False) -> str:
    """What the caller reads after ``sent``: each piece as it comes, then what was held."""
    kept = sent.rstrip()
    seam = Seam(sent=kept, checking=not prefill, spaces=sent[len(kept) :])
    out = [seam.take(p) for p in pieces]
    return sent + "".join(out) + seam.close()


def chunks(text: str, size: int) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)]


def test_a_restated_end_is_dropped_however_it_is_chunked() -> None:
    """It was dropped only when the continuation's first chunk held 20 characters of it:
    a model streaming a token at a time had it forwarded, read twice."""
    for said in (40, 60, len(SENT) // 2):
        continuation = SENT[-said:] + ON
        for size in (1, 4, 7, 200):
            assert joined(SENT, chunks(continuation, size)) == SENT + ON, (said, size)


def test_a_repeat_of_the_whole_text_is_dropped_at_any_length() -> None:
    for size in (1, 4, 1000):
        assert joined(SENT, chunks(" " + SENT + ON, size)) == SENT + ON
    short = "Yes"
    assert joined(short, chunks("Yes, it is.", 2)) == "Yes, it is."


def test_fresh_words_go_on_as_they_come_and_a_short_overlap_is_kept() -> None:
    seam = Seam(sent=SENT, checking=True, spaces="")
    assert seam.take(" directly") == " directly"  # not a piece of the text: no wait
    assert not seam.checking
    tail = SENT[-(MIN_REPEAT - 5) :]  # too short to tell from the model's own words
    assert joined(SENT, chunks(tail + ON, 4)) == SENT + tail + ON


def test_text_that_only_might_be_a_repeat_waits_then_goes_on() -> None:
    seam = Seam(sent=SENT, checking=True, spaces="")
    assert seam.take(" a function") == ""  # it is in the text: it may restate it
    assert seam.take(" that returns") == " a function that returns"
    assert seam.take(" twice") == " twice"


def test_a_continuation_that_only_restates_is_dropped_at_its_end() -> None:
    assert joined(SENT, chunks(SENT[-30:], 4)) == SENT  # the text's end, whole
    assert joined(SENT, chunks(SENT[:12], 4)) == SENT  # its start: a restart that stopped
    # a line from within the text, said as the last item of a list, is the model's own
    listed = "- one apple a day keeps\n- two pears for a pie\n- three plums\n"
    assert (
        joined(listed, chunks("- two pears for a pie\n", 4)) == listed + "- two pears for a pie\n"
    )


def test_a_restatement_is_dropped_whatever_whitespace_it_goes_on_with() -> None:
    """Compared without the whitespace the text ends with: "...here\n" restated as
    "...here and more" had been read twice."""
    line = "First line of the poem goes here\n"
    assert joined(line, chunks("First line of the poem goes here and more", 4)) == (
        line + " and more"
    )
    ends = "Then the model said it twice over. "
    assert joined(ends, chunks("the model said it twice over.\nAnd on.", 3)) == ends + "\nAnd on."


def test_a_long_restatement_is_followed_a_piece_at_a_time() -> None:
    """Each piece is checked alone against the text (a 100 KB restatement in 4-character
    pieces had been checked whole at each piece: 469 ms of the loop)."""
    long = ("All work and no play makes a dull answer. " * 2500).rstrip()
    seam = Seam(sent=long, checking=True, spaces="")
    out = [seam.take(p) for p in chunks(long + " The end.", 4)]
    assert "".join(out) + seam.close() == " The end."
    assert seam.restated == -1 and not seam.checking


def test_a_prefill_continuation_does_not_double_the_whitespace_it_was_sent_without() -> None:
    assert joined("Recursion is a way of ", [" solving", " it."], prefill=True) == (
        "Recursion is a way of solving it."
    )
    code = "def f(n):\n    "
    assert joined(code, ["\n", "    return n"], prefill=True) == "def f(n):\n    return n"
    # a model that went on without the space: nothing to drop
    assert joined("a way of ", ["solving"], prefill=True) == "a way of solving"
    # and one asked in a user turn alike
    assert joined("a way of ", [" solving it"]) == "a way of solving it"


def test_only_the_whitespace_the_text_ended_with_is_dropped_again() -> None:
    """Whitespace was dropped by count: after "\n", a continuation's indentation lost a
    space (Python broken), and after "End. " a paragraph's "\n\n" lost one."""
    code = "def f():\n    x = 1\n"
    assert joined(code, ["    return x\n"]) == code + "    return x\n"
    assert joined(code, ["    return x\n"], prefill=True) == code + "    return x\n"
    assert joined("End. ", ["\n\nSecond paragraph."], prefill=True) == (
        "End. \n\nSecond paragraph."
    )
    assert joined("x = [\n    ", ["\n", "    1,"], prefill=True) == "x = [\n    1,"


def test_strip_repeat_says_when_it_has_decided() -> None:
    assert strip_repeat(SENT, " Recursion is") == ("", " Recursion is", True)
    assert strip_repeat(SENT, " Recursion is", final=True) == ("", "", False)
    assert strip_repeat(SENT, "Another way") == ("Another way", "", False)


def test_a_callers_own_prefill_and_the_answer_so_far_go_on_as_one_turn() -> None:
    """The caller's last assistant turn and the router's prefill went as two turns, which
    Anthropic's adapter joined with a blank line inside the sentence ("The answer is\\n\\n
    42"), and a model without prefill got two assistant turns in a row."""
    turns = (Message(role="user", content="Why 42?"), Message(role="assistant", content="It is"))
    run = call_run(Call(messages=turns), stream=True, raw_pieces=[" 42, because six times seven "])
    prefilling = ModelSpec(alias="p", provider="x", model_id="p", supports_prefill=True)
    asking = ModelSpec(alias="a", provider="x", model_id="a")
    said = "It is 42, because six times seven"
    assert messages_for(run, prefilling, ())[0] == (
        turns[0],
        Message(role="assistant", content=said),
    )
    messages, seam = messages_for(run, asking, ())
    assert messages == (
        turns[0],
        Message(role="assistant", content=said + " "),
        Message(role="user", content=CONTINUE_PROMPT),
    )
    assert seam is not None and (seam.sent, seam.spaces) == (said, " ")
    assert messages_for(call_run(Call(messages=turns)), asking, ()) == (turns, None)  # (fresh)
    # a restatement from the turn's start is dropped as one of the answer's
    assert seam.take(said + " equals it.") == "equals it."


def test_an_answer_beginning_with_whitespace_is_followed_a_piece_at_a_time_too() -> None:
    """The text kept the whitespace it began with, which a restatement's first piece does
    not have: every piece fell back to the whole check (100 KB in 1-character pieces: 3.7 s
    of CPU)."""
    said = "\n\n" + ("All work and no play makes a dull answer. " * 200).rstrip()
    run = call_run(Call(prompt="x"), stream=True, raw_pieces=[said])
    seam = messages_for(run, ModelSpec(alias="a", provider="x", model_id="a"), ())[1]
    assert seam is not None and seam.sent == said.strip()
    out = [seam.take(p) for p in chunks(said.strip()[:400], 4)]
    assert out == [""] * len(out) and seam.restated == 400
