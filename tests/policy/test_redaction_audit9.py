"""Redaction, ninth audit: a (user, password) pair given a credential's name outside a
call, in a list, under the Elasticsearch clients' names, spaced widely; curl's -u with a
password of letters; a URL password holding an @ and a ?.

Secrets below are fake and split into pieces so that secret scanners leave this file
alone.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from switchman.policy import _patterns
from switchman.policy._redaction import redact, tag
from tests.policy._streamed import same_streamed, streamed_in
from tests.policy.test_redaction_work import assert_linear_work

PW = tag("password")
HUNTER = "hunter2" + "-pw"

# -- a pair given a credential's name, a list, http_auth, wide spacing -------------------

NAMED_PAIRS = [
    (f"AUTH = ('admin', '{HUNTER}')", f"AUTH = ('admin', '{PW}')"),
    ('BASIC_AUTH = ("u", "S3cret' + '!x")', f'BASIC_AUTH = ("u", "{PW}")'),
    ("auth_pair = ('svc', 'p@ssw0rd" + "-9')", f"auth_pair = ('svc', '{PW}')"),
    ('credentials = ("bob", "Tr0ub4dor' + '&3")', f'credentials = ("bob", "{PW}")'),
    ("self.DB_CREDENTIALS = ('bob', 'x1')", f"self.DB_CREDENTIALS = ('bob', '{PW}')"),
    ("basicAuth = ('bob', 'x1')", f"basicAuth = ('bob', '{PW}')"),
    # lists
    (f'"auth": ["u", "{HUNTER}"]', f'"auth": ["u", "{PW}"]'),
    ('auth=["u", "p"]', f'auth=["u", "{PW}"]'),
    ('auth = ["u", "p"]', f'auth = ["u", "{PW}"]'),
    ('basic_auth: ["admin", "p1"]', f'basic_auth: ["admin", "{PW}"]'),
    # the Elasticsearch and OpenSearch clients
    ('http_auth=("elastic", "changeme' + '-123")', f'http_auth=("elastic", "{PW}")'),
    (
        'es = Elasticsearch(hosts, basic_auth=("elastic", "x9-' + 'Qz"))',
        f'es = Elasticsearch(hosts, basic_auth=("elastic", "{PW}"))',
    ),
    ("{'http_auth': ('admin', 'x1')}", f"{{'http_auth': ('admin', '{PW}')}}"),
    # more than 8 spaces or tabs around the = or the :, up to 40
    ("auth  =   ('u', 'p')", f"auth  =   ('u', '{PW}')"),
    (
        "auth" + " " * 40 + "=" + " " * 40 + "('u', 'p')",
        "auth" + " " * 40 + "=" + " " * 40 + f"('u', '{PW}')",
    ),
    (
        '"auth"' + "\t" * 12 + ":" + " " * 20 + "('u', 'p')",
        '"auth"' + "\t" * 12 + ":" + " " * 20 + f"('u', '{PW}')",
    ),
    # black's layout
    (
        f"AUTH = (\n    'admin',\n    '{HUNTER}',\n)",
        f"AUTH = (\n    'admin',\n    '{PW}',\n)",
    ),
]


@pytest.mark.parametrize(("text", "expected"), NAMED_PAIRS)
def test_a_pair_named_as_credentials_loses_its_password_and_keeps_its_user(
    text: str, expected: str
) -> None:
    assert same_streamed(text, {"password": 1}) == expected


@pytest.mark.parametrize(
    "text",
    [
        "PAIR = ('alpha', 'beta')",  # ordinary names
        'colors = ("red", "blue")',
        "author = ('Ann', 'Lee 2')",
        "authority = ('a', 'b2')",
        "oauth = ('client', 'x1')",
        "OAUTH = ('client', 'x1')",
        "auth_methods = ['basic', 'digest']",
        "AUTH_TYPES = ('basic', 'bearer')",
        "credentials_path = ('a', 'b2')",
        "auth == ('u', 'p1')",  # a comparison
        "auth = (user, password)",  # names: code
        "AUTH = ('user', 'password')",  # placeholders
        "credentials = ['admin', '<password>']",
        "auth" + " " * 41 + "= ('u', 'p1')",  # past 40
        "auth =\n    ('u', 'p1')",  # a newline before the parenthesis, as before
        "'auth' (see below) is how it logs in: ('a', 'b2')",
    ],
)
def test_a_pair_under_another_name_or_no_password_is_left(text: str) -> None:
    assert same_streamed(text, {}) == text


SPLIT_TEXTS = [
    f"Set it: AUTH = ('admin', '{HUNTER}'), then call it.",
    f'Use {{"http_auth": ["elastic",\n    "my pass 9"]}} and auth  =   ["u", "{HUNTER}"].',
    "credentials" + " " * 40 + "=" + " " * 40 + "[\n" + " " * 39 + f"'u',\n   '{HUNTER}']",
    f"basic_auth: ['admin', '{HUNTER}']\nPAIR = ('alpha', 'beta')\n",
]


@pytest.mark.parametrize("text", SPLIT_TEXTS)
def test_named_pairs_stream_as_whole_split_at_every_point(text: str) -> None:
    whole = redact(text)
    assert whole.counts == {"password": text.count(HUNTER) + text.count("my pass 9")}
    for cut in range(len(text) + 1):
        assert streamed_in(text, [cut]) == (whole.text, dict(whole.counts)), cut
        assert streamed_in(text, [cut, 1, 1, 5]) == (whole.text, dict(whole.counts)), cut


PIECES = [
    *("AUTH", "auth", "BASIC_", "http_", "_pair", "credentials", "CREDENTIALS", "basicAuth"),
    *(" = ", "=", ": ", '"', "'", "(", "[", " " * 39, "\t", "\n    ", ", ", ",\n", ")", "]"),
    *("'u'", '"admin"', "'hunter2!x'", '"my pass 9"', "'p,a{s}s'", "PAIR", "o", "x "),
]


@settings(max_examples=500, deadline=None)
@given(st.lists(st.sampled_from(PIECES), max_size=40), st.data())
def test_named_pairs_stream_as_whole_in_any_chunks(parts: list[str], data: st.DataObject) -> None:
    text = "".join(parts)
    points = sorted(set(data.draw(st.lists(st.integers(0, len(text)), max_size=30))))
    sizes = [b - a for a, b in zip([0, *points], points, strict=False)]
    whole = redact(text)
    assert streamed_in(text, sizes) == (whole.text, dict(whole.counts))
    counts: dict[str, int] = {}  # no break splits the credentials
    assert _patterns._redact_block(text, counts) == whole.text
    assert counts == dict(whole.counts)


def test_prose_naming_authors_or_credentials_without_a_pair_is_turned_away_by_the_gate() -> None:
    """The gate asks for a name then its = or : and a parenthesis: prose mentioning an
    author, authority or credentials (with a colon and parentheses) costs no block."""
    text = "The author's note (see: credentials) says: auth is (mostly) done = fine."
    assert not _patterns._maybe_triggered(text)
    assert _patterns._maybe_triggered("x = 1; AUTH = ('u', 'p')")
    assert _patterns._maybe_triggered('{"Credentials": ["u", "p"]}')


# -- linear work ------------------------------------------------------------------------------

ADVERSARIAL = {
    "auth = ( repeated": lambda n: ("auth = ( " * n)[:n],
    "AUTH = [ and spaces": lambda n: ("AUTH" + " " * 40 + "=" + " " * 40 + "[ " * n)[:n],
    "credentials and a user, open": lambda n: ("credentials = ('u', 'p q " * n)[:n],
    "http_auth keys": lambda n: ("{'http_auth': ('u', " * n)[:n],
    "a:b@ repeated": lambda n: ("a:b@" * n)[:n],
    "URLs of @ and ?": lambda n: ("p://u:p@s?w@" * n)[:n],
}


@pytest.mark.parametrize("name", list(ADVERSARIAL))
def test_work_grows_linearly_on_named_pairs(name: str) -> None:
    assert_linear_work(ADVERSARIAL[name])


# -- curl -u user:password, the password letters alone --------------------------------------

LETMEIN = "let" + "mein"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"curl -u admin:{LETMEIN} https://x.io", f"curl -u admin:{PW} https://x.io"),
        (f"curl --user admin:{LETMEIN} https://x.io", f"curl --user admin:{PW} https://x.io"),
        (f"curl --user=admin:{LETMEIN} x", f"curl --user=admin:{PW} x"),
        (f"curl -u 'admin:{LETMEIN}' x", f"curl -u 'admin:{PW}' x"),
        (f"$ curl -s \\\n  -u bob:{LETMEIN}Now\n", f"$ curl -s \\\n  -u bob:{PW}\n"),
    ],
)
def test_a_curl_password_of_letters_alone_is_redacted(text: str, expected: str) -> None:
    assert same_streamed(text, {"password": 1}) == expected


@pytest.mark.parametrize(
    "text",
    [
        "ps -u root",
        "sort -u a:bcde",
        "git push -u origin main:main",
        "sudo -u postgres psql:abcd",
        "docker run --user node:node img",
        "curl -u user:pass https://x.io",  # placeholders
        "curl -u admin:password https://x.io",
        "curl -u admin:abc x",  # three letters
        "curl -u 1000:1000 x",
        "curl https://x.io\nsort -u a:bcde\n",  # another line
    ],
)
def test_other_u_options_and_placeholders_survive(text: str) -> None:
    assert same_streamed(text, {}) == text


def test_a_curl_password_of_letters_streams_as_whole_split_at_every_point() -> None:
    text = f"Run curl -X POST -u admin:{LETMEIN} https://x.io\nthen sort -u a:bcde."
    whole = redact(text)
    assert whole.counts == {"password": 1}
    for cut in range(len(text) + 1):
        assert streamed_in(text, [cut]) == (whole.text, dict(whole.counts)), cut


# -- a URL password holding an @ and a ?, no port ------------------------------------------------

URL_PW = tag("url_password")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("postgres://u:" + "p@ss?w0rd" + "@db/x", f"postgres://u:{URL_PW}@db/x"),
        ("postgres://u:" + "p@ss?w0rd" + "@db", f"postgres://u:{URL_PW}@db"),
        (
            "postgres://u:" + "p@ss?w0rd" + "@db.example.com/x",
            f"postgres://u:{URL_PW}@db.example.com/x",
        ),
        ("https://u:" + "pa@ss" + "@host/path", f"https://u:{URL_PW}@host/path"),
        ("https://u:" + "p@ss?w0rd" + "@db?x=1", f"https://u:{URL_PW}@db?x=1"),
        (
            '{"dsn": "postgres://u:' + "p@ss?w0rd" + '@db/x"}',
            f'{{"dsn": "postgres://u:{URL_PW}@db/x"}}',
        ),
    ],
)
def test_a_url_password_holding_an_at_and_a_question_mark_is_redacted_whole(
    text: str, expected: str
) -> None:
    assert same_streamed(text, {"url_password": 1}) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # a query after the host: its = or & says so; an @ in a path after a host
        ("https://u:" + "pw" + "@host?to=a@b", f"https://u:{URL_PW}@host?to=a@b"),
        ("https://u:" + "pw" + "@host?a=1&b@c/x", f"https://u:{URL_PW}@host?a=1&b@c/x"),
        ("https://u:" + "pw" + "@host/bob@x", f"https://u:{URL_PW}@host/bob@x"),
        # no password: an email in a path, user@host
        ("https://host/users/a@b.com/x", f"https://host/users/{tag('email')}/x"),
        ("https://host/x?y@z/w", None),
        ("ssh://git@host/x?y@z", None),
        ("ssh deploy@web01 and user@host", None),
    ],
)
def test_a_query_an_email_in_a_path_or_a_user_without_password_stays(
    text: str, expected: str | None
) -> None:
    assert same_streamed(text) == (text if expected is None else expected)


def test_a_url_password_with_an_at_and_a_question_mark_streams_as_whole_split_at_every_point() -> (
    None
):
    text = "Connect to postgres://u:" + "p@ss?w0rd" + "@db/x, or https://u:pw@host?to=a@b."
    whole = redact(text)
    assert whole.counts == {"url_password": 2}
    for cut in range(len(text) + 1):
        assert streamed_in(text, [cut]) == (whole.text, dict(whole.counts)), cut


# -- YAML credentials under an auth: key ---------------------------------------------------------


@pytest.mark.parametrize("key", ["auth", "basic_auth", "credentials"])
def test_yaml_credentials_under_an_auth_key_lose_their_password(key: str) -> None:
    """The password: key's rule catches them already (item 5 of the brief: tested)."""
    text = f"{key}:\n  username: admin\n  password: hunter2-" + "Pa55\n"
    assert same_streamed(text, {"password": 1}) == f"{key}:\n  username: admin\n  password: {PW}\n"


# -- second round -------------------------------------------------------------------------------
# -- curl's -u only within the curl command: up to ; && || | or the line's end ----------------


@pytest.mark.parametrize(
    "text",
    [
        "curl x; sort -u a:bcde",
        "curl https://x.io && sort -u a:bcde",
        "curl https://x.io || sort -u a:bcde",
        "curl -s https://x.io | sort -u a:bcde",
        "curl -s https://x.io|sudo -u svc:abcd id",
        "curl -s \\\n  https://x.io; sort -u a:bcde",
    ],
)
def test_a_u_option_after_the_curl_command_has_ended_is_left(text: str) -> None:
    assert same_streamed(text, {}) == text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"curl -u admin:{LETMEIN}", f"curl -u admin:{PW}"),
        (f"curl -s -u admin:{LETMEIN} -X POST url", f"curl -s -u admin:{PW} -X POST url"),
        (f"cd /tmp; curl -u admin:{LETMEIN} x", f"cd /tmp; curl -u admin:{PW} x"),
        (f"curl a | curl -u admin:{LETMEIN} b", f"curl a | curl -u admin:{PW} b"),
        (f"curl -u admin:{LETMEIN} x | jq .", f"curl -u admin:{PW} x | jq ."),
        (f"curl -u admin:{LETMEIN} x; sort -u a:bcde", f"curl -u admin:{PW} x; sort -u a:bcde"),
    ],
)
def test_a_u_option_within_the_curl_command_is_still_caught(text: str, expected: str) -> None:
    assert same_streamed(text, {"password": 1}) == expected


def test_a_command_after_curl_streams_as_whole_split_at_every_point() -> None:
    text = f"Run curl -X POST x.io; sort -u a:bcde && curl -u admin:{LETMEIN} y | sort -u b:cdef"
    whole = redact(text)
    assert whole.text.count(PW) == 1 and "a:bcde" in whole.text and "b:cdef" in whole.text
    for cut in range(len(text) + 1):
        assert streamed_in(text, [cut]) == (whole.text, dict(whole.counts)), cut
        assert streamed_in(text, [cut, 1, 2]) == (whole.text, dict(whole.counts)), cut


ADVERSARIAL2 = {
    "curl, ; and -u repeated": lambda n: ("curl x; -u a:bcde " * n)[:n],
    "curl and | repeated": lambda n: ("curl " + "| " * n)[:n],
}


@pytest.mark.parametrize("name", list(ADVERSARIAL2))
def test_work_grows_linearly_on_the_second_round_rules(name: str) -> None:
    assert_linear_work(ADVERSARIAL2[name])


# -- YAML credentials as one scalar under a credential's name ------------------------------------

PA55 = "hunter2-" + "Pa55"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"auth: admin:{PA55}", f"auth: admin:{PW}"),
        (f'basic_auth: "admin:{PA55}"', f'basic_auth: "admin:{PW}"'),
        ("credentials: admin:S3cret" + "!x", f"credentials: admin:{PW}"),
        (f"  CREDENTIALS:   admin:{PA55}  # prod\n", f"  CREDENTIALS:   admin:{PW}  # prod\n"),
        ("proxy:\n  auth: 'svc:p@ss:w0rd'\n", f"proxy:\n  auth: 'svc:{PW}'\n"),
        (f'{{"auth": "admin:{PA55}", "x": 1}}', f'{{"auth": "admin:{PW}", "x": 1}}'),
        (f"{{auth: admin:{PA55}, x: 1}}", f"{{auth: admin:{PW}, x: 1}}"),
    ],
)
def test_a_yaml_scalar_user_password_loses_its_password_and_keeps_its_user(
    text: str, expected: str
) -> None:
    assert same_streamed(text, {"password": 1}) == expected


@pytest.mark.parametrize(
    "text",
    [
        "auth: oauth2",
        "auth: none",
        "auth: ${AUTH}",
        "time: 10:30:00",
        "ratio: 16:9",
        "auth: 10:30:00",  # digits and colons
        "auth: admin:${PW}",  # placeholders
        "auth: user:password",
        "auth: admin:abc",  # three characters
        "auth: https://example.com/login",  # a URL without password
        "author: Ann:Lee-2x",  # no credential's name
        "oauth: client:s3cret-x",
    ],
)
def test_a_yaml_scalar_without_a_password_survives(text: str) -> None:
    assert same_streamed(text, {}) == text


def test_yaml_scalars_stream_as_whole_split_at_every_point() -> None:
    text = f"db:\n  auth:   admin:{PA55}\n  time: 10:30:00\n  basic_auth: 'ops:{PA55}'\n"
    whole = redact(text)
    assert whole.counts == {"password": 2} and "10:30:00" in whole.text
    for cut in range(len(text) + 1):
        assert streamed_in(text, [cut]) == (whole.text, dict(whole.counts)), cut
        assert streamed_in(text, [cut, 1, 1, 3]) == (whole.text, dict(whole.counts)), cut


# -- YAML flow lists under a credential's name ---------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"basic_auth: [admin, {PA55}]", f"basic_auth: [admin, {PW}]"),
        ('auth: [admin, "pw-' + '123x"]', f'auth: [admin, "{PW}"]'),
        ("auth: [admin, pw-" + "123x]", f"auth: [admin, {PW}]"),
        (f"auth: ['admin', {PA55}]", f"auth: ['admin', {PW}]"),
        (f"credentials: [ admin ,  {PA55}]", f"credentials: [ admin ,  {PW}]"),
        (f"auth: [\n    admin,\n    {PA55}]", f"auth: [\n    admin,\n    {PW}]"),
        (f'"auth": [admin, {PA55}]', f'"auth": [admin, {PW}]'),
    ],
)
def test_a_yaml_flow_list_loses_its_password_and_keeps_its_user(text: str, expected: str) -> None:
    assert same_streamed(text, {"password": 1}) == expected


@pytest.mark.parametrize(
    "text",
    [
        "tags: [a, b]",
        "auth: [oauth2, apikey]",  # method names: fewer than three kinds of characters
        "auth: [basic, api_key]",
        "auth: [mtls, oauth2]",
        "auth: [admin, abc]",
        f"auth: [admin, {PA55}, extra]",  # three items: a list
        "auth: [admin, ${PASSWORD}]",  # placeholders
        "auth = (user, pw_Secret1)",  # Python: names are code
        f"auth_methods: [admin, {PA55}]",  # no credential's name
    ],
)
def test_a_yaml_flow_list_of_names_survives(text: str) -> None:
    assert same_streamed(text, {}) == text


def test_yaml_flow_lists_stream_as_whole_split_at_every_point() -> None:
    text = f"a:\n  basic_auth: [admin,\n    {PA55}]\n  auth: [oauth2, apikey]\n  x: [u, Pw-9z]\n"
    whole = redact(text)
    assert whole.counts == {"password": 1} and "apikey" in whole.text and "Pw-9z" in whole.text
    for cut in range(len(text) + 1):
        assert streamed_in(text, [cut]) == (whole.text, dict(whole.counts)), cut
        assert streamed_in(text, [cut, 1, 1, 3]) == (whole.text, dict(whole.counts)), cut


YAML_PIECES = [
    *("auth", "basic_auth", "credentials", "AUTH", ": ", ":", "=", "  ", "\n  ", '"', "'"),
    *("[", "]", ", ", ",\n    ", "admin", "admin:", PA55, "apikey", "10:30", "x", "#"),
]


@settings(max_examples=500, deadline=None)
@given(st.lists(st.sampled_from(YAML_PIECES), max_size=30), st.data())
def test_yaml_credentials_stream_as_whole_in_any_chunks(
    parts: list[str], data: st.DataObject
) -> None:
    text = "".join(parts)
    points = sorted(set(data.draw(st.lists(st.integers(0, len(text)), max_size=30))))
    sizes = [b - a for a, b in zip([0, *points], points, strict=False)]
    whole = redact(text)
    assert streamed_in(text, sizes) == (whole.text, dict(whole.counts))
    counts: dict[str, int] = {}  # no break splits the credentials
    assert _patterns._redact_block(text, counts) == whole.text
    assert counts == dict(whole.counts)


ADVERSARIAL3 = {
    "auth: and a user repeated": lambda n: ("auth: admin:" * n)[:n],
    "auth: [ and users, open": lambda n: ("auth: [admin, " * n)[:n],
    "auth: and spaces": lambda n: ("auth:" + " " * n)[:n],
    "a list of users": lambda n: ("auth: [" + "a, " * n)[:n],
    "colons after auth": lambda n: ("auth: " + "a:" * n)[:n],
}


@pytest.mark.parametrize("name", list(ADVERSARIAL3))
def test_work_grows_linearly_on_yaml_credentials(name: str) -> None:
    assert_linear_work(ADVERSARIAL3[name])


def test_colon_prose_naming_authors_without_a_credential_is_turned_away_by_the_gate() -> None:
    """Without a parenthesis and a quote, the gate asks for a credential's name and its
    colon (``auth:``) before any match: prose about the truth or an author costs no block."""
    assert not _patterns._maybe_triggered("Summary: the truth is the author wrote it at 10:30.")
    assert not _patterns._maybe_triggered("Note: authentication (see below) is done.")
    assert _patterns._maybe_triggered("auth: admin:x1y2")
    assert _patterns._maybe_triggered('"basic_auth" : [admin, x]')


# -- creds as a credential's name -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"CREDS = ('u', '{HUNTER}')", f"CREDS = ('u', '{PW}')"),
        (f'db_creds = ["admin", "{HUNTER}"]', f'db_creds = ["admin", "{PW}"]'),
        (f"dbCreds = ('admin', '{HUNTER}')", f"dbCreds = ('admin', '{PW}')"),
        (f"{{'creds': ('u', '{HUNTER}')}}", f"{{'creds': ('u', '{PW}')}}"),
        (f"creds: admin:{PA55}", f"creds: admin:{PW}"),
        (f"creds: [admin, {PA55}]", f"creds: [admin, {PW}]"),
        (
            f"CREDS_PAIR = (\n    'admin',\n    '{HUNTER}',\n)",
            f"CREDS_PAIR = (\n    'admin',\n    '{PW}',\n)",
        ),
    ],
)
def test_a_pair_named_creds_loses_its_password(text: str, expected: str) -> None:
    assert same_streamed(text, {"password": 1}) == expected


@pytest.mark.parametrize(
    "text",
    [
        "screds = ('a', 'b2')",
        "credsfile = ('a', 'b2')",
        "CREDS = (user, password)",
        "creds: 10:30",
        "The creds are (as usual) in the vault: see 'ops'.",
    ],
)
def test_other_names_holding_creds_are_left(text: str) -> None:
    assert same_streamed(text, {}) == text


def test_creds_stream_as_whole_split_at_every_point() -> None:
    text = f"Set CREDS = ('admin',\n    '{HUNTER}') and db_creds: [ops, {PA55}] then go."
    whole = redact(text)
    assert whole.counts == {"password": 2}
    for cut in range(len(text) + 1):
        assert streamed_in(text, [cut]) == (whole.text, dict(whole.counts)), cut
        assert streamed_in(text, [cut, 1, 1, 3]) == (whole.text, dict(whole.counts)), cut


ADVERSARIAL4 = {
    "CREDS = ( repeated": lambda n: ("CREDS = ('u', " * n)[:n],
    "creds: [ repeated": lambda n: ("db_creds: [a, " * n)[:n],
    "red words and = (": lambda n: ("stored = ('a', 'b') red: " * n)[:n],
}


@pytest.mark.parametrize("name", list(ADVERSARIAL4))
def test_work_grows_linearly_on_creds(name: str) -> None:
    assert_linear_work(ADVERSARIAL4[name])
