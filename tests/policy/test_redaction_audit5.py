"""Cases from the fifth redaction audit: what the fourth pass left or broke.

Each test names what a user met, checked whole and streamed (``same_streamed``).
Secrets are fake and split so that secret scanners leave this file alone.
"""

from __future__ import annotations

import base64

import pytest

from switchman.policy._redaction import tag
from tests.policy._streamed import same_streamed

URL_PASSWORD = tag("url_password")
PASSWORD = tag("password")

# -- a URL's path holding an @ after an undotted host ------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # the regression: only pw is the password, host/bob@x is the host and its path
        ("https://u:" + "pw" + "@host/bob@x", f"https://u:{URL_PASSWORD}@host/bob@x"),
        ("https://u:" + "pw" + "@host?to=a@b", f"https://u:{URL_PASSWORD}@host?to=a@b"),
        ("https://u:" + "pw" + "@host/bob@x.com", f"https://u:{URL_PASSWORD}@host/bob@x.com"),
        # the fourth pass's fix kept: a password holding @ # / before a host with a port
        ("postgres://u:" + "p@ss#w0rd" + "@db:5432/x", f"postgres://u:{URL_PASSWORD}@db:5432/x"),
        ("postgres://u:" + "p@ss/w0rd" + "@db:5432/x", f"postgres://u:{URL_PASSWORD}@db:5432/x"),
        ("mysql://u:" + "p@ss?w0rd" + "@[::1]:3306/x", f"mysql://u:{URL_PASSWORD}@[::1]:3306/x"),
        # neighbours
        ("ssh://git@host/x@y", None),
        ("https://host/@user", None),
        ("http://a:" + "b" + "@localhost/p@q", f"http://a:{URL_PASSWORD}@localhost/p@q"),
        ("https://USER:PASSWORD@host/x@y", None),
    ],
)
def test_an_at_in_the_path_after_an_undotted_host_stays_the_urls(
    text: str, expected: str | None
) -> None:
    assert same_streamed(text) == (text if expected is None else expected)


# -- a table's value cell holding spaces, a name's cell in backticks -----------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("| password | " + "my pass 2024" + " |", f"| password | {PASSWORD} |"),
        ("|password|" + "my pass 2024" + "|", f"|password|{PASSWORD}|"),
        (
            "| user | password |\n|---|---|\n| bob | x |\n| password | " + "s3 cr3t!" + " |\n",
            f"| user | password |\n|---|---|\n| bob | x |\n| password | {PASSWORD} |\n",
        ),
        (
            "| **Password** | " + "open sesame 42" + " | prod |",
            f"| **Password** | {PASSWORD} | prod |",
        ),
        ("| `DB_PASSWORD` | " + "s3cr3t-Val" + " |", f"| `DB_PASSWORD` | {PASSWORD} |"),
        ("| `password` | " + "my pass 2024" + " |", f"| `password` | {PASSWORD} |"),
        (
            "| `AWS_SECRET_ACCESS_KEY` | " + "wJalrXUtnFEMI K7MDENG bPxRfiCY 1" + " |",
            f"| `AWS_SECRET_ACCESS_KEY` | {tag('api_key')} |",
        ),
    ],
)
def test_a_table_value_with_spaces_or_a_backticked_name_is_redacted(
    text: str, expected: str
) -> None:
    assert same_streamed(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "| password | <password> |",
        "| password | **** |",
        "| password | your password here |",
        "| password | string | the user's login password |",
        "| `password` | `str` | required |",
        "echo $password | base64 -d | sh 2 times",
        "| password | " + "a description of the field, longer than any password cell is 12" + " |",
        "see `password` for the 2 rules",
        "| password | required, 12+ chars |",
        "| password | min 8 characters |",
        "| password | 2 digits and 1 symbol at least |",
        "| password | set it on day 1 in the admin panel |",
        "| password | Rotated every 90 days. |",
    ],
)
def test_table_placeholders_types_pipes_and_long_cells_are_left(text: str) -> None:
    assert same_streamed(text) == text


# -- curl -u with a quoted password holding a space ------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "curl -u 'bob:" + "p@ss w0rd" + "' https://api.example.com/x",
            f"curl -u 'bob:{PASSWORD}' https://api.example.com/x",
        ),
        (
            'curl -u "bob:' + "p@ss w0rd" + '" https://api.example.com/x',
            f'curl -u "bob:{PASSWORD}" https://api.example.com/x',
        ),
        (
            "curl --user 'admin:" + "correct horse 9" + "' -X POST",
            f"curl --user 'admin:{PASSWORD}' -X POST",
        ),
        ("curl -u 'bob:" + "S3cr3tPw!" + "' x", f"curl -u 'bob:{PASSWORD}' x"),
        ("curl -u bob:" + "S3cr3tPw!" + " x", f"curl -u bob:{PASSWORD} x"),
    ],
)
def test_a_quoted_curl_password_with_a_space_is_redacted(text: str, expected: str) -> None:
    assert same_streamed(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "curl -u 'bob:your password here' https://x.io",
        "curl -u 'bob:$PASSWORD' https://x.io",
        "curl -u 'bob:pass word' https://x.io",
        "docker run -u '1000:1000' img 2 times",
        "sort -u 'a: b c' 12 x",
    ],
)
def test_quoted_user_options_without_a_password_are_left(text: str) -> None:
    assert same_streamed(text) == text


# -- a lower-case basic after an Authorization header's name -------------------------------------

BOB = base64.b64encode(b"bob:" + b"hunter2x").decode()  # fake


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"authorization: basic {BOB}", f"authorization: basic {PASSWORD}"),
        (f"-H 'authorization: basic {BOB}' \\\n", f"-H 'authorization: basic {PASSWORD}' \\\n"),
        (f'{{"authorization": "basic {BOB}"}}', f'{{"authorization": "basic {PASSWORD}"}}'),
        (f"Authorization:   basic   {BOB}\n", f"Authorization:   basic   {PASSWORD}\n"),
        (f"Authorization: Basic {BOB}", f"Authorization: Basic {PASSWORD}"),
    ],
)
def test_a_lower_case_basic_after_authorization_is_redacted(text: str, expected: str) -> None:
    assert same_streamed(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        f"basic {BOB} alone is no header",
        "authorization: basic auth is what the 2 services use",
        "authorization: basic dXNlcjpwYXNzd29yZA==",  # user:password, a placeholder
        "the authorization: it is basic",
    ],
)
def test_lower_case_basic_without_a_header_or_credentials_is_left(text: str) -> None:
    assert same_streamed(text) == text
