"""Cases from the sixth redaction audit: what the fifth pass left or broke.

Each test names what a user met, checked whole and streamed (``same_streamed``).
Secrets are fake and split so that secret scanners leave this file alone.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from switchman.policy._redaction import StreamRedactor, redact, tag
from tests.policy._streamed import same_streamed, streamed_in

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


# -- a table whose header names a secret: that column's cells are values -------------------------

HEAD3 = "| Service | Username | Password |\n|---|---|---|\n"
HEAD2 = "| user | password |\n|---|---|\n"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            HEAD3 + "| Grafana | admin | " + "Gr@fana2024" + " |",
            f"{HEAD3}| Grafana | admin | {PASSWORD} |",
        ),
        (HEAD2 + "| admin | " + "hunter2!x" + " |", f"{HEAD2}| admin | {PASSWORD} |"),
        (
            HEAD3 + "| Grafana | admin | " + "Gr@fana2024" + " |\n| Jenkins | root | `"
            "j3nk!ns" + "` |\n| MinIO | minio | minioadmin |\n",
            f"{HEAD3}| Grafana | admin | {PASSWORD} |\n| Jenkins | root | `{PASSWORD}` |\n"
            "| MinIO | minio | minioadmin |\n",
        ),
        (
            "  | **Default Password** | Host |\n  |:---|---:|\n  | " + "Adm1n!23" + " | db |\r\n",
            f"  | **Default Password** | Host |\n  |:---|---:|\n  | {PASSWORD} | db |\r\n",
        ),
        (
            "| App | `DB_PASSWORD` |\n| --- | --- |\n| api | " + "s3cr3t-Val 9" + " |",
            f"| App | `DB_PASSWORD` |\n| --- | --- |\n| api | {PASSWORD} |",
        ),
        (
            "| App | Client secret |\n|---|---|\n| web | " + "9fQx2LmZ7pRt4VbN8wKc" + " |",
            f"| App | Client secret |\n|---|---|\n| web | {tag('api_key')} |",
        ),
        (
            "Defaults:\n\n" + HEAD2 + "| a | " + "pa55,w0rd" + " |\n\nThen log in.",
            f"Defaults:\n\n{HEAD2}| a | {PASSWORD} |\n\nThen log in.",
        ),
    ],
)
def test_a_secret_column_of_a_table_is_redacted(text: str, expected: str) -> None:
    assert same_streamed(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        HEAD2 + "| admin | <password> |\n| bob | changeme |\n| eve | `********` |",
        HEAD2 + "| admin | (none) |\n| bob | N/A |\n| eve | - |\n| x | 8-64 |",
        HEAD2 + "| admin | admin |\n| bob | required, 12+ chars |\n| eve | `str` |",
        # the table ends at a line that is no row; a table without a separator is none
        HEAD2 + "| a | b |\nnot a row\n| admin | hunter2!x |",
        HEAD2 + "| a | b |\n\n| x | y |\n|---|---|\n| admin | hunter2!x |",
        "| user | password |\n| admin | hunter2!x 2 |",
        # a column whose name only holds a secret's name
        "| user | Password hash | Password policy |\n|---|---|---|\n| a | $2b$12$abc | 8-64 x2! |",
        "| Model | Tokens |\n|---|---|\n| gpt | 128000 |",
        "| secret key | a b | secret key | a b |",
    ],
)
def test_other_cells_and_tables_are_left(text: str) -> None:
    assert same_streamed(text) == text


def test_a_stream_holds_a_row_until_its_line_ends() -> None:
    redactor = StreamRedactor()
    out = redactor.feed(HEAD2 + "| admin | ")
    out += redactor.feed("hunter")
    out += redactor.feed("2!x | more ")
    assert "| admin |" not in out  # the row waits for its end
    out += redactor.feed("words |\nafter")
    assert out == f"{HEAD2}| admin | {PASSWORD} | more words |\n"
    assert out + redactor.flush() == f"{HEAD2}| admin | {PASSWORD} | more words |\nafter"
    assert redactor.counts == {"password": 1}


# -- stream == whole around tables and curl commands ----------------------------------------------

PIECES = [
    *("| ", " |", "|", "|---|", "|---|---|", "| :-- |", "\n", "\r\n", " ", "  ", "\t", ","),
    *("password", "Password", "| Password |", "Client secret", "| user |", "**", "`"),
    *("hunter2!x", "Gr@fana2024", "8-64", "<password>", "admin", "x", "日本"),
    *("curl ", "curl", "-u ", "-u", "--user=", "admin:", "S3cr3t!", "'", " \\\n", "redis://"),
    *("| Access token |", "| Token |", "tok_9f8e7d6c5b4a3210", "auth=(", '"u", ', '"p w"', ")"),
    # tables without outer pipes (test_redaction_audit8)
    *("User | Password\n", "--- | ---", "---|---", ":--- | ---:", "\n---\n", " | ", "|-"),
    *("password | ", "API token | x\n", "mysql", "cat x | grep y", "\n  ", "DB_PASSWORD |"),
]


@st.composite
def table_texts_and_cuts(draw: st.DrawFn) -> tuple[str, list[int]]:
    text = "".join(draw(st.lists(st.sampled_from(PIECES), max_size=40)))
    points = sorted(set(draw(st.lists(st.integers(0, len(text)), max_size=30))))
    return text, [b - a for a, b in zip([0, *points], points, strict=False)]


@settings(max_examples=500, deadline=None)
@given(table_texts_and_cuts())
def test_tables_and_curl_stream_as_whole_for_any_chunking(case: tuple[str, list[int]]) -> None:
    text, sizes = case
    whole = redact(text)
    assert streamed_in(text, sizes) == (whole.text, dict(whole.counts))


@pytest.mark.parametrize(
    "text",
    [
        "curl ,t| Password|" + "u2!x",  # a JSON break after a curl's start held no more
        ",| Password|" + "r2!x",  # a | after JSON's , opens a cell, as at a block's start
        ",-u a:" + "b2!x",
        'curl -X POST -d \'{"a":1,"b":[2]}\' -u admin:' + "S3cr3tPw!",
    ],
)
def test_json_punctuation_cuts_agree_whole_and_streamed(text: str) -> None:
    same_streamed(text)
