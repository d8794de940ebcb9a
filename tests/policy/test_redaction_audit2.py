"""Cases from the second redaction audit: secrets that leaked.

Each test names what a user met. Secrets are fake and split so that secret scanners
leave this file alone.
"""

from __future__ import annotations

import json

import pytest

from switchman.policy._redaction import tag
from tests.policy._streamed import same_streamed

# -- an email before ":" and a word: a credential list, a port, not a host spec -------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("john@acme.io:hunter2", f"{tag('email')}:hunter2"),
        ("user john@acme.io:42 logged in", f"user {tag('email')}:42 logged in"),
        (
            "alice@acme.io:Pa55word\nbob@acme.org:qwerty",
            f"{tag('email')}:Pa55word\n{tag('email')}:qwerty",
        ),
    ],
)
def test_an_email_before_a_colon_and_a_word_is_redacted(text: str, expected: str) -> None:
    assert same_streamed(text) == expected


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
    assert same_streamed(text) == text


# -- numbers in compact JSON held together for a URL or a password's name -------------


def _records(fields: dict[str, str], n: int = 3) -> str:
    return json.dumps([{"id": i, **fields} for i in range(n)], separators=(",", ":"))


@pytest.mark.parametrize(
    "fields",
    [
        {"password_hash": "$2b$12$abcdefghijklmnopqrstuv", "card": "4111 1111 1111 1111"},
        {"password": "Xy9!kq", "card": "4111 1111 1111 1111", "phone": "+1 415 555 2671"},
        {"site": "https://shop.example.com/account/settings", "card": "4111 1111 1111 1111"},
        {"note": "x" * 90, "url": "https://example.com", "phone": "+44 20 7946 0958"},
    ],
)
def test_spaced_numbers_in_compact_json_after_a_url_or_a_name_are_redacted(
    fields: dict[str, str],
) -> None:
    out = same_streamed(_records(fields))
    assert "4111 1111" not in out
    assert "555 2671" not in out
    assert "7946 0958" not in out
    assert out.count(tag("card_number")) == 3 * ("card" in fields)


# -- a quoted value holding a space -------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"password": "my pass 2024!"}', '{"password": "%s"}'),
        ("PGPASSWORD='S3cr3t pw' psql -h db", "PGPASSWORD='%s' psql -h db"),
        ('password: "correct horse 9 battery" then', 'password: "%s" then'),
        ('{"user":"bob","password":"a b, c d!"}', '{"user":"bob","password":"%s"}'),
    ],
)
def test_a_quoted_password_holding_spaces_is_redacted(text: str, expected: str) -> None:
    assert same_streamed(text) == expected % tag("password")


@pytest.mark.parametrize(
    "text",
    [
        'password: "your password here"',
        'the password "" is empty, see "docs here"',
        'password: "' + "a b " * 20 + '"',  # longer than QUOTED_SPACED: not one value
    ],
)
def test_a_quoted_placeholder_or_a_long_phrase_is_left(text: str) -> None:
    assert same_streamed(text) == text
