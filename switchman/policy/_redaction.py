"""Redaction of secrets and personal data from model output, whole or streamed.

``redact(text)`` replaces every secret it finds by ``[REDACTED:<kind>]``; kinds are
``api_key``, ``bearer_token``, ``private_key``, ``jwt``, ``url_password``,
``password``, ``email``, ``phone`` and ``card_number``. Only model output goes through
here, never the prompt. A value is also taken for a secret by the name before it
(``password=...``, ``"password": "..."``, ``aws_secret_access_key = ...``), unless it
is a placeholder or code (``_named_value`` says which).
``redact(text, secrets)`` (and ``StreamRedactor(secrets)``) also replace the exact values
of ``secrets`` (``known_secrets``: the router's provider keys and gateway key secrets),
as ``api_key``, whatever their shape.

What counts as a phone or card number
-------------------------------------
Numbers are looked for in *runs*: digits with at most three separators (space,
no-break space, ``. / ( ) -``) between two of them; a newline or a tab ends a run.

* An international phone number starts a run with ``+`` (or with ``00`` and a
  country code set apart, the next group not led by a zero), and is valid for
  ``phonenumbers``, however it is grouped (``+44 20 7946 0958``, ``+14155552671``,
  ``0044 20 7946 0958``); a run may go on after it (``+1 415 555 2671 2 times``).
* A number without one is taken for a phone only when grouped and punctuated the way
  a US number is (``(415) 555-2671``, ``415-555-2671``, ``415.555.2671``,
  ``1-800-555-0199``), and valid. Digits grouped by spaces alone (``202 555 0143``,
  a row of a table) or not at all (``4155552671``, an order number) are not phones.
* A card number is 13 to 19 digits, unbroken or grouped 4-4-4-4(-3) or 4-6-5 by
  spaces or by dashes, or 4.4.4.4 by dots (not amid a longer list of groups of four),
  of a major network's prefix and length, passing the Luhn check, and not right
  after a digit and a dot (the decimals of ``0.5401996580683129``).

``phonenumbers`` makes the final decision, but only on candidates of those shapes:
text without a ``+``/``00`` run or a punctuated 3-3-4 group never reaches it.

How the text is cut, and why streaming gives the same answer
------------------------------------------------------------
The text is cut into *blocks* at *breaks*. A break is a *cut* where no secret can be
open; a cut is a position ``c`` just after whitespace, after CJK or fullwidth
punctuation (the ideographic full stop and comma, corner brackets...) or after JSON's
``, { } [ ]``: characters no pattern takes, but for URL passwords and named values
(``password=...``), which may hold JSON's. Whether ``c`` is a break depends on the
previous break ``b`` and on ``text[b:c]``; the rules reading further back give the
same answer at ``c`` whatever lies before ``b``. A cut after JSON's punctuation is a
break if no ``://`` nor a password's or secret key's name lies in ``text[b:c]``
within its last 512 characters (no such match is longer) and no private key keeps
it (the last rule below); any other cut if all of these hold:

* no phone or card number may go on across it. One may if the whitespace is a space
  (or no-break space) after a digit and at most two more separators, ``c - b`` is at
  most ``NUMBER_HOLD_LIMIT``, and a place where a number can start (the start of the
  run, a ``+``, a ``(``, or ``b``) lies at most 32 characters before ``c``;
* the text before it does not end in ``bearer`` and at most 32 whitespace characters,
  nor in a secret's name (and its ``=`` or ``:``) and a few spaces or tabs, nor in
  ``ssh`` (``scp``, ``sftp``, ``mosh``, ``rsync``, ``clone``) and a space;
* it is not inside what may still become a private key header (``-----BEGIN`` and
  capitals, digits and spaces), and no private key header keeps it: a header
  ``-----BEGIN ... PRIVATE KEY-----`` keeps the cuts after it until its END line (the
  same label) has ended, for ``PEM_HOLD_LIMIT`` characters from its BEGIN at most;
  while one header keeps cuts, a later one starts no hold of its own.

Such a cut meeting the number rule without looking at ``b`` at all (no digit before
it) is a break whatever came before, so ``redact`` finds the breaks near a secret by
going back to such a cut and forward from there. ``StreamRedactor`` holds back the
text after the last break, which starts at a break too. Both therefore cut a text
into the same blocks, whatever the chunking, and redact each block on its own: the
concatenation of everything the streamer returns equals ``redact(whole).text``, with
equal counts, by construction rather than by luck.

Every secret fits inside one block: patterns that never contain a cut character
trivially so, and the rules above keep together those that may (URL passwords and
named values, phone and card numbers, ``Bearer <token>``, private keys up to
``PEM_HOLD_LIMIT`` characters). Secrets found by value: a character one of them
holds is no cut character for ``redact(text, secrets)`` and its stream. The
exception: a number starting more than 32 characters into its run (a card number at
the end of a long list of numbers set apart by single spaces), or in a block already
``NUMBER_HOLD_LIMIT`` long (runs chained without a free whitespace, ``x=1 y=2 ...``),
may be cut in two, and is then taken for part of the list.

Hold-back: outside a ``Bearer`` or PEM hold, the held-back text is at most
``NUMBER_HOLD_LIMIT`` (96) characters followed by the word still arriving (the text
after its last cut). Chinese or Japanese prose goes out at each punctuation mark,
compact JSON at each ``,`` (but for 512 characters after a URL or a password's
name). A list of numbers separated by spaces lets go about every 32 characters; a
table or a CSV at each line end. A certificate or a public key is not held (its
label is known before its first line ends).

Work grows in proportion to the text, whatever it holds: every rule reads a bounded
distance back from a cut, PEM holds and the places URLs and names start come from
one scan of the text (or of each chunk once, streamed), and a stream examines each
cut once however long it is held (``tests/policy/test_redaction_work.py`` counts it).

Cost: a text with no trigger at all (no ``@``, none of the key prefixes, no
``bearer``, no ``-----BEGIN``, no password's or secret key's name, no ``+``/``00`` and
seven digits, no card-shaped group, no 3-3-4 group) costs about twenty substring
tests, plus one regular-expression scan if it has digits: 1.4 µs for 300 characters
of prose, 5 µs with numbers in it, 1.5 ms for a 2,000-line table of numbers (43 KB),
1 ms for a CSV that size. Otherwise only the blocks holding a trigger are examined
(an email in 300 characters: ~9 µs; a phone number: ~49 µs, mostly ``phonenumbers``
at ~25 µs a look-up, which is asked about the candidates above only, at most eight
times for one run).

Everything here is synchronous and pure; nothing can be cancelled midway. The module
runs past the style's 800 lines because the patterns, the rules keeping each whole
and the stream are one argument; the number rules live in ``_numbers``, and PEM holds
and named values could follow into modules of their own.
"""

from __future__ import annotations

import bisect
import functools
import re
import sys
import types
from collections.abc import Callable, Iterable, Mapping
from typing import Final

import attrs

from switchman._result import RedactionItem, RedactionReport
from switchman.policy._numbers import NUMBER_HOLD_LIMIT as NUMBER_HOLD_LIMIT
from switchman.policy._numbers import NUMBER_TRIGGER as _NUMBER_TRIGGER
from switchman.policy._numbers import digit_before as _digit_before
from switchman.policy._numbers import has_ascii_digit as _has_ascii_digit
from switchman.policy._numbers import number_held as _number_held
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
    r"xox[abprs]-[A-Za-z0-9-]{10,}",  # Slack
    r"[sr]k_live_[A-Za-z0-9]{16,}",  # Stripe
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
# a private key's header and END line; an END closes the header of the same label
_PEM_HEADER = re.compile(r"-----BEGIN(?P<label>[A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?)-----")
_PEM_END = re.compile(r"-----END(?P<label>[A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?)-----")
# a key's body without its END line: base64 lines and Proc-Type style headers
_PEM_BODY = re.compile(r"(?:[A-Za-z0-9+/=:,\s]++|-(?!----))*+")


def _ascii_but(chars: str) -> str:
    """A character class body: printable ASCII but a space and ``chars``."""
    return "".join(re.escape(chr(n)) for n in range(0x21, 0x7F) if chr(n) not in chars)


# scheme://user:password@host. The password runs to the last @ before the host: it may
# hold @ # / ? (written unescaped), but after an @ no / ? # (those start the path, the
# query or the fragment, where an @ is the URL's own: https://u:pw@host/x?mail=a@b.c)
_URL_USER = _ascii_but("/?#@:'`<>\"")
_URL_PASSWORD_HEAD = _ascii_but("@'`<>\"")  # before its first @
_URL_PASSWORD_MORE = _ascii_but("@/?#'`<>\"")  # after an @
_URL_PASSWORD = re.compile(
    r"(?<![A-Za-z0-9+.-])"
    rf"(?P<head>[A-Za-z][A-Za-z0-9+.-]{{0,31}}://[{_URL_USER}]{{0,64}}:)"
    rf"(?P<password>[{_URL_PASSWORD_HEAD}]{{1,128}}(?:@[{_URL_PASSWORD_MORE}]{{1,64}}){{0,3}})"
    r"@(?=[A-Za-z0-9\[])"  # a host follows
)
_PORT_AND_PATH = re.compile(r"[0-9]+/.*")  # https://host:8443/@user: no password
_EMAIL = re.compile(
    r"(?<![\w.%+-])(?<!://)"  # not a URL's user (https://user@host)
    r"[\w.%+-]+@[\w-]+(?:\.[\w-]+)*\.[^\W\d_]{2,}(?![\w-]|\.[\w-])"
)
# user@host in a command, not mail: a host spec (git@github.com:acme/x.git, scp f
# deploy@web01.internal:/srv) or the argument of a remote shell (ssh ubuntu@ec2-...)
_HOST_PATH = re.compile(r":[\w/~.$-]")
_REMOTE_COMMAND = r"(?<![\w-])(?:ssh|scp|sftp|mosh|rsync|clone)[ \t]{1,8}"  # (git) clone
_BEFORE_HOST = re.compile(_REMOTE_COMMAND + r"\Z")
# A value given a name that says it is a secret: a password (``password=...``,
# ``DB_PASSWORD: ...``, ``"password": "..."``, ``Password=...;``) or a secret key
# (``aws_secret_access_key = ...``, ``SecretAccessKey``, ``SECRET_KEY``). The value
# is ASCII without whitespace: quoted, or bare up to a quote, ``, ; & ) ] }``.
_PASSWORD_NAME = r"(?:[Pp]assw(?:or)?d|PASSW(?:OR)?D)"
_SECRET_KEY_NAME = (
    r"(?:[Ss]ecret[ _.-]?(?:[Aa]ccess[ _.-]?)?[Kk]ey|SECRET[ _.-]?(?:ACCESS[ _.-]?)?KEY)"
)
_BARE = _ascii_but("\"'`,;&)]}")
_NAMED_VALUE = (
    r"[\"']?(?:[ \t]{0,16}(?P<sep>=>|:=|[=:])[ \t]{0,16}|[ \t]{1,16})"
    rf"(?:\"(?P<dq>[!#-~]{{1,256}})\"|'(?P<sq>[!-&(-~]{{1,256}})'|(?P<bare>[{_BARE}]{{1,256}}))"
)
_PASSWORD = re.compile(r"(?<![/\\])" + _PASSWORD_NAME + _NAMED_VALUE)  # not /etc/passwd
_SECRET_KEY = re.compile(_SECRET_KEY_NAME + _NAMED_VALUE)
# what a name waits for at a cut: its separator or its value (or the rest of the name)
_NAME_TAIL = re.compile(
    rf"(?:{_PASSWORD_NAME}|{_SECRET_KEY_NAME})[\"']?[ \t]{{0,16}}(?:=>|:=|[=:])?[ \t]{{1,16}}\Z"
    r"|(?:[Ss]ecret(?:[ _.-]?[Aa]ccess)?|SECRET(?:[ _.-]?ACCESS)?) \Z"
)
# A value that stands for a secret rather than being one: wrapped or a variable
# (<password>, {{x}}, ${X}, $X, %X%, [REDACTED:...]), masked (****, xxx, ...), an
# upper-case name (PASSWORD, YOUR_PASSWORD), or a word about one (changeme,
# your-password-here, mysecret).
_PLACEHOLDER = re.compile(
    r"[<{\[].*|\$(?:\{.*|\d+|[A-Za-z_]\w*)|%\w+%"
    r"|[*xX.#_?-]+|[A-Z][A-Z_]*"
    r"|(?i:[a-z_-]*(?:pass|secret|your|change_?me|example|placeholder|redacted)[a-z_-]*)"
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
    ("-", ("sk-", "xai-", "pplx-", "-----BEGIN", "xox")),  # xox[abprs]-...
    ("_", ("_live_", "ghp_", "gho_", "ghs_", "ghu_", "ghr_", "github_pat_", "gsk_", "tgp_v1_")),
    ("I", ("AKIA", "ASIA")),
    ("z", ("AIza",)),
    ("J", ("eyJ",)),
    ("a", ("earer", "assw")),  # bearer, password, passwd
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
            )
        )
        or "assw" in text  # password, passwd
        or ("W" in text and "ASSW" in text)
        or "ecret" in text  # secret key
        or ("Y" in text and "ECRET" in text)  # SECRET...KEY
        or ("z" in text and "AIza" in text)
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


def _api_key_hit(m: re.Match[str]) -> str | None:
    key = m.group()
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


#: what a pattern's replace function returns for a placeholder: it is left as it is,
#: and no other pattern finds anything inside it (``user:pass@example.com``)
_KEEP: Final = "\x00keep"


def _url_password_hit(m: re.Match[str]) -> str | None:
    password = m.group("password")
    if _PORT_AND_PATH.fullmatch(password):
        return None  # https://host:8443/@user
    if _PLACEHOLDER.fullmatch(password):
        return _KEEP  # postgres://USER:PASSWORD@HOST, user:${DB_PASSWORD}@...
    return m.group("head") + tag("url_password") + "@"


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
    case, upper case, digits and symbols.
    """
    group = "dq" if m["dq"] is not None else "sq" if m["sq"] is not None else "bare"
    value = m[group]
    if group == "bare":
        value = value.rstrip(".")  # the end of a sentence
        if not value or _CODE.fullmatch(value):
            return None
    if _PLACEHOLDER.fullmatch(value):
        return None
    if kind == "api_key":
        if len(value) < 16 or not _has_digit(value):
            return None
    elif group == "bare":
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
        ),
    ),
    ("api_key", _SECRET_KEY, _secret_key_hit, lambda s: "ecret" in s or "ECRET" in s),
    ("password", _PASSWORD, _password_hit, lambda s: "assw" in s or "ASSW" in s),
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


def _redact_block(block: str, counts: dict[str, int]) -> str:
    """Redact one block, adding what it found to ``counts``."""
    hits: list[_Hit] = []
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


# -- breaks -----------------------------------------------------------------------------

_OPEN: Final = sys.maxsize  # the end of a hold not yet known
_PEM_LABEL_CHARS = re.compile(r"[A-Z0-9 ]*")
_PEM_LABEL_MAX: Final = 57  # 40 + len("PRIVATE KEY BLOCK")
_PEM_LINE_MAX: Final = 72  # the longest header: "-----BEGIN", a label, "-----"
# what a stream keeps of the text before its last checked cut: every rule below reads
# at most this far back from a cut
_LOOKBACK: Final = 128
# a Bearer holds a cut when this much whitespace at most lies between it and the cut
_BEARER_GAP: Final = 32
# Besides whitespace, a text is cut after characters no secret holds: CJK and fullwidth
# punctuation (no pattern matches them: emails take letters and digits of any script,
# everything else ASCII), and JSON's , { } [ ] -- which a URL's password or a named
# value may hold, so a cut after one is no break within _JSON_REACH of where such a
# secret may start (a "://", a password's or secret key's name: _BLOCKER)
_CJK_CUTS: Final = "".join(
    ch
    for ch in map(chr, [*range(0x3000, 0x3040), *range(0xFE30, 0xFE50), *range(0xFF00, 0xFF66)])
    if not ch.isspace() and not re.fullmatch(r"\w", ch)
)
_JSON_CUTS: Final = ",{}[]"
_BLOCKER = re.compile(r"://|assw|ASSW|ecret|ECRET")
_JSON_REACH: Final = 512  # longer than any URL password or named value match
# how the words of _NAME_TAIL end, whitespace and a quote or separator aside
_NAME_WORD_ENDS: Final = (
    *("assword", "ASSWORD", "asswd", "ASSWD", "ey", "EY"),
    *("ecret", "ECRET", "ccess", "CCESS"),
)
_COMMAND_ENDS: Final = frozenset(("ssh", "scp", "ftp", "osh", "ync", "one"))  # _BEFORE_HOST


def _label_end(t: str, i: int, end: int) -> int:
    """Where the run of label characters (capitals, digits, spaces) from ``i`` ends."""
    m = _PEM_LABEL_CHARS.match(t, i, end)
    return i if m is None else m.end()


def _pem_header_pending(t: str, i: int) -> bool:
    """Whether ``t[i:]`` (``-----BEGIN`` and what follows) may still become a
    private key header as more text arrives."""
    r = _label_end(t, i + 10, len(t))
    if r - i - 10 > _PEM_LABEL_MAX:
        return False
    if r == len(t):
        return True
    dashes = len(t) - r  # what follows the label must be the start of "-----"
    return (
        dashes < 5
        and t.startswith("-" * dashes, r)
        and t.endswith(("PRIVATE KEY", "PRIVATE KEY BLOCK"), i, r)
    )


class _PemHolds:
    """The cuts private key blocks keep, over a text read from its start in one piece
    (``redact``) or in many (``StreamRedactor``); positions count from the text's start.

    A header ``-----BEGIN <label>-----`` (the label ending in ``PRIVATE KEY``) ending at
    ``h`` keeps each cut ``c > h`` until its END line (same label, after it) has ended by
    ``c``, for at most ``PEM_HOLD_LIMIT`` characters from its BEGIN. While one header
    keeps cuts, a header after it starts no hold of its own (so holds never chain: a
    stream is held back for one key's length at most). Whether ``c`` is kept depends on
    the text before ``c`` only. Reading a text costs one scan of it, in any number of
    pieces.
    """

    __slots__ = ("_active", "_begin_from", "_hi", "_lo", "_seen", "seen_begin")

    def __init__(self) -> None:
        self._seen = 0  # the text before this has been read
        self._begin_from = 0  # a -----BEGIN from here on is not yet decided
        self._lo: list[int] = []  # the kept cuts: lo < c <= hi, sorted and disjoint
        self._hi: list[int] = []
        self._active: tuple[int, int, str] | None = None  # (BEGIN, header end, label)
        self.seen_begin = False  # a -----BEGIN was read

    def read(self, t: str, off: int) -> None:
        """Read ``t``, the text from ``off`` on: it reaches past what was read, and holds
        the ``_PEM_LINE_MAX`` characters before that (or starts at a break)."""
        end = off + len(t)
        if t.find("-----", max(min(self._begin_from, self._seen - _PEM_LINE_MAX) - off, 0)) < 0:
            self._begin_from = max(self._begin_from, end - 9)  # nothing new to read
            self._expire(end)
            self._seen = max(self._seen, end)
            return
        events: list[tuple[int, int, str]] = []  # (where it ends, where it starts, label)
        i = t.find("-----BEGIN", max(self._begin_from - off, 0))
        while i >= 0:
            self.seen_begin = True
            if m := _PEM_HEADER.match(t, i):
                events.append((off + m.end(), off + i, "+" + m["label"]))
            elif _pem_header_pending(t, i):
                break
            i = t.find("-----BEGIN", i + 1)
        self._begin_from = off + i if i >= 0 else max(self._begin_from, end - 9)
        for m in _PEM_END.finditer(t, max(self._seen - _PEM_LINE_MAX - off, 0)):
            if off + m.end() > self._seen:
                events.append((off + m.end(), off + m.start(), "-" + m["label"]))
        events.sort()
        for pos, start, label in events:
            self._expire(pos)
            if label[0] == "+":
                if self._active is None:  # a header starts a hold only if none runs
                    self._active = (start, pos, label[1:])
                    self._lo.append(pos)
                    self._hi.append(_OPEN)
            elif self._active is not None:
                _, h, held = self._active
                if label[1:] == held and start >= h:
                    self._hi[-1] = pos - 1
                    self._active = None
        self._expire(end)
        self._seen = max(self._seen, end)

    def _expire(self, pos: int) -> None:
        if self._active is not None and self._active[0] + PEM_HOLD_LIMIT < pos:
            self._hi[-1] = self._active[0] + PEM_HOLD_LIMIT
            self._active = None

    def keeps(self, c: int) -> bool:
        """Whether a header keeps the cut ``c`` (the text before ``c`` has been read)."""
        k = bisect.bisect_left(self._lo, c) - 1
        return k >= 0 and c <= self._hi[k]

    def forget(self, before: int) -> None:
        """Drop what only keeps cuts before ``before`` (once there is enough of it)."""
        if len(self._hi) > 64 and (k := bisect.bisect_left(self._hi, before)) > 32:
            del self._lo[:k], self._hi[:k]


class _Blockers:
    """Where a secret holding JSON's , { } [ ] may start (``_BLOCKER``), over a text
    read from its start in one piece or many; positions count from the text's start."""

    __slots__ = ("_ends", "_seen", "_starts")

    def __init__(self) -> None:
        self._seen = 0
        self._starts: list[int] = []
        self._ends: list[int] = []

    def read(self, t: str, off: int) -> None:
        """Read ``t``, the text from ``off`` on, past what was read (and from at most
        four characters after its start, or from a break)."""
        for m in _BLOCKER.finditer(t, max(self._seen - 4 - off, 0)):
            if off + m.end() > self._seen:
                self._starts.append(off + m.start())
                self._ends.append(off + m.end())
        self._seen = max(self._seen, off + len(t))

    def blocks(self, lo: int, c: int) -> bool:
        """Whether one starts at ``lo`` or after and ends by ``c``."""
        k = bisect.bisect_right(self._ends, c) - 1
        return k >= 0 and self._starts[k] >= lo

    def forget(self, before: int) -> None:
        """Drop those starting before ``before`` (once there are enough of them)."""
        if len(self._starts) > 64 and (k := bisect.bisect_left(self._starts, before)) > 32:
            del self._starts[:k], self._ends[:k]


class _Cuts:
    """A text, or the last part of a stream (``t[i]`` is the stream's character
    ``off + i``), with its cut characters, its PEM holds and where secrets holding
    JSON's punctuation may start (found when first asked, for a whole text)."""

    __slots__ = ("_blockers", "chars", "cut", "off", "pem", "t")

    def __init__(
        self,
        t: str,
        off: int,
        cuts: tuple[re.Pattern[str], frozenset[str]],
        pem: _PemHolds | None,
        blockers: _Blockers | None,
    ) -> None:
        self.t, self.off, self._blockers = t, off, blockers
        self.cut, self.chars = cuts  # all cut characters; those but whitespace
        self.pem = pem if pem is not None and pem.seen_begin else None

    def json_blocked(self, lo: int, c: int) -> bool:
        """Whether a secret holding JSON's punctuation may start in ``lo..c``."""
        if self._blockers is None:  # a whole text: read it now
            self._blockers = _Blockers()
            self._blockers.read(self.t, self.off)
        return self._blockers.blocks(self.off + lo, self.off + c)


def _word_held(t: str, c: int) -> bool:
    """Whether the words before the whitespace ending at ``c`` wait for what follows:
    ``Bearer`` and at most ``_BEARER_GAP`` whitespace characters, a secret's name (and
    its ``=`` or ``:``) waiting for its value, or a remote shell (``ssh``) waiting for
    its ``user@host``; reads at most 80 characters back."""
    j = c
    while j > c - _BEARER_GAP and j > 0 and t[j - 1].isspace():
        j -= 1
    if j == c or (j > 0 and t[j - 1].isspace()):  # no whitespace, or too much
        return False
    if j >= 6 and t[j - 6 : j].lower() == "bearer":
        return True
    if j == 0:
        return False
    last = t[j - 1]
    if last in "hpce" and t[j - 3 : j] in _COMMAND_ENDS:  # ssh user@host follows
        return _BEFORE_HOST.search(t, max(c - 24, 0), c) is not None
    if last.isalpha():  # the name ends here: password, passwd, secret key, secret access
        if not t.endswith(_NAME_WORD_ENDS, max(j - 8, 0), j):
            return False
    elif last not in "\"':=>":  # or its quote or separator does
        return False
    lo = max(j - 48, 0)
    return (
        t.find("assw", lo, j) >= 0
        or t.find("ASSW", lo, j) >= 0
        or t.find("ecret", lo, j) >= 0
        or t.find("ECRET", lo, j) >= 0
    ) and _NAME_TAIL.search(t, max(c - 80, 0), c) is not None


def _pem_held(x: _Cuts, c: int) -> bool:
    """Whether a private key block keeps the cut ``c``: a key's header keeps it, or
    ``c`` is in what may still become one (``-----BEGIN`` and label characters)."""
    if x.pem is None:
        return False
    if x.pem.keeps(x.off + c):
        return True
    i = x.t.rfind("-----BEGIN", max(c - 10 - _PEM_LABEL_MAX, 0), c)
    return i >= 0 and _label_end(x.t, i + 10, c) == c


def _is_break(x: _Cuts, b: int, c: int) -> bool:
    """Whether the cut ``c`` is a break, ``b`` being the break before it."""
    t = x.t
    ch = t[c - 1]
    if ch in _JSON_CUTS:
        return not x.json_blocked(max(b, c - _JSON_REACH), c) and not _pem_held(x, c)
    return not _number_held(t, b, c) and not _word_held(t, c) and not _pem_held(x, c)


def _surely_break(x: _Cuts, c: int) -> bool:
    """Whether the cut ``c`` is a break whatever the break before it (a cut after
    JSON's punctuation never is: it depends on where the break before it lies)."""
    t = x.t
    if t[c - 1] in _JSON_CUTS:
        return False
    return _digit_before(t, c, 0) < 0 and not _word_held(t, c) and not _pem_held(x, c)


def _next_break(x: _Cuts, b: int, start: int) -> int:
    """The first break after ``b`` among the cuts after ``start`` (no cut in
    ``b..start`` is one), or -1 if there is none."""
    for m in x.cut.finditer(x.t, start):
        if _is_break(x, b, m.end()):
            return m.end()
    return -1


def _last_break(x: _Cuts, upto: int, floor: int, checked: int) -> tuple[int, int]:
    """The last break at or before ``upto`` and the break after it (-1 if none),
    ``floor`` being a break before ``upto`` and no cut in ``floor..checked`` one.

    It goes back from ``upto`` to a cut that is a break whatever came before, then
    forward from there: the work is in proportion to ``upto - max(floor, checked)``."""
    b, start = floor, max(floor, checked)
    t, chars = x.t, x.chars
    for k in range(upto - 1, start - 1, -1):  # back to a sure break
        ch = t[k]
        if (ch.isspace() or ch in chars) and _surely_break(x, k + 1):
            b = start = k + 1
            break
    while (following := _next_break(x, b, start)) >= 0 and following <= upto:
        b = start = following
    return b, following


# -- public API ---------------------------------------------------------------------------


_NO_COUNTS: Final[Mapping[str, int]] = types.MappingProxyType({})


def _frozen_counts(counts: Mapping[str, int]) -> Mapping[str, int]:
    if not counts:
        return _NO_COUNTS
    return types.MappingProxyType({k: counts[k] for k in KINDS if counts.get(k)})


@attrs.frozen(kw_only=True)
class Redacted:
    """A redacted text and, per kind found, how many secrets were replaced."""

    text: str
    counts: Mapping[str, int] = attrs.field(converter=_frozen_counts, factory=dict)

    def report(self) -> RedactionReport:
        """The ``Result.redaction`` record for these counts."""
        return redaction_report(self.counts)


def redaction_report(counts: Mapping[str, int]) -> RedactionReport:
    """A ``RedactionReport`` listing ``counts`` in ``KINDS`` order."""
    items = tuple(RedactionItem(kind=k, count=counts[k]) for k in KINDS if counts.get(k))
    return RedactionReport(performed=bool(items), items=items)


#: an answer longer than this is redacted in a worker thread by the router (linear, but
#: 1 MB of dense phone numbers takes about a second); a shorter one on its trio loop
REDACT_IN_THREAD_ABOVE: Final = 32_768

#: a configured secret shorter than this is not looked for by its value (too likely to
#: be ordinary text); real provider keys are far longer
KNOWN_SECRET_MIN: Final = 12


def known_secrets(values: Iterable[str | None]) -> tuple[str, ...]:
    """The secrets ``redact`` should find by their exact value (the router's provider
    keys and gateway key secrets): those of ``KNOWN_SECRET_MIN`` characters or more,
    without whitespace, longest first (so that one holding another goes whole)."""
    found = {v for v in values if v and len(v) >= KNOWN_SECRET_MIN and not _WS.search(v)}
    return tuple(sorted(found, key=lambda v: (-len(v), v)))


def _known(text: str, secrets: tuple[str, ...], counts: dict[str, int]) -> str:
    """``text`` with every exact occurrence of ``secrets`` replaced (as ``api_key``).

    A secret holds no whitespace, so it never spans a break: a streamed answer, cut at
    breaks, has each occurrence whole in one piece, as the whole answer has."""
    for secret in secrets:
        if secret in text:
            counts["api_key"] = counts.get("api_key", 0) + text.count(secret)
            text = text.replace(secret, tag("api_key"))
    return text


def redact(text: str, secrets: tuple[str, ...] = ()) -> Redacted:
    """Replace every secret in ``text`` by ``[REDACTED:<kind>]`` and count them.

    ``secrets`` (from ``known_secrets``) are also found by their exact value, whatever
    their shape: the router passes its own provider keys and gateway key secrets."""
    if not secrets:
        return _redact_patterns(text)
    done = _redact_patterns(text, _cut_set(secrets))
    counts = dict(done.counts)
    out = _known(done.text, secrets, counts)
    return done if out is done.text else Redacted(text=out, counts=counts)


@functools.lru_cache(maxsize=64)
def _cut_set(secrets: tuple[str, ...]) -> tuple[re.Pattern[str], frozenset[str]]:
    """The characters a text is cut after, as a pattern, and those but whitespace:
    whitespace, JSON's ``, { } [ ]`` and CJK punctuation, but those some of
    ``secrets`` hold (a break must not split a secret found by value)."""
    held = set("".join(secrets))
    chars = "".join(ch for ch in _JSON_CUTS + _CJK_CUTS if ch not in held)
    return re.compile(rf"[\s{re.escape(chars)}]"), frozenset(chars)


_CUTS: Final = _cut_set(())


def _redact_patterns(text: str, cuts: tuple[re.Pattern[str], frozenset[str]] = _CUTS) -> Redacted:
    if not _maybe_triggered(text):
        return Redacted(text=text)
    counts: dict[str, int] = {}
    pem = None
    if "-----BEGIN" in text:
        pem = _PemHolds()
        pem.read(text, 0)
    x = _Cuts(text, 0, cuts, pem, None)
    out: list[str] = []
    done = 0  # text[:done] is in out; it ends at a break
    for first, last in _trigger_spans(text):
        if last <= done:  # inside the blocks just redacted
            continue
        b, end = _last_break(x, max(first, done), done, done)
        out.append(text[done:b])
        while True:  # the blocks overlapping first..last
            if end < 0:
                end = len(text)
            out.append(_redact_block(text[b:end], counts))
            b = end
            if b >= last:
                break
            end = _next_break(x, b, b)
        done = b
    out.append(text[done:])
    return Redacted(text="".join(out), counts=counts)


class StreamRedactor:
    """Redacts a stream chunk by chunk with a hold-back window, so a secret split across
    chunks is still caught.

    The concatenation of everything ``feed()``/``flush()`` returned equals
    ``redact(whole text).text`` exactly, for any chunking, and after ``flush()``
    ``counts`` equals ``redact(whole text).counts`` (see the module docstring).

    What is held back is the text after the last break: usually the last word; more
    after a digit, but never more than ``NUMBER_HOLD_LIMIT`` characters before the
    word still arriving; more after ``Bearer``, or after a private key's header (until
    its END line, ``PEM_HOLD_LIMIT`` characters at most). Each character is examined
    a bounded number of times, however the text is cut into chunks and however long
    it is held. Not thread-safe; one instance per stream. Dropping it without
    ``flush()`` discards the held text, which is what a cancelled stream wants.
    """

    def __init__(self, secrets: tuple[str, ...] = ()) -> None:
        self._secrets = secrets  # found by value too (see ``redact``)
        self._cuts = _cut_set(secrets)
        self._base = 0  # where the text held back starts (a break), from the stream's start
        self._examined: list[str] = []  # the held text up to _checked
        self._tail = ""  # its last _LOOKBACK characters
        self._checked = 0  # no cut c with _base < c <= _checked is a break
        self._pending: list[str] = []  # chunks since, not yet examined
        self._pem = _PemHolds()
        self._blockers = _Blockers()
        self._counts: dict[str, int] = {}
        self._flushed = False

    def feed(self, chunk: str) -> str:
        """Take the next chunk; return the part now safe to emit (may be ``""``)."""
        if self._flushed:
            raise ValueError("feed() after flush(): the stream has ended")
        if not chunk:
            return ""
        self._pending.append(chunk)
        if not self._cuts[0].search(chunk):  # no new cut, so no new break
            return ""
        new = chunk if len(self._pending) == 1 else "".join(self._pending)
        self._pending.clear()
        off = self._checked - len(self._tail)  # the window: the tail, then the new text
        window = self._tail + new
        self._pem.read(window, off)
        self._blockers.read(window, off)
        x = _Cuts(window, off, self._cuts, self._pem, self._blockers)
        cut, _ = _last_break(x, len(window), self._base - off, self._checked - off)
        self._checked = off + len(window)  # the cuts after `cut` are not breaks, and stay so
        if off + cut == self._base:  # no break in the new text
            self._examined.append(new)
            self._tail = window[-_LOOKBACK:]
            return ""
        split = cut - len(self._tail)  # where the new text is cut
        ready = "".join(self._examined) + new[:split]
        rest = new[split:]
        self._base = off + cut
        self._examined, self._tail = [rest], rest[-_LOOKBACK:]
        self._pem.forget(self._base)
        self._blockers.forget(self._base)
        return self._take(ready)

    def flush(self) -> str:
        """End of stream: everything held back, redacted. Later calls return ``""``."""
        text = "".join(self._examined) + "".join(self._pending)
        self._examined, self._pending, self._tail = [], [], ""
        self._flushed = True
        return self._take(text) if text else ""

    @property
    def counts(self) -> Mapping[str, int]:
        """Secrets replaced so far, per kind (final after ``flush()``)."""
        return _frozen_counts(self._counts)

    def _take(self, text: str) -> str:
        if not self._secrets and not _maybe_triggered(text):
            return text
        done = redact(text, self._secrets)
        for kind, n in done.counts.items():
            self._counts[kind] = self._counts.get(kind, 0) + n
        return done.text
