"""Where a continuation of a broken stream joins the text the caller already has: a repeat
of that text dropped however it comes chunked, and the whitespace a prefill was sent
without not doubled."""

from __future__ import annotations

from switchman.actors._attempt_ends import MIN_REPEAT, Seam, strip_repeat

SENT = (
    "Recursion is a way of solving a problem by having a function call itself on a "
    "smaller piece of the same problem until it reaches a base case that it can answer"
)
ON = " directly, and then combining the answers."


def joined(sent: str, pieces: list[str], *, prefill: bool = False) -> str:
    """What the caller reads after ``sent``: each piece as it comes, then what was held."""
    seam = Seam(sent=sent, checking=not prefill, spaces=len(sent) - len(sent.rstrip()))
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
    seam = Seam(sent=SENT, checking=True, spaces=0)
    assert seam.take(" directly") == " directly"  # not a piece of the text: no wait
    assert not seam.checking
    tail = SENT[-(MIN_REPEAT - 5) :]  # too short to tell from the model's own words
    assert joined(SENT, chunks(tail + ON, 4)) == SENT + tail + ON


def test_text_that_only_might_be_a_repeat_waits_then_goes_on() -> None:
    seam = Seam(sent=SENT, checking=True, spaces=0)
    assert seam.take(" a function") == ""  # it is in the text: it may restate it
    assert seam.take(" that returns") == " a function that returns"
    assert seam.take(" twice") == " twice"


def test_a_continuation_that_only_restates_is_dropped_at_its_end() -> None:
    assert joined(SENT, chunks(SENT[-30:], 4)) == SENT
    assert joined(SENT, chunks(SENT[:12], 4)) == SENT


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


def test_strip_repeat_says_when_it_has_decided() -> None:
    assert strip_repeat(SENT, " Recursion is") == ("", " Recursion is", True)
    assert strip_repeat(SENT, " Recursion is", final=True) == ("", "", False)
    assert strip_repeat(SENT, "Another way") == ("Another way", "", False)
