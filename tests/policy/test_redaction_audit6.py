"""Cases from the sixth redaction audit: what the fifth pass left or broke.

Each test names what a user met, checked whole and streamed (``same_streamed``).
Secrets are fake and split so that secret scanners leave this file alone.
"""

from __future__ import annotations

import pytest

from switchman.policy._redaction import tag
from tests.policy._streamed import same_streamed

URL_PASSWORD = tag("url_password")
PASSWORD = tag("password")

# -- -u user:password only on a curl command; its attached and --user= forms ---------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "redis-cli -u redis://default:" + "S3cret9" + "@cache.example.com:6379",
            f"redis-cli -u redis://default:{URL_PASSWORD}@cache.example.com:6379",
        ),
        (
            "curl -u redis://default:" + "S3cret9" + "@cache.example.com:6379",
            f"curl -u redis://default:{URL_PASSWORD}@cache.example.com:6379",
        ),
        ("socat -u TCP:host:8080 STDOUT", None),
        ("git diff -u HEAD~1:src/app.py", None),
        ("sort -u a:b2!x and curl later", None),
        ("curl https://x.io\nsort -u a:b2!xy", None),
        ("docker exec -u node:node c sh", None),
        ("curly -u admin:" + "S3cr3tPw!", None),
    ],
)
def test_user_option_is_a_curl_option_only(text: str, expected: str | None) -> None:
    assert same_streamed(text) == (text if expected is None else expected)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "curl -uadmin:" + "S3cr3tPw!" + " https://api.example.com",
            f"curl -uadmin:{PASSWORD} https://api.example.com",
        ),
        (
            "curl --user=admin:" + "S3cr3tPw!" + " https://api.example.com",
            f"curl --user=admin:{PASSWORD} https://api.example.com",
        ),
        (
            "curl -sS -X POST https://api.example.com/v1/x -u admin:" + "S3cr3tPw!",
            f"curl -sS -X POST https://api.example.com/v1/x -u admin:{PASSWORD}",
        ),
        (
            "curl -X POST \\\n  -H 'Accept: x' \\\n  -u admin:"
            + "S3cr3tPw!"
            + " \\\n  https://x.io",
            f"curl -X POST \\\n  -H 'Accept: x' \\\n  -u admin:{PASSWORD} \\\n  https://x.io",
        ),
        ("$ curl -u 'bob:" + "p@ss w0rd" + "' x", f"$ curl -u 'bob:{PASSWORD}' x"),
        ("curl -u'bob:" + "p@ss w0rd" + "' x", f"curl -u'bob:{PASSWORD}' x"),
    ],
)
def test_curl_passwords_attached_or_after_other_options_are_redacted(
    text: str, expected: str
) -> None:
    assert same_streamed(text) == expected


# -- a table's cell giving a length is a rule, not a value -----------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "| password | 8-64 |",
        "| password | 12 to 128 chars |",
        "| password | 8..64 |",
        "|password|8-64|",
        "| `password` | `8-64` |",
    ],
)
def test_a_length_rule_in_a_table_is_left(text: str) -> None:
    assert same_streamed(text) == text


def test_a_password_of_digits_and_a_dash_outside_a_length_is_redacted() -> None:
    assert same_streamed("| password | 8-64-x2 |") == f"| password | {PASSWORD} |"
