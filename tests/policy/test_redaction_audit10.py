"""Redaction, tenth audit: a placeholder is a value that is one as a whole (a real
password holding ``pass`` or ``secret`` is redacted); a URL password ending in a ``?``
or ``#`` before the host's @; credentials in prefixed strings, annotated assignments,
lists of pairs, walrus and PHP arrays.

Secrets below are fake and split into pieces so that secret scanners leave this file
alone.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from switchman.policy import _patterns
from switchman.policy._patterns_credentials import PY_AUTH_REACH
from switchman.policy._patterns_values import _PLACEHOLDER
from switchman.policy._redact_breaks import _CUTS, _LOOKBACK, _Cuts, _py_auth_held
from switchman.policy._redaction import redact, tag
from tests.policy._streamed import same_streamed, streamed_in
from tests.policy.test_redaction_audit7 import _OPEN_FORWARDS
from tests.policy.test_redaction_work import assert_linear_work

PW = tag("password")
URL_PW = tag("url_password")

# -- item 1: a placeholder is one as a whole ---------------------------------------------

REAL_WITH_A_WORD = ["super" + "secret", "com" + "pass", "secret" + "pw", "top" + "secret"]


@pytest.mark.parametrize("value", REAL_WITH_A_WORD)
def test_a_curl_password_holding_a_placeholder_word_is_redacted(value: str) -> None:
    text = f"curl -u admin:{value} https://x"
    assert same_streamed(text, {"password": 1}) == f"curl -u admin:{PW} https://x"


@pytest.mark.parametrize("value", REAL_WITH_A_WORD)
def test_a_named_pair_holding_a_placeholder_word_is_redacted(value: str) -> None:
    text = f"AUTH = ('admin', '{value}')"
    assert same_streamed(text, {"password": 1}) == f"AUTH = ('admin', '{PW}')"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "curl -k -u admin:" + "secret" + "pw -X POST https://x",
            f"curl -k -u admin:{PW} -X POST https://x",
        ),
        ("postgres://app:" + "Secret" + "ariat@db/x", f"postgres://app:{URL_PW}@db/x"),
        ("password: " + "By" + "passMe!", f"password: {PW}"),
    ],
)
def test_other_real_passwords_holding_a_placeholder_word_are_redacted(
    text: str, expected: str
) -> None:
    assert same_streamed(text) == expected


@pytest.mark.parametrize(
    "value",
    [
        "password",
        "Password",
        "PASSWORD",
        "pass",
        "pass word",
        "passwd",
        "passphrase",
        "yourpassword",
        "your_password",
        "your-password",
        "your password here",
        "your-password-here",
        "YOUR_PASSWORD",
        "mypassword",
        "mypass",
        "secret",
        "mysecret",
        "my-secret",
        "your_secret_here",
        "secret_key",
        "your_api_key",
        "your_token_here",
        "db_password",
        "example",
        "changeme",
        "change_me",
        "change-me",
        "placeholder",
        "redacted",
        "<password>",
        "{{password}}",
        "${VAR}",
        "$DB_PASSWORD",
        "%PASSWORD%",
        "xxx",
        "****",
        "...",
    ],
)
def test_a_value_that_is_a_placeholder_is_one(value: str) -> None:
    assert _PLACEHOLDER.fullmatch(value)


@pytest.mark.parametrize(
    "value",
    [
        "super" + "secret",
        "top" + "secret",
        "com" + "pass",
        "secret" + "pw",
        "Secret" + "ariat",
        "by" + "passme",
        "passover",
        "encompassing",
        "secretary",
        "yourself",
        "monkey",
        "let" + "mein",
    ],
)
def test_a_value_merely_holding_a_placeholder_word_is_none(value: str) -> None:
    assert not _PLACEHOLDER.fullmatch(value)


@pytest.mark.parametrize(
    "text",
    [
        "curl -u admin:password https://x",
        "curl -u admin:your-password https://x",
        "AUTH = ('admin', 'mysecret')",
        "AUTH = ('admin', 'changeme')",
        "postgres://app:yourpassword@db/x",
        "postgres://app:your_password@db/x",
        "password: example",
        'password = "your password here"',
    ],
)
def test_placeholders_in_credentials_survive(text: str) -> None:
    assert same_streamed(text) == text


def test_a_real_password_holding_a_placeholder_word_streams_as_whole_split_at_every_point() -> None:
    text = (
        "curl -u admin:" + "super" + "secret https://x and AUTH = ('admin', 'top" + "secret')"
        " or postgres://app:" + "Secret" + "ariat@db/x; placeholders: -u admin:password."
    )
    whole = redact(text)
    assert whole.counts == {"password": 2, "url_password": 1}
    for cut in range(len(text) + 1):
        assert streamed_in(text, [cut]) == (whole.text, dict(whole.counts)), cut


# -- item 2: a ? or # just before the host's @ ends the password -------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("postgres://u:" + "p@ss?" + "@db/x", f"postgres://u:{URL_PW}@db/x"),
        ("mysql://root:" + "s3cr@t?" + "@localhost/db", f"mysql://root:{URL_PW}@localhost/db"),
        ("postgres://u:" + "p@ss#" + "@db/x", f"postgres://u:{URL_PW}@db/x"),
        ("redis://:" + "p@ss?" + "@cache:6379/0", f"redis://:{URL_PW}@cache:6379/0"),
    ],
)
def test_a_url_password_ending_in_a_question_mark_after_an_at_is_redacted_whole(
    text: str, expected: str
) -> None:
    assert same_streamed(text, {"url_password": 1}) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("https://u:" + "pw" + "@host?to=a@b", f"https://u:{URL_PW}@host?to=a@b"),
        ("https://u:" + "pw" + "@host/?to=a@b", f"https://u:{URL_PW}@host/?to=a@b"),
        ("https://u:" + "pw" + "@host/@b", f"https://u:{URL_PW}@host/@b"),
        ("https://u:" + "pw" + "@host/bob@x", f"https://u:{URL_PW}@host/bob@x"),
        ("https://host/x?y@z/w", None),
        ("https://host.io/?a@b", None),
    ],
)
def test_a_query_or_path_after_the_host_still_stays(text: str, expected: str | None) -> None:
    assert same_streamed(text) == (text if expected is None else expected)


def test_a_url_password_ending_in_a_question_mark_streams_as_whole_split_at_every_point() -> None:
    text = "Use mysql://root:" + "s3cr@t?" + "@localhost/db or https://u:pw@host/?to=a@b."
    whole = redact(text)
    assert whole.counts == {"url_password": 2}
    for cut in range(len(text) + 1):
        assert streamed_in(text, [cut]) == (whole.text, dict(whole.counts)), cut


# -- item 3: prefixed strings, annotations, a list's first pair, walrus, PHP -------------

PX = "pw-" + "x1"
SHAPES = [
    ("AUTH = (u'admin', u'Sup3r" + "S3cret!')", f"AUTH = (u'admin', u'{PW}')"),
    (f"AUTH = (b'admin', b'{PX}')", f"AUTH = (b'admin', b'{PW}')"),
    (f"auth=(r'admin', rb'{PX}')", f"auth=(r'admin', rb'{PW}')"),
    (f'auth=(f"admin", F"{PX}")', f'auth=(f"admin", F"{PW}")'),
    (f"AUTH: Tuple[str, str] = ('admin', '{PX}')", f"AUTH: Tuple[str, str] = ('admin', '{PW}')"),
    (f"auth: tuple[str, str]=('admin', '{PX}')", f"auth: tuple[str, str]=('admin', '{PW}')"),
    (f"if (AUTH := ('admin', '{PX}')):", f"if (AUTH := ('admin', '{PW}')):"),
    (f"$cfg = ['auth' => ['u', '{PX}']];", f"$cfg = ['auth' => ['u', '{PW}']];"),
    (f"'auth' => array('u', '{PX}'),", f"'auth' => array('u', '{PW}'),"),
    (f"$auth = Array('u', '{PX}');", f"$auth = Array('u', '{PW}');"),
    (f"CREDENTIALS = [('admin', '{PX}')]", f"CREDENTIALS = [('admin', '{PW}')]"),
    (f"creds = [\n    ('admin', '{PX}'),\n]", f"creds = [\n    ('admin', '{PW}'),\n]"),
]


@pytest.mark.parametrize(("text", "expected"), SHAPES)
def test_new_shapes_of_a_named_pair_lose_their_password(text: str, expected: str) -> None:
    assert same_streamed(text, {"password": 1}) == expected


@pytest.mark.parametrize(("text", "expected"), SHAPES)
def test_new_shapes_stream_as_whole_split_at_every_point(text: str, expected: str) -> None:
    text = f"Config:\n{text}\nand more {text} done."
    whole = redact(text)
    assert whole.counts == {"password": 2}
    for cut in range(len(text) + 1):
        assert streamed_in(text, [cut]) == (whole.text, dict(whole.counts)), cut


@pytest.mark.parametrize(
    "text",
    [
        "AUTH = (u'user', u'password')",  # placeholders
        "auth: Tuple[str, str] = (user, password)",  # names: code
        "AUTH: str = 'admin'",
        "author: Tuple[str, str] = ('a', 'b-1x')",  # no credential's name
        "x = array('u', 'pw-1x')",
        "auth = (xu'admin', u'pw-1x')",
    ],
)
def test_what_is_no_new_shape_is_left(text: str) -> None:
    assert same_streamed(text) == text


def test_a_lists_later_pairs_are_left() -> None:
    """Only a list's first pair is read (its later ones are far from the name: holding a
    stream for each would read back past every pair before it)."""
    text = f"CREDENTIALS = [('admin', '{PX}'), ('bob', 'pw-2y')]"
    assert same_streamed(text) == f"CREDENTIALS = [('admin', '{PW}'), ('bob', 'pw-2y')]"


NEW_PIECES = [
    *("AUTH", "auth", "creds", ": ", ":", " = ", "=", " := ", ":=", " => ", "'auth'"),
    *("Tuple[", "str", ", ", "]", "[", "(", "array(", "[(", "u", "rb", "f"),
    *("'admin'", "'u'", "'", '"', "'pw-1x'", "'my pass 9'", " ", "\n", " " * 39, ")"),
]


@settings(max_examples=500, deadline=None)
@given(st.lists(st.sampled_from(NEW_PIECES), max_size=24))
def test_new_shapes_found_backwards_as_forwards(parts: list[str]) -> None:
    text = "".join(parts)
    x = _Cuts(text, 0, _CUTS, None, None)
    for c in range(len(text) + 1):
        forwards = _OPEN_FORWARDS.search(text, max(c - PY_AUTH_REACH, 0), c) is not None
        assert _py_auth_held(x, c) == forwards, c
    assert _LOOKBACK > PY_AUTH_REACH


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(NEW_PIECES), max_size=30), st.data())
def test_new_shapes_stream_as_whole_in_any_chunks(parts: list[str], data: st.DataObject) -> None:
    text = "".join(parts)
    points = sorted(set(data.draw(st.lists(st.integers(0, len(text)), max_size=20))))
    whole = redact(text)
    sizes = [b - a for a, b in zip([0, *points], points, strict=False)]
    assert streamed_in(text, sizes) == (whole.text, dict(whole.counts))
    counts: dict[str, int] = {}
    assert whole.text == _patterns._redact_block(text, counts)  # no break cuts one


ADVERSARIAL: dict[str, Callable[[int], str]] = {
    "annotations": lambda n: ("AUTH: Tuple[str, str] = (" * n)[:n],
    "open annotation": lambda n: "AUTH: " + ("a, [b] " * n)[: n - 6],
    "walrus and arrows": lambda n: ("auth := ('u', 'auth' => array('u', " * n)[:n],
    "prefixed users": lambda n: ("auth=(u'admin', rb'" * n)[:n],
    "list openers": lambda n: ("creds = [ (" * n)[:n],
}


@pytest.mark.parametrize("name", list(ADVERSARIAL))
def test_work_grows_linearly_on_new_shapes(name: str) -> None:
    assert_linear_work(ADVERSARIAL[name])
