"""What redaction finds in a block of text: the kinds, the patterns of each (API keys,
JWTs, Bearer tokens, private key blocks, URL passwords, named values such as
``password=``, emails; phone and card numbers come from ``_numbers``), the cheap
triggers that let a block without any skip every pattern, and ``_redact_block``, which
replaces what they find in one block. ``_redaction`` cuts text into blocks (and a
stream at its breaks) and is the public API; see its docstring for the rules.

Pure and synchronous.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import re
from collections.abc import Callable, Iterable
from typing import Final

import attrs

from switchman.policy._numbers import NUMBER_TRIGGER as _NUMBER_TRIGGER
from switchman.policy._numbers import has_ascii_digit as _has_ascii_digit
from switchman.policy._numbers import number_hits
from switchman.policy._numbers import number_triggered as _number_triggered

#: Redaction kinds, in report order.
KINDS: Final = (
    "api_key",
    "bearer_token",
    "private_key",
    "jwt",
    "url_password",
    "password",
    "email",
    "phone",
    "card_number",
)

#: A private key is redacted from its header to its END line if that ends within this
#: many characters of its BEGIN (else through its body's base64 run); a stream is held
#: back that long at most.
PEM_HOLD_LIMIT: Final = 65_536


#: a quoted value after a secret's name (or curl's -u) may hold spaces if it is this long at most
QUOTED_SPACED: Final = 48


def tag(kind: str) -> str:
    """The replacement text for a secret of ``kind``."""
    return f"[REDACTED:{kind}]"


# -- patterns ------------------------------------------------------------------------

# characters a key or token is made of; a key must not be glued to more of them
_KEY = "A-Za-z0-9_-"
#: the key shapes looked for, each a regular expression of the key alone
KEY_SHAPES: Final = (
    r"sk-(?:proj-|ant-|svcacct-|admin-)?[A-Za-z0-9_-]{20,}",  # OpenAI, Anthropic
    r"A[KS]IA[A-Z0-9]{16}",  # AWS access key id
    r"gh[opsur]_[A-Za-z0-9]{30,}",  # GitHub tokens
    r"github_pat_[A-Za-z0-9_]{22,}",  # GitHub fine-grained token
    r"(?:xoxe\.)?xox[abeprs]-[A-Za-z0-9-]{10,}",  # Slack, its refresh tokens (xoxe)
    r"xapp-[A-Za-z0-9-]{10,}",  # Slack app-level token
    r"[sr]k_(?:live|test)_[A-Za-z0-9]{16,}",  # Stripe
    r"glpat-[A-Za-z0-9_-]{20,}",  # GitLab personal access token
    r"hf_[A-Za-z0-9]{34}",  # Hugging Face
    r"npm_[A-Za-z0-9]{36}",  # npm
    r"SG\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43}",  # SendGrid
    r"AIza[A-Za-z0-9_-]{35}",  # Google
    r"xai-[A-Za-z0-9]{20,}",  # xAI
    r"gsk_[A-Za-z0-9]{20,}",  # Groq
    r"pplx-[A-Za-z0-9]{20,}",  # Perplexity
    r"tgp_v1_[A-Za-z0-9_-]{20,}",  # Together
)
_API_KEY = re.compile(rf"(?<![{_KEY}])(?:{'|'.join(KEY_SHAPES)})(?![{_KEY}])")
_JWT = re.compile(rf"(?<![{_KEY}])eyJ[{_KEY}]{{10,}}\.[{_KEY}]{{10,}}\.[{_KEY}]*(?![{_KEY}])")
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


def curl_before(t: str, i: int) -> bool:
    """Whether ``t[:i]`` ends in a curl command: the word ``curl`` at most
    ``CURL_REACH`` characters before ``i``, no newline between but after a backslash
    (a continued line). Reads ``CURL_REACH + 1`` characters back at most."""
    k = t.rfind("curl", max(i - CURL_REACH, 0), i)
    if k < 0 or (k > 0 and (t[k - 1].isalnum() or t[k - 1] in _NOT_WORD_END)):
        return False
    if k + 4 < len(t) and k + 4 < i and not t[k + 4].isspace():
        return False  # curly, curl.exe: no command word
    n = t.find("\n", k, i)
    while n >= 0:
        if t[n - 1] != "\\":
            return False
        n = t.find("\n", n + 1, i)
    return True


# a private key's header and END line; an END closes the header of the same label
_PEM_HEADER = re.compile(r"-----BEGIN(?P<label>[A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?)-----")
_PEM_END = re.compile(r"-----END(?P<label>[A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?)-----")
# a key's body without its END line: base64 lines and Proc-Type style headers
_PEM_BODY = re.compile(r"(?:[A-Za-z0-9+/=:,\s]++|-(?!----))*+")


def _ascii_but(chars: str) -> str:
    """A character class body: printable ASCII but a space and ``chars``."""
    return "".join(re.escape(chr(n)) for n in range(0x21, 0x7F) if chr(n) not in chars)


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
    rf"(?:[/?#][{_URL_PASSWORD_MORE}]{{1,64}})?"
)
_URL_PASSWORD = re.compile(
    r"(?<![A-Za-z0-9+.-])"
    rf"(?P<head>[A-Za-z][A-Za-z0-9+.-]{{0,31}}://[{_URL_USER}]{{0,64}}(?:@[{_URL_USER}]{{1,64}})?:)"
    rf"(?P<password>[{_URL_PASSWORD_HEAD}]{{1,128}}(?:{_URL_PASSWORD_PART}){{0,3}})"
    r"@(?=[A-Za-z0-9\[])"  # a host follows
)
_PORT_AND_PATH = re.compile(r"[0-9]+/.*")  # https://host:8443/@user: no password
# after an @ in a password, a name then / or ? (pw@host/bob@x) is a host and its path,
# unless the host after the last @ has a port (p@ss/w0rd@db:5432): that @ is the URL's
_NAME_THEN_PATH = re.compile(r"@[A-Za-z0-9-]+[/?]")
_HOST_AND_PORT = re.compile(r"(?:\[[0-9A-Fa-f:.]*\]|[A-Za-z0-9.-]+):[0-9]+")
_EMAIL = re.compile(
    r"(?<![\w.%+-])(?<!://)"  # not a URL's user (https://user@host)
    r"[\w.%+-]+@[\w-]+(?:\.[\w-]+)*\.[^\W\d_]{2,}(?![\w-]|\.[\w-])"
)
# user@host in a command, not mail: a host spec (git@github.com:acme/x.git, scp f
# deploy@web01.internal:/srv, nas:~/x) or the argument of a remote shell (ssh
# ubuntu@ec2-...). A host spec's path starts with / or ~, or holds a / or ends in
# .git: a word alone after the ":" is a password or a port (john@example.com:hunter2)
_HOST_PATH = re.compile(r":(?:[/~]|[\w.$-]*(?:/|\.git(?![\w-])))")
_REMOTE_COMMAND = r"(?<![\w-])(?:ssh|scp|sftp|mosh|rsync|clone)[ \t]{1,8}"  # (git) clone
_BEFORE_HOST = re.compile(_REMOTE_COMMAND + r"\Z")
# A value given a name that says it is a secret: a password (``password=...``,
# ``DB_PASSWORD: ...``, ``"password": "..."``, ``Password=...;``) or a secret key
# (``aws_secret_access_key = ...``, ``SecretAccessKey``, ``SECRET_KEY``). The value
# is ASCII without whitespace but for spaces in a quoted value (``"correct horse 9"``,
# at most QUOTED_SPACED characters: a stream holds back that long for one): quoted
# (double, single or backticks: ``Password: `Tr0ub4dor&3` ``), or bare up to a quote,
# ``, ; & ) ] }``. Markdown's closing ``**`` or ``__`` may stand between the name and
# its separator or after it (``- **password**: x``, ``**Password:** x``).
_PASSWORD_NAME = r"(?:[Pp]assw(?:or)?d|PASSW(?:OR)?D)"
_SECRET_KEY_NAME = (
    r"(?:[Ss]ecret[ _.-]?(?:[Aa]ccess[ _.-]?)?[Kk]ey|SECRET[ _.-]?(?:ACCESS[ _.-]?)?KEY)"
)
_BARE = _ascii_but("\"'`,;&)]}")
_BOLD = r"(?:\*\*|__)?"  # markdown's closing bold
_NAME_SEP = (
    rf"[\"'`]?{_BOLD}"
    rf"(?:[ \t]{{0,16}}(?P<sep>=>|:=|[=:]|(?P<pipe>\|)){_BOLD}[ \t]{{0,16}}|[ \t]{{1,16}})"
)
_SPACED = f"{{1,{QUOTED_SPACED}}}"  # how long a quoted value with spaces may be
_NAMED_VALUE = (
    _NAME_SEP
    + rf"(?:\"(?P<dq>[!#-~]{{1,256}}|[ !#-~]{_SPACED})\""
    + rf"|'(?P<sq>[!-&(-~]{{1,256}}|[ !-&(-~]{_SPACED})'"
    + rf"|`(?P<bq>[!-_a-~]{{1,256}}|[ !-_a-~]{_SPACED})`"
    # a table's cell, after a name's cell: up to its |, spaces and all
    + rf"|(?(pipe)(?P<cell>[^\s|`\"'][^|\n]{{0,{QUOTED_SPACED - 1}}})(?=\|)|(?!))"
    + rf"|(?P<bare>[{_BARE}]{{1,256}}))"
)
_PASSWORD = re.compile(r"(?<![/\\])" + _PASSWORD_NAME + _NAMED_VALUE)  # not /etc/passwd
_SECRET_KEY = re.compile(_SECRET_KEY_NAME + _NAMED_VALUE)
# a quoted value after a name, still open at the end (a cut in it waits for the rest)
_OPEN_VALUE = re.compile(
    rf"(?:{_PASSWORD_NAME}|{_SECRET_KEY_NAME})"
    + _NAME_SEP.replace("?P<sep>", "?:").replace("?P<pipe>", "?:")
    + rf"(?:\"[ !#-~]{{0,{QUOTED_SPACED - 1}}}|'[ !-&(-~]{{0,{QUOTED_SPACED - 1}}}"
    + rf"|`[ !-_a-~]{{0,{QUOTED_SPACED - 1}}})\Z"
)
# a table's cell after a name's cell, still open at the end (a cut in it waits for its |)
_OPEN_CELL = re.compile(
    rf"(?:{_PASSWORD_NAME}|{_SECRET_KEY_NAME})[\"'`]?{_BOLD}[ \t]{{0,16}}\|{_BOLD}"
    rf"[ \t]{{0,16}}[^|\n]{{0,{QUOTED_SPACED}}}\Z"
)
# what a name waits for at a cut: its separator or its value (or the rest of the name)
_NAME_TAIL = re.compile(
    rf"(?:{_PASSWORD_NAME}|{_SECRET_KEY_NAME})[\"'`]?{_BOLD}"
    rf"[ \t]{{0,16}}(?:(?:=>|:=|[=:|]){_BOLD})?[ \t]{{1,16}}\Z"
    r"|(?:[Ss]ecret(?:[ _.-]?[Aa]ccess)?|SECRET(?:[ _.-]?ACCESS)?) \Z"
)
# A value that stands for a secret rather than being one: wrapped or a variable
# (<password>, {{x}}, ${X}, $X, %X%, [REDACTED:...]), masked (****, xxx, ...), an
# upper-case name (PASSWORD, YOUR_PASSWORD), or a word about one (changeme,
# your-password-here, mysecret).
_PLACEHOLDER = re.compile(
    r"[<{\[].*|\$(?:\{.*|\d+|[A-Za-z_]\w*)|%\w+%"
    r"|[*xX.#_?-]+|[A-Z][A-Z_]*"
    r"|(?i:[a-z _-]*(?:pass|secret|your|change_?me|example|placeholder|redacted)[a-z _-]*)"
)
# what stands before a secret's name in a table's cell: its | and the name's head
_NAME_CELL = re.compile(r"\|[ \t]*[\w.*`-]{0,48}\Z")
# a table's cell with spaces that describes a field rather than holding its value
# (required, 12+ chars; min 8 characters): prose punctuation, a rule's words, many words
_CELL_PROSE = re.compile(
    r".*(?:[,;:] |\.\Z|(?i:\b(?:chars?|characters?|min|minimum|max|maximum|required"
    r"|optional|least|most|digits?|letters?|symbols?|length|long|string|default|none)\b))"
    r"|(?:\S+ +){5,}\S+"
)
# a table's cell giving a length rather than a value (8-64, 12 to 128 chars, 8..64)
_LENGTH_RULE = re.compile(
    r"[0-9]{1,4}[ \t]*(?:-|\u2013|\.\.|to)[ \t]*[0-9]{1,4}(?:[ \t]*(?i:chars?|characters?))?"
)
# code rather than a value: a call, an index, a dotted name (os.environ[, self.password)
_CODE = re.compile(r".*[(\[{].*|[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+")
_PASSWORD_SYMBOLS: Final = frozenset("!#$%*+/=?@^|~")
_DIGIT = re.compile(r"[0-9]")
_WS = re.compile(r"\s")
# Whatever a pattern matches contains one of these, a character other than a space
# and "@" on each side of an "@", or a _NUMBER_TRIGGER match; a block without any is
# left as it is.
_TRIGGER_LITERALS: Final = (  # (a character every match holding them holds, literals)
    ("-", ("sk-", "xai-", "pplx-", "-----BEGIN", "xox", "glpat-", "xapp-", "-u")),
    (
        "_",
        (
            "_live_",
            "k_test_",
            "hf_",
            "npm_",
            "ghp_",
            "gho_",
            "ghs_",
            "ghu_",
            "ghr_",
            "github_pat_",
            "gsk_",
            "tgp_v1_",
        ),
    ),
    ("I", ("AKIA", "ASIA")),
    ("z", ("AIza",)),
    ("G", ("SG.",)),
    ("J", ("eyJ",)),
    ("a", ("earer", "assw")),  # bearer, password, passwd
    ("B", ("Basic", "BASIC")),
    (":", ("uthorization",)),  # authorization: basic
    ("e", ("ecret",)),  # secret key
    ("R", ("EARER",)),
    ("W", ("ASSW",)),
    ("Y", ("ECRET",)),  # SECRET...KEY
)


def _maybe_triggered(text: str) -> bool:
    """A cheap necessary condition for a trigger in ``text``.

    One-character tests are nearly free (memchr); longer ones are asked only when
    a character they need is there.
    """
    return (
        "@" in text
        or "IA" in text  # AKIA, ASIA
        or "earer" in text
        or ("R" in text and "EARER" in text)
        or (
            "-" in text
            and (
                "sk-" in text
                or "xox" in text
                or "-----BEGIN" in text
                or "xai-" in text
                or "pplx-" in text
                or "glpat-" in text
                or "xapp-" in text
                or "-u" in text  # curl -u user:password, --user
            )
        )
        or (
            "_" in text
            and (
                "_live_" in text
                or "gh" in text  # ghp_, gho_, ghs_, ghu_, ghr_
                or "github_pat_" in text
                or "gsk_" in text
                or "tgp_v1_" in text
                or "hf_" in text
                or "npm_" in text
                or "k_test_" in text
            )
        )
        or "assw" in text  # password, passwd
        or ("B" in text and ("Basic" in text or "BASIC" in text))
        or (":" in text and "z" in text and "uthorization" in text)  # authorization: basic
        or ("W" in text and "ASSW" in text)
        or "ecret" in text  # secret key
        or ("Y" in text and "ECRET" in text)  # SECRET...KEY
        or ("z" in text and "AIza" in text)
        or ("G" in text and "SG." in text)  # SendGrid
        or ("J" in text and "eyJ" in text)
        or _number_triggered(text)
    )


def _plain_char(ch: str) -> bool:
    return ch != "@" and not ch.isspace()


def _trigger_spans(text: str) -> list[tuple[int, int]]:
    """Spans such that every block holding a trigger overlaps one of them."""
    spans = []
    for guard, literals in _TRIGGER_LITERALS:
        if guard not in text:
            continue
        for literal in literals:
            i = text.find(literal)
            while i >= 0:
                spans.append((i, i + len(literal)))
                i = text.find(literal, i + 1)
    i = text.find("@")
    while i >= 0:
        if 0 < i < len(text) - 1 and _plain_char(text[i - 1]) and _plain_char(text[i + 1]):
            spans.append((i - 1, i + 2))
        i = text.find("@", i + 1)
    # a number trigger found in a block alone overlaps one found in the whole text
    if _has_ascii_digit(text):
        spans.extend(m.span() for m in _NUMBER_TRIGGER.finditer(text))
    spans.sort()
    return spans


# -- one block ------------------------------------------------------------------------


@attrs.frozen
class _Hit:
    start: int
    end: int
    rank: int  # breaks ties between hits with the same span
    kind: str
    replacement: str


def _has_digit(s: str) -> bool:
    return _DIGIT.search(s) is not None


# what follows "sk-" in a branch or ticket name (sk-1042-fix-login-redirect): numbers and
# short lower-case words joined by "-"; a key is random, mixing them within its parts
_SK_WORDS = re.compile(r"(?:[0-9]+|[a-z]{1,12})(?:-(?:[0-9]+|[a-z]{1,12}))*")


def _api_key_hit(m: re.Match[str]) -> str | None:
    key = m.group()
    if key.startswith("sk-") and _SK_WORDS.fullmatch(key, 3):
        return None  # a branch name
    # a real key is random enough to hold a digit; AWS ids are checked by their shape
    if key.startswith(("AKIA", "ASIA")) or _has_digit(key):
        return tag("api_key")
    return None


def _jwt_hit(m: re.Match[str]) -> str | None:
    return tag("jwt")


def _bearer_hit(m: re.Match[str]) -> str | None:
    token = m.group("token")
    if len(token) >= 32 or (len(token) >= 16 and _has_digit(token)):
        return m.group()[: m.start("token") - m.start()] + tag("bearer_token")
    return None


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
    """The password of ``-u user:password``: four characters or more, a digit or a
    symbol in them but not all digits (``docker run -u 1000:1000``, a group), no
    placeholder (``-u user:pass``, ``-u admin:$TOKEN``)."""
    if not curl_before(m.string, m.start()):
        return None  # sort -u a:b, redis-cli -u redis://..., git diff -u HEAD~1:x
    group = next(g for g in ("qpassword", "spaced", "password") if m[g] is not None)
    password = m[group]
    if (
        password.startswith("//")  # a URL: -u redis://user:password@host
        or len(password) < 4
        or password.isdigit()
        or not (_has_digit(password) or any(ch in _PASSWORD_SYMBOLS for ch in password))
        or _PLACEHOLDER.fullmatch(password)
    ):
        return None
    start, end = m.start(group) - m.start(), m.end(group) - m.start()
    return m.group()[:start] + tag("password") + m.group()[end:]


#: what a pattern's replace function returns for a placeholder: it is left as it is,
#: and no other pattern finds anything inside it (``user:pass@example.com``)
_KEEP: Final = "\x00keep"


def _url_password_hit(m: re.Match[str]) -> str | None:
    password = m.group("password")
    if _PORT_AND_PATH.fullmatch(password):
        return None  # https://host:8443/@user
    rest = "@"  # what follows the password in the match
    if (at := _NAME_THEN_PATH.search(password)) and not _HOST_AND_PORT.match(m.string, m.end()):
        password, rest = password[: at.start()], password[at.start() :] + rest
    if _PLACEHOLDER.fullmatch(password):
        return _KEEP  # postgres://USER:PASSWORD@HOST, user:${DB_PASSWORD}@...
    return m.group("head") + tag("url_password") + rest


def _email_hit(m: re.Match[str]) -> str | None:
    block, start, end = m.string, m.start(), m.end()
    if _HOST_PATH.match(block, end) or _BEFORE_HOST.search(block, max(start - 24, 0), start):
        return None  # a host spec or a remote shell's argument: no mail address
    return tag("email")


def _named_value(m: re.Match[str], kind: str) -> str | None:
    """The replacement of a value given a secret's name, or None if it is none.

    A placeholder is left (see ``_PLACEHOLDER``), as is code (a bare value with a
    bracket, a dotted name). A secret key's value has 16 characters or more, one a
    digit. A password's: quoted, anything; bare after ``=`` or ``:``, four characters
    or more with a digit or a symbol (``password: string`` is a type,
    ``password=admin`` taken for a word); after a space alone (``password
    Vm8#kq2Lp!zR``), quoted or eight characters or more of three kinds among lower
    case, upper case, digits and symbols. In a table's row (after the name's cell and
    its ``|``) the value is the next cell, spaces and all (``| password | my pass 2024
    |``), and is taken as a bare value after ``=``, quoted or not (``| password |
    `str` |`` is a type); a cell with spaces describing the field (``required, 12+
    chars``: prose punctuation, a rule's words, six words or more) is left.
    """
    group = next(g for g in ("dq", "sq", "bq", "cell", "bare") if m[g] is not None)
    value = m[group]
    if group == "cell":
        value = value.rstrip()
        if " " in value and _CELL_PROSE.match(value):
            return None
    if m["pipe"] is not None and _LENGTH_RULE.fullmatch(value.rstrip()):
        return None  # | password | 8-64 |
    if m["sep"] == "|":  # a table's row: the name's cell opens the row or follows a |
        if _NAME_CELL.search(m.string, max(m.start() - 64, 0), m.start()) is None:
            return None  # a shell's pipe: echo $password | base64
        if group == "bare":
            value = value.partition("|")[0]  # |password|hunter2!x|
    if group == "bare":
        value = value.rstrip(".")  # the end of a sentence
    if group in ("bare", "cell") and (not value or _CODE.fullmatch(value)):
        return None
    if _PLACEHOLDER.fullmatch(value):
        return None
    if kind == "api_key":
        if len(value) < 16 or not _has_digit(value):
            return None
    elif group in ("bare", "cell") or m["pipe"] is not None:  # in a table, `str` is a type
        kinds = [
            any(ch.islower() for ch in value),
            any(ch.isupper() for ch in value),
            _has_digit(value),
            any(ch in _PASSWORD_SYMBOLS for ch in value),
        ]
        if m["sep"] is not None:
            if len(value) < 4 or not (kinds[2] or kinds[3]):
                return None
        elif len(value) < 8 or sum(kinds) < 3:
            return None
    start = m.start(group) - m.start()
    whole = m.group()
    return whole[:start] + tag(kind) + whole[start + len(value) :]


def _password_hit(m: re.Match[str]) -> str | None:
    return _named_value(m, "password")


def _secret_key_hit(m: re.Match[str]) -> str | None:
    return _named_value(m, "api_key")


_Replace = Callable[[re.Match[str]], str | None]
# each pattern with a necessary condition for a match in a block, cheaper than a scan
_PATTERNS: Final[tuple[tuple[str, re.Pattern[str], _Replace, Callable[[str], bool]], ...]] = (
    ("bearer_token", _BEARER, _bearer_hit, lambda s: "earer" in s or "EARER" in s),
    ("url_password", _URL_PASSWORD, _url_password_hit, lambda s: "://" in s),
    ("jwt", _JWT, _jwt_hit, lambda s: "eyJ" in s),
    (
        "api_key",
        _API_KEY,
        _api_key_hit,
        lambda s: (
            "_" in s
            or "sk-" in s
            or "IA" in s
            or "AIza" in s
            or "xox" in s
            or "xai-" in s
            or "pplx-" in s
            or "glpat-" in s
            or "xapp-" in s
            or "SG." in s
        ),
    ),
    ("api_key", _SECRET_KEY, _secret_key_hit, lambda s: "ecret" in s or "ECRET" in s),
    ("password", _PASSWORD, _password_hit, lambda s: "assw" in s or "ASSW" in s),
    ("password", _USER_OPTION, _user_option_hit, lambda s: "-u" in s),
    ("password", _BASIC, _basic_hit, lambda s: "Basic" in s or "BASIC" in s),
    ("password", _AUTH_BASIC, _basic_hit, lambda s: "uthorization" in s),
    ("email", _EMAIL, _email_hit, lambda s: "@" in s),
)
_RANK: Final = {
    kind: n
    for n, kind in enumerate(("private_key", *(p[0] for p in _PATTERNS), "card_number", "phone"))
}


def _pem_hits(block: str) -> Iterable[_Hit]:
    """Private keys: from a header to the END line of its label if that ends within
    ``PEM_HOLD_LIMIT`` characters of its BEGIN, whatever lies between (``\\n`` escapes
    of a JSON string, armor headers); else through the base64-ish run of its body."""
    ends: dict[str, list[tuple[int, int]]] = {}
    for m in _PEM_END.finditer(block):
        ends.setdefault(m["label"], []).append(m.span())
    for m in _PEM_HEADER.finditer(block):
        i, h = m.span()
        found = ends.get(m["label"], [])
        k = bisect.bisect_left(found, (h, 0))
        if k < len(found) and found[k][1] - i <= PEM_HOLD_LIMIT:
            end = found[k][1]
        else:  # no END in reach: the body, trailing whitespace aside
            body = _PEM_BODY.match(block, h)
            end = h if body is None else h + len(body.group().rstrip())
        yield _Hit(i, end, _RANK["private_key"], "private_key", tag("private_key"))


# -- a table's secret columns ----------------------------------------------------------

#: a table's row longer than this (from its first |) holds no cut further on
ROW_LIMIT: Final = 512
_OPEN_ROW: Final = 1 << 62  # the end of a row not yet known
# a table's header and separator rows (``| a | b |`` then ``|---|:--:|``)
_SEPARATOR = re.compile(r"[ \t]*(?:\|[ \t]*:?-+:?[ \t]*)+\|[ \t]*\r?")
TABLE_GATE = re.compile(r"\|[ \t]*:?-+:?[ \t]*\|")  # what every separator holds
# a header's cell naming a secret: the name ends it, a word or two may lead
_COLUMN_NAME = re.compile(
    rf"(?:\A|(?<=[ _.-]))(?:(?P<password>{_PASSWORD_NAME})|{_SECRET_KEY_NAME}|[Ss]ecret|SECRET)"
    r"[sS]?(?:[ \t]*\([^()]{0,32}\))?\Z"
)
_Columns = tuple[tuple[int, str], ...]  # (the cell's index from the row's first |, kind)


def _secret_columns(header: str) -> _Columns:
    """The cells of a table's header row that name a secret, and the kinds of their values."""
    cells = header.strip().split("|")[1:-1]
    found = []
    for k, cell in enumerate(cells, 1):
        name = cell.strip(" \t*`")
        if len(name) <= 64 and (m := _COLUMN_NAME.search(name)):
            found.append((k, "password" if m["password"] else "api_key"))
    return tuple(found)


class TableColumns:
    """The rows of markdown tables whose header names a secret (``| Service | Password
    |``, then ``|---|---|``), over a text read from its start in one piece or many;
    positions count from the text's start. A row of such a table is each line after the
    separator whose first character but spaces is a ``|``, until a line that is none.
    The cuts in a row (from its ``|`` to its line's end, ``ROW_LIMIT`` characters at
    most) are kept: a block holds a row whole. Whether a line is a row depends on the
    lines before it only; reading a text costs one scan of it, in any number of pieces.
    """

    __slots__ = ("_cols", "_first", "_len", "_line", "_prev", "_seen", "cols", "ends", "pipes")

    def __init__(self) -> None:
        self._seen = 0
        self._first = ""  # the current line's first character but spaces, once read
        self._line: list[str] = []  # the current line from its |, if a table's (capped)
        self._len = 0  # its length
        self._prev: str | None = None  # the line before, if a table's row
        self._cols: _Columns = ()  # the secret columns of the table the line is in
        self.pipes: list[int] = []  # the rows' first |, sorted
        self.ends: list[int] = []  # where each ends (its newline)
        self.cols: list[_Columns] = []

    def read(self, t: str, off: int) -> None:
        """Read ``t``, the text from ``off`` on, reaching past what was read."""
        i, end = max(self._seen - off, 0), len(t)
        if self._first and (self._first != "|" or self._len >= ROW_LIMIT) and "\n" not in t[i:]:
            self._seen = max(self._seen, off + end)  # the same line goes on: nothing to keep
            return
        while i < end:
            n = t.find("\n", i)
            stop = end if n < 0 else n
            if not self._first and (m := _NOT_BLANK.search(t, i, stop)):
                self._first, i = m.group(), m.start()
                if self._first == "|" and self._cols:
                    self.pipes.append(off + i)
                    self.ends.append(_OPEN_ROW)
                    self.cols.append(self._cols)
            if self._first == "|" and self._len < ROW_LIMIT:
                self._line.append(t[i : min(stop, i + ROW_LIMIT - self._len)])
                self._len += len(self._line[-1])
            if n < 0:
                break
            self._end_line(off + n)
            i = n + 1
        self._seen = max(self._seen, off + end)

    def _end_line(self, n: int) -> None:
        line = "".join(self._line) if self._first == "|" else None
        if line is None:
            self._cols, self._prev = (), None
        elif self._cols:
            if self.pipes and self.ends[-1] == _OPEN_ROW:
                self.ends[-1] = n
            self._prev = None
        elif self._prev is not None and _SEPARATOR.fullmatch(line):
            self._cols, self._prev = _secret_columns(self._prev), None
        else:
            self._prev = line
        self._first, self._line, self._len = "", [], 0

    def holds(self, c: int) -> bool:
        """Whether a row keeps the cut ``c`` (the text before ``c`` has been read)."""
        k = bisect.bisect_left(self.pipes, c) - 1
        return k >= 0 and c <= self.ends[k] and c - self.pipes[k] <= ROW_LIMIT

    def has_rows(self, lo: int, n: int) -> bool:
        """Whether a row starts in ``lo..lo + n``."""
        k = bisect.bisect_left(self.pipes, lo)
        return k < len(self.pipes) and self.pipes[k] < lo + n

    def rows(self, lo: int, hi: int) -> list[tuple[int, int, _Columns]]:
        """The rows starting in ``lo..hi``: their first |, their end, their columns."""
        a, b = bisect.bisect_left(self.pipes, lo), bisect.bisect_left(self.pipes, hi)
        return [(self.pipes[k], self.ends[k], self.cols[k]) for k in range(a, b)]

    def forget(self, before: int) -> None:
        """Drop the rows starting before ``before`` (once there are enough of them)."""
        if len(self.pipes) > 64 and (k := bisect.bisect_left(self.pipes, before)) > 32:
            del self.pipes[:k], self.ends[:k], self.cols[:k]


_NOT_BLANK = re.compile(r"[^ \t\r\f\v]")


def _column_value(value: str, kind: str) -> bool:
    """Whether a cell of a secret's column holds one: not a placeholder, a type, code,
    a length or a cell describing the field; a password four characters or more with a
    digit or a symbol, a secret key's value 16 or more with a digit."""
    if len(value) > 1 and value[0] == value[-1] and value[0] in "`\"'":
        value = value[1:-1]
    if (
        not value
        or (" " in value and _CELL_PROSE.match(value))
        or _LENGTH_RULE.fullmatch(value)
        or _CODE.fullmatch(value)
        or _PLACEHOLDER.fullmatch(value)
    ):
        return False
    if kind == "api_key":
        return len(value) >= 16 and _has_digit(value)
    return len(value) >= 4 and (_has_digit(value) or any(c in _PASSWORD_SYMBOLS for c in value))


def _column_hits(block: str, rows: Iterable[tuple[int, _Columns]]) -> Iterable[_Hit]:
    """The values in the secret columns of the rows starting (their first |) in ``block``."""
    for pipe, cols in rows:
        stop = block.find("\n", pipe)
        bars = [pipe]
        j = block.find("|", pipe + 1, len(block) if stop < 0 else stop)
        while j >= 0:
            bars.append(j)
            j = block.find("|", j + 1, len(block) if stop < 0 else stop)
        for k, kind in cols:
            if k >= len(bars):
                break
            cell = block[bars[k - 1] + 1 : bars[k]]
            value = cell.strip()
            if _column_value(value, kind):
                start = bars[k - 1] + 1 + (len(cell) - len(cell.lstrip()))
                if value[0] == value[-1] and value[0] in "`\"'" and len(value) > 1:
                    start, value = start + 1, value[1:-1]
                yield _Hit(start, start + len(value), _RANK[kind], kind, tag(kind))


def _redact_block(
    block: str, counts: dict[str, int], rows: Iterable[tuple[int, _Columns]] = ()
) -> str:
    """Redact one block, adding what it found to ``counts``; ``rows``: the rows of
    tables with secret columns starting in it (their first |) and those columns."""
    hits: list[_Hit] = list(_column_hits(block, rows)) if rows else []
    for kind, pattern, replace, needs in _PATTERNS:
        if not needs(block):
            continue
        for m in pattern.finditer(block):
            replacement = replace(m)
            if replacement is _KEEP:  # a placeholder: other patterns keep off it
                hits.append(_Hit(m.start(), m.end(), _RANK[kind], "", m.group()))
            elif replacement is not None:
                hits.append(_Hit(m.start(), m.end(), _RANK[kind], kind, replacement))
    if "-----BEGIN" in block:
        hits.extend(_pem_hits(block))
    if _number_triggered(block):
        hits.extend(_Hit(a, b, _RANK[k], k, tag(k)) for a, b, k in number_hits(block))
    if not hits:
        return block
    # leftmost first, then longest, then by rank; overlapping later hits lose
    hits.sort(key=lambda h: (h.start, -h.end, h.rank))
    out: list[str] = []
    pos = 0
    for h in hits:
        if h.start < pos:
            continue
        out.append(block[pos : h.start])
        out.append(h.replacement)
        if h.kind:  # else a placeholder, kept from other patterns
            counts[h.kind] = counts.get(h.kind, 0) + 1
        pos = h.end
    out.append(block[pos:])
    return "".join(out)
