"""Redaction, eighth audit: a Python client's credentials in a dict of a call's
arguments and Digest credentials; markdown tables written without outer pipes.

Secrets below are fake and split into pieces so that secret scanners leave this file
alone.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from switchman.policy import _patterns
from switchman.policy._patterns_tables import TableColumns
from switchman.policy._redaction import StreamRedactor, redact, tag
from tests.policy._streamed import same_streamed, streamed_in

PW = tag("password")
KEY = tag("api_key")

# -- a Python client's credentials in a dict, and Digest credentials ----------------------

HUNTER = "hunter2" + "-pw"
DICT_AND_DIGEST = [
    (f'"auth": ("admin", "{HUNTER}")', f'"auth": ("admin", "{PW}")'),
    ("{'auth': ('u', 'p')}", f"{{'auth': ('u', '{PW}')}}"),
    (
        f"kwargs = {{'url': url, 'auth' : ('svc', '{HUNTER}')}}",
        f"kwargs = {{'url': url, 'auth' : ('svc', '{PW}')}}",
    ),
    ('HTTPDigestAuth("u", "p")', f'HTTPDigestAuth("u", "{PW}")'),
    ('httpx.DigestAuth("u", "p")', f'httpx.DigestAuth("u", "{PW}")'),
    (
        f'requests.get(url, auth=requests.auth.HTTPDigestAuth("bob", "{HUNTER}"))',
        f'requests.get(url, auth=requests.auth.HTTPDigestAuth("bob", "{PW}"))',
    ),
    ('httpx.DigestAuth("bob", "correct horse 9")', f'httpx.DigestAuth("bob", "{PW}")'),
    # indented as the auth=(...) rule tolerates: black's layout, aligned, the widest gaps
    *(
        (text.replace("{pw}", HUNTER), text.replace("{pw}", PW))
        for text in (
            'params = {\n    "url": url,\n    "auth": (\n        "admin",\n        "{pw}",\n'
            "    ),\n}",
            "        {\n            'auth': (\n                'admin',\n"
            "                '{pw}',\n            ),\n        }",
            "{'auth': ('admin',\n           '{pw}')}",
            "HTTPDigestAuth(\n            'admin',\n            '{pw}',\n        )",
            "httpx.DigestAuth('admin',\n                 '{pw}')",
            '{"auth"'
            + " " * 8
            + ":"
            + " " * 8
            + "(\n"
            + " " * 39
            + "'admin'"
            + " " * 40
            + ",\n"
            + " " * 39
            + "'{pw}')}",
        )
    ),
]


@pytest.mark.parametrize(("text", "expected"), DICT_AND_DIGEST)
def test_dict_and_digest_credentials_lose_their_password_and_keep_their_user(
    text: str, expected: str
) -> None:
    assert same_streamed(text, {"password": 1}) == expected


@pytest.mark.parametrize(
    "text",
    [
        '"auth": (user, password)',  # names: code
        '"auth": ("user", "password")',  # placeholders
        "{'auth': ('admin', '<password>')}",
        '{"auth": ("admin", "${API_PASSWORD}")}',
        '"oauth": ("client", "x1")',  # another key
        '"author": ("Ann", "Lee 2")',
        "'auth' (see below) is how it logs in: ('a', 'b2')",  # no colon
        "DigestAuth(user, password)",
        'MyDigestAuth("u", "p1")',  # not the client's class
        '{"auth":\n    ("admin", "p1")}',  # a newline before the parenthesis, as for auth=
        "{'auth': ('admin'," + " " * 41 + "'Hunter2-x')}",  # a gap past 40
    ],
)
def test_what_is_no_dict_or_digest_password_is_left(text: str) -> None:
    assert same_streamed(text, {}) == text


@pytest.mark.parametrize(("text", "expected"), DICT_AND_DIGEST)
def test_dict_and_digest_credentials_stream_as_whole_split_at_every_point(
    text: str, expected: str
) -> None:
    text = f"Use this: {text}, then call it."
    whole = redact(text)
    assert whole.counts == {"password": 1}
    for cut in range(len(text) + 1):
        assert streamed_in(text, [cut]) == (whole.text, dict(whole.counts)), cut


def test_dict_and_digest_credentials_pass_the_gate() -> None:
    """Their only trigger is their own: the gate lets them through."""
    for text in ('"auth": ("a", "b1")', "'auth': ('a', 'b1')", 'DigestAuth("a", "b1")'):
        assert _patterns._maybe_triggered(text), text


# -- markdown tables without outer pipes ----------------------------------------------------

TOKEN = "tok_" + "9f8e7d6c5b4a3210zz"  # 16 or more, a digit: a column's secret key
HUNTER_PA = "hunter2" + "-Pa55"
HEAD3 = "Service | Username | Password\n--- | --- | ---\n"
KV = "Key | Value\n--- | ---\n"

PIPELESS = [
    (HEAD3 + f"mysql | root | {HUNTER_PA}\n", f"{HEAD3}mysql | root | {PW}\n"),
    (
        HEAD3
        + f"mysql | root | {HUNTER_PA}\nredis | default | `s3cr3t!x`\nminio | minio | admin\n",
        f"{HEAD3}mysql | root | {PW}\nredis | default | `{PW}`\nminio | minio | admin\n",
    ),
    *(
        (
            f"Service | {column} | Notes\n--- | --- | ---\nbilling | {TOKEN} | rotated\n",
            f"Service | {column} | Notes\n--- | --- | ---\nbilling | {KEY} | rotated\n",
        )
        for column in ("API token", "Client secret", "Access token", "Secret key")
    ),
    # delimiter rows of every shape, outer pipes on some
    *(
        (f"User | Password\n{sep}\nbob | {HUNTER_PA}\n", f"User | Password\n{sep}\nbob | {PW}\n")
        for sep in (":--- | ---:", "---|---", "|---|---|", " :-: | - ", "| --- | ---", "---|---|")
    ),
    # the secret's column first, a value with spaces, a row led by a |, no last |
    (
        f"Password | Service\n--- | ---\nmy pass 2024 | mysql\n| {HUNTER_PA} | redis\n",
        f"Password | Service\n--- | ---\n{PW} | mysql\n| {PW} | redis\n",
    ),
    # indented in a list, CRLF, prose around it
    (
        f"Defaults:\n\n  User | Password\r\n  --- | ---\r\n  admin | {HUNTER_PA}\r\n\nThen log in.",
        f"Defaults:\n\n  User | Password\r\n  --- | ---\r\n  admin | {PW}\r\n\nThen log in.",
    ),
    (f"User | Password\n--- | ---\nbob | {HUNTER_PA}", f"User | Password\n--- | ---\nbob | {PW}"),
    # a piped header over rows without outer pipes is GitHub's table too: the old rules
    (
        f"| User | Password |\n|---|---|\n| bob | {HUNTER_PA} |\n",
        f"| User | Password |\n|---|---|\n| bob | {PW} |\n",
    ),
    # the secret-row rule: a secret's name opens the row, its value the next cell
    (KV + f"user | bob\npassword | {HUNTER_PA}\n", f"{KV}user | bob\npassword | {PW}\n"),
    (KV + "DB_PASSWORD | my pass 2024\n", f"{KV}DB_PASSWORD | {PW}\n"),
    (KV + "**Password** | `Tr0ub4dor&3` | temp\n", f"{KV}**Password** | `{PW}` | temp\n"),
    (
        KV + "AWS_SECRET_ACCESS_KEY | " + "wJalrXUtnFEMI/K7MDENG/bPxRfiCY" + "\n",
        f"{KV}AWS_SECRET_ACCESS_KEY | {KEY}\n",
    ),
    (
        "Key | Value | Scope\n:-- | :-- | --:\n" + f"  password | {HUNTER_PA} | prod\n",
        "Key | Value | Scope\n:-- | :-- | --:\n" + f"  password | {PW} | prod\n",
    ),
]


@pytest.mark.parametrize(("text", "expected"), PIPELESS)
def test_a_table_without_outer_pipes_gets_the_piped_tables_rules(text: str, expected: str) -> None:
    assert same_streamed(text) == expected
    counts = {"api_key": expected.count(KEY), "password": expected.count(PW)}
    assert redact(text).counts == {k: n for k, n in counts.items() if n}


@pytest.mark.parametrize(
    "text",
    [
        # prose and code with a |: no header without its delimiter row beneath
        "Run cat x | grep y to find it, or cat x | grep password | wc -l.\n",
        "In code, a | b is a bitwise or; either | or reads the same.\n",
        f"echo $password | base64 -d\nprintf '%s' \"$PW\" | {HUNTER_PA}\n",
        f"password | {HUNTER_PA}\n",  # no header: no table
        f"Service | Password\nmysql | {HUNTER_PA}\n",  # no delimiter row
        f"Service | Password\n---\nmysql | {HUNTER_PA}\n",  # a heading's underline
        f"Service | Password\nsome words\n--- | ---\nmysql | {HUNTER_PA}\n",  # not beneath
        f"Service | Password\n- - -\nmysql | {HUNTER_PA}\n",  # a thematic break
        f"Service | Password\n--- | --- | ---\nmysql | {HUNTER_PA}\n",  # cells don't match
        f"User | Password\n--- | ---\nbob | x\n\nalice | {HUNTER_PA}\n",  # a blank line ends it
        f"User | Password\n--- | ---\nbob | x\nno row\nalice | {HUNTER_PA}\n",
        f"{KV}user | bob\n\npassword | {HUNTER_PA}\n",
        # placeholders, types, lengths, descriptions, as in piped tables
        "User | Password\n--- | ---\nadmin | <password>\nbob | changeme\neve | `********`\n",
        "User | Password\n--- | ---\nadmin | (none)\nbob | N/A\nx | 8-64\n",
        f"{KV}password | string\npassword | required, 12+ chars\npassword | <password>\n",
        # a bare Token column is a tokenizer's
        f"Token | ID\n--- | ---\n{TOKEN} | 42\n",
        f"Model | Input tokens\n--- | ---\nm1 | {TOKEN}\n",
    ],
)
def test_prose_with_a_pipe_and_what_is_no_secret_survive(text: str) -> None:
    assert same_streamed(text, {}) == text


def test_a_token_column_without_outer_pipes_needs_no_other_trigger() -> None:
    text = f"Service | API token\n--- | ---\nbilling | {TOKEN}\n"
    assert _patterns._maybe_triggered(text)
    assert redact(text).text == f"Service | API token\n--- | ---\nbilling | {KEY}\n"


SPLIT_TEXTS = [
    "Keys:\n\n" + HEAD3 + f"mysql | root | {HUNTER_PA}\nredis | x | my pass 2024\n\nDone.",
    "Config:\n" + KV + f"user | bob\n  password | {HUNTER_PA}\nDB_PASSWORD | my pass 2024\nok",
    f"Service | API token\n:--|--:\nbilling | {TOKEN}\n{TOKEN} | x\n\ncat x | grep y | wc",
]


@pytest.mark.parametrize("text", SPLIT_TEXTS)
def test_tables_without_outer_pipes_stream_as_whole_split_at_every_point(text: str) -> None:
    whole = redact(text)
    assert whole.counts
    for cut in range(len(text) + 1):
        assert streamed_in(text, [cut]) == (whole.text, dict(whole.counts)), cut
        assert streamed_in(text, [cut, 1, 1, 5]) == (whole.text, dict(whole.counts)), cut


def test_a_stream_holds_a_row_without_outer_pipes_until_its_line_ends() -> None:
    redactor = StreamRedactor()
    out = redactor.feed("User | Password\n--- | ---\nadmin ")
    out += redactor.feed("| hunter")
    out += redactor.feed("2!x more ")
    assert "admin" not in out  # the row waits for its end
    out += redactor.feed("words\nafter ")
    assert out == f"User | Password\n--- | ---\nadmin | {PW}\n"
    assert out + redactor.flush() == f"User | Password\n--- | ---\nadmin | {PW}\nafter "


TABLE_PIECES = [
    *("User | Password\n", "| User | Password |\n", "Key | Value\n", "--- | ---\n", "|---|---|\n"),
    *("---\n", "a | b2!x\n", "| a | b2!x |\n", "password | x1!\n", "no row\n", "\n", "  ", "|"),
    *("cat x | grep y\n", "a" * 40, " | ", "-", ":", "\r\n"),
]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(TABLE_PIECES), max_size=30), st.data())
def test_tables_are_read_alike_in_one_piece_or_many(parts: list[str], data: st.DataObject) -> None:
    """What ``TableColumns`` keeps (rows, their ends and columns, the rows without a
    leading |) does not depend on how the text is cut into pieces."""
    text = "".join(parts)
    whole = TableColumns()
    whole.read(text, 0)
    points = sorted(set(data.draw(st.lists(st.integers(0, len(text)), max_size=20))))
    pieces, at = TableColumns(), 0
    for p in [*points, len(text)]:
        back = data.draw(st.integers(0, 8))  # a stream's window starts a little earlier
        pieces.read(text[max(at - back, 0) : p], max(at - back, 0))
        at = max(at, p)
    kept = (whole.pipes, whole.ends, whole.cols, whole.lines)
    assert (pieces.pipes, pieces.ends, pieces.cols, pieces.lines) == kept
