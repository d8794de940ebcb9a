"""Cases from the second redaction audit: secrets that leaked.

Each test names what a user met. Secrets are fake and split so that secret scanners
leave this file alone.
"""

from __future__ import annotations

import pytest

from switchman.policy._redaction import StreamRedactor, redact, tag


def _stream(text: str, step: int) -> tuple[str, dict[str, int]]:
    redactor = StreamRedactor()
    out = [redactor.feed(text[i : i + step]) for i in range(0, len(text), step)]
    out.append(redactor.flush())
    return "".join(out), dict(redactor.counts)


def _same_streamed(text: str) -> str:
    """``redact(text).text``, checked equal to the stream at a few chunk sizes."""
    whole = redact(text)
    for step in (1, 3, 7, 64):
        assert _stream(text, step) == (whole.text, dict(whole.counts)), step
    return whole.text


# -- an email before ":" and a word: a credential list, a port, not a host spec -------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("john@example.com:hunter2", f"{tag('email')}:hunter2"),
        ("user john@example.com:42 logged in", f"user {tag('email')}:42 logged in"),
        (
            "alice@example.com:Pa55word\nbob@example.org:qwerty",
            f"{tag('email')}:Pa55word\n{tag('email')}:qwerty",
        ),
    ],
)
def test_an_email_before_a_colon_and_a_word_is_redacted(text: str, expected: str) -> None:
    assert _same_streamed(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "git@github.com:acme/infra.git",
        "git clone git@git.example.com:infra.git now",
        "git@github.com:acme/infra",
        "scp f deploy@web01.internal:/srv and backup@nas.local:~/x",
    ],
)
def test_a_host_spec_with_a_path_is_still_no_email(text: str) -> None:
    assert _same_streamed(text) == text
