"""What redaction finds in a block of text: the patterns of each kind and
``_redact_block``, which replaces what they find in one block. Here: API keys, JWTs,
private key blocks, emails and values given a secret's name (``password=``,
``"secret_key": ...``), the cheap triggers that let a block without any skip every
pattern, and the list of all patterns with their ranks. Credentials in HTTP's and
command lines' forms (Bearer, Basic, a Python client's ``auth=``, curl's ``-u``, URL
passwords) live in ``_patterns_credentials``, a table's secret columns in
``_patterns_tables``, the words they share (kinds, names, placeholders) in
``_patterns_values``, phone and card numbers in ``_numbers``. ``_redaction`` cuts text
into blocks (and a stream at its breaks, ``_redact_breaks``) and is the public API; see
its docstring for the rules.

Pure and synchronous.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable, Iterable
from typing import Final

import attrs

from switchman.policy._numbers import NUMBER_TRIGGER as _NUMBER_TRIGGER
from switchman.policy._numbers import has_ascii_digit as _has_ascii_digit
from switchman.policy._numbers import number_hits
from switchman.policy._numbers import number_triggered as _number_triggered
from switchman.policy._patterns_credentials import (
    _AUTH_BASIC,
    _AUTH_TOKEN,
    _BASIC,
    _BEARER,
    _CRED_LIST,
    _CRED_SCALAR,
    _PY_AUTH,
    _URL_PASSWORD,
    _USER_OPTION,
    _auth_token_hit,
    _basic_hit,
    _bearer_hit,
    _cred_list_hit,
    _cred_scalar_hit,
    _py_auth_hit,
    _url_password_hit,
    _user_option_hit,
    colon_named,
    cred_heads,
)
from switchman.policy._patterns_tables import _column_hits, _Columns, names_a_token
from switchman.policy._patterns_values import (
    _CELL_PROSE,
    _KEEP,
    _LENGTH_RULE,
    _PASSWORD_NAME,
    _PASSWORD_SYMBOLS,
    _SECRET_KEY_NAME,
    _TOKEN_NAME,
    _bare_value,
    _has_digit,
    _other_script_prose,
    _value_but,
    is_code,
    is_placeholder,
    password_run,
)
from switchman.policy._patterns_values import KINDS as KINDS
from switchman.policy._patterns_values import PEM_HOLD_LIMIT as PEM_HOLD_LIMIT
from switchman.policy._patterns_values import QUOTED_SPACED as QUOTED_SPACED
from switchman.policy._patterns_values import tag as tag

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


# a private key's header and END line; an END closes the header of the same label
_PEM_HEADER = re.compile(r"-----BEGIN(?P<label>[A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?)-----")
_PEM_END = re.compile(r"-----END(?P<label>[A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?)-----")
# a key's body without its END line: base64 lines and Proc-Type style headers
_PEM_BODY = re.compile(r"(?:[A-Za-z0-9+/=:,\s]++|-(?!----))*+")
# in a body without its END line, a blank line (or more) and the next line's indent;
# the blank line right after the header's line (GnuPG's armor) is the body's own
_PEM_GAP = re.compile(r"\r?\n[ \t]*+\r?\n\s*+")
_PEM_HEAD_GAP = re.compile(r"[ \t]*+\r?\n(?:[ \t]*+\r?\n)*+")
# a key's line: a base64 run of 32 or more, or a whole line of base64 (its last one)
_PEM_LINE = re.compile(r"[A-Za-z0-9+/=]{32}|[A-Za-z0-9+/=]++[ \t]*+(?:\r?\n|\Z)")


# An email address: its local part and its domain each in Latin letters (ASCII, and
# accented: müller@bücher.de) or each in letters of other scripts (用户@例子.广告,
# иван@почта.рф; a domain of those under an ASCII top-level one: 例子.cn), digits in
# either. Where the script changes, the address ends: text glued to it in another
# script is no part of it (请发送邮件至support@example.com我们会). A local part of other
# scripts holds no ASCII digit before a Latin domain: those digits are the address
# (QQ mail's, glued to Chinese: 我的邮箱是123456789@qq.com).
_LATIN = "A-Za-z\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u024f\u1e00-\u1eff"  # its letters
_L = f"{_LATIN}0-9"  # Latin letters and digits
_N = f"^\\W_{_LATIN}"  # (negated) letters and digits of other scripts
_LATIN_LOCAL = rf"(?<![{_L}_.%+-])(?<!://)[{_L}_.%+-]+"
_OTHER_LOCAL = rf"(?<![{_N}])(?<![.%+-])(?:[{_N}]|[.%+-])+"
_OTHER_LOCAL_LETTERS = rf"(?<![{_N}])(?<![.%+-])(?:(?![0-9])[{_N}]|[.%+-])+"
_LATIN_DOMAIN = rf"[{_L}-]+(?:\.[{_L}-]+)*\.[{_LATIN}]{{2,}}(?![{_L}_-]|\.[{_L}_-])"
_OTHER_DOMAIN = (
    rf"(?:[{_N}]|-)+(?:\.(?:[{_N}]|-)+)*\."
    rf"(?:(?:[^\W\d_{_LATIN}]){{2,}}(?![{_N}])(?![_-]|\.[{_N}_-])"
    rf"|[A-Za-z]{{2,}}(?![{_L}_-]|\.[{_L}_-]))"
)
_EMAIL = re.compile(
    rf"{_LATIN_LOCAL}@(?:{_LATIN_DOMAIN}|{_OTHER_DOMAIN})"
    rf"|{_OTHER_LOCAL}@{_OTHER_DOMAIN}|{_OTHER_LOCAL_LETTERS}@{_LATIN_DOMAIN}"
)
# the domains reserved for examples (RFC 2606, RFC 6761): no one's address
_RESERVED_DOMAIN = re.compile(
    r"(?:.*\.)?example\.(?:com|net|org)|(?:.*\.)?(?:example|test|invalid|localhost)",
    re.IGNORECASE,
)
# user@host in a command, not mail: a host spec (git@github.com:acme/x.git, scp f
# deploy@web01.internal:/srv, nas:~/x) or the argument of a remote shell (ssh
# ubuntu@ec2-...). A host spec's path starts with / or ~, or holds a / or ends in
# .git: a word alone after the ":" is a password or a port (john@example.com:hunter2)
_HOST_PATH = re.compile(r":(?:[/~]|[\w.$-]*(?:/|\.git(?![\w-])))")
# the command, then options and their arguments on its line (ssh -i ~/.ssh/k.pem -p 2222,
# ssh -o StrictHostKeyChecking=no, ssh -J bastion@jump.corp.net), then the address: an
# option is a word led by one or two -, and more (a lone - or -- is none, but a last --
# ending the options); an option takes one argument at most, so a second word after it
# is prose, which ends the command (scp -r often - ask admin@acme.io)
_REMOTE_COMMAND = r"(?<![\w-])(?:ssh(?:-copy-id)?|scp|sftp|mosh|rsync|clone)"  # (git) clone
_BEFORE_HOST = re.compile(
    _REMOTE_COMMAND
    + r"(?:[ \t]{1,8}-{1,2}+[^\s-][^\s]{0,63}+(?:[ \t]{1,8}[^\s-][^\s]{0,128}+)?){0,8}"
    + r"(?:[ \t]{1,8}--)?[ \t]{1,8}\Z"
)
#: how far before an address its command is looked for (its options between)
HOST_REACH: Final = 240
_COMMAND_AT = re.compile(_REMOTE_COMMAND + r"[ \t]")
_COMMAND_WORD = re.compile(r"ssh|scp|sftp|mosh|rsync|clone")


def before_host(t: str, c: int) -> bool:
    """Whether a remote shell's command and its options (``_BEFORE_HOST``) end at ``c``
    on its line, within ``HOST_REACH`` characters: a user@host there is no address.
    The commands before ``c`` are tried from the last: one that is a word of its own
    decides (had an earlier one reached ``c``, this one, an option's argument, would
    too), so a text pays a few searches for literals per place, not a match at each."""
    lo = max(c - HOST_REACH, 0)
    lo = t.rfind("\n", lo, c) + 1 or lo
    if (t.find("s", lo, c) < 0 and t.find("clone", lo, c) < 0) or _COMMAND_WORD.search(
        t, lo, c
    ) is None:
        return False  # no command (all but clone hold an s)
    end = c
    while True:
        p = max(
            t.rfind("ssh", lo, end),
            t.rfind("scp", lo, end),
            t.rfind("sftp", lo, end),
            t.rfind("mosh", lo, end),
            t.rfind("rsync", lo, end),
            t.rfind("clone", lo, end),
        )
        if p < 0:
            return False
        if _COMMAND_AT.match(t, p, c) is not None:
            if _BEFORE_HOST.match(t, p, c) is not None:
                return True
            if p == lo or t[p - 1] in " \t":
                return False
        end = p + 2  # none there (.ssh/, sshd), or one ending a word: the one before it


# A value given a name that says it is a secret: a password (``password=...``,
# ``DB_PASSWORD: ...``, ``"password": "..."``, ``Password=...;``) or a secret key
# (``aws_secret_access_key = ...``, ``SecretAccessKey``, ``SECRET_KEY``). The value
# is printable ASCII or letters and digits of any script (``Contraseña2024!``), without
# whitespace but for spaces in a quoted value (``"correct horse 9"``, at most
# QUOTED_SPACED characters: a stream holds back that long for one): quoted
# (double, single or backticks: ``Password: `Tr0ub4dor&3` ``), or bare up to a quote,
# or one of ``, ; & ) ] }`` that does not go on to more of the value: one before another
# name and its ``=`` (``Password=x;Host=db``, ``?password=x&user=y``) or a ``,`` before
# a name and its ``:`` (``{password:pw1,role:"admin"}``), one before none of the value's
# characters, a link's ``](`` (a password manager's ``Xk9#mQ2&vL7;pZ`` is one value: its
# tail had been left); after ``=``, a ``;`` or ``&`` before a capitalized word ending the
# value (``_NEXT_KEY``); a comparison (``password==x``) is no value. Markdown's closing
# ``**`` or ``__`` may stand between the name and its separator or after it (``-
# **password**: x``, ``**Password:** x``). (the names: _patterns_values)
_BARE = _value_but("\"'`,;&)]}")
_BARE_ON = (  # (what a bare value goes on through, as said above)
    rf"[{_BARE}]|(?!&&|\]\()[,;&)\]}}]{{1,3}}(?![A-Za-z_][\w .-]{{1,64}}=)"
    rf"(?!(?<=,)[A-Za-z_]\w{{2,63}}:)(?=[{_BARE}])"  # (,role: in compact code)
)
# a quoted value's characters: a value's but its quote, a space too if short
_DQ, _SQ, _BQ = r"\w!#-~", r"\w!-&(-~", r"\w!-_a-~"
_BOLD = r"(?:\*\*|__)?"  # markdown's closing bold
_NAME_SEP = (
    rf"[\"'`]?{_BOLD}"
    rf"(?:[ \t]{{0,16}}(?P<sep>=>|:=|[=:]|(?P<pipe>\|)){_BOLD}[ \t]{{0,16}}|[ \t]{{1,16}})"
)
_SPACED = f"{{1,{QUOTED_SPACED}}}"  # how long a quoted value with spaces may be
_STOPS = re.compile(r"[,;&)\]}]")
_COMPARED = re.compile(r"=+\s*[A-Za-z_$][\w.$]*(?:[()\s]|\Z)")  # (==confirm), ==hash(
# a ; or & before a capitalized word ending the value: the next key of a connection
# string whose name has spaces, its = past the block's end (;Persist Security Info=True)
_NEXT_KEY = re.compile(r"[;&](?=[A-Z][a-z]+\Z)")


def _named_value_pattern(cell_end: str, sep: str = _NAME_SEP) -> str:
    """A secret's value after its name and ``sep``, a table's cell ending where
    ``cell_end`` matches."""
    return (
        sep
        + rf"(?:\"(?P<dq>[{_DQ}]{{1,256}}|[ {_DQ}]{_SPACED})\""
        + rf"|'(?P<sq>[{_SQ}]{{1,256}}|[ {_SQ}]{_SPACED})'"
        + rf"|`(?P<bq>[{_BQ}]{{1,256}}|[ {_BQ}]{_SPACED})`"
        # a table's cell, after a name's cell: up to its |, spaces and all
        + rf"|(?(pipe)(?P<cell>[^\s|`\"'][^|\n]{{0,{QUOTED_SPACED - 1}}})(?={cell_end})|(?!))"
        + rf"|(?P<bare>(?:{_BARE_ON}){{1,256}}))"
    )


_NAMED_VALUE = _named_value_pattern(r"\|")
_PASSWORD = re.compile(r"(?<![/\\])" + _PASSWORD_NAME + _NAMED_VALUE)  # not /etc/passwd
_SECRET_KEY = re.compile(_SECRET_KEY_NAME + _NAMED_VALUE)
# a key's or token's value after its name, unprefixed (``GITHUB_TOKEN=...``,
# ``client_secret: ...``, ``"api_key": "..."``; _TOKEN_NAME) and its = or :
_TOKEN_SEP = (  # an = or : (no table's |: its group never takes part)
    rf"[\"'`]?{_BOLD}[ \t]{{0,16}}(?P<sep>=>|:=|[=:])(?P<pipe>(?!x)x)?{_BOLD}[ \t]{{0,16}}"
)
_TOKEN_NAMED = re.compile(_TOKEN_NAME + _named_value_pattern(r"\|", _TOKEN_SEP))
# the same opening a row of a table without outer pipes, its cell perhaps the row's
# last, without its | (``password | my pass 2024``: up to the line's end)
_ROW_VALUE = _named_value_pattern(r"\||[ \t]*\r?(?:\n|\Z)")
_PASSWORD_ROW = re.compile(r"(?<![/\\])" + _PASSWORD_NAME + _ROW_VALUE)
_SECRET_KEY_ROW = re.compile(_SECRET_KEY_NAME + _ROW_VALUE)
# a quoted value after a name, still open at the end (a cut in it waits for the rest)
_OPEN_VALUE = re.compile(
    rf"(?:{_PASSWORD_NAME}|{_SECRET_KEY_NAME})"
    + _NAME_SEP.replace("?P<sep>", "?:").replace("?P<pipe>", "?:")
    + rf"(?:\"[ {_DQ}]{{0,{QUOTED_SPACED - 1}}}|'[ {_SQ}]{{0,{QUOTED_SPACED - 1}}}"
    + rf"|`[ {_BQ}]{{0,{QUOTED_SPACED - 1}}})\Z"
)
# a table's cell after a name's cell, still open at the end (a cut in it waits for its |)
_OPEN_CELL = re.compile(
    rf"(?:{_PASSWORD_NAME}|{_SECRET_KEY_NAME})[\"'`]?{_BOLD}[ \t]{{0,16}}\|{_BOLD}"
    rf"[ \t]{{0,16}}[^|\n]{{0,{QUOTED_SPACED}}}\Z"
)
# what a name waits for at a cut: its separator or its value (or the rest of the name)
# (a password's or secret key's name, and a token's apart: _redact_breaks asks each
# only if its words' letters are there)
_NAME_TAIL_SEP = rf"[\"'`]?{_BOLD}[ \t]{{0,16}}(?:(?:=>|:=|[=:|]){_BOLD})?[ \t]{{1,16}}\Z"
_NAME_TAIL = re.compile(
    rf"(?:{_PASSWORD_NAME}|{_SECRET_KEY_NAME}){_NAME_TAIL_SEP}"
    r"|(?:[Ss]ecret(?:[ _.-]?[Aa]ccess)?|SECRET(?:[ _.-]?ACCESS)?) \Z"
)
_TOKEN_TAIL = re.compile(_TOKEN_NAME + _NAME_TAIL_SEP)
# what stands before a secret's name in a table's cell: its | and the name's head
_NAME_CELL = re.compile(r"\|[ \t]*[\w.*`-]{0,48}\Z")
# the name's head in the first cell of a row without a leading | (``DB_PASSWORD | x``)
_ROW_HEAD = re.compile(r"[\w.*`-]{0,48}")
_ROW_NAMES: Final = (("assw", "password"), ("ASSW", "password"))
_ROW_SECRET_NAMES: Final = (("ecret", "api_key"), ("ECRET", "api_key"))
_WS = re.compile(r"\s")
# Whatever a pattern matches contains one of these, a character other than a space
# and "@" on each side of an "@", or a _NUMBER_TRIGGER match; a block without any is
# left as it is.
_TRIGGER_LITERALS: Final = (  # (characters every match holding them holds one of, literals)
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
    ("D", ("DigestAuth(",)),  # HTTPDigestAuth("user", "password")
    ("R", ("EARER",)),
    ("W", ("ASSW",)),
    ("E", ("ECRET",)),  # SECRET...KEY, API_SECRET
    # a key's or token's name (_TOKEN_NAME, _token_named)
    ("p", ("pi_", "pi-", "pik", "piK", "assphrase")),
    ("P", ("PI_", "PI-", "PIK", "PIk", "ASSPHRASE")),
    ("k", ("_token", "-token")),
    ("T", ("Token", "_TOKEN", "-TOKEN")),
    ("c", ("ccountK", "ccountk", "ccount_", "ccount-")),
    ("C", ("CCOUNT",)),
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
                # a table (its separator |---|) whose header may name a token's column
                or ("|" in text and names_a_token(text))
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
        or (  # auth=(...), {"auth": (...)}, AUTH = [...], auth: user:pw, auth: [u, pw]
            ("=" in text or ":" in text) and _cred_named(text) and _cred_headed(text)
        )
        or ("D" in text and "(" in text and "DigestAuth(" in text)
        or _token_named(text)
        or "ecret" in text  # secret key
        or ("C" in text and "ECRET" in text)  # SECRET_KEY, API_SECRET
        or ("z" in text and "AIza" in text)
        or ("G" in text and "SG." in text)  # SendGrid
        or ("J" in text and "eyJ" in text)
        or _number_triggered(text)
    )


def _token_named(text: str) -> bool:
    """Whether ``text`` may hold a key's or token's name and its ``=`` or ``:``
    (``_TOKEN_NAMED``; a secret's is asked apart, by ``ecret``). One-character tests
    first: prose pays little."""
    if "=" not in text and ":" not in text:
        return False
    return (
        ("_" in text and ("pi_" in text or "PI_" in text or "_to" in text or "_TO" in text))
        or ("-" in text and ("pi-" in text or "PI-" in text or "-to" in text or "-TO" in text))
        or ("K" in text and ("piK" in text or "PIK" in text or "ccountK" in text))
        or ("k" in text and ("pik" in text or "PIk" in text or "ccountk" in text))
        or ("T" in text and "Token" in text)
        or ("_" in text and "ccount_" in text)
        or ("C" in text and "CCOUNT" in text)
        or ("-" in text and "ccount-" in text)
        or ("h" in text and "assphrase" in text)
        or ("H" in text and "ASSPHRASE" in text)
    )


def _cred_headed(text: str) -> bool:
    """Whether a name opens credentials in ``text`` (``cred_heads``), a text holding a
    parenthesis or bracket and a quote (a Python client's) asked at once; any other
    only if a name and its colon are there (``colon_named``: YAML's, unquoted)."""
    if ("(" in text or "[" in text) and ('"' in text or "'" in text):
        return bool(cred_heads(text))
    return ":" in text and colon_named(text) and bool(cred_heads(text))


def _cred_named(text: str) -> bool:
    """Whether ``text`` may hold a name a Python client's credentials are given."""
    return (
        "uth" in text
        or "red" in text  # credentials, creds
        or ("H" in text and "UTH" in text)
        or ("D" in text and "RED" in text)
    )


def _plain_char(ch: str) -> bool:
    return ch != "@" and not ch.isspace()


def _trigger_spans(text: str) -> list[tuple[int, int]]:
    """Spans such that every block holding a trigger overlaps one of them."""
    spans = []
    for guards, literals in _TRIGGER_LITERALS:
        if not any(guard in text for guard in guards):
            continue
        for literal in literals:
            i = text.find(literal)
            while i >= 0:
                spans.append((i, i + len(literal)))
                i = text.find(literal, i + 1)
    if "(" in text or "[" in text or ":" in text:  # auth=("u", "pw"), auth: u:pw
        spans.extend(cred_heads(text))
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


def _email_hit(m: re.Match[str]) -> str | None:
    block, start, end = m.string, m.start(), m.end()
    if _RESERVED_DOMAIN.fullmatch(block, block.index("@", start) + 1, end):
        return None  # user@example.com, a@b.test: an example, no one's address
    if _HOST_PATH.match(block, end) or before_host(block, start):
        return None  # a host spec or a remote shell's argument: no mail address
    return tag("email")


def _in_code_span(m: re.Match[str]) -> bool:
    """Whether the name of ``m``, a value in backticks after it, opens a code span of its
    own (a backtick right before its word) that nothing closes before the value's
    backtick, which is then the span's end (the name and ``=`` in backticks, then prose),
    not a value's start (the name in backticks, ``:`` and the value in backticks)."""
    text, start = m.string, m.start()
    while start > 0 and (text[start - 1].isalnum() or text[start - 1] in "_.-"):
        start -= 1
    return start > 0 and text[start - 1] == "`" and "`" not in text[start : m.start("bq") - 1]


def _named_value(m: re.Match[str], kind: str, row: bool = False) -> str | None:
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
    chars``: prose punctuation, a rule's words, six words or more) is left. The name's
    cell follows a ``|``, or opens a row of a table without outer pipes (``row``:
    ``password | my pass 2024`` under a header and its delimiter row, the row's last
    cell running to the line's end: ``_PASSWORD_ROW``). A bare value ends before a
    Chinese, Japanese or Korean letter (``password: 至少8个字符`` is prose); a bare value
    or a cell holding a letter not ASCII's needs a digit and a symbol too
    (``Contraseña2024!``, not ``größer8Zeichen``).
    """
    group = next(g for g in ("dq", "sq", "bq", "cell", "bare") if m[g] is not None)
    value = m[group]
    if m["sep"] == "=" and _COMPARED.match(value):
        return None  # password==confirm: a comparison
    if group == "bq" and value[:1].isspace() and _in_code_span(m):
        return None  # `DB_PASSWORD=` and `DB_USER=`: its backtick closes the name's span
    if group == "cell":
        value = value.rstrip()
        if " " in value and _CELL_PROSE.match(value):
            return None
    if m["pipe"] is not None and _LENGTH_RULE.fullmatch(value.rstrip()):
        return None  # | password | 8-64 |
    if m["sep"] == "|":  # a table's row: the name's cell opens the row or follows a |
        if not row and _NAME_CELL.search(m.string, max(m.start() - 64, 0), m.start()) is None:
            return None  # a shell's pipe: echo $password | base64
        if group == "bare":
            value = value.partition("|")[0]  # |password|hunter2!x|
    if group == "bare":
        value = _bare_value(value).rstrip(".")  # the end of a sentence
        head = _STOPS.split(value, 1)[0]  # (a shell variable, then a command after it)
        if value[:1] == "$" and is_placeholder(head) and not password_run(value[len(head) :]):
            return None  # PGPASSWORD=$PGPASS;psql, $(openssl rand -hex 16)
        if m["sep"] in ("=", ":=") and (key := _NEXT_KEY.search(value)) is not None:
            value = value[: key.start()]
    at = m.start(group) + len(value)
    after = m.string[at : at + 1]  # (a closing bracket a bare value stops before)
    if group in ("bare", "cell") and (
        not value or is_code(value, after) or _other_script_prose(value)
    ):
        return None
    if is_placeholder(value, after):
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


def _row_name_hits(block: str, lines: Iterable[int]) -> Iterable[_Hit]:
    """The values after a secret's name opening a row of a table without outer pipes
    (``password | hunter2``), ``lines`` being where such rows start in ``block``: the
    name within the row's first ``[\\w.*`-]`` run of 48 characters and its own, its
    separator a ``|``. Reads 72 characters of each row, and its value."""
    for p in lines:
        head = m.end() if (m := _ROW_HEAD.match(block, p)) else p  # the name starts by here
        hi = min(len(block), p + 72)
        for pattern, words in ((_PASSWORD_ROW, _ROW_NAMES), (_SECRET_KEY_ROW, _ROW_SECRET_NAMES)):
            for word, kind in words:
                i = block.find(word, p + 1, hi)
                while i >= 0:
                    q = i - 1  # the name's first letter
                    if q <= head and (m := pattern.match(block, q)):
                        if m["sep"] == "|" and (found := _named_value(m, kind, row=True)):
                            yield _Hit(m.start(), m.end(), _RANK[kind], kind, found)
                    i = block.find(word, i + 1, hi)


# a token's value: letters and digits both, no space nor JSON's punctuation
_TOKEN_VALUE = re.compile(r"(?=[^0-9]*[0-9])(?=.*[^\W\d_])[^\s,{}\[\]]+")
# the words of a name (next_page_token, nextPageToken, NEXT_PAGE_TOKEN: next, page, token)
_NAME_WORDS = re.compile(r"[A-Z]?[a-z0-9]+|[A-Z]+(?![a-z])")
# a token's name with one of these words names no secret: a page's, a cursor's, an
# idempotency key's or a cache's token (nextPageToken, continuation_token, syncToken)
_PUBLIC_TOKEN_WORDS: Final = frozenset(
    (
        *("page", "paging", "pagination", "next", "continuation", "cursor", "sync"),
        *("resume", "skip", "delta", "idempotency", "idempotence", "cache", "etag"),
    )
)
# a value standing for a token rather than being one (your_api_key_here_123,
# REPLACE_ME_WITH_SECRET_1, changeme2024, xxxx1234, sk-...)
_TOKEN_PLACEHOLDER = re.compile(
    r"(?i:(?<![a-z])(?:your|my)[_-]|replace|placeholder|change[_-]?me|example|sample"
    r"|dummy|insert|[_-]here(?![a-z])|xxxx|\.\.\.)"
)


# what the word secret alone names: a key's shape (an AWS secret key's: 40 of these)
_KEY_SHAPED = re.compile(
    r"(?=[^0-9]*[0-9])(?=[^A-Z]*[A-Z])(?=[^a-z]*[a-z])[A-Za-z0-9/+=]{20,}"  # AWS's
    r"|[0-9a-fA-F]{32,}"  # a webhook's, a JWT signing secret in hex
)
_TOKEN_SHAPED = re.compile(r"[A-Za-z0-9_-]{20,}")


def _key_shaped(value: str) -> bool:
    """Whether the value after the word ``secret`` alone is a key: AWS's shape, hex, or a
    token of 20 characters or more a fifth of them digits or more (not a code name such as
    ``Operation2024-Northwind``)."""
    if _KEY_SHAPED.fullmatch(value):
        return True
    digits = sum(ch.isdigit() for ch in value)  # (ASCII: the shape's characters)
    return _TOKEN_SHAPED.fullmatch(value) is not None and 5 * digits >= len(value)


def _token_hit(m: re.Match[str]) -> str | None:
    """A key's or token's value after its unprefixed name (``_TOKEN_NAMED``) and its ``=``
    or ``:``: as a secret key's (16 characters or more, a digit in them, no
    placeholder or code), without spaces, a letter in it (``max_token: 4096``,
    ``api_key=os.environ[...]``, ``token: str`` are left). A placeholder's words
    (``your_api_key_here_123``, ``REPLACE_ME_1``: ``_TOKEN_PLACEHOLDER``), a JWT (the
    ``jwt`` pattern's) and a page's, cursor's, idempotency key's or cache's token
    (``nextPageToken``: ``_PUBLIC_TOKEN_WORDS``) are left to others or alone; a
    session's token is a secret."""
    if m["bare"] is not None:
        value = _bare_value(m["bare"])
    else:
        value = next(m[g] for g in ("dq", "sq", "bq") if m[g] is not None)
    if not _TOKEN_VALUE.fullmatch(value.rstrip(".")) or _TOKEN_PLACEHOLDER.search(value):
        return None
    if _JWT.fullmatch(value):
        return None  # a JWT, the jwt pattern's
    name = m.string[m.start() : m.start("sep")]
    if any(w.lower() in _PUBLIC_TOKEN_WORDS for w in _NAME_WORDS.findall(name)):
        return None  # nextPageToken, idempotency_token: no secret
    if name.strip("\"'`*_ \t").lower() == "secret" and not _key_shaped(value):
        return None  # Top secret: Operation2024-Northwind; secret: app-secrets-v2
    return _named_value(m, "api_key")


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
    (
        "api_key",
        _TOKEN_NAMED,
        _token_hit,
        lambda s: "ecret" in s or "ECRET" in s or _token_named(s),
    ),
    ("api_key", _AUTH_TOKEN, _auth_token_hit, lambda s: "uthorization" in s),
    ("password", _PASSWORD, _password_hit, lambda s: "assw" in s or "ASSW" in s),
    ("password", _USER_OPTION, _user_option_hit, lambda s: "-u" in s),
    ("password", _BASIC, _basic_hit, lambda s: "Basic" in s or "BASIC" in s),
    ("password", _AUTH_BASIC, _basic_hit, lambda s: "uthorization" in s),
    ("password", _PY_AUTH, _py_auth_hit, lambda s: "Auth(" in s or _cred_named(s)),
    ("password", _CRED_SCALAR, _cred_scalar_hit, lambda s: ":" in s and _cred_named(s)),
    ("password", _CRED_LIST, _cred_list_hit, lambda s: ":" in s and "[" in s and _cred_named(s)),
    ("email", _EMAIL, _email_hit, lambda s: "@" in s),
)
_RANK: Final = {
    kind: n
    for n, kind in enumerate(("private_key", *(p[0] for p in _PATTERNS), "card_number", "phone"))
}


def _pem_body_end(block: str, h: int) -> int:
    """Where the body of a key whose header ends at ``h`` and has no END line in reach
    ends: the base64-ish run after it (``_PEM_BODY``: base64 lines, armor headers), but
    a blank line followed by a line that is not base64 (prose after a header named in
    a sentence) ends it before; a blank line right after the header's line does not
    (GnuPG's armor). Trailing whitespace aside."""
    body = _PEM_BODY.match(block, h)
    end = h if body is None else body.end()
    head = _PEM_HEAD_GAP.match(block, h, end)
    for gap in _PEM_GAP.finditer(block, h if head is None else head.end(), end):
        if _PEM_LINE.match(block, gap.end()) is None:
            end = gap.start()
            break
    return h + len(block[h:end].rstrip())


def _pem_hits(block: str) -> Iterable[_Hit]:
    """Private keys: from a header to the END line of its label if that ends within
    ``PEM_HOLD_LIMIT`` characters of its BEGIN, whatever lies between (``\\n`` escapes
    of a JSON string, armor headers); else through the base64-ish run of its body, up to
    a blank line followed by a line that is no key's (``_pem_body_end``)."""
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
            end = _pem_body_end(block, h)
        yield _Hit(i, end, _RANK["private_key"], "private_key", tag("private_key"))


def _redact_block(
    block: str,
    counts: dict[str, int],
    rows: Iterable[tuple[int, _Columns]] = (),
    lines: Iterable[int] = (),
) -> str:
    """Redact one block, adding what it found to ``counts``; ``rows``: the rows of
    tables with secret columns starting in it (their first character but spaces) and
    those columns; ``lines``: where the rows of tables without outer pipes start in it
    (those not led by a |)."""
    hits: list[_Hit] = []
    if rows:
        hits.extend(_Hit(a, b, _RANK[k], k, tag(k)) for a, b, k in _column_hits(block, rows))
    if lines:
        hits.extend(_row_name_hits(block, lines))
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
