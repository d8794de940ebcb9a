"""The rules for credentials written the way HTTP and command lines carry them: a
``Bearer`` token, ``Basic`` credentials (alone or after an ``Authorization`` header's
name), a Python HTTP client's (``auth=("user", "password")``, ``{"auth": (...)}``,
``HTTPBasicAuth(...)``, ``BasicAuth(...)``, ``HTTPDigestAuth(...)``; annotated, by
walrus, in PHP's arrays, its strings prefixed: ``_ASSIGN``, ``_OPENER``), YAML's (``auth:
admin:pw``, ``auth: [admin, pw]``), curl's ``-u user:password`` (only within a curl
command: ``curl_before``) and a URL's ``scheme://user:password@host``, each a pattern
and the function that tells what of its match to replace. ``_patterns`` lists them with
the other rules of a block; ``_redact_breaks`` reads ``_AUTH_NAME``, ``_OPEN_USER``,
``_OPEN_PY_AUTH_REVERSED``, ``PY_AUTH_REACH``, ``CURL_REACH`` and ``curl_before`` to
keep a cut that such a credential may still cross.

Pure and synchronous.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Final

from switchman.policy._patterns_values import (
    _KEEP,
    _PLACEHOLDER,
    QUOTED_SPACED,
    _ascii_but,
    _has_digit,
    tag,
)

_BEARER = re.compile(
    r"\b(?:[Bb]earer|BEARER)\s{1,32}"  # _BEARER_GAP
    r"(?P<token>[A-Za-z0-9._~+/-]*[A-Za-z0-9_~+/-]=*)(?![A-Za-z0-9_~+/=-])"
)
# HTTP Basic credentials: base64 of user:password (checked when found); the scheme
# capitalized as it is written (a lower-case "basic" would cost every prose a scan)
_BASIC = re.compile(
    r"\b(?:Basic|BASIC)\s{1,32}"  # _BEARER_GAP, as after Bearer
    r"(?P<token>[A-Za-z0-9+/]{4,}={0,2})(?![A-Za-z0-9+/=_-])"
)
# the same after an Authorization header's name, the scheme in any case (HTTP/2's
# lower-case headers: authorization: basic ...); looked for only where "uthorization" is
_AUTH_BASIC = re.compile(
    r"[Aa]uthorization[\"']?[ \t]{0,8}:[ \t]{0,8}[\"']?(?i:basic)\s{1,32}"
    r"(?P<token>[A-Za-z0-9+/]{4,}={0,2})(?![A-Za-z0-9+/=_-])"
)
# a token after an Authorization header's name and the scheme Token (Django REST
# framework's, and others': ``Authorization: Token 9944b09199c62bcf9418ad846dd0e4bbdfc6ee4b``)
_AUTH_TOKEN = re.compile(
    r"[Aa]uthorization[\"']?[ \t]{0,8}:[ \t]{0,8}[\"']?(?:Token|TOKEN|token)[ \t]{1,8}"
    r"(?P<token>[A-Za-z0-9._~+/=-]{16,512})(?![A-Za-z0-9._~+/=-])"
)
# what holds a cut after an Authorization header's name: its scheme follows
_AUTH_NAME = re.compile(r"[Aa]uthorization[\"']?[ \t]{0,8}:[ \t]{0,8}[\"']?\Z")
# curl's -u user:password (--user, --user=, -uuser:password attached), quoted or not; the
# password is checked when found, and only on a curl command (``curl_before``: sort -u,
# socat -u, redis-cli -u redis://... are no curl). Quoted, it may hold spaces if short
# (``-u 'bob:p@ss w0rd'``; a stream holds back a cut in it: _OPEN_USER)
_USER_FLAG = r"(?<![\w-])(?:-u[ \t]{0,8}|--user(?:[ \t]{1,8}|=))"
_USER_OPTION = re.compile(
    _USER_FLAG + r"(?:"
    r"(?P<q>[\"'])(?:[^\s:\"'`$]{1,64}:(?P<qpassword>[^\s\"'`]{1,128})"
    rf"|[^\s:\"'`$]{{1,32}}:(?P<spaced>[^\"'`\n]{{1,{QUOTED_SPACED}}}))(?P=q)"
    r"|[^\s:\"'`$]{1,64}:(?P<password>[^\s\"'`]{1,128}))(?![^\s;|&)])"
)
# a quoted user:password after -u, still open at the end (a cut in it waits for the rest)
_OPEN_USER = re.compile(
    _USER_FLAG + r"[\"'][^\s:\"'`$]{1,32}:"
    rf"[^\"'`\n]{{0,{QUOTED_SPACED}}}\Z"
)
#: how far back from a cut (or from -u) a curl command is looked for, on its line or
#: lines continued by a backslash; a stream keeps more than this before its last cut
CURL_REACH: Final = 200
_NOT_WORD_END: Final = frozenset("_-./")
# what ends a shell command on its line: a ; && || or | (curl x; sort -u a:bcde)
_COMMAND_END = re.compile(r"[;|]|&&")


def curl_before(t: str, i: int) -> bool:
    """Whether ``t[:i]`` ends in a curl command: the word ``curl`` at most
    ``CURL_REACH`` characters before ``i``, no newline between but after a backslash
    (a continued line), nor what ends a command (``;``, ``&&``, ``||``, ``|``). Reads
    ``CURL_REACH + 1`` characters back at most."""
    k = t.rfind("curl", max(i - CURL_REACH, 0), i)
    if k < 0 or (k > 0 and (t[k - 1].isalnum() or t[k - 1] in _NOT_WORD_END)):
        return False
    if k + 4 < len(t) and k + 4 < i and not t[k + 4].isspace():
        return False  # curly, curl.exe: no command word
    if _COMMAND_END.search(t, k + 4, i):
        return False  # curl x; sort -u a:bcde: another command's -u
    n = t.find("\n", k, i)
    while n >= 0:
        if t[n - 1] != "\\":
            return False
        n = t.find("\n", n + 1, i)
    return True


# scheme://user:password@host. The password runs to the last @ before the host: it may
# hold @ # / ? (written unescaped). After an @, a host (a dotted name, a name and a
# port, localhost) and then / ? or # start the path, the query or the fragment, where
# an @ is the URL's own (https://u:pw@host.io/x?mail=a@b.c, git+https://u:pw@host.io/
# a/b.git@v1): a part after an @ holds one / ? or # at most, and not after a host
# (postgres://u:p@ss#w0rd@db). The user may hold one @
# (smtp://alerts@example.com:pw@smtp.example.com): a password is told from a port by
# the @ and the host that must follow it
_URL_USER = _ascii_but("/?#@:'`<>\"")
_URL_PASSWORD_HEAD = _ascii_but("@'`<>\"")  # before its first @
_URL_PASSWORD_MORE = _ascii_but("@/?#'`<>\"")  # after an @, but for one / ? or #
_URL_HOST_THEN_PATH = (
    r"(?:[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+(?::[0-9]*)?|[A-Za-z0-9-]+:[0-9]+|localhost)[/?#]"
)
_URL_PASSWORD_PART = (
    rf"@(?!{_URL_HOST_THEN_PATH})[{_URL_PASSWORD_MORE}]{{1,64}}"
    rf"(?:[/?#][{_URL_PASSWORD_MORE}]{{0,64}})?"  # p@ss?@db: the ? ends the password
)
_URL_PASSWORD = re.compile(
    r"(?<![A-Za-z0-9+.-])"
    rf"(?P<head>[A-Za-z][A-Za-z0-9+.-]{{0,31}}://[{_URL_USER}]{{0,64}}(?:@[{_URL_USER}]{{1,64}})?:)"
    rf"(?P<password>[{_URL_PASSWORD_HEAD}]{{1,128}}(?:{_URL_PASSWORD_PART}){{0,3}})"
    r"@(?=[^\W_]|\[)"  # a host follows (例子.cn too)
)
_PORT_AND_PATH = re.compile(r"[0-9]+/.*")  # https://host:8443/@user: no password
# after an @ in a password, a name then / or ? (pw@host/bob@x) is a host and its path,
# unless the host after the last @ has a port (p@ss/w0rd@db:5432): that @ is the URL's;
# or a ? without a query's = or & after it (p@ss?w0rd@db/x): the password's own
_NAME_THEN_PATH = re.compile(r"@[A-Za-z0-9-]+[/?]")
_NO_QUERY = re.compile(r"[^=&]*")
_HOST_AND_PORT = re.compile(r"(?:\[[0-9A-Fa-f:.]*\]|[A-Za-z0-9.-]+):[0-9]+")
# A Python HTTP client's Basic or Digest credentials: ``auth=("user", "password")``
# (requests, httpx; ``session.auth = (...)`` too; a list as well: ``auth=["u", "p"]``), a
# pair given a name that says it is one (``AUTH = ('admin', 'pw')``, ``BASIC_AUTH``, the
# Elasticsearch clients' ``http_auth`` and ``basic_auth``, ``auth_pair``, ``credentials``:
# ``_CRED_NAME``), the same in a dict of a call's arguments or a YAML mapping
# (``{"auth": ("user", "password")}``, ``'http_auth': [...]``, ``basic_auth: ["u",
# "p"]``), ``HTTPBasicAuth("user", "password")`` (requests), ``BasicAuth("user",
# "password")`` (aiohttp, httpx), ``HTTPDigestAuth(...)`` (requests), ``DigestAuth(...)``
# (httpx): the second string literal is the password (names are code: ``auth=(user,
# password)``); a pair under another name (``PAIR = ('a', 'b')``) is left. The user is a
# string without a cut character (whitespace, JSON's , { } [ ]); the password one
# without, or with spaces or JSON's punctuation if QUOTED_SPACED long at most (a stream
# holds back that long for one: _OPEN_PY_AUTH_REVERSED). Each side of the name's ``=`` or
# ``:``, SEP_GAP spaces or tabs at most; between the parenthesis (or bracket), the user,
# its comma and the password, PY_AUTH_GAP whitespace characters at most, newlines
# included: a formatter puts a call's arguments on lines of their own, indented as deep
# as the code is (black: ``auth=(``, then ``"admin",`` and ``"pw",`` each on a line
# indented 12 spaces), or one aligns the password under the user (``auth=("admin",``, a
# line of 18 spaces, ``"pw")``)
PY_AUTH_GAP: Final = 40
SEP_GAP: Final = 40
# the name: auth, credentials or creds as a word of it (alone, after a _ or a dot, or
# capitalized after a lower-case word: basicAuth), perhaps followed by _pair, _tuple or
# _info; not oauth, author, authority, auth_methods
_CRED_WORD = r"(?:auth|AUTH|credentials?|CREDENTIALS?|creds|CREDS)"
_CRED_CAMEL = r"(?:Auth|Credentials?|Creds)"
_CRED_NAME = (
    rf"(?:(?<![A-Za-z0-9]){_CRED_WORD}|(?<![A-Z]){_CRED_CAMEL})"
    r"(?:_(?:pair|tuple|info|PAIR|TUPLE|INFO)|Pair|Tuple|Info)?(?![A-Za-z0-9_])"
)
_CRED_NAME_MAX: Final = 17  # the longest name it matches: CREDENTIALS_TUPLE
#: the parts of those names looked for first: (a character the text must hold for the part
#: to be there, or "", the part, how far before the part the name starts)
CRED_PARTS: Final = (
    ("", "uth", 1),  # auth, Auth
    ("H", "UTH", 1),
    ("", "red", 1),  # credential(s), creds, Credential(s), Creds: one scan for both
    ("D", "RED", 1),
)
# what gives the name its value: = (Python), : (a dict's key, YAML), := (Python's walrus),
# => (PHP's array key: 'auth' => [...]), or an annotated assignment's : and = (``AUTH:
# Tuple[str, str] = (...)``: the annotation ANNOTATION_MAX characters at most, of ASCII
# letters, digits, _ . , [ ] spaces and tabs); then what opens the pair: ( or [, PHP's
# array(, or [( opening a list of pairs (its first pair's password is redacted)
ANNOTATION_MAX: Final = 48
_ANNOTATION = r"[A-Za-z0-9_.,\[\] \t]"
_ASSIGN = (
    rf"(?:[ \t]{{0,{SEP_GAP}}}=|[\"']?[ \t]{{0,{SEP_GAP}}}"
    rf"(?:=>|:(?:{_ANNOTATION}{{0,{ANNOTATION_MAX}}}=)?))"
)
_OPENER = r"(?:[Aa]rray\(|\[\s{0,8}\(|[(\[])"
_OPENER_MAX: Final = 10  # [, 8 spaces, (
# a string literal's prefix in Python (u'', b'', r'', f'', rb''...)
_STR_PREFIX = r"[rRbBuUfF]{0,2}"
_PY_AUTH_HEAD = (
    rf"(?:{_CRED_NAME}{_ASSIGN}"
    rf"[ \t]{{0,{SEP_GAP}}}{_OPENER}|\b(?:HTTP)?(?:Basic|Digest)Auth\()"
    rf"\s{{0,{PY_AUTH_GAP}}}"
)
# YAML's credentials under such a name as one scalar, user:password (``auth:
# admin:hunter2``, ``basic_auth: "admin:pw"``, ``"auth": "u:pw"``), or as a flow list of
# two items, one at least unquoted (``basic_auth: [admin, hunter2]``, ``auth: [admin,
# "pw-1"]``; two quoted items are _PY_AUTH's). Neither holds a cut character but the
# spaces after the name (held: _OPEN_PY_AUTH_REVERSED) and, in a list, the bracket, the
# comma and whitespace around the user (held too); the password takes none (a stream
# holds none in it): a bare one ends at whitespace, JSON's , ] } or the end
_YAML_USER = _ascii_but(":\"'`$,{}[]()")
_YAML_PASSWORD = _ascii_but("\"'`,{}[]")
_YAML_SEP = rf"[\"']?[ \t]{{0,{SEP_GAP}}}:[ \t]{{0,{SEP_GAP}}}"
_CRED_SCALAR = re.compile(
    _CRED_NAME + _YAML_SEP + rf"(?:(?P<q>[\"'])[{_YAML_USER}]{{1,64}}:"
    rf"(?P<qpassword>[{_YAML_PASSWORD}]{{1,128}})(?P=q)"
    rf"|[{_YAML_USER}]{{1,64}}:(?P<password>[{_YAML_PASSWORD}]{{1,128}})(?![^\s,\]}}]))"
)
# such a name and what follows it up to the parenthesis (or a YAML scalar's user:)
_CRED_HEAD = re.compile(
    _CRED_NAME + rf"(?:{_ASSIGN}[ \t]{{0,{SEP_GAP}}}{_OPENER}"
    rf"|{_YAML_SEP}(?:[(\[]|[\"']?[{_YAML_USER}]{{1,64}}:))"
)
_PY_AUTH_PLAIN = _ascii_but("\"'\\,{}[]")
_PY_AUTH_SPACED = _ascii_but("\"'\\")
_PY_AUTH = re.compile(
    _PY_AUTH_HEAD + rf"{_STR_PREFIX}(?P<uq>[\"'])[{_PY_AUTH_PLAIN}]{{0,64}}(?P=uq)"
    rf"\s{{0,{PY_AUTH_GAP}}},\s{{0,{PY_AUTH_GAP}}}"
    rf"{_STR_PREFIX}(?P<q>[\"'])(?P<password>[{_PY_AUTH_PLAIN}]{{1,128}}"
    rf"|[ {_PY_AUTH_SPACED}]{{1,{QUOTED_SPACED}}})(?P=q)"
)
_CRED_LIST = re.compile(
    _CRED_NAME + _YAML_SEP + rf"\[\s{{0,{PY_AUTH_GAP}}}"
    rf"(?:(?P<uq>[\"'])[{_PY_AUTH_PLAIN}]{{0,64}}(?P=uq)|[{_YAML_USER}]{{1,64}})"
    rf"\s{{0,{PY_AUTH_GAP}}},\s{{0,{PY_AUTH_GAP}}}"
    rf"(?:(?P<q>[\"'])(?P<qpassword>[{_PY_AUTH_PLAIN}]{{1,128}})(?P=q)"
    rf"|(?P<password>[{_YAML_PASSWORD}]{{1,128}}))\]"
)
# what a cut inside such credentials, before the password's closing quote, follows: the
# name, its = or : (a key's closing quote before it) and spaces, the parenthesis, the
# user, its comma, or the password's opening quote and up to QUOTED_SPACED - 1
# characters. It is written backwards, to be matched at the cut in the reversed text
# (``_redact_breaks``): read from the cut back, it fails within a few characters of most
# cuts, where a search for its start would try every position up to PY_AUTH_REACH
# before the cut. Its runs are possessive (``{0,40}+``): what follows each is a
# character the run does not take, so giving some back never helps. Forwards, it is
#   NAME (?:[ \t]{0,S}=|["']?(?:[ \t]{0,S}:)?)[ \t]{0,S}\Z   (S: SEP_GAP)
#   | _PY_AUTH_HEAD (?:"user"\s{0,GAP}(?:,\s{0,GAP}(?:"pass word)?)?)?\Z
# (what follows the name is matched, so its lookahead holds; the lookbehind before it
# is, backwards, a lookahead after it)
_CRED_NAME_REVERSED = (
    r"(?:(?:riap|elput|ofni|RIAP|ELPUT|OFNI)_|riaP|elpuT|ofnI)?"
    r"(?:(?:htua|HTUA|s?laitnederc|S?LAITNEDERC|sderc|SDERC)(?![A-Za-z0-9])"
    r"|(?:htuA|s?laitnederC|sderC)(?![A-Z]))"
)
# (_ASSIGN backwards; the annotation's characters hold no : nor =, so its run is taken
# whole)
_YAML_COLON_REVERSED = rf":[ \t]{{0,{SEP_GAP}}}+[\"']?"
_SEP_REVERSED = (
    rf"(?:=(?:[ \t]{{0,{SEP_GAP}}}+|{_ANNOTATION}{{0,{ANNOTATION_MAX}}}+{_YAML_COLON_REVERSED})"
    rf"|>={_YAML_COLON_REVERSED[1:]}|{_YAML_COLON_REVERSED})"
)
_OPEN_PY_AUTH_REVERSED = re.compile(
    # a cut after the name and a part of what gives it its value
    rf"[ \t]{{0,{SEP_GAP}}}+(?:=[ \t]{{0,{SEP_GAP}}}+"
    rf"|=?{_ANNOTATION}{{0,{ANNOTATION_MAX}}}+{_YAML_COLON_REVERSED}"
    rf"|(?:>?=[ \t]{{0,{SEP_GAP}}}+|:[ \t]{{0,{SEP_GAP}}}+)?[\"']?)"
    rf"{_CRED_NAME_REVERSED}|"
    # a cut after the pair's opening
    rf"(?:(?:(?:[ {_PY_AUTH_SPACED}]{{0,{QUOTED_SPACED - 1}}}+[\"'][rRbBuUfF]{{0,2}}+)?"
    rf"\s{{0,{PY_AUTH_GAP}}}+,)?"
    rf"\s{{0,{PY_AUTH_GAP}}}+(?:(?P<uq>[\"'])[{_PY_AUTH_PLAIN}]{{0,64}}+(?P=uq)[rRbBuUfF]{{0,2}}+"
    rf"|[{_YAML_USER}]{{1,64}}+))?"
    rf"\s{{0,{PY_AUTH_GAP}}}+(?:(?:\(yarr[aA]|\(\s{{0,8}}+\[|[(\[])[ \t]{{0,{SEP_GAP}}}+"
    rf"{_SEP_REVERSED}{_CRED_NAME_REVERSED}"
    r"|\(htuA(?:cisaB|tsegiD)(?:PTTH)?\b)"
)
#: how far back from a cut such open credentials may start: their longest match (the
#: character the name's lookbehind reads, a name of _CRED_NAME_MAX characters, its quote,
#: SEP_GAP spaces each side of its = or :, the parenthesis; a gap, the quoted user, a
#: gap, the comma, a gap, the password's quote and QUOTED_SPACED - 1 characters)
PY_AUTH_REACH: Final = (
    (1 + _CRED_NAME_MAX + 1 + SEP_GAP + 1 + ANNOTATION_MAX + 1 + SEP_GAP + _OPENER_MAX)
    + PY_AUTH_GAP
    + (2 + 64 + 2)
    + PY_AUTH_GAP
    + 1
    + PY_AUTH_GAP
    + 2
    + QUOTED_SPACED
)


# the start of each name a credential's is (as CRED_PARTS, but "auth" and "Auth": truth,
# south and youth hold "uth"), what may follow it in the name, and the name's colon: one of
# them is in any text holding YAML's credentials (a search from a literal, in C: a text
# without a parenthesis and a quote pays this, not a match at each "uth")
_NAME_SUFFIX = r"(?:_(?:pair|tuple|info|PAIR|TUPLE|INFO)|Pair|Tuple|Info)?"
_COLON_AFTER: Final = tuple(
    (guard, part, re.compile(part + rest + _NAME_SUFFIX + rf"[\"']?[ \t]{{0,{SEP_GAP}}}:"))
    for guard, part, rest in (
        ("", "auth", ""),
        ("A", "Auth", ""),
        ("H", "UTH", ""),
        ("", "red", "(?:entials?|s)"),
        ("D", "RED", "(?:ENTIALS?|S)"),
    )
)


def colon_named(text: str) -> bool:
    """Whether ``text`` may hold a credential's name and its colon (``auth:``,
    ``"basic_auth" :``): a necessary condition for YAML's credentials, cheaper than
    ``cred_heads``."""
    for guard, part, pattern in _COLON_AFTER:
        if (not guard or guard in text) and part in text and pattern.search(text):
            return True
    return False


def cred_heads(text: str) -> list[tuple[int, int]]:
    """Where a name opens a Python client's credentials in ``text`` (``AUTH = (``,
    ``"http_auth": [``): the spans of the names' parts (``_CRED_HEAD`` matched from where
    each name starts). One substring test per part; a regular expression only where a
    part is."""
    found = []
    for guard, part, back in CRED_PARTS:
        if guard and guard not in text:
            continue
        i = text.find(part)
        while i >= 0:
            if i >= back and _CRED_HEAD.match(text, i - back):
                found.append((i - back, i + len(part)))
            i = text.find(part, i + 1)
    return found


def _bearer_hit(m: re.Match[str]) -> str | None:
    token = m.group("token")
    if len(token) >= 32 or (len(token) >= 16 and _has_digit(token)):
        return m.group()[: m.start("token") - m.start()] + tag("bearer_token")
    return None


def _auth_token_hit(m: re.Match[str]) -> str | None:
    """The token of ``Authorization: Token <token>``: a digit in it, no placeholder."""
    token = m["token"]
    if not _has_digit(token) or _PLACEHOLDER.fullmatch(token):
        return None
    return m.group()[: m.start("token") - m.start()] + tag("api_key")


def _basic_hit(m: re.Match[str]) -> str | None:
    """The credentials of ``Basic <base64>`` if they decode to ``user:password`` (text
    of printable characters), the password no placeholder (``user:password``)."""
    token = m.group("token")
    try:
        raw = base64.b64decode(token + "=" * (-len(token) % 4), validate=True)
        plain = raw.decode()
    except (binascii.Error, ValueError):
        return None
    _, colon, password = plain.partition(":")
    if not colon or not password or not plain.isprintable() or _PLACEHOLDER.fullmatch(password):
        return None
    return m.group()[: m.start("token") - m.start()] + tag("password")


def _user_option_hit(m: re.Match[str]) -> str | None:
    """The password of ``-u user:password``: four characters or more (letters alone
    too: ``curl -u admin:letmein``), not all digits (``docker run -u 1000:1000``, a
    group), no placeholder (``-u user:pass``, ``-u admin:$TOKEN``)."""
    if not curl_before(m.string, m.start()):
        return None  # sort -u a:b, redis-cli -u redis://..., git diff -u HEAD~1:x
    group = next(g for g in ("qpassword", "spaced", "password") if m[g] is not None)
    password = m[group]
    if (
        password.startswith("//")  # a URL: -u redis://user:password@host
        or len(password) < 4
        or password.isdigit()
        or _PLACEHOLDER.fullmatch(password)
    ):
        return None
    start, end = m.start(group) - m.start(), m.end(group) - m.start()
    return m.group()[:start] + tag("password") + m.group()[end:]


def _py_auth_hit(m: re.Match[str]) -> str | None:
    """The password of a Python client's Basic or Digest credentials (``auth=("u", "pw")``), but
    a placeholder (``auth=("user", "password")``, ``"<password>"``, ``"${PW}"``)."""
    password = m["password"]
    if not password.strip() or _PLACEHOLDER.fullmatch(password):
        return None
    start, end = m.start("password") - m.start(), m.end("password") - m.start()
    return m.group()[:start] + tag("password") + m.group()[end:]


def _url_password_hit(m: re.Match[str]) -> str | None:
    password = m.group("password")
    if _PORT_AND_PATH.fullmatch(password):
        return None  # https://host:8443/@user
    rest = "@"  # what follows the password in the match
    if (
        (at := _NAME_THEN_PATH.search(password))
        and not _HOST_AND_PORT.match(m.string, m.end())
        and not (password[at.end() - 1] == "?" and _NO_QUERY.fullmatch(password, at.end()))
    ):
        password, rest = password[: at.start()], password[at.start() :] + rest
    if _PLACEHOLDER.fullmatch(password):
        return _KEEP  # postgres://USER:PASSWORD@HOST, user:${DB_PASSWORD}@...
    return m.group("head") + tag("url_password") + rest


def _cred_scalar_hit(m: re.Match[str]) -> str | None:
    """The password of YAML's ``auth: user:password`` (``basic_auth: "u:pw"``,
    ``credentials: admin:S3cret!x``): four characters or more, not digits and colons
    alone (``auth: 10:30:00``), not a URL's rest (``auth: https://...``), no placeholder
    (``auth: admin:${PW}``)."""
    group = "qpassword" if m["qpassword"] is not None else "password"
    password = m[group]
    if (
        password.startswith("//")
        or len(password) < 4
        or password.replace(":", "").isdigit()
        or _PLACEHOLDER.fullmatch(password)
    ):
        return None
    start, end = m.start(group) - m.start(), m.end(group) - m.start()
    return m.group()[:start] + tag("password") + m.group()[end:]


def _password_shaped(value: str) -> bool:
    """Whether ``value`` mixes three kinds of characters of four (lower case, upper
    case, digits, others) in four characters or more: a password (``hunter2-Pa55``,
    ``pw-123x``), not a method's name (``oauth2``, ``apikey``, ``api_key``, ``basic``)."""
    if len(value) < 4:
        return False
    kinds = (
        any(ch.islower() for ch in value)
        + any(ch.isupper() for ch in value)
        + _has_digit(value)
        + any(not ch.isalnum() for ch in value)
    )
    return kinds >= 3


def _cred_list_hit(m: re.Match[str]) -> str | None:
    """The password of a YAML flow list of two items under a credential's name
    (``basic_auth: [admin, hunter2-Pa55]``, ``auth: [admin, "pw-123x"]``), one item
    at least unquoted: the second item if it is shaped as a password
    (``_password_shaped``: ``auth: [oauth2, apikey]`` lists methods) and no placeholder.
    Two quoted items are ``_PY_AUTH``'s."""
    if m["uq"] is not None and m["q"] is not None:
        return None
    group = "qpassword" if m["qpassword"] is not None else "password"
    password = m[group]
    if not _password_shaped(password) or _PLACEHOLDER.fullmatch(password):
        return None
    start, end = m.start(group) - m.start(), m.end(group) - m.start()
    return m.group()[:start] + tag("password") + m.group()[end:]
