"""Redacting a text as a stream, for tests that check it against the whole."""

from __future__ import annotations

from switchman.policy._redaction import StreamRedactor, redact


def streamed(text: str, step: int) -> tuple[str, dict[str, int]]:
    """``text`` fed to a ``StreamRedactor`` ``step`` characters at a time: what came out,
    and the counts."""
    redactor = StreamRedactor()
    out = [redactor.feed(text[i : i + step]) for i in range(0, len(text), step)]
    out.append(redactor.flush())
    return "".join(out), dict(redactor.counts)


def same_streamed(text: str, counts: dict[str, int] | None = None) -> str:
    """``redact(text).text``, checked equal to the stream at a few chunk sizes (and its
    counts equal to ``counts``, when given)."""
    whole = redact(text)
    if counts is not None:
        assert dict(whole.counts) == counts
    for step in (1, 3, 7, 64):
        assert streamed(text, step) == (whole.text, dict(whole.counts)), step
    return whole.text


def streamed_in(text: str, sizes: list[int]) -> tuple[str, dict[str, int]]:
    """``text`` fed to a ``StreamRedactor`` in chunks of ``sizes`` characters, then the
    rest: what came out, and the counts."""
    redactor = StreamRedactor()
    out, i = [], 0
    for n in [*sizes, len(text)]:
        out.append(redactor.feed(text[i : i + n]))
        i += n
    out.append(redactor.flush())
    return "".join(out), dict(redactor.counts)


def check(text: str, expected: str, counts: dict[str, int] | None = None) -> None:
    """``redact(text)`` gives ``expected`` (and ``counts``), and so does the stream cut
    in two at every place, and fed one character at a time."""
    whole = redact(text)
    assert whole.text == expected
    if counts is not None:
        assert dict(whole.counts) == counts
    done = (whole.text, dict(whole.counts))
    for i in range(len(text) + 1):
        assert streamed_in(text, [i]) == done, i
    assert streamed(text, 1) == done
