"""Redaction, seventh audit: a Python HTTP client's Basic credentials (and, in the
stream and backwards tests, its dict and Digest forms: ``test_redaction_audit8``), and a
table's token and secret columns.

Secrets below are fake and split into pieces so that secret scanners leave this file
alone.
"""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from switchman.policy import _patterns
from switchman.policy._patterns_credentials import (
    _ANNOTATION,
    _CRED_NAME,
    _PY_AUTH_HEAD,
    _PY_AUTH_PLAIN,
    _PY_AUTH_SPACED,
    _STR_PREFIX,
    _YAML_USER,
    ANNOTATION_MAX,
    PY_AUTH_GAP,
    PY_AUTH_REACH,
    SEP_GAP,
)
from switchman.policy._patterns_values import QUOTED_SPACED
from switchman.policy._redact_breaks import _CUTS, _LOOKBACK, _Cuts, _py_auth_held
from switchman.policy._redaction import StreamRedactor, redact, tag
from tests.policy._streamed import same_streamed, streamed_in

PW = tag("password")
KEY = tag("api_key")

# -- a Python client's Basic credentials ------------------------------------------------

PY_AUTH = [
    (
        "r = requests.get(url, auth=('admin', 'hunter2" + "-pass'))",
        f"r = requests.get(url, auth=('admin', '{PW}'))",
    ),
    ('httpx.get(url, auth=("u", "p"))', f'httpx.get(url, auth=("u", "{PW}"))'),
    ('session.auth = ("deploy", "Tr0ub4dor&3")', f'session.auth = ("deploy", "{PW}")'),
    (
        'requests.get(url, auth=HTTPBasicAuth("u", "p"))',
        f'requests.get(url, auth=HTTPBasicAuth("u", "{PW}"))',
    ),
    (
        'auth = requests.auth.HTTPBasicAuth("svc", "s3cr3t-Value")',
        f'auth = requests.auth.HTTPBasicAuth("svc", "{PW}")',
    ),
    ('aiohttp.BasicAuth("u", "p")', f'aiohttp.BasicAuth("u", "{PW}")'),
    ('httpx.BasicAuth("bob", "correct horse 9")', f'httpx.BasicAuth("bob", "{PW}")'),
    ('httpx.BasicAuth("bob", "p,a{s}s[1]")', f'httpx.BasicAuth("bob", "{PW}")'),
    # laid out over lines, as a formatter may
    ('auth=(\n    "admin",\n    "hunter2!x",\n)', f'auth=(\n    "admin",\n    "{PW}",\n)'),
    # indented deeper, as black nests a call's arguments, or aligned under the user
    *(
        (text.format(pw="Hunter2-secret" + "-pw"), text.format(pw=PW))
        for text in (
            "requests.post(\n    url,\n    auth=(\n        'admin',\n        '{pw}',\n    ),\n)",
            "    auth=(\n        'admin',\n        '{pw}',\n    ),",
            "auth=(\n        'admin',\n        '{pw}',\n)",
            "auth=(\n    'admin',\n        '{pw}',\n)",
            "auth=('admin',\n                  '{pw}')",
            "HTTPBasicAuth(\n            'admin',\n            '{pw}',\n        )",
            "            session.auth = (\n                'deploy',\n                '{pw}',\n"
            "            )",
            "auth=(\n\t\t\t\t'admin'\n\t\t\t\t,\n\t\t\t\t'{pw}')",
            # the widest gaps: 40 whitespace characters each
            "auth=(\n" + " " * 39 + "'admin'" + " " * 40 + ",\n" + " " * 39 + "'{pw}')",
        )
    ),
]


@pytest.mark.parametrize(("text", "expected"), PY_AUTH)
def test_a_python_clients_basic_password_is_redacted_and_its_user_kept(
    text: str, expected: str
) -> None:
    assert same_streamed(text, {"password": 1}) == expected


@pytest.mark.parametrize(
    "text",
    [
        "requests.get(url, auth=(user, password))",  # names: code
        "requests.get(url, auth=None)",
        'requests.get(url, auth=("user", "password"))',  # placeholders
        'auth=("admin", "<password>")',
        'auth=("admin", "${API_PASSWORD}")',
        'auth=("admin", "")',
        'oauth=("client", "x1")',  # another word
        "The auth flow (see below) is simple, and auth=good enough.",
    ],
)
def test_what_is_no_python_clients_password_is_left(text: str) -> None:
    assert same_streamed(text, {}) == text


@pytest.mark.parametrize(
    "text",
    [
        "auth=(\n" + " " * 40 + "'admin', 'Hunter2-x')",
        "auth=('admin'" + " " * 41 + ", 'Hunter2-x')",
        "auth=('admin',\n" + " " * 40 + "'Hunter2-x')",
    ],
)
def test_a_gap_wider_than_forty_whitespace_characters_is_no_python_credentials(
    text: str,
) -> None:
    """Past 40 whitespace characters between its parts, a tuple is not taken for
    credentials, and a stream holds no longer than that for one."""
    assert same_streamed(text, {}) == text


def test_the_longest_open_python_credentials_stream_as_whole_split_at_every_point() -> None:
    """``auth = (`` with 8 spaces each side of its ``=``, the widest gaps, the longest
    user and a spaced password of QUOTED_SPACED characters, its last space at its end:
    a cut anywhere in it is held, however far back its start."""
    head, user = "auth" + " " * 8 + "=" + " " * 8 + "(", "u" * 64
    password = "x" * 18 + "correct horse battery staple 9"  # 48: QUOTED_SPACED
    gap = "\n" + " " * 39
    text = f"Use: {head}{gap}'{user}'{gap},{gap}'{password}') now"
    whole = redact(text)
    assert whole.text == f"Use: {head}{gap}'{user}'{gap},{gap}'{PW}') now"
    for cut in range(len(text) + 1):
        for sizes in ((cut, len(text)), (cut, cut + 1, cut + 57, len(text))):
            redactor = StreamRedactor()
            out, i = [], 0
            for j in sizes:
                out.append(redactor.feed(text[i:j]))
                i = max(i, j)
            out.append(redactor.flush())
            assert ("".join(out), dict(redactor.counts)) == (whole.text, {"password": 1}), sizes


@pytest.mark.parametrize(("text", "expected"), PY_AUTH)
def test_python_credentials_stream_as_whole_split_at_every_point(text: str, expected: str) -> None:
    text = f"Use this: {text}, then call it."
    whole = redact(text)
    assert whole.counts == {"password": 1}
    for cut in range(len(text) + 1):
        assert streamed_in(text, [cut]) == (whole.text, dict(whole.counts)), cut


# -- a table's token and secret columns ---------------------------------------------------

TOKEN = "tok_" + "9f8e7d6c5b4a3210zz"  # 16 or more, a digit: a column's secret key


@pytest.mark.parametrize(
    "column",
    [
        "API secret",
        "Secret key",
        "Client secret",
        "Access token",
        "Auth token",
        "API token",
        "Refresh token",
        "OAuth token",
        "ACCESS_TOKEN",
        "Access tokens",
    ],
)
def test_a_column_headed_by_a_secret_or_a_token_is_redacted(column: str) -> None:
    text = (
        f"| Service | {column} | Notes |\n|---|---|---|\n"
        f"| billing | {TOKEN} | rotated |\n| mail | `{TOKEN}` | short x1 |\n"
    )
    expected = (
        f"| Service | {column} | Notes |\n|---|---|---|\n"
        f"| billing | {KEY} | rotated |\n| mail | `{KEY}` | short x1 |\n"
    )
    assert _patterns._maybe_triggered(f"| {column} |\n|---|\n")  # the header alone
    assert same_streamed(text, {"api_key": 2}) == expected


@pytest.mark.parametrize(
    "text",
    [
        # a tokenizer's table: its Token column must survive
        "| Token | ID | Count |\n|---|---|---|\n"
        "| hello | 15339 | 3 |\n| ▁tokenization2024abc | 30001 | 1 |\n"
        f"| {TOKEN} | 42 | 1 |\n",
        f"| Tokens | Text |\n|---|---|\n| {TOKEN} | x |\n",
        f"| Model | Input tokens | Output tokens |\n|---|---|---|\n| m1 | {TOKEN} | 12 |\n",
        f"| Token ID | Piece |\n|---|---|\n| 1 | {TOKEN} |\n",
    ],
)
def test_a_bare_token_column_is_left(text: str) -> None:
    assert same_streamed(text, {}) == text


def test_a_token_column_needs_no_other_trigger() -> None:
    """The table's header is its only trigger: the gate lets it through."""
    text = f"| Access token |\n|---|\n| {TOKEN} |\n"
    assert _patterns._maybe_triggered(text)
    assert redact(text).text == f"| Access token |\n|---|\n| {KEY} |\n"


def test_a_token_table_streams_as_whole_split_at_every_point() -> None:
    text = f"Keys:\n\n| Service | API token |\n|---|---|\n| billing | {TOKEN} |\n\nDone."
    whole = redact(text)
    assert whole.counts == {"api_key": 1}
    for cut in range(len(text) + 1):
        assert streamed_in(text, [cut]) == (whole.text, dict(whole.counts)), cut


# -- stream == whole, any chunking -------------------------------------------------------

AUTH_PIECES = [
    *("auth", "auth=(", "auth = (", "BasicAuth(", "HTTPBasicAuth(", "aiohttp.", "oauth="),
    *('"auth": (', "{'auth' : (", '"auth"', "'auth'", ":", ": ", "DigestAuth(", "HTTPDigest"),
    *('"u"', "'admin'", '"', "'", ",", ", ", ")", "(", "=", " ", "\n", "\t", "{", "]"),
    *("\n        ", "\n" + " " * 20, " " * 39, "\n\t\t\t", "\n" + " " * 40),
    *('"hunter2!x"', "'p,a{s}s'", '"my pass 9"', '"password"', "user", "x1"),
]
PIECES = [
    *AUTH_PIECES,
    *("| ", " |", "|---|", "|---|---|", "| Access token |", "| API secret |", "| Token |"),
    *(TOKEN, "hunter2!x", "日本", "。", "password=", "Basic "),
]


@st.composite
def texts_and_cuts(draw: st.DrawFn) -> tuple[str, list[int]]:
    text = "".join(draw(st.lists(st.sampled_from(PIECES), max_size=40)))
    points = sorted(set(draw(st.lists(st.integers(0, len(text)), max_size=30))))
    return text, [b - a for a, b in zip([0, *points], points, strict=False)]


@settings(max_examples=600, deadline=None)
@given(texts_and_cuts())
def test_credentials_and_token_tables_stream_as_whole(case: tuple[str, list[int]]) -> None:
    text, sizes = case
    whole = redact(text)
    assert streamed_in(text, sizes) == (whole.text, dict(whole.counts))


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(AUTH_PIECES), max_size=20))
def test_no_break_cuts_a_python_clients_credentials(parts: list[str]) -> None:
    """Redacted as one block, the text redacts the same: no break splits the
    credentials (tables aside: their rows are found in the whole text only)."""
    text = "".join(parts)
    counts: dict[str, int] = {}
    assert redact(text).text == _patterns._redact_block(text, counts)
    assert redact(text).counts == counts


# the names of the ninth audit's credentials and their parts (test_redaction_audit9)
NAMES = (
    "AUTH",
    "BASIC_",
    "http_",
    "_pair",
    "credentials",
    "Creds",
    "basicAuth",
    " = [",
    ": [",
    "o",
)

# open credentials written forwards, searched for back from the cut: what the reversed
# pattern matched from the cut back must answer
_OPEN_FORWARDS = re.compile(
    rf"{_CRED_NAME}(?:[ \t]{{0,{SEP_GAP}}}=|[\"']?(?:[ \t]{{0,{SEP_GAP}}}"
    rf"(?:=>?|:(?:{_ANNOTATION}{{0,{ANNOTATION_MAX}}}=?)?))?)"
    rf"[ \t]{{0,{SEP_GAP}}}\Z|"
    + _PY_AUTH_HEAD
    + rf"(?:(?:{_STR_PREFIX}(?P<uq>[\"'])[{_PY_AUTH_PLAIN}]{{0,64}}(?P=uq)|[{_YAML_USER}]{{1,64}})"
    rf"\s{{0,{PY_AUTH_GAP}}}"
    rf"(?:,\s{{0,{PY_AUTH_GAP}}}"
    rf"(?:{_STR_PREFIX}[\"'][ {_PY_AUTH_SPACED}]{{0,{QUOTED_SPACED - 1}}})?)?)?\Z"
)


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from([*AUTH_PIECES, "xauth", "HTTP", "P", "_", "é", "\u3000", *NAMES])))
def test_open_credentials_are_found_backwards_as_forwards(parts: list[str]) -> None:
    text = "".join(parts)
    x = _Cuts(text, 0, _CUTS, None, None)
    for c in range(len(text) + 1):
        forwards = _OPEN_FORWARDS.search(text, max(c - PY_AUTH_REACH, 0), c) is not None
        assert _py_auth_held(x, c) == forwards, c
    assert _LOOKBACK > PY_AUTH_REACH  # a stream keeps what the check reads


def test_open_credentials_are_found_backwards_in_a_long_text_read_either_way() -> None:
    """A long text is reversed a part at a time: cuts asked in either order, far apart
    and near a part's ends, answer as the forward search does."""
    unit = "x " * 1500 + "auth=(\n" + " " * 39 + "'u',\n" + " " * 30 + "'p w x " + "y" * 9
    text = unit * 3
    forwards = [
        _OPEN_FORWARDS.search(text, max(c - PY_AUTH_REACH, 0), c) is not None
        for c in range(len(text) + 1)
    ]
    assert sum(forwards) > 3 * 60  # each unit's credentials, open over 60 cuts and more
    for order in (range(len(text) + 1), range(len(text), -1, -1), range(0, len(text) + 1, 997)):
        x = _Cuts(text, 0, _CUTS, None, None)
        assert [c for c in order if _py_auth_held(x, c) != forwards[c]] == []


def test_a_text_of_open_credentials_past_the_memo_of_held_cuts_redacts_as_one_block() -> None:
    """Over 4,096 cuts kept (a check remembers that many), and a password at the end."""
    text = ("auth=(\n" + " " * 39) * 150 + "'admin',\n" + " " * 39 + "'hunter2!x')"
    x = _Cuts(text, 0, _CUTS, None, None)
    cuts = [c for c in range(1, len(text) + 1) if text[c - 1].isspace()]
    assert len(cuts) > 4096 and all(_py_auth_held(x, c) for c in cuts)
    assert all(_py_auth_held(x, c) for c in cuts)  # again, after the memo was cleared
    counts: dict[str, int] = {}
    assert redact(text).text == _patterns._redact_block(text, counts) == same_streamed(text)
    assert counts == {"password": 1}
