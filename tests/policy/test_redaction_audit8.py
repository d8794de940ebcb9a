"""Redaction, eighth audit: a Python client's credentials in a dict of a call's
arguments and Digest credentials; markdown tables written without outer pipes.

Secrets below are fake and split into pieces so that secret scanners leave this file
alone.
"""

from __future__ import annotations

import pytest

from switchman.policy import _patterns
from switchman.policy._redaction import redact, tag
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
    done = redact(text)
    assert (done.text, dict(done.counts)) == (expected, {"password": 1})
    assert same_streamed(text) == expected


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
    done = redact(text)
    assert (done.text, dict(done.counts)) == (text, {})
    assert same_streamed(text) == text


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
