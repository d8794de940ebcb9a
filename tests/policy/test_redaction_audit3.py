"""Cases from the third redaction audit: secrets that leaked.

Each test names what a user met. Secrets are fake and split so that secret scanners
leave this file alone.
"""

from __future__ import annotations

import pytest

from switchman.policy._redaction import tag
from tests.policy._streamed import same_streamed

# -- a URL whose user holds an @ ------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "smtp://alerts@example.com:" + "Sm7pPass!" + "@smtp.example.com:587",
            "smtp://alerts@example.com:%s@smtp.example.com:587",
        ),
        (
            'SMTP_URL="smtps://bot@corp.io:' + "p#ss@w0rd" + '@mail.corp.io:465" set',
            'SMTP_URL="smtps://bot@corp.io:%s@mail.corp.io:465" set',
        ),
        (
            '{"dsn":"postgres://app@corp.com:' + "Xy9kq2Lp" + '@db:5432/x","n":1}',
            '{"dsn":"postgres://app@corp.com:%s@db:5432/x","n":1}',
        ),
    ],
)
def test_a_url_password_after_a_user_holding_an_at_is_redacted(text: str, expected: str) -> None:
    assert same_streamed(text) == expected % tag("url_password")


@pytest.mark.parametrize(
    "text",
    [
        "https://alice@example.com:8443/@user",
        "postgres://app@corp.com:${DB_PASSWORD}@db:5432/x",
        "ssh://git@example.com:22/acme/x.git",
    ],
)
def test_a_port_or_a_placeholder_after_a_user_holding_an_at_is_left(text: str) -> None:
    assert same_streamed(text) == text


# -- a password in markdown: bold names, values in backticks ----------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Password: `" + "Tr0ub4dor&3" + "`", "Password: `%s`"),
        ("**Password:** " + "Summer2024!", "**Password:** %s"),
        (
            "- **password**: " + "Summer2024!" + "\n- **user**: bob",
            "- **password**: %s\n- **user**: bob",
        ),
        ("__Password:__ " + "Summer2024!" + " (temporary)", "__Password:__ %s (temporary)"),
        ("**DB_PASSWORD** = `" + "correct horse 9" + "` then", "**DB_PASSWORD** = `%s` then"),
        ("**Password:** `" + "Tr0ub4dor&3" + "`", "**Password:** `%s`"),
        ("**Password** " + "Vm8#kq2Lp!zR" + " for now", "**Password** %s for now"),
    ],
)
def test_a_markdown_password_is_redacted(text: str, expected: str) -> None:
    assert same_streamed(text) == expected % tag("password")


def test_a_markdown_secret_key_is_redacted() -> None:
    text = "- **AWS secret access key**: `" + "wJalrXUtnFEMI/K7MDENG/bPxRfiCY" + "`"
    assert same_streamed(text) == f"- **AWS secret access key**: `{tag('api_key')}`"


@pytest.mark.parametrize(
    "text",
    [
        "**Password:** at least 12 characters, one digit",
        "- **password**: string, required",
        "**Password:** `<your password>` and **User:** `admin`",
        "Password: `$DB_PASSWORD` or `${PGPASSWORD}`",
        "**Password:** ******** (hidden)",
        "Set the `password` field in `config.toml`, then run `make`.",
        "**Password** must be at least 8 characters long.",
    ],
)
def test_a_markdown_placeholder_or_prose_about_passwords_is_left(text: str) -> None:
    assert same_streamed(text) == text
